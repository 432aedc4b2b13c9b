"""The rule registry: every rule is complete (code, family, page, fixtures, changelog).

``tests/data/catalogue.tsv`` is the rule table of the product specification,
transcribed so the tests run anywhere: a rule's code, name, level and default
are decided there, not in the rule class.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from jobaudit.checks import ALL_RULES, Rule
from jobaudit.checks.meta.unused_noqa import UnusedNoqa
from jobaudit.codes import CODES, PREVIEW, UNUSED_NOQA
from jobaudit.testing import (
    AnnotationError,
    FixtureError,
    fixture_annotations,
    fixture_entries,
    run_project,
)

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "rules"
CATALOGUE = Path(__file__).resolve().parent / "data" / "catalogue.tsv"
FAMILIES = {
    "1": "idempotency",
    "2": "errors",
    "3": "retries",
    "4": "timeouts",
    "5": "observability",
    "6": "enqueue",
    "7": "tests",
    "9": "meta",
}
by_code = pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.code)


def _catalogue() -> dict[str, dict[str, str]]:
    with CATALOGUE.open(encoding="utf-8", newline="") as handle:
        return {row["code"]: row for row in csv.DictReader(handle, delimiter="\t")}


def test_codes_and_names_are_unique() -> None:
    codes = [rule.code for rule in ALL_RULES]
    names = [rule.name for rule in ALL_RULES]
    assert len(set(codes)) == len(codes), f"duplicate codes: {codes}"
    assert len(set(names)) == len(names), f"duplicate names: {names}"
    assert codes == sorted(codes), "ALL_RULES is not in code order"


def test_catalogue_is_complete() -> None:
    catalogue = _catalogue()
    assert len(catalogue) == 45  # the specification's 44, and JOB901 (issue 6)
    for code, row in catalogue.items():
        assert re.fullmatch(r"JOB\d{3}", code)
        assert row["level"] in {"error", "warning", "note"}
        assert row["default"] in {"on", "preview"}


@by_code
def test_identity(rule: type[Rule]) -> None:
    assert re.fullmatch(r"JOB\d{3}", rule.code), rule.code
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rule.name), rule.name
    assert rule.level in {"error", "warning", "note"}, rule.level
    assert rule.summary, "summary is empty"
    assert rule.frameworks or rule.scope == "project", "frameworks is empty"


@by_code
def test_matches_catalogue(rule: type[Rule]) -> None:
    row = _catalogue().get(rule.code)
    assert row is not None, f"{rule.code} is not in the specification's catalogue"
    default = "preview" if rule.preview else "on"
    assert (rule.name, rule.level, default) == (row["name"], row["level"], row["default"])


@by_code
def test_family_package(rule: type[Rule]) -> None:
    family = FAMILIES.get(rule.code[3])
    assert family is not None, f"{rule.code} is in no family of the catalogue (JOB1xx-JOB7xx)"
    package = f"jobaudit.checks.{family}."
    assert rule.__module__.startswith(package), f"{rule.__module__} is not in {package}*"


@by_code
def test_page_exists(rule: type[Rule]) -> None:
    page = ROOT / "rules" / f"{rule.code}-{rule.name}.md"
    assert page.is_file(), f"rules/{page.name} is missing"


@by_code
def test_changelog_mentions(rule: type[Rule]) -> None:
    changelog = ROOT / "CHANGELOG.md"
    assert changelog.is_file(), "CHANGELOG.md is missing"
    lines = changelog.read_text(encoding="utf-8").splitlines()
    assert any(rule.code in line for line in lines), f"CHANGELOG.md does not mention {rule.code}"


@by_code
def test_fixture_per_framework(rule: type[Rule]) -> None:
    entries = fixture_entries(FIXTURES / rule.code)
    assert entries, f"fixtures/rules/{rule.code}/ has no fixtures"
    missing = [
        framework
        for framework in rule.frameworks
        if not any(
            entry.name == f"{framework}.py" or (entry.is_dir() and entry.name.startswith(framework))
            for entry in entries
        )
    ]
    assert not missing, f"fixtures/rules/{rule.code}/ has no fixture for {', '.join(missing)}"


@by_code
def test_hard_negatives(rule: type[Rule]) -> None:
    """Fixtures hold jobs the rule must stay silent on, not only the ones it flags.

    A job rule needs more jobs than jobs with an expected finding; a project
    rule needs a fixture with jobs and no expected finding.
    """
    entries = fixture_entries(FIXTURES / rule.code)
    if not entries:
        pytest.fail(f"fixtures/rules/{rule.code}/ has no fixtures", pytrace=False)
    jobs = flagged = 0
    silent_projects = 0
    for entry in entries:
        try:
            expected = {
                (a.path, a.line)
                for a in fixture_annotations(entry)
                if a.code == rule.code and a.kind == "expect"
            }
            result = run_project(entry, [rule()])
        except (AnnotationError, FixtureError) as exc:
            pytest.fail(str(exc), pytrace=False)
        jobs += len(result.jobs)
        flagged += len(
            {f.job for f in result.findings if f.job is not None and (f.path, f.line) in expected}
        )
        if result.jobs and not expected:
            silent_projects += 1
    if rule.scope == "project":
        assert silent_projects, f"no fixture of {rule.code} has jobs and no expected finding"
    else:
        assert jobs > flagged, (
            f"fixtures of {rule.code} discover {jobs} jobs and {flagged} of them are "
            "expected to be flagged: add hard negatives"
        )


def test_the_code_table_matches_the_rule_classes() -> None:
    """:mod:`jobaudit.codes` chooses rules without importing them; it must say what they say."""
    assert tuple(rule.code for rule in ALL_RULES) == CODES
    assert {rule.code for rule in ALL_RULES if rule.preview} == PREVIEW
    assert UnusedNoqa.code == UNUSED_NOQA
