"""``jobaudit fix`` and ``check --fix`` as users run them: what is written, and when not."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cli import main

TASKS = """\
import requests
from celery import Celery

app = Celery("shop", broker="redis://localhost:6379/0")


@app.task(bind=True, max_retries=3)
def sync(self, order_id):
    try:
        requests.post("https://erp.example.com/orders", json={"id": order_id}, timeout=10)
    except requests.Timeout as exc:
        self.retry(exc=exc, countdown=10)
"""
FIXED = TASKS.replace("        self.retry(", "        raise self.retry(")
SECOND = """\
import requests
from celery import Celery

app = Celery("shop", broker="redis://localhost:6379/0")


@app.task(bind=True, max_retries=3)
def ping(self):
    try:
        requests.get("https://erp.example.com/ping")
    except requests.Timeout:
        self.retry(countdown=10)
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(TASKS)
    return tmp_path


def test_diff_prints_a_unified_diff_writes_nothing_and_exits_1(project: Path) -> None:
    code, out, err = invoke("fix", "--diff", "--select", "JOB204", str(project))
    assert code == 1
    assert "-        self.retry(exc=exc, countdown=10)" in out
    assert "+        raise self.retry(exc=exc, countdown=10)" in out
    assert out.startswith("--- a/tasks.py\n+++ b/tasks.py\n")
    assert "Would fix 1 finding in 1 file." in err
    assert (project / "tasks.py").read_text() == TASKS


def test_diff_exits_0_when_there_is_nothing_to_fix(project: Path) -> None:
    (project / "tasks.py").write_text(FIXED)
    code, out, _ = invoke("fix", "--diff", "--select", "JOB204", str(project))
    assert (code, out) == (0, "")


def test_fix_writes_and_exits_0_when_nothing_is_left(project: Path) -> None:
    code, out, err = invoke("fix", "--select", "JOB204", str(project))
    assert code == 0
    assert (project / "tasks.py").read_text() == FIXED
    assert "Fixed 1 finding in 1 file." in err
    assert "All checks passed" in out


def test_fix_exits_1_when_findings_remain(project: Path) -> None:
    invoke("fix", "--select", "JOB204,JOB404", str(project))
    assert (project / "tasks.py").read_text() == FIXED
    (project / "tasks.py").write_text(SECOND)
    code, out, _ = invoke("fix", "--select", "JOB204,JOB404", str(project))
    assert code == 1
    assert "JOB404 [warning]" in out
    assert "1 more fix available with `jobaudit fix --unsafe-fixes`." in out


def test_unsafe_fixes_only_with_the_flag(project: Path) -> None:
    (project / "tasks.py").write_text(SECOND)
    invoke("fix", "--select", "JOB404", str(project))
    assert (project / "tasks.py").read_text() == SECOND
    code, _, _ = invoke("fix", "--unsafe-fixes", "--select", "JOB404", str(project))
    assert code == 0
    assert (
        'requests.get("https://erp.example.com/ping", timeout=30)'
        in (project / "tasks.py").read_text()
    )


def test_request_timeout_comes_from_the_configuration(project: Path) -> None:
    (project / "tasks.py").write_text(SECOND)
    (project / "jobaudit.toml").write_text("[fix]\nrequest-timeout = 12\n")
    invoke("fix", "--unsafe-fixes", "--select", "JOB404", str(project))
    assert "timeout=12)" in (project / "tasks.py").read_text()


def test_show_fixes_lists_what_was_done(project: Path) -> None:
    _, _, err = invoke("fix", "--show-fixes", "--select", "JOB204", str(project))
    assert "tasks.py:12: JOB204 Write `raise` before the retry() call" in err


def test_check_fix_fixes_then_reports(project: Path) -> None:
    code, out, _ = invoke("check", "--fix", "--select", "JOB204", str(project))
    assert code == 0
    assert (project / "tasks.py").read_text() == FIXED
    assert "All checks passed" in out


def test_check_marks_safe_fixes_and_counts_them(project: Path) -> None:
    code, out, _ = invoke("check", "--select", "JOB204", "--no-color", str(project))
    assert code == 1
    assert "JOB204 [*] [warning]" in out
    assert "[*] 1 fixable with `jobaudit fix`." in out


