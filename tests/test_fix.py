"""Every fix, applied to every fixture of its rule: the result is what ``fixtures/fixed`` holds.

``fixtures/fixed/<CODE>/<fixture>`` is the expected text of a fixture file
after all fixes (safe and unsafe) of rule ``<CODE>`` ran on it alone; for a
scenario directory, ``fixtures/fixed/<CODE>/<scenario>/<path>`` holds each
file that changes.  A fixture without a fixed copy must not change.  The
fixed copies live outside ``fixtures/rules`` so that the rule harness never
reads them as fixtures of their own (docs/writing-rules.md).
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

from jobaudit.checks import ALL_RULES
from jobaudit.checks.base import Rule
from jobaudit.fix.engine import Outcome, analyse, fix_project
from jobaudit.testing import _config, fixture_entries

ROOT = Path(__file__).resolve().parents[1] / "fixtures"
RULES = ROOT / "rules"
FIXED = ROOT / "fixed"
FIXABLE = [rule for rule in ALL_RULES if rule.fixable]


def _cases() -> list[tuple[type[Rule], Path]]:
    return [(rule, entry) for rule in FIXABLE for entry in fixture_entries(RULES / rule.code)]


def _fix(target: Path, rule: type[Rule]) -> Outcome:
    config = _config(target).with_overrides(preview=True)
    return fix_project([target], config, [rule()], None, unsafe=True)


def _expected(rule: type[Rule], entry: Path) -> dict[str, str]:
    fixed = FIXED / rule.code / entry.name
    if entry.is_file():
        return {entry.name: fixed.read_text(encoding="utf-8")} if fixed.is_file() else {}
    if not fixed.is_dir():
        return {}
    return {
        path.relative_to(fixed).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(fixed.rglob("*.py"))
    }


@pytest.mark.parametrize(
    ("rule", "entry"),
    _cases(),
    ids=lambda value: getattr(value, "code", getattr(value, "name", str(value))),
)
def test_fixture_fixes(rule: type[Rule], entry: Path, tmp_path: Path) -> None:
    target = tmp_path / entry.name
    if entry.is_dir():
        shutil.copytree(entry, target)
    else:
        shutil.copy(entry, target)
    config = _config(target).with_overrides(preview=True)
    before = analyse([target], config, [rule()], None, {}).findings
    outcome = _fix(target, rule)
    fixed = {path: text.decode("utf-8") for path, text in outcome.fixed.items()}
    assert fixed == _expected(rule, entry)
    for path, text in fixed.items():
        ast.parse(text, path)
        (tmp_path / entry.name / path if entry.is_dir() else target).write_text(
            text, encoding="utf-8"
        )
    after = outcome.result.findings
    assert [f for f in after if f.fix is not None] == [], "a fix was offered but not applied"
    assert len(after) == len([f for f in before if f.fix is None]), "a fix made a new finding"
    assert _fix(target, rule).fixed == {}, "a second fix changed the fixed code"


@pytest.mark.parametrize("rule", FIXABLE, ids=lambda rule: rule.code)
def test_every_fixable_rule_has_fixed_fixtures(rule: type[Rule]) -> None:
    assert (FIXED / rule.code).is_dir(), f"fixtures/fixed/{rule.code}/ is missing"


def test_fixed_copies_belong_to_a_fixture() -> None:
    for code_dir in sorted(FIXED.iterdir()):
        for entry in code_dir.iterdir():
            assert (RULES / code_dir.name / entry.name).exists(), f"{entry} has no fixture"
