"""Job discovery and effective policies, end to end through ``jobaudit jobs --format json``.

Each scenario under ``fixtures/projects/discovery_*`` is a small project laid
out the way real ones are (apps imported from another module, wrappers, split
settings, registrations...).  The CLI runs inside the scenario, as a user
would, and every job must be found where it is declared, with the effective
value of each policy key *and* where that value came from.  Jobs that must not
be found are covered by the exact set of names per scenario.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECTS = Path(__file__).resolve().parent.parent / "fixtures" / "projects"

Job = dict[str, Any]


@functools.cache
def inventory(scenario: str) -> dict[str, Job]:
    """The jobs of one scenario by name, from the real command line."""
    completed = subprocess.run(
        [sys.executable, "-m", "jobaudit", "jobs", ".", "--format", "json"],
        cwd=PROJECTS / scenario,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    jobs: list[Job] = json.loads(completed.stdout)["jobs"]
    by_name = {job["name"]: job for job in jobs}
    assert len(by_name) == len(jobs), "two jobs share a name in one scenario"
    return by_name


def expect(
    scenario: str,
    name: str,
    *,
    framework: str,
    path: str,
    line: int,
    declared: str = "",
    **policy: tuple[object, ...],
) -> None:
    """Check one job.  Each policy keyword is ``(value, source)`` or ``(value, source, reason)``."""
    job = inventory(scenario)[name]
    assert (job["framework"], job["path"], job["line"]) == (framework, path, line)
    assert declared in job["declaration"]
    found = job["policy"]
    for key, wanted in policy.items():
        got: tuple[object, ...] = (found[key], found[f"{key}_source"])
        if len(wanted) == 3:
            got += (found.get(f"{key}_reason"),)
        assert got == wanted, f"{name}.{key}"


def names(scenario: str) -> set[str]:
    return set(inventory(scenario))


# -- Celery ---------------------------------------------------------------------------------

DJANGO = "discovery_celery_django"
SETTINGS_LIMIT = (300.0, "settings.CELERY_TASK_TIME_LIMIT")
CONF_SOFT_LIMIT = (240.0, "app.conf.update")


def test_celery_django_finds_tasks_but_not_test_tasks() -> None:
    """Tasks defined in ``tests/`` are not listed, and the app of ``tests/conftest.py`` is not
    one of the project's apps (else every ``shared_task`` would have two disagreeing apps)."""
    assert names(DJANGO) == {
        "audit_order",
        "recalculate_totals",
        "notify_warehouse",
        "export_orders",
        "monthly_report",
        "sync_catalog",
    }


def test_celery_app_imported_from_project_module_uses_namespaced_split_settings() -> None:
    expect(
        DJANGO,
        "recalculate_totals",
        framework="celery",
        path="orders/tasks.py",
        line=11,
        max_attempts=(1, "no retry configured"),
        time_limit=SETTINGS_LIMIT,
        soft_time_limit=CONF_SOFT_LIMIT,
        delivery=("at-most-once", "messages are acknowledged before the task runs"),
    )


def test_celery_app_reexported_from_package_init() -> None:
    expect(
        DJANGO,
        "audit_order",
        framework="celery",
        path="orders/signals.py",
        line=5,
        time_limit=SETTINGS_LIMIT,
        soft_time_limit=CONF_SOFT_LIMIT,
    )


def test_celery_aliased_shared_task_bound_retry_uses_task_annotations() -> None:
    expect(
        DJANGO,
        "notify_warehouse",
        framework="celery",
        path="orders/tasks.py",
        line=16,
        declared="shared_task",
        max_attempts=(8, "task_annotations['*']"),
        backoff=("fixed 30 s", "self.retry()"),
        retry_on=(["requests.ConnectionError"], "self.retry() in except"),
        time_limit=SETTINGS_LIMIT,
    )


