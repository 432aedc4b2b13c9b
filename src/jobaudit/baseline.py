"""Baselines: adopt jobaudit on an existing project without fixing everything first.

``check --write-baseline FILE`` records the current findings; ``--baseline
FILE`` then reports only findings that are not in it.  A finding is recorded by
what it is, not where it is: its rule, its file, its job and the code it points
at (whitespace collapsed), so inserting lines above it or re-indenting does not
make it new, while the same problem copied into another job is new.  Identical
fingerprints (two ``except Exception:`` in one job) are told apart by their
order in the file, so fixing one of two still leaves one baselined.

Paths are stored relative to the baseline file's directory, so the file means
the same whether jobaudit runs from the repository root (pre-commit, CI) or
from a sub-directory.  The file is JSON, sorted, versioned, and diffs well.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from jobaudit.findings import Finding
from jobaudit.result import Result

VERSION = 1
SNIPPET_LINES = 3
"""At most this many lines of a finding's span form its code: a span covering a
whole function body would otherwise change with every edit inside it."""


class BaselineError(Exception):
    """A baseline file that cannot be read; the message names the file and says why."""


@dataclass(frozen=True, order=True)
class Entry:
    """One recorded finding."""

    path: str
    rule: str
    job: str
    code: str
    occurrence: int


@dataclass(frozen=True)
class Applied:
    """The result without baselined findings, and what the baseline did."""

    result: Result
    baselined: int
    stale: int
    """Entries of rules that ran, in files that were reported on, that match no finding any more."""


def entries(result: Result, directory: Path) -> list[tuple[Finding, Entry]]:
    """Every finding of ``result`` with its entry, paths relative to ``directory``."""
    seen: Counter[tuple[str, str, str, str]] = Counter()
    out: list[tuple[Finding, Entry]] = []
    for finding in sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.code)):
        key = (
            _relative(absolute(result, finding.path), directory),
            finding.code,
            finding.job or "",
            _code(result, finding),
        )
        out.append((finding, Entry(*key, seen[key])))
        seen[key] += 1
    return out


def write(result: Result, file: Path) -> int:
    """Record ``result``'s findings in ``file`` (atomically); the number recorded."""
    recorded = sorted(entry for _, entry in entries(result, _directory(file)))
    document = {
        "jobaudit-baseline": VERSION,
        "findings": [
            {
                "rule": entry.rule,
                "path": entry.path,
                "job": entry.job,
                "code": entry.code,
                "occurrence": entry.occurrence,
            }
            for entry in recorded
        ],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    fd, temporary = tempfile.mkstemp(dir=_directory(file), prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, file)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(recorded)


def load(file: Path) -> set[Entry]:
    """The entries of a baseline file; :class:`BaselineError` when it is not one."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineError(f"{file}: cannot read: {(exc.strerror or str(exc)).lower()}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{file}: not a jobaudit baseline (invalid JSON: {exc})") from None
    if not isinstance(document, dict) or "jobaudit-baseline" not in document:
        raise BaselineError(f"{file}: not a jobaudit baseline (no 'jobaudit-baseline' version)")
    version = document["jobaudit-baseline"]
    if version != VERSION:
        raise BaselineError(
            f"{file}: baseline format {version!r} is not supported (this jobaudit reads "
            f"{VERSION}); write it again with --write-baseline"
        )
    found = document.get("findings")
    if not isinstance(found, list):
        raise BaselineError(f"{file}: 'findings' must be a list")
    return {_entry(file, index, item) for index, item in enumerate(found)}


def apply(result: Result, file: Path, reported: Collection[Path] | None = None) -> Applied:
    """Drop the findings recorded in ``file``.

    ``reported`` are the files the run reported on (``None``: every analysed
    file); entries elsewhere are neither used nor counted as stale.
    """
    recorded = load(file)
    directory = _directory(file)
    kept: list[Finding] = []
    matched: set[Entry] = set()
    for finding, entry in entries(result, directory):
        if entry in recorded:
            matched.add(entry)
        else:
            kept.append(finding)
    scope = [absolute(result, rel) for rel in result.paths] if reported is None else reported
    files = {_relative(Path(os.path.abspath(path)), directory) for path in scope}
    ran = set(result.codes)
    stale = [e for e in recorded - matched if e.path in files and e.rule in ran]
    narrowed = replace(result, findings=sorted(kept))
    return Applied(narrowed, len(result.findings) - len(kept), len(stale))


def absolute(result: Result, relpath: str) -> Path:
    """The absolute path of a file named as in the findings."""
    known = result.paths.get(relpath)
    if known is not None:
        return Path(os.path.abspath(known))
    return Path(os.path.abspath(Path(result.root) / relpath))


def _code(result: Result, finding: Finding) -> str:
    """The finding's code, whitespace collapsed; empty when the text is not known."""
    lines = result.lines(finding.path)
    if not lines:
        return ""
    last = min(finding.end_line, finding.line + SNIPPET_LINES - 1)
    text = " ".join(lines[finding.line - 1 : last])
    return " ".join(text.split())


def _directory(file: Path) -> Path:
    return Path(os.path.abspath(file)).parent


def _relative(path: Path, directory: Path) -> str:
    try:
        return Path(os.path.relpath(path, directory)).as_posix()
    except ValueError:  # another drive on Windows
        return path.as_posix()


_FIELDS: Sequence[tuple[str, type]] = (
    ("rule", str),
    ("path", str),
    ("job", str),
    ("code", str),
    ("occurrence", int),
)


def _entry(file: Path, index: int, item: object) -> Entry:
    if not isinstance(item, dict):
        raise BaselineError(f"{file}: findings[{index}] must be an object")
    for name, kind in _FIELDS:
        value = item.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise BaselineError(f"{file}: findings[{index}].{name} must be a {kind.__name__}")
    return Entry(
        path=item["path"],
        rule=item["rule"],
        job=item["job"],
        code=item["code"],
        occurrence=item["occurrence"],
    )
