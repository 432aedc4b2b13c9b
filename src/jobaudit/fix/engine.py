"""Rounds of analyse → fix, until nothing changes; then write, or show a diff.

Each round analyses the project as it would be with the fixes so far (kept
in memory, so ``--diff`` never writes), applies the fixes of the findings
that are left, and starts again: a fix can make another finding appear or
go away, and fixes skipped for overlapping another run in the next round.
Ten rounds at most, as in ruff: a fix that keeps undoing another must not
loop forever.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from jobaudit.checks.base import Finding, Rule
from jobaudit.config import Config
from jobaudit.engine import run
from jobaudit.fix.apply import apply_fixes
from jobaudit.fix.model import SAFE, Fix
from jobaudit.result import Result
from jobaudit.source import decode

MAX_ROUNDS = 10

Narrow = Callable[[Result], Result]
"""What the command does to each round's result before fixing: the baseline, ``--diff REF``."""


@dataclass
class Outcome:
    result: Result
    """The analysis after the last round, not yet narrowed: what is left to report."""
    original: dict[str, bytes] = field(default_factory=dict)
    fixed: dict[str, bytes] = field(default_factory=dict)
    """The new content of every changed file, by its relative path."""
    applied: list[tuple[Finding, Fix]] = field(default_factory=list)


def fixable(finding: Finding, unsafe: bool) -> bool:
    return finding.fix is not None and (unsafe or finding.fix.safety == SAFE)


def fix_project(
    paths: Sequence[Path],
    config: Config,
    rules: Sequence[Rule],
    report: Sequence[Path] | None,
    unsafe: bool,
    narrow: Narrow = lambda result: result,
) -> Outcome:
    overlay: dict[str, bytes] = {}
    outcome = Outcome(analyse(paths, config, rules, report, overlay))
    for _ in range(MAX_ROUNDS):
        result = narrow(outcome.result)
        by_path: dict[str, list[tuple[Finding, Fix]]] = defaultdict(list)
        for finding in result.findings:
            if fixable(finding, unsafe):
                assert finding.fix is not None
                for path in finding.fix.paths:
                    by_path[path].append((finding, finding.fix))
        changed = False
        for path, pairs in sorted(by_path.items()):
            file = outcome.result.paths.get(path)
            if file is None or len(pairs[0][1].paths) != 1:
                continue
            source = overlay.get(path)
            if source is None:
                source = file.read_bytes()
                outcome.original[path] = source
            fixes = [fix for _, fix in pairs]
            line_length = config.fix.line_length
            new, done = apply_fixes(source, fixes, _first_party(outcome), line_length)
            if new != source:
                overlay[path] = new
                changed = True
                outcome.applied.extend(pair for pair in pairs if pair[1] in done)
        if not changed:
            break
        outcome.result = analyse(paths, config, rules, report, overlay)
    outcome.fixed = {p: text for p, text in overlay.items() if text != outcome.original[p]}
    return outcome


def _first_party(outcome: Outcome) -> frozenset[str]:
    """The project's own top-level packages (imports of them are grouped last)."""
    facts = outcome.result.model.resolver.facts_by_path.values()
    # A file renamed for shadowing a package (``celery.py`` → ``celery.py``) is not that package.
    return frozenset(f.module.split(".")[0] for f in facts if not f.module.endswith(".py"))


def analyse(
    paths: Sequence[Path],
    config: Config,
    rules: Sequence[Rule],
    report: Sequence[Path] | None,
    overlay: dict[str, bytes],
) -> Result:
    """:func:`jobaudit.engine.run`, reading the files in ``overlay`` from memory."""
    return run(paths, config, rules, report, overlay=overlay)


def write_atomically(path: Path, content: bytes) -> None:
    """Replace ``path`` by ``content`` through a temporary file in the same directory.

    An interrupted run (or a failing ``os.replace``) leaves the old file whole;
    the file keeps its permission bits.
    """
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def unified_diff(path: str, before: bytes, after: bytes) -> str:
    old = decode(before).splitlines(keepends=True)
    new = decode(after).splitlines(keepends=True)
    lines = difflib.unified_diff(old, new, f"a/{path}", f"b/{path}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
