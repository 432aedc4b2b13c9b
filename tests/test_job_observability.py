"""JOB502, JOB503 and JOB506: job-level behaviour the fixtures do not show on their own.

One handler gets one finding (JOB201 and JOB608 keep theirs), JOB502 counts
towards the error-handling gate, and the attempts JOB503 reports come from
the enqueue call when it sets its own.
"""

from __future__ import annotations

from pathlib import Path

from jobaudit.checks.enqueue.enqueue_failure_swallowed import EnqueueFailureSwallowed
from jobaudit.checks.errors.control_flow_swallowed import ControlFlowExceptionSwallowed
from jobaudit.checks.observability.failure_callback_on_every_attempt import (
    FailureCallbackOnEveryAttempt,
)
from jobaudit.checks.observability.per_attempt_error_report import PerAttemptErrorReport
from jobaudit.checks.observability.silent_failure import SilentFailure
from jobaudit.config import Config
from jobaudit.engine import run
from jobaudit.report.readiness import FAIL, build, gate_of
from jobaudit.testing import run_example

SWALLOWED_RETRY = """
import requests
from celery import shared_task


@shared_task(bind=True, max_retries=3)
def refresh(self, url):
    try:
        response = requests.get(url, timeout=10)
        if response.status_code == 429:
            raise self.retry(countdown=60)
    except Exception:
        pass
"""

SWALLOWED_ENQUEUE = """
from celery import shared_task


@shared_task
def notify(user_id):
    pass


@shared_task
def signup(user_id):
    try:
        notify.delay(user_id)
    except Exception:
        pass
"""


def test_a_handler_job201_reports_is_not_reported_again() -> None:
    rules = [ControlFlowExceptionSwallowed(), SilentFailure()]
    codes = [finding.code for finding in run_example(SWALLOWED_RETRY, rules)]
    assert codes == ["JOB201"]


def test_a_handler_job608_reports_is_not_reported_again() -> None:
    rules = [EnqueueFailureSwallowed(), SilentFailure()]
    codes = [finding.code for finding in run_example(SWALLOWED_ENQUEUE, rules)]
    assert codes == ["JOB608"]


def test_silent_failure_alone_still_defers_to_the_other_rules() -> None:
    assert run_example(SWALLOWED_RETRY, [SilentFailure()]) == []


def test_gates() -> None:
    error_handling = gate_of(SilentFailure.code)
    assert error_handling is not None and error_handling.id == "error_handling"
    for rule in (FailureCallbackOnEveryAttempt, PerAttemptErrorReport):
        gate = gate_of(rule.code)
        assert gate is not None and gate.id == "observability"


def test_a_silent_failure_fails_the_error_handling_gate(tmp_path: Path) -> None:
    code = SWALLOWED_ENQUEUE.replace("notify.delay(user_id)", "open(f'/users/{user_id}').read()")
    (tmp_path / "tasks.py").write_text(code, encoding="utf-8")
    result = run([tmp_path], Config(root=tmp_path, source=None), [SilentFailure()])
    entry = next(entry for entry in build(result).entries if entry.job.name == "signup")
    gate = entry.gate("error_handling")
    assert gate.state == FAIL
    assert [finding.code for finding in gate.findings] == ["JOB502"]
    assert entry.gate("observability").findings == ()


def test_callback_attempts_come_from_the_enqueue_call() -> None:
    code = """
import dramatiq
import requests


@dramatiq.actor(max_retries=0)
def page(message_data, exception_data):
    requests.post("https://alerts.example.com", json=exception_data, timeout=5)


@dramatiq.actor(max_retries=0)
def build(report_id):
    pass


def rebuild(report_id):
    build.send_with_options(args=(report_id,), max_retries=4, on_failure=page)
    build.send_with_options(args=(report_id,), on_failure=page)
"""
    findings = run_example(code, [FailureCallbackOnEveryAttempt()])
    assert [finding.line for finding in findings] == [17]
    assert "runs up to 5 times (max_retries=4)" in findings[0].message


def test_silent_failure_names_what_the_handler_does() -> None:
    code = """
import logging

from huey import RedisHuey

huey = RedisHuey("app")
logger = logging.getLogger(__name__)


@huey.task()
def thumbnail(image_id):
    try:
        open(f"/images/{image_id}").read()
    except Exception as exc:
        logger.warning("thumbnail %s failed: %s", image_id, exc)
"""
    (finding,) = run_example(code, [SilentFailure()])
    assert finding.line == 14
    assert "only logs with logger.warning(), without the traceback" in finding.message
    assert finding.message.startswith("Task 'thumbnail': `except Exception`")
