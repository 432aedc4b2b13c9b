"""What ``jobaudit fix`` and ``check --fix`` do around the engine: write or diff, and say so.

Messages go to stderr, so that stdout stays the diff (``--diff``) or the
report of what is left, which tools read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from jobaudit.checks.base import Rule
from jobaudit.config import Config
from jobaudit.fix.engine import Narrow, Outcome, fix_project, unified_diff, write_atomically
from jobaudit.report.common import plural
from jobaudit.result import Result


def fix_files(
    paths: Sequence[Path],
    config: Config,
    rules: Sequence[Rule],
    report: Sequence[Path] | None,
    *,
    unsafe: bool,
    diff: bool,
    show_fixes: bool,
    quiet: bool,
    narrow: Narrow,
) -> tuple[Result, Outcome]:
    """Fix (or with ``diff`` print what would change); the analysis of what is left."""
    outcome = fix_project(paths, config, rules, report, unsafe, narrow)
    for path, content in sorted(outcome.fixed.items()):
        if diff:
            click.echo(unified_diff(path, outcome.original[path], content), nl=False)
        else:
            write_atomically(outcome.result.paths[path], content)
    if show_fixes:
        for finding, fix in outcome.applied:
            click.echo(f"{finding.path}:{finding.line}: {finding.code} {fix.message}", err=True)
    if not quiet and outcome.applied:
        count = plural(len(outcome.applied), "finding")
        files = plural(len(outcome.fixed), "file")
        verb = "Would fix" if diff else "Fixed"
        click.echo(f"jobaudit: {verb} {count} in {files}.", err=True)
    return outcome.result, outcome
