"""``jobaudit report --format html``: one self-contained page for people who would rather look.

No scripts, no external stylesheets, fonts or images: the style sheet is
inline and a Content-Security-Policy forbids every fetch, so the file can be
mailed, archived as a CI artifact or opened offline and looks the same.
Everything that comes from the analysed code or its paths goes through
``html.escape``.
"""

from __future__ import annotations

from html import escape

from jobaudit import __version__
from jobaudit.findings import Finding
from jobaudit.report.readiness import (
    FAIL,
    GATES,
    NOT_CHECKED,
    PASS,
    STATES,
    UNKNOWN,
    WARN,
    Gate,
    JobEntry,
    Readiness,
)
from jobaudit.report.readiness_entry import framework_title, location, sections

CSS_CLASS = {PASS: "pass", WARN: "warn", FAIL: "fail", UNKNOWN: "unknown", NOT_CHECKED: "nc"}
STYLE = """
:root { --pass:#2da44e; --warn:#d4a72c; --fail:#cf222e; --unknown:#8250df; --nc:#d0d7de;
  --ink:#1f2328; --muted:#59636e; --line:#d1d9e0; }
* { box-sizing: border-box; }
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
  color: var(--ink); margin: 0 auto; padding: 24px 32px; max-width: 1200px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 8px; }
.sub, .muted { color: var(--muted); }
code, .path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 12px; }
.overall { display: flex; align-items: center; gap: 16px; margin: 16px 0; }
.big { font-size: 32px; font-weight: 600; }
.gates { display: grid; grid-template-columns: 230px 1fr 320px; gap: 6px 16px;
  align-items: center; }
.gate-title { font-weight: 600; } .rules { font-size: 12px; color: var(--muted); }
.bar { display: flex; height: 22px; border-radius: 4px; overflow: hidden;
  background: var(--nc); min-width: 120px; }
.bar span { display: block; height: 100%; color: #fff; font-size: 12px; line-height: 22px;
  text-align: center; overflow: hidden; white-space: nowrap; }
.bar .nc { color: var(--ink); }
.legend { font-size: 12px; color: var(--muted); }
.legend b { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  margin: 0 3px 0 8px; vertical-align: -1px; }
.pass { background: var(--pass); } .warn { background: var(--warn); }
.fail { background: var(--fail); } .unknown { background: var(--unknown); }
.nc { background: var(--nc); }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.mark { text-align: center; width: 72px; }
.badge { display: inline-block; min-width: 56px; padding: 0 6px; border-radius: 10px;
  font-size: 11px; color: #fff; text-align: center; white-space: nowrap; }
td.ready { white-space: nowrap; }
th.nc-head, td.nc-mark { color: var(--muted); font-weight: normal; width: auto; }
.badge.nc { color: var(--ink); }
details { border: 1px solid var(--line); border-radius: 6px; margin: 8px 0; padding: 4px 12px; }
summary { cursor: pointer; font-weight: 600; padding: 4px 0; }
details h3 { font-size: 13px; margin: 12px 0 4px; }
details table { table-layout: fixed; }
details td:first-child { width: 200px; color: var(--muted); }
table.kv td:nth-child(2) { width: 40%; }
ul.findings { margin: 2px 0 6px; padding-left: 20px; }
"""