def test_json_carries_the_fix(project: Path) -> None:
    _, out, _ = invoke("check", "--select", "JOB204", "--format", "json", str(project))
    fix = json.loads(out)["findings"][0]["fix"]
    assert fix["applicability"] == "safe"
    assert fix["edits"] == [
        {
            "kind": "raise-call",
            "path": "tasks.py",
            "line": 12,
            "end_line": 12,
            "name": None,
            "value": None,
        }
    ]


def test_noqa_findings_are_not_fixed(project: Path) -> None:
    silenced = TASKS.replace("exc=exc, countdown=10)", "exc=exc, countdown=10)  # noqa: JOB204")
    (project / "tasks.py").write_text(silenced)
    code, out, _ = invoke("fix", "--diff", "--select", "JOB204", str(project))
    assert (code, out) == (0, "")


def test_baselined_findings_are_not_fixed(project: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    invoke("check", "--select", "JOB204", "--write-baseline", str(baseline), str(project))
    code, _, _ = invoke("fix", "--select", "JOB204", "--baseline", str(baseline), str(project))
    assert code == 0
    assert (project / "tasks.py").read_text() == TASKS


def test_a_file_that_does_not_parse_is_left_alone(project: Path) -> None:
    broken = TASKS + "\ndef oops(:\n    pass\n"
    (project / "broken.py").write_text(broken)
    _, _, err = invoke("fix", "--select", "JOB204", str(project))
    assert (project / "broken.py").read_text() == broken
    assert "broken.py:14: syntax error" in err
    assert (project / "tasks.py").read_text() == FIXED


def test_an_interrupted_write_keeps_the_original(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    result = CliRunner().invoke(main, ["fix", "--select", "JOB204", str(project)])
    assert isinstance(result.exception, OSError)
    assert (project / "tasks.py").read_text() == TASKS
    assert sorted(p.name for p in project.iterdir()) == ["tasks.py"]


def test_the_file_keeps_its_mode(project: Path) -> None:
    target = project / "tasks.py"
    target.chmod(0o640)
    invoke("fix", "--select", "JOB204", str(project))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_text() == FIXED


def test_non_ascii_before_the_edit_on_the_same_line(project: Path) -> None:
    source = TASKS.replace(
        "        self.retry(exc=exc, countdown=10)",
        '        note = "é"; self.retry(exc=exc, countdown=10)',
    )
    (project / "tasks.py").write_text(source, encoding="utf-8")
    invoke("fix", "--select", "JOB204", str(project))
    assert 'note = "é"; raise self.retry(exc=exc, countdown=10)' in (
        project / "tasks.py"
    ).read_text(encoding="utf-8")


def test_check_does_not_import_libcst(project: Path) -> None:
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from jobaudit.cli import main\n"
        f"CliRunner().invoke(main, ['check', {str(project)!r}, '--format', 'json'])\n"
        "print('libcst' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[fix]\ntime-limt = 60\n", "unknown key 'time-limt' in [fix]; did you mean 'time-limit'?"),
        ("[fix]\nmax-attempts = 0\n", "[fix] 'max-attempts' must be a positive integer"),
        (
            "[fix]\ntime-limit = 60\nsoft-time-limit = 60\n",
            "'soft-time-limit' (60) must be less than 'time-limit' (60)",
        ),
        ('[fix]\ntime-limit-scope = "app"\n', "'time-limit-scope' must be one of task, project"),
    ],
)
def test_fix_configuration_is_validated(project: Path, table: str, message: str) -> None:
    (project / "jobaudit.toml").write_text(table)
    code, _, err = invoke("fix", str(project))
    assert code == 2
    assert message in err


OVERLAPPING = """\
from celery import Celery

app = Celery("shop", broker="redis://localhost:6379/0")


@app.task(autoretry_for=(OSError,))
def sync(order_id):
    pass
"""


