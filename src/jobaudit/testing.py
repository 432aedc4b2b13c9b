"""Helpers for testing rules: annotated fixtures and the examples on rule pages.

Public, like ``click.testing``: the project's own tests use it, and so can a
rule author checking a new fixture by hand.  A fixture is realistic code whose
comments say what a rule must report::

    @app.task(autoretry_for=(Exception,))  # expect: JOB202
    def sync(order_id): ...

    # expect: JOB201
    except Exception:

A trailing comment applies to its own line, a comment on a line of its own to
the next line holding code.  ``# expect: CODE`` is exactly one finding of CODE
starting on that line; ``# todo-expect: CODE`` is a known miss (it must not be
found yet); ``# todo-ok: CODE`` a known false positive (it must still be found).
Several codes may be listed, separated by commas.  Annotations are read with
``tokenize``, so ``# expect:`` inside a string is only text.
"""

from __future__ import annotations

import io
import re
import tempfile
import tokenize
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobaudit.checks import rule_by_key
from jobaudit.checks.base import Finding, Rule
from jobaudit.config import JOBAUDIT_TOML, PYPROJECT, Config, load_config
from jobaudit.engine import run
from jobaudit.files import discover
from jobaudit.result import Result
from jobaudit.selection import known_codes, select_rules

__all__ = [
    "EXAMPLE_FILE",
    "Annotation",
    "AnnotationError",
    "Block",
    "FixtureError",
    "check_fixture",
    "code_blocks",
    "compare",
    "example_files",
    "example_rules",
    "fixture_annotations",
    "fixture_entries",
    "parse_annotations",
    "run_example",
    "run_fixture",
    "run_project",
]

KINDS = ("expect", "todo-expect", "todo-ok")
EXAMPLE_FILE = "example.py"
_ANNOTATION = re.compile(r"(?<![\w-])(todo-expect|todo-ok|expect):\s*")
_CODES = re.compile(r"[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*")
_CODE = re.compile(r"JOB[0-9]{3}")
_FILE_MARKER = re.compile(r"#\s*file:\s*([\w./-]+\.py)\s*$")
_NOT_CODE = frozenset(
    {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENCODING,
        tokenize.ENDMARKER,
    }
)


class AnnotationError(ValueError):
    """An annotation that cannot be read; a silently ignored one would hide a miss."""


class FixtureError(RuntimeError):
    """A fixture that could not be analysed as written (unparsable file, crashing rule)."""


@dataclass(frozen=True, order=True)
class Annotation:
    path: str
    line: int
    """The line the annotation applies to (where the finding must start)."""
    code: str
    kind: str
    """``expect``, ``todo-expect`` or ``todo-ok``."""


@dataclass(frozen=True)
class Block:
    """A fenced ``python bad`` or ``python good`` block of a rule page."""

    kind: str
    code: str
    line: int
    """The page line of the block's first line of code (1-based)."""


# -- annotations ---------------------------------------------------------------------------