def test_celery_autoretry_with_annotations_and_backoff() -> None:
    expect(
        DJANGO,
        "sync_catalog",
        framework="celery",
        path="orders/tasks.py",
        line=34,
        max_attempts=(8, "task_annotations['*']"),
        backoff=("exponential from 1 s, capped at 600 s, with jitter", "task option"),
        retry_on=(["requests.ConnectionError"], "task option"),
    )


def test_celery_limits_from_constants_of_another_module_beat_settings() -> None:
    expect(
        DJANGO,
        "export_orders",
        framework="celery",
        path="orders/tasks.py",
        line=24,
        max_attempts=(1, "no retry configured"),
        time_limit=(1800.0, "task option"),
        soft_time_limit=(1740.0, "task option"),
    )


def test_celery_limit_read_from_environment_is_unknown_with_reason() -> None:
    expect(
        DJANGO,
        "monthly_report",
        framework="celery",
        path="orders/tasks.py",
        line=29,
        time_limit=("unknown", "task option", "read from the environment at run time"),
        soft_time_limit=CONF_SOFT_LIMIT,
    )


APP = "discovery_celery_app"
NO_LIMIT = (None, "framework default")


def test_celery_app_scenario_negatives() -> None:
    """Runtime ``app.task(...)`` calls, an unrelated ``task`` decorator, unregistered classes."""
    assert names(APP) == {
        "shop.reports.build",
        "refresh_stock",
        "push_prices",
        "push_invoice",
        "sync_customers",
        "charge_card",
        "poll_gateway",
        "purge_carts",
        "_rotate_keys",
    }


def test_celery_autoretry_without_max_retries_is_capped_at_four_runs() -> None:
    expect(
        APP,
        "refresh_stock",
        framework="celery",
        path="shop/jobs/sync.py",
        line=9,
        max_attempts=(4, "framework default"),
        backoff=(
            "fixed 180 s",
            "autoretry_for without retry_backoff: default_retry_delay (framework default)",
        ),
        retry_on=(["ConnectionError"], "task option"),
        time_limit=NO_LIMIT,
        soft_time_limit=NO_LIMIT,
    )


def test_celery_base_class_from_another_module() -> None:
    expect(
        APP,
        "push_prices",
        framework="celery",
        path="shop/jobs/sync.py",
        line=14,
        max_attempts=(6, "base class ReliableTask"),
        time_limit=(120.0, "base class ReliableTask"),
        backoff=("exponential from 1 s, capped at 600 s, with jitter", "base class ReliableTask"),
        retry_on=(["ConnectionError", "TimeoutError"], "base class ReliableTask"),
    )


def test_celery_task_option_beats_base_class_chain() -> None:
    expect(
        APP,
        "push_invoice",
        framework="celery",
        path="shop/jobs/sync.py",
        line=19,
        max_attempts=(2, "task option"),
        time_limit=(120.0, "base class ReliableTask"),
        delivery=("at-least-once", "acks_late=True (base class AuditedTask)"),
    )


def test_celery_passthrough_wrapper() -> None:
    expect(
        APP,
        "sync_customers",
        framework="celery",
        path="shop/jobs/sync.py",
        line=24,
        declared="task",
        max_attempts=(3, "task option"),
        backoff=("exponential from 5 s, capped at 600 s, with jitter", "task option"),
    )


def test_celery_wrapper_fixing_options() -> None:
    expect(
        APP,
        "charge_card",
        framework="celery",
        path="shop/jobs/sync.py",
        line=29,
        declared="critical",
        max_attempts=(1, "no retry configured"),
        delivery=("at-least-once", "acks_late=True (wrapper 'critical')"),
    )


def test_celery_max_retries_none_is_unbounded() -> None:
    expect(
        APP,
        "poll_gateway",
        framework="celery",
        path="shop/jobs/sync.py",
        line=34,
        max_attempts=("unbounded", "max_retries=None (task option)"),
        backoff=("fixed 180 s", "self.retry()"),
    )


def test_celery_registered_task_class() -> None:
    expect(
        APP,
        "shop.reports.build",
        framework="celery",
        path="shop/jobs/reports.py",
        line=6,
        declared="register_task",
        max_attempts=(1, "no retry configured"),
        time_limit=(600.0, "base class BuildReport"),
    )


