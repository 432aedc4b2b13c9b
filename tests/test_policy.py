"""Focused tests of how adapters resolve effective values, on in-memory projects.

``test_frameworks.py`` proves discovery end to end on realistic scenarios; these
tests pin down single mechanisms (precedence, aliases, unit conversions,
reasons for ``unknown``) with the smallest project that shows each one.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from jobaudit.config import Config
from jobaudit.files import SourceFile
from jobaudit.frameworks.celery import celery_key
from jobaudit.frameworks.rq import parse_timeout
from jobaudit.model import Backoff, Job, Resolved
from jobaudit.parallel import facts_for
from jobaudit.project import Project
from jobaudit.source import parse_source
from jobaudit.values import Unknown


def project(files: dict[str, str]) -> Project:
    """A project from ``{path: source}``; module names follow the paths."""
    facts = []
    for path, source in files.items():
        is_package = path.endswith("__init__.py")
        module = path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        parsed = parse_source(textwrap.dedent(source), path)
        facts.append(facts_for(SourceFile(path, Path(path)), parsed, (module, is_package)))
    return Project(facts, Config(root=Path("."), source=None))


def job(found: Project, name: str) -> Job:
    matches = [j for j in found.jobs if j.name == name]
    assert len(matches) == 1, [j.name for j in found.jobs]
    return matches[0]


def value(resolved: Resolved) -> object:
    return resolved.value.reason if isinstance(resolved.value, Unknown) else resolved.value


# -- Celery ---------------------------------------------------------------------------------

CELERY_APP = """
    from celery import Celery

    app = Celery("proj")
    app.config_from_object("proj.celeryconfig")
