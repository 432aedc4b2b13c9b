"""``jobaudit report --format text``: one line per job with its gate marks, worst first.

``--verbose`` adds each job's full entry (policy values with their sources,
the findings behind every failing gate, the values that could not be
resolved).  Plain ASCII, so it reads the same in any terminal and CI log.
"""

from __future__ import annotations

from jobaudit.findings import Finding
from jobaudit.report.common import plural
from jobaudit.report.readiness import (
    FAIL,
    GATES,
    NOT_CHECKED,
    PASS,
    UNKNOWN,
    WARN,
    JobEntry,
    Readiness,
)
from jobaudit.report.readiness_entry import framework_title, location, sections

MARKS = {PASS: "ok", WARN: "warn", FAIL: "FAIL", UNKNOWN: "?", NOT_CHECKED: "-"}
SHORT = {
    "idempotency": "idem",
    "error_handling": "errors",
    "retries": "retry",
    "timeouts": "time",
    "observability": "obs",
    "enqueue_safety": "enqueue",
    "tests": "tests",
}
WIDTH = 8


def render(readiness: Readiness, verbose: bool = False) -> str:
    lines = [headline(readiness), ""]
    if readiness.entries:
        lines.append("".join(f"{SHORT[gate.id]:<{WIDTH}}" for gate in GATES) + "job")
        lines.extend(_job_line(entry) for entry in readiness.entries)
        lines.append(
            "marks: ok pass, warn only notes, FAIL a warning or error, "
            "? a deciding value is unknown, - not checked"
        )
        lines.append("")
    lines.extend(_gates(readiness))
    if readiness.project_findings:
        lines.append("")
        lines.append("Findings that concern no single job:")
        lines.extend(f"  {_finding(finding)}" for finding in readiness.project_findings)
    if verbose:
        for entry in readiness.entries:
            lines.append("")
            lines.extend(_entry(entry))
    return "\n".join(lines) + "\n"


def headline(readiness: Readiness) -> str:
    total = len(readiness.entries)
    if not total:
        return f"No jobs found in {plural(readiness.files, 'file')}."
    return (
        f"{readiness.ready} of {plural(total, 'job')} ready "
        "(a job is ready when none of its gates fails)."
    )


def _job_line(entry: JobEntry) -> str:
    marks = "".join(f"{MARKS[entry.gate(gate.id).state]:<{WIDTH}}" for gate in GATES)
    job = entry.job
    codes = " ".join(dict.fromkeys(f.code for f in entry.findings))
    tail = f"  {codes}" if codes else ""
    return f"{marks}{job.label()} ({framework_title(job)})  {location(job)}{tail}"


def _gates(readiness: Readiness) -> list[str]:
    lines = ["Gates, and the rules each is built on:"]
    width = max(len(gate.title) for gate in GATES)
    for gate in GATES:
        rules = readiness.gate_rules[gate.id]
        if not rules:
            lines.append(
                f"  {gate.title:<{width}}  not checked: no {gate.family}xx rule in this run"
            )
            continue
        counts = readiness.counts(gate.id)
        tally = ", ".join(f"{counts[state]} {state}" for state in (PASS, WARN, FAIL, UNKNOWN))
        lines.append(f"  {gate.title:<{width}}  {' '.join(rules)}: {tally}")
    return lines


def _entry(entry: JobEntry) -> list[str]:
    job = entry.job
    lines = [f"{location(job)}: {job.label()} ({'ready' if entry.ready else 'not ready'})"]
    for section in sections(entry):
        lines.append(f"  {section.title}")
        for row in section.rows:
            source = f"  ({row.source})" if row.source else ""
            lines.append(f"    {row.label + ':':<27} {row.value}{source}")
    lines.append("  Gates")
    for result in entry.gates:
        lines.append(f"    {result.gate.title + ':':<27} {result.state}")
        lines.extend(f"      {_finding(finding)}" for finding in result.findings)
        lines.extend(
            f"      unknown {item.label} ({item.source}): {item.reason}"
            for item in result.unresolved
        )
    return lines


def _finding(finding: Finding) -> str:
    return f"{finding.path}:{finding.line}: {finding.code} [{finding.level}] {finding.message}"
