"""``check --format github``: workflow commands the Actions runner turns into annotations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobaudit.cli import main
from jobaudit.report.github import command, escape_data, escape_property

REPO = Path(__file__).resolve().parent.parent

UNBOUNDED = """\
from celery import shared_task


@shared_task(bind=True, max_retries=None, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync(self, order_id):
    pass
"""
DJANGO_NOTE = """\
from django.tasks import task


@task()
def rebuild_index():
    pass
"""


def check_github(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", "--format", "github", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_finding_is_an_error_annotation(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(UNBOUNDED)
    code, out, _ = check_github(str(tmp_path), "--select", "JOB301")
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith(
        "::error file=tasks.py,line=4,endLine=4,col=25,endColumn=41,title=JOB301::"
        "Task 'sync' retries"
    )


def test_notes_are_notices(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(DJANGO_NOTE)
    _, out, _ = check_github(str(tmp_path), "--select", "JOB401")
    assert out.startswith("::notice file=tasks.py,line=4,"), out
    assert ",title=JOB401::" in out


def test_clean_run_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(UNBOUNDED.replace("max_retries=None, ", ""))
    assert check_github(str(tmp_path), "--select", "JOB301") == (0, "", "")


def test_paths_are_relative_to_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    package = tmp_path / "backend" / "jobs"
    package.mkdir(parents=True)
    (package / "tasks.py").write_text(UNBOUNDED)
    monkeypatch.chdir(package)
    _, out, _ = check_github(".", "--select", "JOB301")
    assert out.startswith("::error file=backend/jobs/tasks.py,line=4,")


def test_unanalysable_file_is_a_warning_annotation(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import celery\ndef broken(:\n")
    _, out, _ = check_github(str(tmp_path), "--select", "JOB301")
    assert out.startswith("::warning file=broken.py,line=2,title=jobaudit%3A not analysed::")


def test_demo_annotations_cover_every_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    code, out, _ = check_github("fixtures/projects/demo")
    text = CliRunner().invoke(main, ["check", "fixtures/projects/demo", "--quiet"]).stdout
    assert code == 1
    assert len(out.splitlines()) == len(text.splitlines())
    prefixes = ("::error file=", "::warning file=", "::notice file=")
    assert all(line.startswith(prefixes) for line in out.splitlines())


@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        ("100% done", "100%25 done", "100%25 done"),
        ("line one\nline two\r\n", "line one%0Aline two%0D%0A", "line one%0Aline two%0D%0A"),
        ("a: b, c", "a: b, c", "a%3A b%2C c"),
        ("%0A", "%250A", "%250A"),
    ],
)
def test_escaping(raw: str, data: str, prop: str) -> None:
    assert escape_data(raw) == data
    assert escape_property(raw) == prop


def test_a_message_with_separators_stays_whole() -> None:
    line = command("warning", "retries: 3, then %d\nfails", file="a,b:c.py", line=2)
    assert line == "::warning file=a%2Cb%3Ac.py,line=2::retries: 3, then %25d%0Afails"
    assert "\n" not in line


# -- action.yml: its shell steps, run as the runner would ------------------------------------

ACTION = REPO / "action.yml"


def action_steps() -> dict[str, dict[str, Any]]:
    yaml = pytest.importorskip("yaml")
    action = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    for step in steps:
        assert "uses" in step or step.get("shell") == "bash", step
    return {step.get("id") or step.get("name") or step["uses"]: step for step in steps}


def run_step(step: dict[str, Any], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        **env,
    }
    return subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_action_uploads_with_the_category_input() -> None:
    steps = action_steps()
    upload = steps["Upload to code scanning"]
    assert upload["uses"] == "github/codeql-action/upload-sarif@v4"
    assert upload["with"] == {
        "sarif_file": "${{ inputs.sarif-file }}",
        "category": "${{ inputs.category }}",
    }
    order = list(steps)
    assert order.index("check") < order.index("Upload to code scanning") < order.index("Verdict")


def test_action_check_step_never_fails_and_reports_its_exit_code(tmp_path: Path) -> None:
    sarif = tmp_path / "jobaudit.sarif"
    completed = run_step(
        action_steps()["check"],
        tmp_path,
        PATHS="fixtures/projects/demo",
        ARGS="--select JOB301,JOB302",
        SARIF=str(sarif),
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "output").read_text().splitlines() == ["exit-code=1", "written=true"]
    rules = json.loads(sarif.read_text())["runs"][0]["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == ["JOB301", "JOB302"]


def test_action_summary_step_writes_the_markdown_report(tmp_path: Path) -> None:
    completed = run_step(
        action_steps()["Readiness report"], tmp_path, PATHS="fixtures/projects/demo"
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "summary.md").read_text().startswith("## jobaudit readiness:")


@pytest.mark.parametrize(
    ("rc", "fail_on_findings", "expected"),
    [("0", "true", 0), ("1", "false", 0), ("1", "true", 1), ("2", "false", 2), ("", "false", 2)],
)
def test_action_verdict(rc: str, fail_on_findings: str, expected: int, tmp_path: Path) -> None:
    completed = run_step(
        action_steps()["Verdict"], tmp_path, RC=rc, FAIL_ON_FINDINGS=fail_on_findings
    )
    assert completed.returncode == expected, completed.stdout