def test_celery_decorator_applied_by_a_call() -> None:
    expect(
        APP,
        "_rotate_keys",
        framework="celery",
        path="shop/jobs/reports.py",
        line=28,
        time_limit=(30.0, "task option"),
    )
    expect(
        APP,
        "purge_carts",
        framework="celery",
        path="shop/jobs/legacy.py",
        line=6,
        max_attempts=(1, "task option"),
        backoff=("none", "task option"),
        retry_on=("none", "task option"),
    )


# -- RQ and django-rq -----------------------------------------------------------------------

RQ = "discovery_rq"
RQ_DEFAULT = (180.0, "framework default")
NO_RETRY = (1, "no retry configured")


def test_rq_jobs_found_by_decorator_partial_and_enqueue() -> None:
    """``helper_never_enqueued`` is enqueued by tests only: not a job."""
    assert names(RQ) == {
        "send_digest",
        "send_welcome",
        "execute_query",
        "refresh_schema",
        "warm_cache",
        "rebuild_index",
        "cleanup",
        "archive",
        "import_feed",
    }


def test_rq_job_decorator_with_retry_and_timeout() -> None:
    expect(
        RQ,
        "send_digest",
        framework="rq",
        path="app/mail.py",
        line=8,
        max_attempts=(4, "task option"),
        backoff=("delays from 10 s to 60 s", "task option"),
        retry_on=("all", "RQ retries every exception"),
        time_limit=(600.0, "task option"),
        soft_time_limit=(None, "RQ has no soft limit"),
    )


def test_rq_queue_named_by_string_gets_the_180_s_default() -> None:
    expect(RQ, "send_welcome", framework="rq", path="app/mail.py", line=13, time_limit=RQ_DEFAULT)


def test_rq_partial_of_decorator_subclass() -> None:
    expect(
        RQ,
        "execute_query",
        framework="rq",
        path="app/queries.py",
        line=6,
        declared="functools.partial",
        max_attempts=NO_RETRY,
        time_limit=(300.0, "task option"),
    )
    expect(
        RQ, "refresh_schema", framework="rq", path="app/queries.py", line=11, time_limit=RQ_DEFAULT
    )


def test_rq_queue_object_passed_positionally_through_partial() -> None:
    expect(
        RQ,
        "warm_cache",
        framework="rq",
        path="app/queries.py",
        line=16,
        time_limit=(900.0, "Queue(default_timeout=...)"),
    )


def test_rq_enqueued_function_takes_queue_default_and_call_retry() -> None:
    """The inline queue of ``tests/test_jobs.py`` does not make the timeout ambiguous."""
    expect(
        RQ,
        "rebuild_index",
        framework="rq",
        path="app/jobs.py",
        line=4,
        declared="enqueued",
        max_attempts=(3, "enqueue call"),
        backoff=("immediate", "enqueue call"),
        time_limit=(900.0, "Queue(default_timeout=...)"),
        delivery=("at-least-once", "Retry re-runs failed and abandoned jobs"),
    )


def test_rq_dotted_string_target_on_queue_from_another_module() -> None:
    expect(
        RQ,
        "cleanup",
        framework="rq",
        path="app/jobs.py",
        line=8,
        max_attempts=NO_RETRY,
        time_limit=RQ_DEFAULT,
        delivery=("at-most-once", "a job lost with its worker is not retried"),
    )


def test_rq_job_timeout_at_the_enqueue_call() -> None:
    expect(
        RQ,
        "archive",
        framework="rq",
        path="app/jobs.py",
        line=12,
        time_limit=(3600.0, "enqueue(job_timeout=...)"),
    )


def test_rq_enqueue_call_on_local_queue() -> None:
    expect(
        RQ,
        "import_feed",
        framework="rq",
        path="app/feeds.py",
        line=5,
        time_limit=(7200.0, "Queue(default_timeout=...)"),
    )


