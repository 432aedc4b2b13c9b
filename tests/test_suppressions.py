"""``# noqa``, ``# jobaudit: idempotent``, and the audit of unused ``# noqa`` (JOB901)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cli import main

TASKS = """\
import requests
from celery import shared_task


@shared_task(max_retries=None, autoretry_for=(OSError,), retry_backoff=True)  # noqa: JOB301
def poll(url):
    return requests.get(url, timeout=5).json()


@shared_task(autoretry_for=(Exception,), max_retries=3)  # noqa: JOB202, JOB302
def sync(account_id):
    return requests.get(f"https://api.example.com/{account_id}", timeout=5).json()


@shared_task(autoretry_for=(Exception,), max_retries=3)  # noqa: JOB2
def touch(account_id):
    requests.get(f"https://api.example.com/{account_id}")  # noqa
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def findings(*args: str) -> list[tuple[str, int, str]]:
    _, out, _ = run(*args, "--format", "json")
    return [(f["path"], f["line"], f["code"]) for f in json.loads(out)["findings"]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    return tmp_path


def test_codes_lists_prefixes_and_blanket(project: Path) -> None:
    code, out, _ = run(str(project), "--format", "json")
    document = json.loads(out)
    # Only the JOB302 of 'touch' is left: JOB2 covers JOB202, not JOB302.
    assert [(f["line"], f["code"]) for f in document["findings"]] == [(15, "JOB302")]
    assert document["summary"]["suppressed"] == 5
    assert code == 1


def test_unused_noqa_is_off_by_default(project: Path) -> None:
    assert not any(code == "JOB901" for *_, code in findings(str(project)))


def test_every_used_comment_stays_quiet(project: Path) -> None:
    assert not any(code == "JOB901" for *_, code in findings(str(project), "--show-unused-noqa"))


def test_stale_comments_are_reported(tmp_path: Path) -> None:
    fixed = (
        TASKS.replace("max_retries=None", "max_retries=5")
        .replace(
            "(Exception,), max_retries=3)  # noqa: JOB202, JOB302",
            "(OSError,), max_retries=3, retry_backoff=True)  # noqa: JOB202, JOB302",
        )
        .replace('{account_id}")  # noqa', '{account_id}", timeout=5)  # noqa')
    )
    (tmp_path / "tasks.py").write_text(fixed)
    code, out, _ = run(str(tmp_path), "--show-unused-noqa", "--select", "JOB9")
    lines = [line for line in out.splitlines() if "JOB901" in line]
    assert len(lines) == 3, out
    assert "`# noqa: JOB301` in Task 'poll' suppresses nothing: JOB301 reports nothing" in lines[0]
    assert "`# noqa` codes JOB202, JOB302 in Task 'sync' suppress nothing" in lines[1]
    assert "Blanket `# noqa` in Task 'touch' suppresses nothing" in lines[2]
    assert code == 0, "a note does not fail the run at the default fail-on"


def test_a_comment_for_a_deselected_rule_is_still_used(project: Path) -> None:
    # JOB301 does not run, but it would report on that line: the comment is doing its job.
    found = findings(str(project), "--show-unused-noqa", "--select", "JOB4")
    assert not any(code == "JOB901" for *_, code in found)


def test_other_tools_codes_and_unknown_codes(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(
        "from celery import shared_task\n\n"
        "X = 1  # noqa\n"
        "Y = 2  # noqa: E501\n\n\n"
        "@shared_task(max_retries=3)  # noqa: E501, JOB999\n"
        "def ping():\n    pass\n"
    )
    _, out, _ = run(str(tmp_path), "--show-unused-noqa")
    assert out.count("JOB901") == 1
    assert (
        "`# noqa: JOB999` in Task 'ping' suppresses nothing: JOB999 is not a jobaudit rule" in out
    )


def test_selected_in_configuration_and_per_file_ignores(tmp_path: Path) -> None:
    (tmp_path / "legacy").mkdir()
    stale = (
        "from celery import shared_task\n\n\n@shared_task  # noqa: JOB301\ndef ping():\n    pass\n"
    )
    (tmp_path / "tasks.py").write_text(stale)
    (tmp_path / "legacy" / "tasks.py").write_text(stale)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.jobaudit]\nextend-select = ["JOB901"]\n'
        'per-file-ignores = { "legacy/*" = ["JOB9"] }\n'
    )
    assert findings(str(tmp_path)) == [("tasks.py", 4, "JOB901")]


def test_idempotency_declaration_is_the_guard(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(
        "from celery import shared_task\n\n\n"
        "@shared_task(acks_late=True)  # jobaudit: idempotent -- upsert keyed by order id\n"
        "def sync(order_id):\n    pass\n"
    )
    result = CliRunner().invoke(main, ["jobs", str(tmp_path), "--format", "json"])
    policy = json.loads(result.stdout)["jobs"][0]["policy"]
    assert policy["idempotency_guard"] == "declared idempotent: upsert keyed by order id"
    assert policy["idempotency_guard_source"] == "# jobaudit: idempotent"
