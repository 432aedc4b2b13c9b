"""Huey (3.5.4; ``shared/reference/frameworks.md`` §1.4).

Huey retries nothing by default (``retries=0``), requeues immediately when it
does (``retry_delay=0``), has no time limit unless ``timeout=`` is given, and
delivers at most once.  Unknown decorator keywords are kept silently.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from jobaudit.facts import FunctionFacts, Raise
from jobaudit.frameworks.base import DEFAULT, Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Resolved
from jobaudit.symbols import seconds
from jobaudit.values import Call, Unknown

if TYPE_CHECKING:
    from jobaudit.project import Project

TASK_OPTIONS = (
    "retries",
    "retry_delay",
    "retry_backoff",
    "priority",
    "context",
    "name",
    "expires",
    "timeout",
)
DJHUEY = "huey.contrib.djhuey"
DJANGO_MODULES = (DJHUEY, "django_huey")
"""Huey's own Django integration and the django-huey package (several queues), same decorators."""


class Huey(Framework):
    name = "huey"
    title = "Huey"
    decorators = frozenset(
        {
            *(
                f"{module}.{name}"
                for module in DJANGO_MODULES
                for name in (
                    "task",
                    "periodic_task",
                    "db_task",
                    "db_periodic_task",
                    "on_commit_task",
                )
            ),
            f"{DJHUEY}.HUEY.task",
            f"{DJHUEY}.HUEY.periodic_task",
        }
    )
    positional_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "task": TASK_OPTIONS,
        "db_task": TASK_OPTIONS,
        "on_commit_task": TASK_OPTIONS,
        "periodic_task": ("validate_datetime", *TASK_OPTIONS),
        "db_periodic_task": ("validate_datetime", *TASK_OPTIONS),
    }
    known_options = frozenset(
        {*TASK_OPTIONS, "validate_datetime", "retries_as_argument", "task_base"}
    )
    """``task_base=`` names the Task class the wrapper builds on (``TaskWrapper``)."""
    control_flow = frozenset({"RetryTask", "CancelExecution", "TaskTimeout", "TaskLockedException"})
    enqueue_methods = frozenset({"schedule", "call_local", "s"})

    def is_instance_decorator(self, cls: str, attrs: tuple[str, ...]) -> bool:
        return (
            cls.startswith("huey.")
            and cls.rpartition(".")[2].endswith("Huey")
            and attrs in {("task",), ("periodic_task",)}
        )

    def policy(self, job: Job, project: Project) -> JobPolicy:
        retries = _get(job, "retries", 0)
        delay = _get(job, "retry_delay", 0)
        factor = _get(job, "retry_backoff", 0)
        raises_retry = bool(unguarded_retry_tasks(job.function, project))
        max_attempts: Resolved
        if isinstance(retries.value, int) and not isinstance(retries.value, bool):
            max_attempts = Resolved(retries.value + 1, retries.source, retries.location)
            if raises_retry:
                max_attempts = Resolved("unbounded", "raise RetryTask does not consume retries")
        else:
            max_attempts = Resolved(
                Unknown("retries is not a constant"), retries.source, retries.location
            )
        if max_attempts.value == 1:
            backoff = Resolved(Backoff("none"), "no retry configured")
            retry_on = Resolved("none", "no retry configured")
        else:
            retry_on = Resolved("all", "Huey retries every exception")
            delay_s = seconds(delay.value)  # type: ignore[arg-type]
            if not isinstance(delay_s, float):
                backoff = Resolved(Unknown("retry_delay is not a constant"), delay.source)
            elif (
                delay_s
                and isinstance(factor.value, (int, float))
                and factor.value
                and factor.value != 1
            ):
                # ``retry_delay *= retry_backoff`` after each retry; a zero delay stays zero.
                backoff = Resolved(
                    Backoff("exponential", delay_s, None, False, float(factor.value)),
                    factor.source,
                    factor.location,
                )
            elif delay_s:
                backoff = Resolved(Backoff("fixed", delay_s), delay.source, delay.location)
            else:
                backoff = Resolved(Backoff("immediate"), delay.source, delay.location)
        timeout = _get(job, "timeout", None)
        limit = seconds(timeout.value)  # type: ignore[arg-type]
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            retry_on=retry_on,
            permanent=Resolved((), "Huey has no exception classification"),
            time_limit=Resolved(limit, timeout.source, timeout.location),
            soft_time_limit=Resolved(None, "Huey has no soft limit"),
            delivery=Resolved("at-most-once", "a task interrupted by SIGTERM or a crash is lost"),
            idempotency_guard=idempotency_guard(job, project),
        )


RETRY_TASK = frozenset({"huey.RetryTask", "huey.exceptions.RetryTask", "huey.api.RetryTask"})
COUNTER_WORDS = frozenset(
    {"attempt", "attempts", "retries", "tries", "deadline", "elapsed", "retry_count", "retrycount"}
)
"""Names (or ``_``-separated parts of names) that show a body counting its attempts."""


def counts_attempts(function: FunctionFacts) -> bool:
    """Whether the body looks at an attempt counter or a deadline (``attempt``, ``max_retries``)."""
    for name in function.identifiers:
        lowered = name.lower()
        if lowered in COUNTER_WORDS or COUNTER_WORDS.intersection(lowered.split("_")):
            return True
    return False


def unguarded_retry_tasks(function: FunctionFacts, project: Project) -> list[Raise]:
    """Huey's ``raise RetryTask`` in a body that never looks at an attempt counter."""
    if counts_attempts(function):
        return []
    return [
        r
        for r in function.raises
        if project.external_name(r.value.func if isinstance(r.value, Call) else r.value)
        in RETRY_TASK
    ]


def _get(job: Job, name: str, default: object) -> Resolved:
    option = job.options.get(name)
    if option is None:
        return Resolved(default, DEFAULT)
    return Resolved(option.value, option.source, option.location)