"""


def test_celery_precedence_option_base_annotation_setting_default() -> None:
    found = project(
        {
            "proj/__init__.py": "",
            "proj/celery.py": CELERY_APP,
            "proj/celeryconfig.py": """
                task_time_limit = 60
                task_annotations = {"proj.tasks.annotated": {"max_retries": 9, "time_limit": 30}}
            """,
            "proj/base.py": """
                from celery import Task

                class Base(Task):
                    max_retries = 5
                    time_limit = 45
            """,
            "proj/tasks.py": """
                from proj.base import Base
                from proj.celery import app

                @app.task(autoretry_for=(OSError,), max_retries=1, time_limit=10, base=Base)
                def explicit(): ...

                @app.task(autoretry_for=(OSError,), base=Base)
                def based(): ...

                @app.task(autoretry_for=(OSError,))
                def annotated(): ...

                @app.task(autoretry_for=(OSError,))
                def configured(): ...
            """,
        }
    )
    explicit, based = job(found, "explicit").policy, job(found, "based").policy
    annotated, configured = job(found, "annotated").policy, job(found, "configured").policy
    assert explicit is not None and based is not None
    assert annotated is not None and configured is not None
    assert (explicit.max_attempts.value, explicit.max_attempts.source) == (2, "task option")
    assert (explicit.time_limit.value, explicit.time_limit.source) == (10.0, "task option")
    assert (based.max_attempts.value, based.max_attempts.source) == (6, "base class Base")
    assert (based.time_limit.value, based.time_limit.source) == (45.0, "base class Base")
    assert annotated.max_attempts.value == 10
    assert annotated.max_attempts.source == "task_annotations['proj.tasks.annotated']"
    assert annotated.time_limit.value == 30.0
    assert (configured.max_attempts.value, configured.max_attempts.source) == (
        4,
        "framework default",
    )
    assert (configured.time_limit.value, configured.time_limit.source) == (
        60.0,
        "settings.task_time_limit",
    )


def test_celery_none_means_the_app_setting_for_setting_backed_attributes() -> None:
    """``Task.time_limit`` docs: "when not set the worker's default is used"."""
    found = project(
        {
            "proj/__init__.py": "",
            "proj/celery.py": CELERY_APP,
            "proj/celeryconfig.py": "task_time_limit = 60\ntask_acks_late = True",
            "proj/tasks.py": """
                from celery import Task

                from proj.celery import app

                class Limited(Task):
                    time_limit = 45

                class Unlimited(Limited):
                    time_limit = None

                @app.task(time_limit=None, base=Limited, acks_late=None)
                def explicit_none(): ...

                @app.task(base=Unlimited)
                def inherited_none(): ...
            """,
        }
    )
    for name in ("explicit_none", "inherited_none"):
        policy = job(found, name).policy
        assert policy is not None
        assert (policy.time_limit.value, policy.time_limit.source) == (
            60.0,
            "settings.task_time_limit",
        )
    policy = job(found, "explicit_none").policy
    assert policy is not None
    assert policy.delivery.value == "at-least-once"


def test_celery_annotations_list_with_constants() -> None:
    found = project(
        {
            "proj/__init__.py": "",
            "proj/limits.py": "RETRIES = 6",
            "proj/celery.py": """
                from celery import Celery

                from proj.limits import RETRIES

                app = Celery("proj")
                app.conf.update(task_annotations=[{"proj.x": {}}, {"*": {"max_retries": RETRIES}}])
            """,
            "proj/tasks.py": """
                from proj.celery import app

                @app.task(autoretry_for=(OSError,))
                def sync(): ...
            """,
        }
    )
    policy = job(found, "sync").policy
    assert policy is not None
    assert (policy.max_attempts.value, policy.max_attempts.source) == (7, "task_annotations['*']")


def test_celery_current_app_task_is_a_job() -> None:
    found = project(
        {
            "tasks.py": """
                from celery import current_app

                @current_app.task(bind=True)
                def ping(self): ...
            """
        }
    )
    assert job(found, "ping").framework == "celery"


@pytest.mark.parametrize(
    ("name", "prefix", "key"),
    [
        ("CELERY_TASK_TIME_LIMIT", "CELERY_", "task_time_limit"),
        ("CELERY_TASK_SOFT_TIME_LIMIT", "CELERY_", "task_soft_time_limit"),
        ("TASK_TIME_LIMIT", "CELERY_", None),
        ("CELERYD_TASK_TIME_LIMIT", None, "task_time_limit"),
        ("task_time_limit", None, "task_time_limit"),
        ("DEBUG", None, None),
    ],
)
def test_celery_setting_names(name: str, prefix: str | None, key: str | None) -> None:
    assert celery_key(name, prefix) == key


@pytest.mark.parametrize(
    "expression",
    [
        'int(os.environ["LIMIT"])',
        'os.environ["LIMIT"]',
        'os.getenv("LIMIT")',
        'os.environ.get("LIMIT")',
    ],
)
def test_values_from_the_environment_are_unknown_with_a_reason(expression: str) -> None:
    found = project(
        {
            "tasks.py": f"""
                import os

                from celery import shared_task

                @shared_task(time_limit={expression})
                def report(): ...
            """
        }
    )
    policy = job(found, "report").policy
    assert policy is not None
    assert value(policy.time_limit) == "read from the environment at run time"


# -- RQ -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [(600, 600.0), ("1h", 3600.0), ("3m", 180.0), ("45", 45.0), (-1, None)],
)
def test_rq_timeout_spellings(raw: object, seconds: float | None) -> None:
    assert parse_timeout(raw) == seconds


def test_rq_queue_class_alias_and_subclass_keep_their_default() -> None:
    """``Queue = RedashQueue`` (a project subclass) still builds an RQ queue."""
    found = project(
        {
            "app/__init__.py": "",
            "app/worker.py": """
                from rq import Queue as BaseQueue

                class RedashQueue(BaseQueue):
                    pass

                Queue = RedashQueue
            """,
            "app/jobs.py": """
                from app.worker import Queue

                def execute(query_id): ...

                def run(query_id):
                    queue = Queue("queries", default_timeout=120)
                    queue.enqueue(execute, query_id)
            """,
        }
    )
    policy = job(found, "execute").policy
    assert policy is not None
    assert (policy.time_limit.value, policy.time_limit.source) == (
        120.0,
        "Queue(default_timeout=...)",
    )


def test_rq_options_passed_with_double_star_are_unknown() -> None:
    found = project(
        {
            "jobs.py": """
                from rq import Queue

                queue = Queue("default")

                def execute(query_id): ...

                def run(query_id, options):
                    queue.enqueue(execute, query_id, **options)
            """
        }
    )
    policy = job(found, "execute").policy
    assert policy is not None
    assert value(policy.time_limit) == "job_timeout may be passed with **"


def test_rq_job_on_queues_with_different_defaults_is_unknown() -> None:
    found = project(
        {
            "jobs.py": """
                from rq import Queue

                fast = Queue("fast", default_timeout=30)
                slow = Queue("slow", default_timeout=3000)

                def execute(query_id): ...

                def run(query_id):
                    fast.enqueue(execute, query_id)
                    slow.enqueue(execute, query_id)
            """
        }
    )
    policy = job(found, "execute").policy
    assert policy is not None
    assert value(policy.time_limit) == "the job is put on queues with different timeouts"


def test_rq_positional_options_through_a_partial() -> None:
    found = project(
        {
            "worker.py": """
                from functools import partial

                from redis import Redis
                from rq.decorators import job as rq_job

                job = partial(rq_job, connection=Redis())

                @job("default", None, 300)
                def execute(query_id): ...
            """
        }
    )
    policy = job(found, "execute").policy
    assert policy is not None
    assert (policy.time_limit.value, policy.time_limit.source) == (300.0, "task option")


def test_django_rq_get_queue_enqueue_is_a_call_site() -> None:
    found = project(
        {
            "mysite/__init__.py": "",
            "mysite/settings.py": 'RQ_QUEUES = {"high": {"DEFAULT_TIMEOUT": 60}}',
            "manage.py": """
                import os

                os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
            """,
            "views.py": """
                import django_rq

                def resize(image_id): ...

                def upload(request):
                    django_rq.get_queue("high").enqueue(resize, 1)
            """,
        }
    )
    resize = job(found, "resize")
    assert [site.method for site in found.sites_of(resize)] == ["enqueue"]
    assert resize.policy is not None
    assert resize.policy.time_limit.value == 60.0


# -- Dramatiq -------------------------------------------------------------------------------


def test_dramatiq_meta_is_inherited_but_only_its_own_attributes_count() -> None:
    found = project(
        {
            "actors.py": """
                import dramatiq

                class Base(dramatiq.GenericActor):
                    class Meta:
                        abstract = True
                        max_retries = 10

                    def perform(self): ...

                class NoMeta(Base):
                    def perform(self): ...

                class OwnMeta(Base):
                    class Meta:
                        queue_name = "jobs"

                    def perform(self): ...
            """
        }
    )
    assert [j.name for j in found.jobs] == ["OwnMeta"]
    policy = found.jobs[0].policy
    assert policy is not None
    assert (policy.max_attempts.value, policy.max_attempts.source) == (21, "framework default")


# -- Temporal -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "backoff"),
    [
        ("RetryPolicy(maximum_attempts=3)", Backoff("exponential", 1.0, 100.0, False)),
        (
            "RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(0, 60))",
            Backoff("exponential", 2.0, 60.0, False),
        ),
        (
            "RetryPolicy(initial_interval=timedelta(seconds=5))",
            Backoff("exponential", 5.0, 500.0, False),
        ),
        ("RetryPolicy(backoff_coefficient=1.0)", Backoff("fixed", 1.0)),
    ],
)
def test_temporal_retry_policy_backoff(policy: str, backoff: Backoff) -> None:
    found = project(
        {
            "flows.py": f"""
                from datetime import timedelta

                from temporalio import activity, workflow
                from temporalio.common import RetryPolicy

                @activity.defn
                async def charge(amount): ...

                @workflow.defn
                class Checkout:
                    @workflow.run
                    async def run(self, amount):
                        await workflow.execute_activity(
                            charge, amount, start_to_close_timeout=timedelta(minutes=1),
                            retry_policy={policy},
                        )
            """
        }
    )
    resolved = job(found, "charge").policy
    assert resolved is not None
    assert resolved.backoff.value == backoff


# -- Discovery mechanisms -------------------------------------------------------------------


def test_decorator_class_subclass_keeps_positional_options() -> None:
    found = project(
        {
            "worker.py": """
                from rq import Queue
                from rq.decorators import job

                slow = Queue("slow", default_timeout=1200)

                class RecordingJob(job):
                    queue_class = Queue

                @RecordingJob(slow)
                def crunch(n): ...
            """
        }
    )
    policy = job(found, "crunch").policy
    assert policy is not None
    assert (policy.time_limit.value, policy.time_limit.source) == (
        1200.0,
        "Queue(default_timeout=...)",
    )


def test_keyword_forwarding_wrapper() -> None:
    found = project(
        {
            "jobs.py": """
                import dramatiq

                def actor(**kw):
                    return dramatiq.actor(**kw)

                @actor(max_retries=3)
                def sync(): ...
            """
        }
    )
    synced = job(found, "sync")
    assert synced.framework == "dramatiq"
    assert synced.policy is not None
    assert synced.policy.max_attempts.value == 4