DJANGO_RQ = "discovery_django_rq"
HIGH = (60.0, "settings.RQ_QUEUES['high']['DEFAULT_TIMEOUT']")
DEFAULT_QUEUE = (360.0, "settings.RQ_QUEUES['default']['DEFAULT_TIMEOUT']")


def test_django_rq_decorator_reads_the_named_queue() -> None:
    assert names(DJANGO_RQ) == {
        "charge_invoice",
        "nightly_summary",
        "purge_drafts",
        "touch_accounts",
        "resize_logo",
        "send_sms",
    }
    expect(
        DJANGO_RQ, "charge_invoice", framework="rq", path="billing/jobs.py", line=6, time_limit=HIGH
    )
    expect(
        DJANGO_RQ,
        "nightly_summary",
        framework="rq",
        path="billing/jobs.py",
        line=11,
        time_limit=DEFAULT_QUEUE,
    )
    expect(
        DJANGO_RQ,
        "purge_drafts",
        framework="rq",
        path="billing/jobs.py",
        line=16,
        time_limit=(90.0, "task option"),
    )
    expect(
        DJANGO_RQ,
        "touch_accounts",
        framework="rq",
        path="billing/jobs.py",
        line=21,
        time_limit=RQ_DEFAULT,
    )


def test_django_rq_enqueue_helpers() -> None:
    expect(
        DJANGO_RQ, "resize_logo", framework="rq", path="billing/jobs.py", line=25, time_limit=HIGH
    )
    expect(
        DJANGO_RQ,
        "send_sms",
        framework="rq",
        path="billing/jobs.py",
        line=29,
        time_limit=DEFAULT_QUEUE,
    )


# -- Dramatiq -------------------------------------------------------------------------------

DRAMATIQ = "discovery_dramatiq"
DRAMATIQ_BACKOFF = ("exponential from 15 s, capped at 604800 s, with jitter", "framework default")
MIDDLEWARE_RETRIES = (6, "Retries middleware")
DRAMATIQ_LIMIT = (600.0, "framework default")


def test_dramatiq_abstract_generic_actors_are_not_jobs() -> None:
    assert names(DRAMATIQ) == {
        "send_receipt",
        "rebuild_feed",
        "transcode",
        "sync_order",
        "expire_sessions",
        "ResizeImage",
        "PurgeCache",
        "reindex_products",
    }


def test_dramatiq_actor_options_in_milliseconds() -> None:
    expect(
        DRAMATIQ,
        "send_receipt",
        framework="dramatiq",
        path="shop/actors.py",
        line=7,
        max_attempts=(4, "task option"),
        time_limit=(60.0, "task option"),
        backoff=DRAMATIQ_BACKOFF,
        retry_on=("all", "Dramatiq retries every exception not in throws"),
        delivery=("at-least-once", "messages are acknowledged after processing"),
    )


def test_dramatiq_retries_middleware_changes_the_default() -> None:
    expect(
        DRAMATIQ,
        "rebuild_feed",
        framework="dramatiq",
        path="shop/actors.py",
        line=12,
        max_attempts=MIDDLEWARE_RETRIES,
        time_limit=DRAMATIQ_LIMIT,
    )
    expect(
        DRAMATIQ,
        "transcode",
        framework="dramatiq",
        path="shop/actors.py",
        line=17,
        max_attempts=MIDDLEWARE_RETRIES,
        permanent=(["ValueError"], "throws"),
    )


def test_dramatiq_project_wrapper_around_aliased_actor() -> None:
    expect(
        DRAMATIQ,
        "sync_order",
        framework="dramatiq",
        path="shop/actors.py",
        line=22,
        declared="actor",
        max_attempts=(2, "task option"),
        time_limit=DRAMATIQ_LIMIT,
    )
    expect(
        DRAMATIQ,
        "expire_sessions",
        framework="dramatiq",
        path="shop/actors.py",
        line=27,
        max_attempts=MIDDLEWARE_RETRIES,
    )


