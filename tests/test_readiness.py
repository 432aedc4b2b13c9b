"""``jobaudit report``: gates computed from check's findings, in text, markdown, json and html."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobaudit.checks import ALL_RULES
from jobaudit.cli import main
from jobaudit.config import Config
from jobaudit.engine import run
from jobaudit.report import readiness_html, readiness_json, readiness_markdown
from jobaudit.report.readiness import (
    FAIL,
    GATES,
    NOT_CHECKED,
    PASS,
    UNKNOWN,
    WARN,
    Readiness,
    build,
    gate_of,
)
from jobaudit.selection import select_rules

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "fixtures" / "projects" / "demo"
DOCS = REPO / "docs" / "readiness.md"

APP = """\
from celery import Celery

app = Celery("proj")
app.conf.task_time_limit = 300
"""
READY = """\
from proj.celery import app


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync_orders(self, shop_id):
    '''Pull new orders from the shop.'''
"""
HOSTILE = '''\
from celery import shared_task


@shared_task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync(self, order_id):
    """<script>alert(1)</script> | **bold** [x](https://evil.example) `tick` & more"""
'''
DJANGO_NOTE = """\
from django.tasks import task


@task()
def rebuild_index():
    pass
"""


SELECT = ("JOB201", "JOB202", "JOB301", "JOB302", "JOB401", "JOB402")
"""A fixed set of rules, so these tests stay true as rules arrive in every family."""
CONFIG = "[tool.jobaudit]\nselect = [" + ", ".join(f'"{code}"' for code in SELECT) + "]\n"


def readiness_of(root: Path, **overrides: Any) -> Readiness:
    config = Config(root=root, source=None).with_overrides(**{"select": SELECT, **overrides})
    rules = select_rules(config.select, config.ignore, config.extend_select, config.preview)
    return build(run([root], config, rules))


def states(report: Readiness, name: str) -> dict[str, str]:
    entry = next(e for e in report.entries if e.job.name == name)
    return {result.gate.id: result.state for result in entry.gates}


@pytest.fixture
def ready_project(tmp_path: Path) -> Path:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "celery.py").write_text(APP)
    (tmp_path / "proj" / "tasks.py").write_text(READY)
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    return tmp_path


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo shop, with only today's rule families selected."""
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    (copy / "pyproject.toml").write_text(CONFIG)
    return copy


# -- the model ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "gate"),
    [
        ("JOB101", "idempotency"),
        ("JOB201", "error_handling"),
        ("JOB502", "error_handling"),
        ("JOB501", "observability"),
        ("JOB301", "retries"),
        ("JOB408", "timeouts"),
        ("JOB601", "enqueue_safety"),
        ("JOB702", "tests"),
    ],
)
def test_gate_of_a_code(code: str, gate: str) -> None:
    found = gate_of(code)
    assert found is not None and found.id == gate


def test_every_rule_counts_towards_the_gate_it_declares() -> None:
    for rule in ALL_RULES:
        found = gate_of(rule.code)
        if not rule.gate:  # JOB9xx: about jobaudit's own comments, not about jobs
            assert found is None, rule.code
        elif rule.code != "JOB502":
            assert found is not None and found.title.lower() == rule.gate, rule.code


def test_demo_gates_come_from_the_findings(demo: Path) -> None:
    """Gate by gate, the state follows from the findings (the rules evolve; the logic must hold)."""
    report = readiness_of(demo)
    result = report.result
    assert len(report.entries) == 4
    for entry in report.entries:
        for gate in entry.gates:
            levels = {f.level for f in gate.findings}
            assert all(gate_of(f.code) == gate.gate for f in gate.findings)
            assert all(f.job == entry.job.qualname for f in gate.findings)
            if not report.gate_rules[gate.gate.id]:
                assert gate.state == NOT_CHECKED and not gate.findings
            elif levels & {"error", "warning"}:
                assert gate.state == FAIL
            else:
                assert gate.state in {PASS, WARN, UNKNOWN}
        assert entry.ready == all(gate.state != FAIL for gate in entry.gates)
    assert report.ready == 0, "every demo job has a defect"
    assert list(report.entries) == sorted(report.entries, key=lambda e: e.sort_key())
    # nothing is lost: every finding is in a job's gate or listed on its own
    placed = {f for entry in report.entries for f in entry.findings}
    assert placed | set(report.project_findings) == set(result.findings)
    assert all(f.job is None for f in report.project_findings)
    assert "JOB402" in {f.code for f in report.project_findings}, "the misspelled setting"
    assert report.gate_rules["retries"] == ("JOB301", "JOB302")
    assert report.gate_rules["idempotency"] == ()


def test_a_job_with_no_failing_gate_is_ready(ready_project: Path) -> None:
    report = readiness_of(ready_project)
    (entry,) = report.entries
    assert entry.ready and report.ready == 1
    assert states(report, "sync_orders") == {
        "idempotency": NOT_CHECKED,
        "error_handling": PASS,
        "retries": PASS,
        "timeouts": PASS,
        "observability": NOT_CHECKED,
        "enqueue_safety": NOT_CHECKED,
        "tests": NOT_CHECKED,
    }


def test_an_unresolved_time_limit_makes_the_gate_unknown(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(HOSTILE)
    report = readiness_of(tmp_path)
    (entry,) = report.entries
    timeouts = entry.gate("timeouts")
    assert timeouts.state == UNKNOWN
    assert entry.ready, "unknown is not a failure"
    assert {item.key for item in timeouts.unresolved} == {"time_limit", "soft_time_limit"}
    assert all("no Celery app" in item.reason for item in timeouts.unresolved)


def test_notes_only_warn(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(DJANGO_NOTE)
    report = readiness_of(tmp_path)
    assert states(report, "rebuild_index")["timeouts"] == WARN
    assert report.ready == 1


def test_a_gate_without_rules_in_the_run_is_not_checked(ready_project: Path) -> None:
    report = readiness_of(ready_project, select=("JOB201", "JOB202", "JOB301", "JOB302"))
    assert report.gate_rules["retries"] == ("JOB301", "JOB302")
    assert report.gate_rules["timeouts"] == ()
    assert states(report, "sync_orders")["timeouts"] == NOT_CHECKED


# -- formats --------------------------------------------------------------------------------


def report_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["report", *args])
    return result.exit_code, result.stdout


def test_text_is_one_line_per_job_worst_first(demo: Path) -> None:
    code, out = report_cli(str(demo))
    assert code == 0, "a report, not a gate"
    lines = out.splitlines()
    assert lines[0] == "0 of 4 jobs ready (a job is ready when none of its gates fails)."
    assert lines[2].split() == ["idem", "errors", "retry", "time", "obs", "enqueue", "tests", "job"]
    jobs = [line.split() for line in lines if "Task '" in line]
    assert len(jobs) == 4
    fails = [marks[:7].count("FAIL") for marks in jobs]
    assert fails == sorted(fails, reverse=True)
    for marks in jobs:
        assert [marks[i] for i in (0, 4, 5, 6)] == ["-", "-", "-", "-"], "not checked"
        assert marks[8].startswith("'") and marks[9] == "(Celery)"
        assert re.fullmatch(r"shop/tasks\.py:\d+", marks[10])
        assert all(re.fullmatch(r"JOB\d{3}", code) for code in marks[11:])
    assert "  Idempotency     not checked: no JOB1xx rule in this run" in lines
    assert any(re.fullmatch(r"  Retries         JOB301 JOB302: \d+ pass, .*", x) for x in lines)


def test_the_cache_and_processes_do_not_change_the_report(demo: Path) -> None:
    args = [str(demo), "--format", "json"]
    cold = report_cli(*args, "--no-cache")
    assert not (demo / ".jobaudit_cache").exists()
    assert report_cli(*args) == cold  # fills the cache
    assert (demo / ".jobaudit_cache").is_dir()
    assert report_cli(*args) == report_cli(*args, "-j", "2") == cold
    timed = CliRunner().invoke(main, ["report", *args, "--timings"])
    assert "project model" in timed.stderr and timed.stdout == cold[1]


def test_verbose_text_shows_values_with_their_sources(demo: Path) -> None:
    _, out = report_cli(str(demo), "--verbose")
    assert re.search(r"max attempts \(total runs\):\s+unbounded\s+\(max_retries=None", out)
    assert "delivery:                   at-least-once  (acks_late=True" in out
    assert "JOB301 [error] Task 'capture_payment'" in out


def test_json_document(ready_project: Path) -> None:
    code, out = report_cli(str(ready_project), "--format", "json")
    assert code == 0
    document = json.loads(out)
    assert document["schema_version"] == 1
    assert document["summary"] == {"jobs": 1, "ready": 1, "files": 3}
    gates = {gate["id"]: gate for gate in document["gates"]}
    assert list(gates) == [gate.id for gate in GATES]
    assert gates["timeouts"]["rules"] == ["JOB401", "JOB402"]
    assert gates["idempotency"]["checked"] is False
    assert gates["idempotency"]["counts"]["not_checked"] == 1
    (job,) = document["jobs"]
    assert job["qualname"] == "proj.tasks.sync_orders"
    assert job["docstring"] == "Pull new orders from the shop."
    assert job["ready"] is True
    assert job["policy"]["time_limit"] == 300
    assert job["policy"]["time_limit_source"].startswith("app.conf.task_time_limit")
    assert job["gates"]["timeouts"] == {"state": "pass", "findings": [], "unknown": []}


def test_json_keys_are_documented(ready_project: Path) -> None:
    _, out = report_cli(str(ready_project), "--format", "json")
    document = json.loads(out)
    docs = DOCS.read_text(encoding="utf-8")
    keys = set(document) | set(document["summary"]) | set(document["gates"][0])
    keys |= set(document["jobs"][0]) | set(document["jobs"][0]["gates"]["retries"])
    missing = sorted(key for key in keys if f"`{key}`" not in docs)
    assert not missing, f"docs/readiness.md does not describe {missing}"


def test_markdown_summary_first_then_one_details_per_job(demo: Path) -> None:
    code, out = report_cli(str(demo), "--format", "markdown")
    assert code == 0
    assert out.startswith("## jobaudit readiness: 0 of 4 jobs ready\n")
    assert (
        out.index("| Gate | Rules |") < out.index("### Jobs, worst first") < out.index("<details>")
    )
    assert out.count("<details><summary>") == out.count("</details>") == 4
    assert "| Idempotency | none (JOB1xx) | 0 | 0 | 0 | 0 | 4 |" in out


def test_markdown_escapes_what_comes_from_the_code(tmp_path: Path) -> None:
    folder = tmp_path / "we<i>rd|dir"
    folder.mkdir()
    (folder / "tasks.py").write_text(HOSTILE)
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    _, out = report_cli(str(tmp_path), "--format", "markdown")
    assert "`we<i>rd\\|dir/tasks.py:5`" in out, "code spans show text as it is"
    prose = re.sub(r"`[^`]*`", "", out)
    assert "<script>" not in prose and "<i>" not in prose
    assert "[x](https://evil.example)" not in out
    assert "**bold**" not in out
    assert "\\<script\\>alert(1)\\</script\\> \\| \\*\\*bold\\*\\*" in out
    # a pipe would split the table cell: every row keeps its column count
    for line in out.splitlines():
        if line.startswith("| Task "):
            assert len(re.split(r"(?<!\\)\|", line)) == 2 + 3 + 2  # three gates have rules


def test_markdown_is_cut_to_fit_a_step_summary(demo: Path) -> None:
    report = readiness_of(demo)
    full = readiness_markdown.render(report)
    cut = readiness_markdown.render(report, budget=len(full.encode()) - 10)
    assert "**Truncated:** 1 more job entries" in cut
    assert cut.count("<details>") == 3
    assert readiness_markdown.render(report, budget=10).count("<details>") == 0


def test_html_is_self_contained_and_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "we<i>rd|dir"
    folder.mkdir()
    (folder / "tasks.py").write_text(HOSTILE)
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    page = readiness_html.render(readiness_of(tmp_path))
    assert page.startswith("<!DOCTYPE html>")
    assert "default-src 'none'" in page
    assert "<script" not in page
    assert not re.search(r"\b(src|href)\s*=", page), "no external resources or links"
    assert "url(" not in page and "@import" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "we&lt;i&gt;rd|dir/tasks.py:5" in page
    assert page.count('class="bar"') == len(GATES)


def test_html_bars_count_every_state(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out = report_cli(str(demo), "--format", "html", "-o", str(target))
    assert code == 0 and out == ""
    page = target.read_text(encoding="utf-8")
    bars = re.findall(r'<div class="bar" role="img" aria-label="([^"]*)">(.*?)</div>', page)
    assert len(bars) == len(GATES)
    for label, segments in bars:
        counts = [int(n) for n in re.findall(r'title="(\d+) [a-z ]+">', segments)]
        assert sum(counts) == 4, label
    assert bars[0][0] == "4 not checked"
    assert any("fail" in label for label, _ in bars)
    assert "not checked: no JOB1xx rule ran" in page


def test_json_renderer_and_cli_agree(ready_project: Path) -> None:
    _, out = report_cli(str(ready_project), "--format", "json")
    assert json.loads(out) == json.loads(readiness_json.render(readiness_of(ready_project)))


def test_sarif_carries_the_readiness_summary(ready_project: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(ready_project), "--format", "sarif"])
    summary = json.loads(result.stdout)["runs"][0]["properties"]["readiness"]
    assert summary["schema_version"] == 1
    assert (summary["jobs"], summary["ready"]) == (1, 1)
    assert summary["gates"]["timeouts"]["pass"] == 1
    assert summary["gates"]["tests"]["not_checked"] == 1
