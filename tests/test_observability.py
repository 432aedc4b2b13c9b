"""What ``jobaudit.observability`` finds in a project, and what the JOB5xx rules and the
readiness report's Observability gate make of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobaudit.config import Config
from jobaudit.deploy import worker_options
from jobaudit.engine import run
from jobaudit.observability import METRICS, TRACKING, observability
from jobaudit.report.readiness import FAIL, PASS, UNKNOWN, WARN, build
from jobaudit.result import Result
from jobaudit.selection import select_rules

CELERY = """\
from celery import Celery

app = Celery("shop", broker="redis://localhost:6379/0")


@app.task(time_limit=60)
def recalc(cart_id):
    return cart_id
"""
DRAMATIQ = """\
import dramatiq
from dramatiq.brokers.redis import RedisBroker

broker = RedisBroker()
dramatiq.set_broker(broker)


@dramatiq.actor(max_retries=3)
def send_invoice(invoice_id):
    return invoice_id
"""
FAILURE_SIGNAL = """\
from celery.signals import task_failure


@task_failure.connect
def report(sender=None, task_id=None, exception=None, **kwargs):
    print("failed", task_id, exception)
"""


def analyse(root: Path, *codes: str) -> Result:
    config = Config(root=root, source=None).with_overrides(select=codes, preview=True)
    rules = select_rules(config.select, config.ignore, config.extend_select, config.preview)
    return run([root], config, rules)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def observability_states(result: Result) -> dict[str, str]:
    return {entry.job.name: entry.gate("observability").state for entry in build(result).entries}


def test_a_project_without_tracking_fails_the_gate(tmp_path: Path) -> None:
    result = analyse(write(tmp_path, {"tasks.py": CELERY}), "JOB501", "JOB504")
    assert sorted(f.code for f in result.findings) == ["JOB501", "JOB504"]
    assert all(f.path == "tasks.py" and f.line == 3 for f in result.findings)
    assert observability_states(result) == {"recalc": FAIL}


def test_metrics_alone_missing_only_warns(tmp_path: Path) -> None:
    write(tmp_path, {"tasks.py": CELERY, "signals.py": FAILURE_SIGNAL})
    result = analyse(tmp_path, "JOB501", "JOB504")
    assert [f.code for f in result.findings] == ["JOB504"]
    assert observability_states(result) == {"recalc": WARN}


def test_tracking_and_metrics_pass(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tasks.py": CELERY,
            "signals.py": FAILURE_SIGNAL,
            "Procfile": "worker: celery -A tasks worker -E --loglevel=info\n",
        },
    )
    result = analyse(tmp_path, "JOB501", "JOB504")
    assert result.findings == []
    assert observability_states(result) == {"recalc": PASS}


def test_settings_that_cannot_be_read_make_the_gate_unknown(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "manage.py": "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n",
            "settings.py": "from local_settings import *\n\nDEBUG = False\n",
            "tasks.py": CELERY,
        },
    )
    result = analyse(tmp_path, "JOB501", "JOB504")
    assert result.findings == []
    (entry,) = build(result).entries
    gate = entry.gate("observability")
    assert gate.state == UNKNOWN
    assert "local_settings" in gate.unresolved[0].reason


def test_a_finding_counts_only_for_its_framework(tmp_path: Path) -> None:
    write(tmp_path, {"tasks.py": CELERY, "signals.py": FAILURE_SIGNAL, "actors.py": DRAMATIQ})
    result = analyse(tmp_path, "JOB501")
    assert [(f.code, f.path, f.line) for f in result.findings] == [("JOB501", "actors.py", 4)]
    assert observability_states(result) == {"recalc": PASS, "send_invoice": FAIL}


@pytest.mark.parametrize(
    ("init", "covered"),
    [
        ("sentry_sdk.init(dsn=DSN)", {"celery", "dramatiq", "taskiq", "django_tasks"}),
        ("sentry_sdk.init(**OPTIONS)", {"celery", "dramatiq", "taskiq", "django_tasks"}),
        ("sentry_sdk.init(dsn=DSN, default_integrations=False)", set()),
        (
            "sentry_sdk.init(dsn=DSN, default_integrations=False, "
            "integrations=[DramatiqIntegration()])",
            {"dramatiq"},
        ),
        (
            "sentry_sdk.init(dsn=DSN, integrations=[LoggingIntegration(event_level=None)])",
            {"celery"},
        ),
        (
            "sentry_sdk.init(dsn=DSN, auto_enabling_integrations=False, "
            "integrations=[LoggingIntegration(event_level=None)])",
            set(),
        ),
        (
            "sentry_sdk.init(dsn=DSN, disabled_integrations=[LoggingIntegration])",
            {"celery"},
        ),
    ],
)
def test_which_frameworks_a_sentry_init_reaches(
    tmp_path: Path, init: str, covered: set[str]
) -> None:
    write(
        tmp_path,
        {
            "monitoring.py": (
                "import sentry_sdk\n"
                "from sentry_sdk.integrations.dramatiq import DramatiqIntegration\n"
                "from sentry_sdk.integrations.logging import LoggingIntegration\n\n"
                "DSN = 'https://key@sentry.example.com/1'\nOPTIONS = {'dsn': DSN}\n"
                f"{init}\n"
            ),
            "tasks.py": CELERY,
        },
    )
    found = observability(analyse(tmp_path, "JOB501").project)
    for framework in ("celery", "dramatiq", "taskiq", "django_tasks"):
        assert bool(found.found(TRACKING, framework)) == (framework in covered), framework


def test_command_lines_in_deploy_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "Procfile": (
                "web: ddtrace-run gunicorn app:wsgi\n"
                "worker: celery -A proj worker --task-events -l info\n"
                "rqworker: rq worker --exception-handler proj.handlers.notify high\n"
            ),
            "docker-compose.yml": (
                "services:\n  flower:\n    command: celery -A proj flower\n"
                "  otel:\n    command: opentelemetry-instrument python run.py\n"
            ),
        },
    )
    options = worker_options(tmp_path)
    assert options["celery"]["task_events"][0] is True
    assert options["celery"]["metrics_exporter"][0] == "Flower or celery-exporter"
    assert options["rq"]["exception_handler"][0] is True
    assert options["any"]["ddtrace_run"][1].path == "Procfile"
    assert options["any"]["otel_instrument"][1].path == "docker-compose.yml"


def test_metrics_imported_by_a_hook_module(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tasks.py": CELERY,
            "metrics.py": "from prometheus_client import Counter\n\nRUNS = Counter('runs', 'x')\n",
            "signals.py": (
                "from celery.signals import task_postrun\n\nfrom metrics import RUNS\n\n\n"
                "@task_postrun.connect\ndef count(sender=None, **kwargs):\n    RUNS.inc()\n"
            ),
        },
    )
    found = observability(analyse(tmp_path, "JOB504").project)
    assert found.found(METRICS, "celery")
    assert not found.found(TRACKING, "celery"), "task_postrun is not a failure hook"


def test_tests_do_not_count(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "tasks.py": CELERY,
            "tests/test_tasks.py": "import sentry_sdk\n\nsentry_sdk.init(dsn=None)\n",
        },
    )
    result = analyse(tmp_path, "JOB501")
    assert [f.code for f in result.findings] == ["JOB501"]


def test_the_readiness_entry_lists_what_was_found(tmp_path: Path) -> None:
    write(tmp_path, {"tasks.py": CELERY, "signals.py": FAILURE_SIGNAL})
    (entry,) = build(analyse(tmp_path, "JOB501", "JOB504")).entries
    assert entry.monitoring == (("error tracking", "task_failure handler report", "signals.py:4"),)