def test_fixes_on_one_call_are_applied_in_successive_rounds(project: Path) -> None:
    (project / "tasks.py").write_text(OVERLAPPING)
    code, _, err = invoke("fix", "--unsafe-fixes", "--select", "JOB302,JOB401", str(project))
    assert code == 0, err
    decorator = (
        "@app.task(\n"
        "    autoretry_for=(OSError,),\n"
        "    retry_backoff=True,\n"
        "    time_limit=300,\n"
        "    soft_time_limit=270,\n"
        ")"
    )
    assert decorator in (project / "tasks.py").read_text()


SWALLOWED = """\
import requests
from celery import shared_task
from celery.exceptions import Reject


@shared_task(bind=True)
def sync(self, order_id):
    try:
        if not order_id:
            raise Reject("no order", requeue=False)
        requests.post("https://erp.example.com/orders", json={"id": order_id}, timeout=10)
        raise self.retry(countdown=2**self.request.retries)
    except Exception:
        pass
"""


def test_imports_are_merged_and_never_repeated(project: Path) -> None:
    (project / "tasks.py").write_text(SWALLOWED)
    invoke("fix", "--unsafe-fixes", "--select", "JOB201", str(project))
    fixed = (project / "tasks.py").read_text()
    assert "from celery.exceptions import Reject, Retry\n" in fixed
    assert fixed.count("import Reject") == 1
    assert "    except (Reject, Retry):\n        raise\n    except Exception:\n" in fixed


LONG_DECORATOR = """\
from celery import Celery

app = Celery("shop", broker="redis://localhost:6379/0")


@app.task(bind=True, retry_backoff=30, retry_kwargs={"max_retries": 5})  # the ERP client
def sync(self, order_id):
    pass
"""


def test_a_decorator_made_too_long_is_split(project: Path) -> None:
    (project / "tasks.py").write_text(LONG_DECORATOR)
    invoke("fix", "--unsafe-fixes", "--select", "JOB401", str(project))
    assert (project / "tasks.py").read_text() == LONG_DECORATOR.replace(
        '@app.task(bind=True, retry_backoff=30, retry_kwargs={"max_retries": 5})',
        "@app.task(\n"
        "    bind=True,\n"
        "    retry_backoff=30,\n"
        '    retry_kwargs={"max_retries": 5},\n'
        "    time_limit=300,\n"
        "    soft_time_limit=270,\n"
        ")",
    )
    (project / "tasks.py").write_text(LONG_DECORATOR)
    (project / "jobaudit.toml").write_text("[fix]\nline-length = 120\n")
    invoke("fix", "--unsafe-fixes", "--select", "JOB401", str(project))
    assert (
        'max_retries": 5}, time_limit=300, soft_time_limit=270)  # the ERP'
        in (project / "tasks.py").read_text()
    )


def test_a_decorator_that_was_long_already_stays_on_its_line(project: Path) -> None:
    long_already = LONG_DECORATOR.replace("bind=True,", "bind=True, acks_late=True, queue='erp',")
    (project / "tasks.py").write_text(long_already)
    invoke("fix", "--unsafe-fixes", "--select", "JOB401", str(project))
    assert (
        "queue='erp', retry_backoff=30, retry_kwargs={\"max_retries\": 5}, time_limit=300,"
        in (project / "tasks.py").read_text()
    )


def test_a_retry_with_max_0_offers_no_fix_and_does_not_crash(tmp_path: Path) -> None:
    """Found by the fuzz suite: ``Retry(max=0, ...)`` made the JOB302 fix read a missing
    positional argument (``max`` was taken as absent because 0 is falsy)."""
    (tmp_path / "jobs.py").write_text(
        "from redis import Redis\n"
        "from rq import Queue, Retry\n\n\n"
        "def publish(asset_id):\n    pass\n\n\n"
        "def schedule(asset_id):\n"
        "    queue = Queue('media', connection=Redis())\n"
        "    queue.enqueue(publish, asset_id, retry=Retry(max=0, interval=10))\n"
    )
    result = CliRunner().invoke(main, ["check", str(tmp_path), "--select", "JOB302"])
    assert result.exit_code in (0, 1), result.output
    assert "internal error" not in result.output