def render(readiness: Readiness) -> str:
    total = len(readiness.entries)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>jobaudit readiness report</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Background job readiness</h1>",
        f'<div class="sub">jobaudit {escape(__version__)} · {readiness.files} files · '
        f"{escape(str(readiness.result.root.name))}</div>",
        '<div class="overall">',
        f'<div class="big">{readiness.ready} / {total}</div>',
        '<div>jobs ready<br><span class="muted">A job is ready when none of its gates '
        "fails.</span></div></div>",
        "<h2>Gates</h2>",
        '<div class="gates">',
        *(_gate_row(readiness, gate) for gate in GATES),
        "</div>",
        _legend(),
    ]
    if readiness.entries:
        parts += ["<h2>Jobs, worst first</h2>", _jobs_table(readiness)]
    if readiness.project_findings:
        parts += [
            "<h2>Findings that concern no single job</h2>",
            _findings(readiness.project_findings),
        ]
    if readiness.entries:
        parts += ["<h2>Job details</h2>", *(_entry(entry) for entry in readiness.entries)]
    if readiness.notices:
        parts += [
            "<h2>Not analysed</h2><ul>",
            *(
                f'<li><span class="path">{escape(n.path)}</span>: {escape(n.reason)}</li>'
                for n in readiness.notices
            ),
            "</ul>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _gate_row(readiness: Readiness, gate: Gate) -> str:
    rules = readiness.gate_rules[gate.id]
    counts = readiness.counts(gate.id)
    total = sum(counts.values())
    built_on = (
        f"built on {escape(', '.join(rules))}"
        if rules
        else f"not checked: no {gate.family}xx rule ran"
    )
    segments = "".join(
        f'<span class="{CSS_CLASS[state]}" style="width:{100 * counts[state] / total:.3f}%" '
        f'title="{counts[state]} {state}">{counts[state]}</span>'
        for state in STATES
        if counts[state] and total
    )
    tally = ", ".join(f"{counts[state]} {state}" for state in STATES if counts[state])
    return (
        f'<div><div class="gate-title">{escape(gate.title)}</div>'
        f'<div class="rules">{built_on}</div></div>'
        f'<div class="bar" role="img" aria-label="{escape(tally or "no jobs")}">{segments}</div>'
        f'<div class="legend">{escape(gate.about)}<br>{escape(tally or "no jobs")}</div>'
    )


def _legend() -> str:
    items = "".join(f'<b class="{CSS_CLASS[state]}"></b>{state}' for state in STATES)
    return f'<p class="legend">{items} · in the job table, &ndash; marks a gate no rule checked</p>'


def _badge(state: str) -> str:
    return f'<span class="badge {CSS_CLASS[state]}">{escape(state)}</span>'


def _jobs_table(readiness: Readiness) -> str:
    """Gates no rule checked get a narrow dash, so the gates that say something stand out."""
    checked = [bool(readiness.gate_rules[gate.id]) for gate in GATES]
    head = "".join(
        f"<th>{escape(gate.title)}</th>"
        if on
        else f'<th class="nc-head" title="not checked">{escape(gate.title)}</th>'
        for gate, on in zip(GATES, checked, strict=True)
    )
    rows = []
    for entry in readiness.entries:
        job = entry.job
        marks = "".join(
            f'<td class="mark">{_badge(entry.gate(gate.id).state)}</td>'
            if on
            else '<td class="mark nc-mark" title="not checked">&ndash;</td>'
            for gate, on in zip(GATES, checked, strict=True)
        )
        rows.append(
            f"<tr><td>{escape(job.label())}<br>"
            f'<span class="path">{escape(location(job))}</span></td>'
            f"<td>{escape(framework_title(job))}</td>{marks}"
            f'<td class="ready">{"ready" if entry.ready else "<b>not ready</b>"}</td></tr>'
        )
    return (
        f"<table><thead><tr><th>Job</th><th>Framework</th>{head}<th>Ready</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _entry(entry: JobEntry) -> str:
    job = entry.job
    state = "ready" if entry.ready else "not ready"
    parts = [
        f"<details><summary>{_badge(PASS if entry.ready else FAIL)} {escape(job.label())} "
        f'<span class="path">{escape(location(job))}</span> — {state}</summary>'
    ]
    for section in sections(entry):
        rows = "".join(
            f"<tr><td>{escape(row.label)}</td><td>{escape(row.value)}</td>"
            f'<td class="muted">{escape(row.source)}</td></tr>'
            for row in section.rows
        )
        parts.append(f'<h3>{escape(section.title)}</h3><table class="kv">{rows}</table>')
    parts.append("<h3>Gates</h3><table>")
    for result in entry.gates:
        details = _findings(result.findings) if result.findings else ""
        if result.unresolved:
            details += (
                '<ul class="findings">'
                + "".join(
                    f"<li>unknown {escape(item.label)} ({escape(item.source)}): "
                    f"{escape(item.reason)}</li>"
                    for item in result.unresolved
                )
                + "</ul>"
            )
        parts.append(
            f"<tr><td>{escape(result.gate.title)}</td><td>{_badge(result.state)}{details}</td></tr>"
        )
    parts.append("</table></details>")
    return "\n".join(parts)


def _findings(findings: tuple[Finding, ...]) -> str:
    items = "".join(
        f'<li><span class="path">{escape(f"{f.path}:{f.line}")}</span> '
        f"<code>{escape(f.code)}</code> [{escape(f.level)}] {escape(f.message)}</li>"
        for f in findings
    )
    return f'<ul class="findings">{items}</ul>'
