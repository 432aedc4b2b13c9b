"""``jobaudit report --format markdown``: for ``$GITHUB_STEP_SUMMARY``, PR comments and docs.

The summary tables come first, then one collapsible ``<details>`` entry per
job, worst first.  Everything that comes from the analysed code (names,
messages, paths, docstrings) is escaped, so a docstring cannot inject markup
or links into a PR.  GitHub drops a step summary over 1 MiB, so the output is
cut at a budget below that, with a note saying how many jobs were left out.
"""

from __future__ import annotations

import html

from jobaudit.findings import Finding
from jobaudit.report.readiness import (
    FAIL,
    GATES,
    NOT_CHECKED,
    PASS,
    STATES,
    UNKNOWN,
    WARN,
    JobEntry,
    Readiness,
)
from jobaudit.report.readiness_entry import framework_title, location, sections

MARKS = {PASS: "✅", WARN: "⚠️", FAIL: "❌", UNKNOWN: "❔", NOT_CHECKED: "⚪"}
BUDGET = 900 * 1024
"""Bytes: under GitHub's 1 MiB step-summary limit, with room for the truncation note."""
SPECIAL = set("\\`*_[]<>|~#")


def text(value: str) -> str:
    """Markdown-escape ``value`` for inline text and table cells."""
    out = []
    for char in value.replace("&", "&amp;"):
        if char in SPECIAL:
            out.append("\\" + char)
        elif char in "\r\n":
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def render(readiness: Readiness, budget: int = BUDGET) -> str:
    head = _head(readiness)
    chunks = [_jobs_table(readiness), *(_details(entry) for entry in readiness.entries)]
    out = head
    used = len(head.encode("utf-8"))
    for index, chunk in enumerate(chunks):
        size = len(chunk.encode("utf-8"))
        if used + size > budget:
            left = len(chunks) - index if index else len(readiness.entries)
            out += (
                f"\n> **Truncated:** {left} more job entries do not fit in a GitHub step "
                "summary (1 MiB). Run `jobaudit report --format html` for the full report.\n"
            )
            break
        out += chunk
        used += size
    return out


def _head(readiness: Readiness) -> str:
    lines = [
        f"## jobaudit readiness: {readiness.ready} of {len(readiness.entries)} jobs ready",
        "",
        "A job is ready when none of its gates fails. A gate fails on a warning or error "
        "finding, warns on notes only, is unknown when a value it depends on cannot be resolved "
        "statically, and is not checked when no rule of its family ran."
        + ("" if readiness.entries else f" No jobs were found in {readiness.files} files."),
        "",
        "| Gate | Rules | " + " | ".join(f"{MARKS[s]} {s}" for s in STATES) + " |",
        "|---|---|" + "---:|" * len(STATES),
    ]
    for gate in GATES:
        rules = readiness.gate_rules[gate.id]
        built_on = ", ".join(rules) if rules else f"none ({gate.family}xx)"
        counts = readiness.counts(gate.id)
        cells = " | ".join(str(counts[state]) for state in STATES)
        lines.append(f"| {gate.title} | {built_on} | {cells} |")
    if readiness.project_findings:
        lines += ["", "**Findings that concern no single job**", ""]
        lines += [f"- {_finding(f)}" for f in readiness.project_findings]
    return "\n".join(lines) + "\n"


def _jobs_table(readiness: Readiness) -> str:
    """Only gates some rule checked get a column: the others would show one mark on every row."""
    if not readiness.entries:
        return ""
    gates = [gate for gate in GATES if readiness.gate_rules[gate.id]]
    lines = [
        "",
        "### Jobs, worst first",
        "",
        "| Job | " + "".join(f"{gate.title} | " for gate in gates) + "Location |",
        "|---|" + ":---:|" * len(gates) + "---|",
    ]
    for entry in readiness.entries:
        marks = "".join(f"{MARKS[entry.gate(gate.id).state]} | " for gate in gates)
        lines.append(f"| {text(entry.job.label())} | {marks}`{_code(location(entry.job))}` |")
    legend = ", ".join(f"{MARKS[state]} {state}" for state in STATES if state != NOT_CHECKED)
    lines += ["", f"Marks: {legend}."]
    unchecked = [gate.title for gate in GATES if not readiness.gate_rules[gate.id]]
    if unchecked:
        lines[-1] += f" Not checked, because no rule of their family ran: {', '.join(unchecked)}."
    return "\n".join(lines) + "\n\n"


def _details(entry: JobEntry) -> str:
    job = entry.job
    mark = MARKS[FAIL] if not entry.ready else MARKS[PASS]
    summary = html.escape(
        f"{job.label()} ({framework_title(job)}) — {location(job)} — "
        f"{'ready' if entry.ready else 'not ready'}"
    )
    lines = [f"<details><summary>{mark} {summary}</summary>", ""]
    for section in sections(entry):
        lines += [f"**{section.title}**", "", "| | value | source |", "|---|---|---|"]
        lines += [
            f"| {text(row.label)} | {text(row.value)} | {text(row.source)} |"
            for row in section.rows
        ]
        lines.append("")
    lines += ["**Gates**", ""]
    for result in entry.gates:
        lines.append(f"- {MARKS[result.state]} **{result.gate.title}**: {result.state}")
        lines += [f"  - {_finding(finding)}" for finding in result.findings]
        lines += [
            f"  - unknown {text(item.label)} ({text(item.source)}): {text(item.reason)}"
            for item in result.unresolved
        ]
    lines += ["", "</details>", ""]
    return "\n".join(lines) + "\n"


def _finding(finding: Finding) -> str:
    where = _code(f"{finding.path}:{finding.line}")
    return f"`{where}` {finding.code} \\[{finding.level}\\] {text(finding.message)}"


def _code(value: str) -> str:
    """Text for inside single backticks: backticks cannot be escaped there, so they go.

    A pipe still ends a table cell inside a code span, unless escaped (GFM).
    """
    return value.replace("`", "'").replace("\n", " ").replace("|", "\\|")