def test_dramatiq_actor_applied_by_a_call() -> None:
    expect(
        DRAMATIQ,
        "reindex_products",
        framework="dramatiq",
        path="shop/actors.py",
        line=31,
        max_attempts=MIDDLEWARE_RETRIES,
        time_limit=(300.0, "task option"),
    )


def test_dramatiq_generic_actor_meta() -> None:
    expect(
        DRAMATIQ,
        "ResizeImage",
        framework="dramatiq",
        path="shop/generic.py",
        line=4,
        declared="GenericActor",
        max_attempts=(3, "class Meta"),
        time_limit=(120.0, "class Meta"),
    )
    expect(
        DRAMATIQ,
        "PurgeCache",
        framework="dramatiq",
        path="shop/generic.py",
        line=32,
        max_attempts=MIDDLEWARE_RETRIES,
        time_limit=DRAMATIQ_LIMIT,
    )


def test_dramatiq_custom_middleware_makes_the_default_unknown() -> None:
    scenario = "discovery_dramatiq_middleware"
    assert names(scenario) == {"ping", "settle_payout"}
    expect(
        scenario,
        "ping",
        framework="dramatiq",
        path="tasks/actors.py",
        line=5,
        max_attempts=(1, "task option"),
        retry_on=("none", "task option"),
    )
    expect(
        scenario,
        "settle_payout",
        framework="dramatiq",
        path="tasks/actors.py",
        line=10,
        max_attempts=(
            "unknown",
            "middleware QueueRetriesMiddleware",
            "set at run time by middleware QueueRetriesMiddleware",
        ),
    )


# -- Huey -----------------------------------------------------------------------------------

HUEY = "discovery_huey"
HUEY_DELIVERY = ("at-most-once", "a task interrupted by SIGTERM or a crash is lost")


def test_huey_instance_from_another_module_and_djhuey() -> None:
    assert names(HUEY) == {
        "fetch_feed",
        "hourly_digest",
        "parse_feed",
        "touch",
        "index_note",
        "export_notes",
        "vacuum",
    }


def test_huey_retries_and_delays() -> None:
    expect(
        HUEY,
        "fetch_feed",
        framework="huey",
        path="app/tasks.py",
        line=9,
        max_attempts=(4, "task option"),
        backoff=("fixed 10 s", "task option"),
        time_limit=NO_LIMIT,
        delivery=HUEY_DELIVERY,
    )
    expect(
        HUEY,
        "parse_feed",
        framework="huey",
        path="app/tasks.py",
        line=19,
        max_attempts=(3, "task option"),
        backoff=("exponential from 5 s, without jitter", "task option"),
        time_limit=(45.0, "task option"),
    )


def test_huey_periodic_and_defaults() -> None:
    expect(
        HUEY,
        "hourly_digest",
        framework="huey",
        path="app/tasks.py",
        line=14,
        declared="periodic_task",
        max_attempts=(1, "framework default"),
        backoff=("none", "no retry configured"),
    )
    expect(
        HUEY,
        "touch",
        framework="huey",
        path="app/tasks.py",
        line=24,
        max_attempts=(1, "framework default"),
    )


def test_djhuey_db_task() -> None:
    expect(
        HUEY,
        "index_note",
        framework="huey",
        path="notes/tasks.py",
        line=6,
        declared="db_task",
        max_attempts=(1, "framework default"),
    )
    expect(
        HUEY,
        "export_notes",
        framework="huey",
        path="notes/tasks.py",
        line=11,
        max_attempts=(2, "task option"),
        backoff=("immediate", "framework default"),
    )
    expect(
        HUEY,
        "vacuum",
        framework="huey",
        path="notes/tasks.py",
        line=16,
        declared="db_periodic_task",
    )


# -- arq ------------------------------------------------------------------------------------

ARQ = "discovery_arq"


