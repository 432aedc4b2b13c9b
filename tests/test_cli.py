"""The command line as users run it: exit codes, formats, selection, configuration errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit import __version__
from jobaudit.checks import ALL_RULES
from jobaudit.cli import main

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "demo"

UNBOUNDED = """\
from celery import shared_task


@shared_task(bind=True, max_retries=None, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync(self, order_id):
    pass
"""

CLEAN = """\
from celery import shared_task


@shared_task(bind=True, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync(self, order_id):
    pass
"""


def invoke(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    if cwd is None:
        result = runner.invoke(main, list(args))
    else:
        with runner.isolated_filesystem(temp_dir=cwd):
            result = runner.invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(UNBOUNDED)
    return tmp_path


def test_version() -> None:
    code, out, _ = invoke("--version")
    assert code == 0
    assert __version__ in out


def test_python_dash_m_runs_the_cli(project: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "jobaudit", "check", str(project / "tasks.py"), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert json.loads(completed.stdout)["findings"][0]["code"] == "JOB301"


def test_findings_exit_one_and_name_the_job(project: Path) -> None:
    code, out, _ = invoke("check", str(project))
    assert code == 1
    assert "tasks.py:4:25: JOB301 [error] Task 'sync' retries forever" in out
    assert out.rstrip().endswith("in 1 job across 1 file.")


def test_clean_project_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(CLEAN)
    code, out, _ = invoke("check", str(tmp_path))
    assert code == 0
    assert "All checks passed: 1 job in 1 file." in out


def test_exit_zero_and_fail_on(project: Path) -> None:
    assert invoke("check", str(project), "--exit-zero")[0] == 0
    # JOB301 is an error, so failing only on errors still fails
    assert invoke("check", str(project), "--fail-on", "error")[0] == 1


def test_ignore_and_select(project: Path) -> None:
    code, out, _ = invoke("check", str(project), "--ignore", "JOB301")
    assert code == 0, out
    code, out, _ = invoke("check", str(project), "--select", "JOB3", "--ignore", "JOB30")
    assert code == 0
    code, out, _ = invoke("check", str(project), "--select", "JOB4", "--extend-select", "JOB301")
    assert code == 1
    assert "JOB301" in out


def test_unknown_selector_is_a_usage_error(project: Path) -> None:
    code, _, err = invoke("check", str(project), "--select", "JOB999")
    assert code == 2
    assert "unknown rule selector 'JOB999'" in err


def test_json_document_shape(project: Path) -> None:
    code, out, _ = invoke("check", str(project), "--format", "json")
    assert code == 1
    document = json.loads(out)
    finding = document["findings"][0]
    assert finding == {
        "code": "JOB301",
        "name": "unbounded-retries",
        "level": "error",
        "message": finding["message"],
        "path": "tasks.py",
        "line": 4,
        "column": 25,
        "end_line": 4,
        "end_column": 41,
        "job": "tasks.sync",
        "related": [],
        "fix": finding["fix"],
    }
    assert finding["fix"]["applicability"] == "unsafe"
    assert document["summary"]["errors"] == 1
    assert document["notices"] == []


def test_output_file_is_written_and_stdout_stays_empty(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = invoke("check", str(project), "--format", "json", "--output", str(target))
    assert code == 1
    assert out == ""
    assert json.loads(target.read_text())["findings"][0]["code"] == "JOB301"


def test_statistics_counts_per_rule(project: Path) -> None:
    _, out, _ = invoke("check", str(project), "--statistics")
    assert "    1  JOB301  unbounded-retries [error]" in out


def test_noqa_suppresses(tmp_path: Path) -> None:
    source = UNBOUNDED.replace(
        "retry_backoff=True)", "retry_backoff=True)  # noqa: JOB301"
    )
    (tmp_path / "tasks.py").write_text(source)
    assert invoke("check", str(tmp_path))[0] == 0


def test_broken_config_is_exit_two_and_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.jobaudit]\nextend-selekt = ['JOB3']\n")
    (tmp_path / "tasks.py").write_text(CLEAN)
    code, _, err = invoke("check", str(tmp_path))
    assert code == 2
    assert "unknown key 'extend-selekt'" in err
    assert "did you mean 'extend-select'?" in err


def test_unparsable_file_is_a_notice_and_others_are_still_checked(project: Path) -> None:
    (project / "broken.py").write_text("import celery\ndef broken(:\n")
    code, out, err = invoke("check", str(project))
    assert code == 1
    assert "JOB301" in out
    assert "broken.py:2: syntax error" in err


def test_rule_raising_does_not_lose_other_findings(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobaudit.checks.timeouts.no_time_limit import NoTimeLimit

    def explode(self: object, job: object, project: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(NoTimeLimit, "check_job", explode)
    code, out, err = invoke("check", str(project))
    assert code == 2
    assert "JOB301" in out
    assert "internal error in JOB401 (RuntimeError: boom)" in err


def test_jobs_json_lists_policy_with_sources(project: Path) -> None:
    code, out, _ = invoke("jobs", str(project), "--format", "json")
    assert code == 0
    (job,) = json.loads(out)["jobs"]
    assert job["name"] == "sync"
    assert job["framework"] == "celery"
    assert job["path"] == "tasks.py"
    assert job["line"] == 5
    assert job["policy"]["max_attempts"] == "unbounded"
    assert job["policy"]["max_attempts_source"] == "max_retries=None (task option)"
    assert job["policy"]["time_limit"] == "unknown"
    assert "no Celery app" in job["policy"]["time_limit_reason"]


def test_rules_lists_every_rule() -> None:
    code, out, _ = invoke("rules")
    assert code == 0
    for rule in ALL_RULES:
        assert rule.code in out and rule.name in out


def test_rule_page_by_code_and_name() -> None:
    code, out, _ = invoke("rule", "job301")
    assert code == 0
    assert out.startswith("# JOB301")
    assert invoke("rule", "unbounded-retries")[1] == out
    code, _, err = invoke("rule", "JOB999")
    assert code == 2
    assert "no rule 'JOB999'" in err


def test_demo_project_from_the_readme() -> None:
    code, out, _ = invoke("check", str(DEMO), "--format", "json")
    assert code == 1
    codes = {f["code"] for f in json.loads(out)["findings"]}
    assert {"JOB201", "JOB202", "JOB301", "JOB302", "JOB401", "JOB402"} <= codes


def test_per_file_ignores_follow_gitignore_rules(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "legacy.py").write_text(UNBOUNDED)
    (tmp_path / "jobaudit.toml").write_text('[per-file-ignores]\n"legacy.py" = ["JOB301"]\n')
    assert invoke("check", str(tmp_path))[0] == 0
    (tmp_path / "jobaudit.toml").write_text('[per-file-ignores]\n"*.py" = ["JOB3"]\n')
    assert invoke("check", str(tmp_path))[0] == 0
    (tmp_path / "jobaudit.toml").write_text('[per-file-ignores]\n"other/*.py" = ["JOB301"]\n')
    assert invoke("check", str(tmp_path))[0] == 1


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke("check", str(tmp_path / "nope.py"))
    assert code == 2
    assert "does not exist" in err


def test_ignore_wins_a_tie_with_select(project: Path) -> None:
    assert invoke("check", str(project), "--select", "JOB301", "--ignore", "JOB301")[0] == 0
