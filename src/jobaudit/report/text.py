"""The human output of ``jobaudit check``: one line per finding, ruff style, then a summary."""

from __future__ import annotations

from collections import Counter

import click

from jobaudit.fix.model import SAFE
from jobaudit.report.common import level_counts, place, plural
from jobaudit.result import Result

COLORS = {"error": "red", "warning": "yellow", "note": "cyan"}


def render(
    result: Result,
    color: bool,
    statistics: bool = False,
    show_source: bool = False,
    fixed: int = 0,
    hints: bool = True,
) -> str:
    """The report; ``fixed`` is how many findings ``fix`` (or ``check --fix``) fixed.

    ``hints`` adds the lines saying what ``jobaudit fix`` could do (not with ``--quiet``).
    """
    lines: list[str] = []
    for finding in result.findings:
        placed = place(result, finding)
        location = f"{finding.path}:{placed.line}:{placed.column}:"
        code = (
            click.style(finding.code, fg=COLORS[finding.level], bold=True)
            if color
            else finding.code
        )
        level = click.style(finding.level, fg=COLORS[finding.level]) if color else finding.level
        marker = " [*]" if finding.fix is not None and finding.fix.safety == SAFE else ""
        lines.append(
            f"{click.style(location, bold=True) if color else location} "
            f"{code}{marker} [{level}] {finding.message}"
        )
        if show_source:
            lines_of = result.lines(finding.path)
            if 0 < finding.line <= len(lines_of):
                source = lines_of[finding.line - 1]
                lines.append(f"    {source}")
                lines.append("    " + " " * (placed.column - 1) + "^")
            for related in finding.related:
                where = f"{related.location.path}:{related.location.span[0]}"
                lines.append(f"    note: {where}: {related.message}")
    if statistics and result.findings:
        counts = Counter((f.code, f.name, f.level) for f in result.findings)
        lines.append("")
        for (code, name, level), count in sorted(counts.items()):
            lines.append(f"{count:>5}  {code}  {name} [{level}]")
    if hints:
        lines.extend(fixable_lines(result, fixed))
    lines.append(summary(result))
    return "\n".join(lines) + "\n"


def fixable_lines(result: Result, fixed: int = 0) -> list[str]:
    """How many findings were fixed, and how many more ``jobaudit fix`` can fix."""
    lines: list[str] = []
    if fixed:
        lines.append(f"Fixed {plural(fixed, 'finding')}.")
    fixes = [f.fix for f in result.findings if f.fix is not None]
    safe = sum(1 for fix in fixes if fix.safety == SAFE)
    unsafe = len(fixes) - safe
    if safe:
        lines.append(f"[*] {safe} fixable with `jobaudit fix`.")
    if unsafe:
        more = "1 more fix" if unsafe == 1 else f"{unsafe} more fixes"
        lines.append(f"{more} available with `jobaudit fix --unsafe-fixes`.")
    return lines


def summary(result: Result) -> str:
    jobs = plural(result.job_count, "job")
    files = plural(result.files, "file")
    if not result.findings:
        return f"All checks passed: {jobs} in {files}."
    counts = level_counts(result.findings)
    parts = [
        plural(counts[level], level) for level in ("error", "warning", "note") if counts[level]
    ]
    found = plural(len(result.findings), "finding")
    return f"Found {found} ({', '.join(parts)}) in {jobs} across {files}."


def notices(result: Result) -> list[str]:
    out: list[str] = []
    for notice in result.notices:
        where = f"{notice.path}:{notice.line}" if notice.line else notice.path
        out.append(f"jobaudit: {where}: {notice.reason}" if where else f"jobaudit: {notice.reason}")
    return out