def test_arq_worker_settings_registrations() -> None:
    assert names(ARQ) == {"download_content", "send_invoice", "nightly_rollup", "send_welcome"}
    expect(
        ARQ,
        "send_welcome",
        framework="arq",
        path="svc/emails.py",
        line=4,
        max_attempts=(5, "framework default"),
        retry_on=("none", "arq retries only on raise Retry"),
    )
    expect(
        ARQ,
        "download_content",
        framework="arq",
        path="svc/jobs.py",
        line=4,
        declared="WorkerSettings.functions",
        max_attempts=(5, "framework default"),
        time_limit=(120.0, "WorkerSettings.job_timeout"),
        retry_on=(["arq.Retry"], "raise Retry"),
        backoff=("unknown", "raise Retry", "Retry(defer=...) is computed at run time"),
    )
    expect(
        ARQ,
        "send_invoice",
        framework="arq",
        path="svc/jobs.py",
        line=12,
        declared="func()",
        max_attempts=(3, "func()"),
        time_limit=(60.0, "func()"),
        retry_on=("none", "arq retries only on raise Retry"),
    )
    expect(
        ARQ,
        "nightly_rollup",
        framework="arq",
        path="svc/jobs.py",
        line=16,
        declared="cron()",
        max_attempts=(1, "cron() default"),
        time_limit=(120.0, "WorkerSettings.job_timeout"),
    )


# -- taskiq ---------------------------------------------------------------------------------

TASKIQ = "discovery_taskiq"
SMART = "SmartRetryMiddleware"


def test_taskiq_retry_middleware_on_a_builder_chain() -> None:
    assert names(TASKIQ) == {"render_report", "count_rows", "archive_report"}
    expect(
        TASKIQ,
        "render_report",
        framework="taskiq",
        path="reports/tasks.py",
        line=5,
        max_attempts=(4, "SmartRetryMiddleware(default_retry_count)"),
        backoff=("exponential from 5 s, capped at 60 s, without jitter", SMART),
        retry_on=("all", SMART),
        time_limit=(30.0, "task option"),
    )
    expect(
        TASKIQ,
        "archive_report",
        framework="taskiq",
        path="reports/tasks.py",
        line=15,
        max_attempts=(2, "task option"),
    )


def test_taskiq_task_without_retry_on_error_runs_once() -> None:
    expect(
        TASKIQ,
        "count_rows",
        framework="taskiq",
        path="reports/tasks.py",
        line=10,
        max_attempts=(1, "retry_on_error is not set"),
        time_limit=NO_LIMIT,
    )


# -- django.tasks, Temporal, custom ---------------------------------------------------------

NO_API = "django.tasks has no retry or time-limit API"


@pytest.mark.parametrize(
    ("name", "path", "line"),
    [
        ("send_welcome_email", "accounts/tasks.py", 6),
        ("send_password_reset", "accounts/tasks.py", 11),
        ("rebuild_search_index", "search/tasks.py", 5),
    ],
)
def test_django_tasks_and_backport(name: str, path: str, line: int) -> None:
    assert len(names("discovery_django_tasks")) == 3
    expect(
        "discovery_django_tasks",
        name,
        framework="django_tasks",
        path=path,
        line=line,
        max_attempts=(1, NO_API),
        time_limit=(None, NO_API),
        delivery=("unknown", "TASKS backend", "decided by the tasks backend"),
    )


TEMPORAL = "discovery_temporal"
TEMPORAL_BACKOFF = ("exponential from 1 s, capped at 100 s, without jitter", "RetryPolicy")


def test_temporal_activity_policy_comes_from_the_workflow_call() -> None:
    """The test workflow in ``tests/`` calls ``charge_card`` with other options; it is ignored."""
    assert names(TEMPORAL) == {"charge_card", "refund_payment", "reconcile_ledger", "post_entry"}
    expect(
        TEMPORAL,
        "charge_card",
        framework="temporal",
        path="payments/activities.py",
        line=5,
        max_attempts=(3, "RetryPolicy(maximum_attempts)"),
        time_limit=(300.0, "start_to_close_timeout at the workflow call"),
        backoff=TEMPORAL_BACKOFF,
    )
    expect(
        TEMPORAL,
        "refund_payment",
        framework="temporal",
        path="payments/activities.py",
        line=10,
        max_attempts=("unbounded", "default RetryPolicy (maximum_attempts=0)"),
        time_limit=(3600.0, "schedule_to_close_timeout at the workflow call"),
        backoff=("exponential from 1 s, capped at 100 s, without jitter", "default RetryPolicy"),
    )