def parse_annotations(source: str, path: str = EXAMPLE_FILE) -> list[Annotation]:
    """The annotations in one file's source, each resolved to the line it applies to."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as exc:
        raise AnnotationError(f"{path}: cannot tokenize: {exc}") from exc
    code_lines = sorted({tok.start[0] for tok in tokens if tok.type not in _NOT_CODE})
    comments = [tok for tok in tokens if tok.type == tokenize.COMMENT]
    found: list[Annotation] = []
    for comment in comments:
        row, col = comment.start
        trailing = bool(comment.line[:col].strip())
        for kind, codes in _read_comment(comment.string, path, row):
            if trailing:
                target = row
            else:
                following = [line for line in code_lines if line > row]
                if not following:
                    raise AnnotationError(f"{path}:{row}: '{kind}:' is followed by no code")
                target = following[0]
            found.extend(Annotation(path, target, code, kind) for code in codes)
    return sorted(found)


def _read_comment(text: str, path: str, row: int) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    for match in _ANNOTATION.finditer(text):
        codes = _CODES.match(text, match.end())
        if codes is None:
            raise AnnotationError(f"{path}:{row}: '{match.group(1)}:' is not followed by a code")
        names = [code.strip() for code in codes.group(0).split(",")]
        bad = [code for code in names if not _CODE.fullmatch(code)]
        if bad:
            raise AnnotationError(f"{path}:{row}: '{bad[0]}' is not a rule code (JOBnnn)")
        out.append((match.group(1), names))
    return out


def fixture_annotations(path: Path) -> list[Annotation]:
    """The annotations of every file of a fixture (a file, or a scenario directory)."""
    config = _config(path)
    files, _ = discover([path], config)
    found: list[Annotation] = []
    for file in files:
        source = file.path.read_text(encoding="utf-8")
        found.extend(parse_annotations(source, file.relpath))
    return sorted(found)


def fixture_entries(directory: Path) -> list[Path]:
    """The fixtures of one rule: its ``.py`` files and its scenario sub-directories."""
    if not directory.is_dir():
        return []
    return sorted(
        entry
        for entry in directory.iterdir()
        if not entry.name.startswith((".", "_")) and (entry.is_dir() or entry.suffix == ".py")
    )


# -- running -------------------------------------------------------------------------------


def _config(path: Path) -> Config:
    """A fixture's configuration: its root is the file's folder or the scenario folder.

    A scenario folder may carry its own ``jobaudit.toml`` or ``pyproject.toml``
    (settings modules, custom job systems); a single file never has one.
    """
    if not path.is_dir():
        return Config(root=path.parent.resolve(), source=None)
    for name in (JOBAUDIT_TOML, PYPROJECT):
        candidate = path / name
        if candidate.is_file():
            return load_config([path], candidate, known_codes())
    return Config(root=path.resolve(), source=None)


def run_project(path: Path, rules: Sequence[Rule]) -> Result:
    """Analyse a fixture with ``rules``; a file alone is a one-file project."""
    config = _config(path).with_overrides(preview=True)
    result = run([path], config, list(rules))
    if result.notices:
        reasons = "; ".join(
            f"{notice.path or '<project>'}: {notice.reason}" for notice in result.notices
        )
        raise FixtureError(f"{path}: {reasons}")
    return result


def _rule(code: str) -> Rule:
    rule = rule_by_key(code)
    if rule is None:
        raise FixtureError(f"no rule {code} is registered in jobaudit.checks.ALL_RULES")
    return rule()


def run_fixture(path: Path, code: str) -> list[Finding]:
    """The findings of rule ``code`` alone on a fixture file or scenario directory."""
    return run_project(path, [_rule(code)]).findings


def check_fixture(path: Path, code: str) -> list[str]:
    """Every way the findings of ``code`` on a fixture differ from its annotations."""
    annotations = fixture_annotations(path)
    foreign = [a for a in annotations if a.code != code]
    problems = [
        f"{a.path}, line {a.line}: '{a.kind}: {a.code}' in a fixture of {code}, "
        f"where only {code} runs"
        for a in foreign
    ]
    own = [a for a in annotations if a.code == code]
    return problems + compare(own, run_fixture(path, code))


def example_rules(rule: type[Rule]) -> list[Rule]:
    """What a rule page's examples run with: the default rules plus the page's own rule.

    A project rule judges a whole tree (is there error tracking *anywhere*?), which a
    snippet on a page is not, so only the page's own project rule runs on its examples.
    """
    rules = [
        found for found in select_rules(None) if found.scope != "project" or type(found) is rule
    ]
    if not any(type(found) is rule for found in rules):
        rules.append(rule())
    return rules


def run_example(code: str, rules: Sequence[Rule]) -> list[Finding]:
    """The findings of ``rules`` on one code block, analysed alone as ``example.py``.

    A block may hold more files, each started by a ``# file: <path>`` line
    (:func:`example_files`); they are then analysed together as one project.
    """
    with tempfile.TemporaryDirectory(prefix="jobaudit-example-") as tmp:
        files = example_files(code)
        for name, text in files.items():
            target = Path(tmp) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        only = Path(tmp) / EXAMPLE_FILE
        return run_project(only if len(files) == 1 else Path(tmp), rules).findings


def example_files(code: str) -> dict[str, str]:
    """The files of a code block: ``example.py``, then one per ``# file: <path>`` line.

    Project-scope rules need more than one file to show (a job and its
    tests).  Every file keeps the block's line numbers, the other files'
    lines left blank, so ``# expect:`` comments count within the block as
    in a one-file example.
    """
    lines = code.splitlines()
    owners: list[str] = []
    current = EXAMPLE_FILE
    for line in lines:
        marker = _FILE_MARKER.match(line)
        if marker is not None:
            current = marker.group(1)
        owners.append(current)
    return {
        name: "".join(
            line + "\n" if owner == name else "\n"
            for line, owner in zip(lines, owners, strict=True)
        )
        for name in dict.fromkeys([EXAMPLE_FILE, *owners])
    }


# -- comparing -----------------------------------------------------------------------------


def compare(annotations: Iterable[Annotation], findings: Iterable[Finding]) -> list[str]:
    """Readable differences between annotations and findings; empty when they match exactly.

    For each file, line and code: ``expect`` and ``todo-ok`` annotations must
    be found, ``todo-expect`` ones must not, and nothing else may be.
    """
    wanted: Counter[tuple[str, int, str, str]] = Counter(
        (a.path, a.line, a.code, a.kind) for a in annotations
    )
    got: dict[tuple[str, int, str], list[Finding]] = {}
    for finding in sorted(findings):
        got.setdefault((finding.path, finding.line, finding.code), []).append(finding)
    keys = {(path, line, code) for path, line, code, _ in wanted} | set(got)
    problems: list[str] = []
    for path, line, code in sorted(keys):
        where = f"{path}, line {line}"
        found = got.get((path, line, code), [])
        expected = wanted[(path, line, code, "expect")]
        todo_ok = wanted[(path, line, code, "todo-ok")]
        todo_expect = wanted[(path, line, code, "todo-expect")]
        extra = len(found) - expected
        if extra < 0:
            problems.extend([f"{where}: expected {code}, got nothing"] * -extra)
            extra = 0
        still_reported = min(extra, todo_ok)
        problems.extend(
            [f"{where}: {code} no longer reported, remove todo-ok"] * (todo_ok - still_reported)
        )
        extra -= still_reported
        promoted = min(extra, todo_expect)
        problems.extend([f"{where}: {code} now found, promote to expect"] * promoted)
        extra -= promoted
        if extra:
            problems.extend(f"{where}: unexpected {code}: {f.message}" for f in found[-extra:])
    return problems


# -- rule pages ----------------------------------------------------------------------------

_FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


BLOCK_KINDS = frozenset({"bad", "good", "fixed"})
"""``fixed``: the page's first ``bad`` block after its rule's fixes (``## Fix safety``)."""
_ANNOTATION_COMMENT = re.compile(r"[ \t]*#[ \t]*(?:todo-)?(?:expect|ok):.*$")


def without_annotations(code: str) -> str:
    """``code`` without its ``# expect:``-style comments (own-line ones with their line)."""
    kept: list[str] = []
    for line in code.splitlines():
        stripped = _ANNOTATION_COMMENT.sub("", line)
        if stripped.strip() or not line.strip():
            kept.append(stripped)
    return "\n".join(kept) + "\n"


def code_blocks(markdown: str) -> list[Block]:
    """The ``python bad``, ``good`` and ``fixed`` fenced blocks of a page, in order."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence = opening.group("fence")
        words = opening.group("info").split()
        body: list[str] = []
        start = index + 1
        while index < len(lines):
            closing = _FENCE.match(lines[index])
            index += 1
            if (
                closing is not None
                and closing.group("fence")[0] == fence[0]
                and len(closing.group("fence")) >= len(fence)
                and not closing.group("info").strip()
            ):
                break
            body.append(lines[index - 1])
        if len(words) == 2 and words[0] == "python" and words[1] in BLOCK_KINDS:
            blocks.append(Block(words[1], "\n".join(body) + "\n", start))
    return blocks
