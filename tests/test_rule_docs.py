"""Rule pages: fixed sections in order, and examples that do what they say.

Every ```` ```python bad ```` block must yield exactly its ``# expect:``
findings and every ```` ```python good ```` block nothing, each analysed alone
as ``example.py`` with the default rules plus the page's own rule.  A
```` ```python fixed ```` block (in ``## Fix safety``) must be what the rule's
fixes make of the page's first bad block.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from jobaudit.checks import ALL_RULES, Rule
from jobaudit.config import Config
from jobaudit.fix.engine import fix_project
from jobaudit.testing import (
    EXAMPLE_FILE,
    AnnotationError,
    Block,
    FixtureError,
    code_blocks,
    compare,
    example_rules,
    parse_annotations,
    run_example,
    without_annotations,
)

PAGES = Path(__file__).resolve().parents[1] / "rules"
SECTIONS = (
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "Options",
    "Known problems",
    "References",
)
FIX_SAFETY = "Fix safety"
"""Required on the page of a rule whose findings carry fixes, after the examples (as in ruff)."""
HEADER_FIELDS = ("Level", "Default", "Scope", "Frameworks")


def _page(rule: type[Rule]) -> Path:
    return PAGES / f"{rule.code}-{rule.name}.md"


def _examples() -> list[tuple[type[Rule], Block]]:
    return [
        (rule, block)
        for rule in ALL_RULES
        if _page(rule).is_file()
        for block in code_blocks(_page(rule).read_text(encoding="utf-8"))
    ]


def _example_id(value: object) -> str:
    if isinstance(value, Block):
        return f"{value.kind}-line{value.line}"
    return getattr(value, "code", str(value))


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.code)
def test_page_structure(rule: type[Rule]) -> None:
    page = _page(rule)
    if not page.is_file():
        pytest.fail(f"rules/{page.name} is missing", pytrace=False)
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    title = next((line for line in lines if line.strip()), "")
    assert title == f"# {rule.code}: {rule.name}", f"title line is {title!r}"
    headings = [line[3:].strip() for line in lines if line.startswith("## ")]
    expected = list(SECTIONS)
    if rule.fixable:
        expected.insert(expected.index("Options"), FIX_SAFETY)
    assert headings == expected, f"sections are {headings}, expected {expected}"
    header = text.split("\n## ", 1)[0]
    missing = [field for field in HEADER_FIELDS if field not in header]
    assert not missing, f"the header under the title does not give {', '.join(missing)}"
    assert re.search(rf"\b{rule.level}\b", header), f"the header does not say level {rule.level}"
    default = "preview" if rule.preview else "on"
    assert re.search(rf"\b{default}\b", header), f"the header does not say default {default}"
    kinds = {block.kind for block in code_blocks(text)}
    assert kinds - {"fixed"} == {"bad", "good"}, (
        f"the page needs python bad and python good blocks: {kinds}"
    )
    assert rule.fixable or "fixed" not in kinds, "a python fixed block on a rule without fixes"


@pytest.mark.parametrize(("rule", "block"), _examples(), ids=_example_id)
def test_example(rule: type[Rule], block: Block) -> None:
    if block.kind == "fixed":
        _check_fixed(rule, block)
        return
    where = f"rules/{_page(rule).name}, {block.kind} block at line {block.line}"
    try:
        annotations = parse_annotations(block.code)
        findings = run_example(block.code, example_rules(rule))
    except (AnnotationError, FixtureError) as exc:
        pytest.fail(f"{where}: {exc}", pytrace=False)
    problems: list[str] = []
    if block.kind == "good":
        problems += [f"a good block cannot expect anything: line {a.line}" for a in annotations]
        annotations = []
    elif not any(a.code == rule.code and a.kind == "expect" for a in annotations):
        problems.append(f"a bad block must expect at least one {rule.code}")
    problems += compare(annotations, findings)
    if problems:
        listing = "\n  ".join(problems)
        pytest.fail(f"{where} (lines counted within the block):\n  {listing}", pytrace=False)


def _check_fixed(rule: type[Rule], block: Block) -> None:
    """A ``python fixed`` block is the page's first bad block, annotations dropped, after
    ``jobaudit fix --unsafe-fixes --select <the page's rule>``."""
    blocks = code_blocks(_page(rule).read_text(encoding="utf-8"))
    bad = next(b for b in blocks if b.kind == "bad")
    with tempfile.TemporaryDirectory(prefix="jobaudit-fixed-") as tmp:
        target = Path(tmp) / EXAMPLE_FILE
        target.write_text(without_annotations(bad.code), encoding="utf-8")
        config = Config(root=Path(tmp), source=None)
        outcome = fix_project([target], config, [rule()], None, unsafe=True)
    fixed = outcome.fixed.get(EXAMPLE_FILE, b"").decode("utf-8")
    assert fixed == block.code, (
        f"rules/{_page(rule).name}, fixed block at line {block.line} is not what "
        f"`jobaudit fix --unsafe-fixes` makes of the bad block at line {bad.line}:\n{fixed}"
    )