def test_temporal_activity_method_called_with_execute_activity_method() -> None:
    expect(
        TEMPORAL,
        "post_entry",
        framework="temporal",
        path="payments/ledger.py",
        line=12,
        max_attempts=(5, "RetryPolicy(maximum_attempts)"),
        time_limit=(30.0, "start_to_close_timeout at the workflow call"),
        backoff=("fixed 1 s", "RetryPolicy"),
    )


def test_temporal_activity_never_called_is_unknown() -> None:
    reason = "set where the activity is called; no workflow call was found"
    expect(
        TEMPORAL,
        "reconcile_ledger",
        framework="temporal",
        path="payments/activities.py",
        line=15,
        max_attempts=("unknown", "set where the activity is called", reason),
        time_limit=("unknown", "set where the activity is called", reason),
    )


CUSTOM = "discovery_custom"
CUSTOM_UNKNOWN = ("unknown", "custom", "custom job system: its default is not known")


def test_custom_decorator_from_pyproject() -> None:
    assert names(CUSTOM) == {"send_mail", "log_visit", "RebuildThumbnails", "resize", "purge_cache"}
    expect(
        CUSTOM,
        "send_mail",
        framework="custom",
        path="proj/mail.py",
        line=5,
        max_attempts=(4, "task option"),
        time_limit=(20.0, "task option"),
        delivery=CUSTOM_UNKNOWN,
    )
    expect(
        CUSTOM,
        "log_visit",
        framework="custom",
        path="proj/mail.py",
        line=10,
        max_attempts=CUSTOM_UNKNOWN,
        time_limit=CUSTOM_UNKNOWN,
    )


def test_custom_base_class_with_options_as_class_attributes() -> None:
    expect(
        CUSTOM,
        "RebuildThumbnails",
        framework="custom",
        path="proj/media.py",
        line=4,
        declared="custom base class",
        max_attempts=(3, "class RebuildThumbnails"),
        time_limit=(60.0, "class BackgroundJob"),
    )


def test_custom_enqueue_function_targets() -> None:
    for name, line in (("purge_cache", 11), ("resize", 15)):
        expect(
            CUSTOM,
            name,
            framework="custom",
            path="proj/media.py",
            line=line,
            declared="proj.jobs.dispatch",
            max_attempts=CUSTOM_UNKNOWN,
        )


def test_every_policy_key_has_a_source_and_unknowns_a_reason() -> None:
    """The JSON interface: each key comes with ``<key>_source`` and, when unknown, a reason."""
    keys = (
        "max_attempts",
        "time_limit",
        "soft_time_limit",
        "backoff",
        "retry_on",
        "permanent",
        "delivery",
        "idempotency_guard",
    )
    scenarios = sorted(p.name for p in PROJECTS.glob("discovery_*"))
    assert len(scenarios) >= 12
    for scenario in scenarios:
        for job in inventory(scenario).values():
            assert set(job) >= {"name", "qualname", "framework", "path", "line", "declaration"}
            assert job["qualname"].endswith(job["name"]) or job["framework"] == "celery"
            assert "\\" not in job["path"] and not job["path"].startswith(("/", "."))
            for key in keys:
                assert job["policy"][f"{key}_source"], (scenario, job["name"], key)
                if job["policy"][key] == "unknown":
                    assert job["policy"][f"{key}_reason"], (scenario, job["name"], key)
            attempts = job["policy"]["max_attempts"]
            assert attempts in ("unbounded", "unknown") or (
                isinstance(attempts, int) and attempts >= 1
            )
