"""Every rule fixture yields exactly the findings its annotations expect.

``fixtures/rules/<CODE>/<framework>.py`` files are analysed alone, scenario
sub-directories as one project each, with only rule CODE running.  A failure
lists each mismatch (``celery.py, line 12: expected JOB301, got nothing``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jobaudit.checks.base import Finding
from jobaudit.testing import (
    Annotation,
    AnnotationError,
    Block,
    FixtureError,
    check_fixture,
    code_blocks,
    compare,
    fixture_entries,
    parse_annotations,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rules"


def _fixtures() -> list[tuple[str, Path]]:
    if not FIXTURES.is_dir():
        return []
    return [
        (code_dir.name, entry)
        for code_dir in sorted(FIXTURES.iterdir())
        if code_dir.is_dir() and not code_dir.name.startswith((".", "_"))
        for entry in fixture_entries(code_dir)
    ]


@pytest.mark.parametrize(
    ("code", "fixture"), _fixtures(), ids=lambda value: getattr(value, "name", value)
)
def test_fixture(code: str, fixture: Path) -> None:
    try:
        problems = check_fixture(fixture, code)
    except (AnnotationError, FixtureError) as exc:
        pytest.fail(str(exc), pytrace=False)
    if problems:
        listing = "\n  ".join(problems)
        pytest.fail(f"{fixture.relative_to(FIXTURES)}:\n  {listing}", pytrace=False)


# -- the harness itself ----------------------------------------------------------------------

ANNOTATED = """\
import x  # expect: JOB301

# expect: JOB302, JOB303
# todo-ok: JOB304

def job():  # todo-expect: JOB305
    text = "# expect: JOB306"
    return text
"""


def test_annotations_trailing_own_line_and_lists() -> None:
    found = [(a.line, a.code, a.kind) for a in parse_annotations(ANNOTATED, "a.py")]
    assert found == [
        (1, "JOB301", "expect"),
        (6, "JOB302", "expect"),
        (6, "JOB303", "expect"),
        (6, "JOB304", "todo-ok"),
        (6, "JOB305", "todo-expect"),
    ]


@pytest.mark.parametrize(
    "source", ["x = 1  # expect: JOB30\n", "x = 1  # expect:\n", "x = 1\n# expect: JOB301\n"]
)
def test_bad_annotations_are_errors(source: str) -> None:
    with pytest.raises(AnnotationError):
        parse_annotations(source, "a.py")


def _finding(line: int, code: str = "JOB301", message: str = "m") -> Finding:
    return Finding("a.py", line, 0, line, 1, code, "name", "error", message)


def test_compare_messages() -> None:
    annotations = [
        Annotation("a.py", 12, "JOB301", "expect"),
        Annotation("a.py", 20, "JOB301", "todo-expect"),
        Annotation("a.py", 30, "JOB301", "todo-ok"),
        Annotation("a.py", 40, "JOB301", "todo-ok"),
    ]
    findings = [_finding(14, message="boom"), _finding(20), _finding(30)]
    assert compare(annotations, findings) == [
        "a.py, line 12: expected JOB301, got nothing",
        "a.py, line 14: unexpected JOB301: boom",
        "a.py, line 20: JOB301 now found, promote to expect",
        "a.py, line 40: JOB301 no longer reported, remove todo-ok",
    ]
    assert compare(annotations[:1], [_finding(12)]) == []


def test_code_blocks() -> None:
    page = (
        "# T\n\n```python bad\nx = 1\n```\n\n"
        "````markdown\n```python good\n````\n"
        "```python good\ny = 2\n```\n"
    )
    assert code_blocks(page) == [Block("bad", "x = 1\n", 4), Block("good", "y = 2\n", 11)]
