"""``check --diff REF``: only the findings a change introduced, for pull-request checks.

The whole project is still analysed (a changed task needs its app and
settings); only the report is narrowed.  A finding is kept when its span
touches a line changed since ``REF`` in the working tree (``git diff
--unified=0 REF``) or lies in a file git does not track yet.  A deletion
counts as a change of the lines on both sides of it: removing
``max_retries=5,`` from a decorator creates a finding on the unchanged line
above.  Findings of ``project`` rules are about the tree as a whole, not one
line, so they are kept when any file that decides them changed: the file they
point at, their related locations and their job's file.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from jobaudit.baseline import absolute
from jobaudit.findings import Finding
from jobaudit.result import Result

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


class DiffError(Exception):
    """git could not say what changed (not a repository, unknown ref); shown as is."""


@dataclass(frozen=True)
class Changes:
    """Changed lines since a ref, by real absolute path; ``None`` for a whole new file."""

    ref: str
    lines: Mapping[str, frozenset[int] | None]

    def touches(self, path: Path, first: int, last: int) -> bool:
        changed = self.lines.get(os.path.realpath(path), frozenset())
        return changed is None or any(line in changed for line in range(first, last + 1))

    def changed(self, path: Path) -> bool:
        return os.path.realpath(path) in self.lines


def changes(ref: str, where: Path) -> Changes:
    """What changed in the git work tree holding ``where`` since ``ref``."""
    top = _git(["rev-parse", "--show-toplevel"], where).strip()
    if (
        _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], Path(top), check=False)
        == ""
    ):
        raise DiffError(f"--diff: '{ref}' is not a commit in the git repository at {top}")
    diff = _git(
        [
            "-c",
            "core.quotePath=false",
            "diff",
            "--unified=0",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--find-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            ref,
            "--",
        ],
        Path(top),
    )
    lines: dict[str, frozenset[int] | None] = {
        os.path.realpath(os.path.join(top, path)): changed
        for path, changed in parse_diff(diff).items()
    }
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], Path(top))
    for name in filter(None, untracked.split("\0")):
        lines[os.path.realpath(os.path.join(top, name))] = None
    return Changes(ref, lines)


def parse_diff(text: str) -> dict[str, frozenset[int]]:
    """Changed line numbers of the new side of a ``--unified=0`` diff, by path."""
    out: dict[str, set[int]] = {}
    current: set[int] | None = None
    for line in text.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = None if name == "/dev/null" else out.setdefault(_unquote(name)[2:], set())
            continue
        match = _HUNK.match(line)
        if match is None or current is None:
            continue
        start, count = int(match.group(1)), int(match.group(2) or "1")
        if count:
            current.update(range(start, start + count))
        else:
            current.update({max(start, 1), start + 1})
    return {path: frozenset(changed) for path, changed in out.items()}


def only_changed(result: Result, changes: Changes) -> tuple[Result, int]:
    """``result`` without findings that the change did not touch; how many were dropped."""
    kept = [finding for finding in result.findings if _touched(result, changes, finding)]
    return replace(result, findings=kept), len(result.findings) - len(kept)


def _touched(result: Result, changes: Changes, finding: Finding) -> bool:
    from jobaudit.checks import rule_by_key  # the rules, only once there are findings to narrow

    rule = rule_by_key(finding.code)
    if rule is None or rule.scope != "project":
        path = absolute(result, finding.path)
        return changes.touches(path, finding.line, max(finding.line, finding.end_line))
    deciding = {finding.path, *(related.location.path for related in finding.related)}
    deciding.update(job.path for job in result.model.jobs if job.qualname == finding.job)
    return any(changes.changed(absolute(result, path)) for path in deciding)


def _git(args: list[str], cwd: Path, check: bool = True) -> str:
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise DiffError(f"--diff needs git: {exc.strerror or exc}") from None
    if check and completed.returncode != 0:
        message = completed.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiffError(f"--diff: git {args[0]} failed: {message[-1] if message else 'error'}")
    return completed.stdout.decode("utf-8", "surrogateescape")


def _unquote(name: str) -> str:
    """A path as git prints it: C-quoted (``"a\\tb.py"``, octal UTF-8 bytes) when unusual."""
    if not (name.startswith('"') and name.endswith('"')):
        return name
    raw = bytearray()
    body = name[1:-1]
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            if following in _ESCAPES:
                raw.append(_ESCAPES[following])
                index += 2
                continue
            if body[index + 1 : index + 4].isdigit():
                raw.append(int(body[index + 1 : index + 4], 8))
                index += 4
                continue
        raw.extend(char.encode("utf-8"))
        index += 1
    return raw.decode("utf-8", "surrogateescape")
