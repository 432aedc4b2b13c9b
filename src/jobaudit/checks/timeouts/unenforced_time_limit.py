"""JOB405 unenforced-time-limit: a time limit the runtime never applies.

A limit only works if the code that runs the job can interrupt it.  Huey's
default thread workers never interrupt a task (only process workers use
SIGALRM and greenlet workers ``gevent.Timeout``), so ``timeout=`` there only
works through ``task.check_timeout()``.  taskiq cancels the *await* of a sync
task run in an executor, not the thread, which keeps running.  Celery's gevent
and eventlet pools never raise ``SoftTimeLimitExceeded``, and its threads and
solo pools apply no limit at all.

The worker type and pool are read from worker command lines (``-k``, ``-P``),
Django's ``HUEY`` setting, ``create_consumer(worker_type=...)`` and Celery's
``worker_pool``; workers that differ make them unknown, and the rule silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.deploy import DEFAULT
from jobaudit.discovery import iter_call_sites, method_name
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import jobs_label
from jobaudit.model import Job, Location, Resolved
from jobaudit.values import Mapping, Unknown

if TYPE_CHECKING:
    from jobaudit.project import Project

HUEY_CHECKS = frozenset({"check_timeout", "time_remaining", "is_timed_out"})
"""What a task on thread workers calls to honour its own timeout (``context=True``)."""
HUEY_CONSUMERS = frozenset({"huey.consumer.Consumer", "huey.Consumer"})
CELERY_NO_SOFT = frozenset({"gevent", "eventlet"})
CELERY_NO_LIMIT = frozenset({"threads", "solo"})
CELERY_ENFORCING = frozenset({"prefork", "processes"})

Problem = tuple[Location, str, tuple[Related, ...]]
Origin = tuple[str, str, Location | None]
"""A worker type or pool, how it was chosen (for messages) and where."""


class UnenforcedTimeLimit(Rule):
    code = "JOB405"
    name = "unenforced-time-limit"
    level = "warning"
    scope = "job / config"
    gate = "timeouts"
    summary = "The job's time limit is set, but the worker that runs it never enforces it."
    frameworks = ("huey", "taskiq", "celery")

    def check_project(self, project: Project) -> Iterator[Finding]:
        places: dict[Location, tuple[str, tuple[Related, ...], list[Job]]] = {}
        huey = _huey_worker(project)
        celery = project.framework("celery")
        for job in project.jobs:
            problem: Problem | None = None
            if job.framework == "huey" and huey is not None:
                problem = _huey(job, huey, project)
            elif job.framework == "taskiq":
                problem = _taskiq(job)
            elif job.framework == "celery" and isinstance(celery, Celery):
                problem = _celery(job, celery, project)
            if problem is not None:
                location, text, related = problem
                places.setdefault(location, (text, related, []))[2].append(job)
        for location in sorted(places):
            text, related, jobs = places[location]
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0], related)


# -- Huey -----------------------------------------------------------------------------------


def _huey(job: Job, worker: Origin, project: Project) -> Problem | None:
    assert job.policy is not None
    limit = job.policy.time_limit
    kind, how, where = worker
    if kind != "thread" or not isinstance(limit.value, float) or limit.location is None:
        return None
    if any(function.facts.identifiers.any_of(HUEY_CHECKS) for function in project.body(job)):
        return None
    related = (Related(where, "the consumer's worker type is chosen here"),) if where else ()
    return (
        limit.location,
        f"sets timeout={limit.value:g}, but Huey's thread workers ({how}) never enforce it: "
        "the task runs on past its limit unless it calls task.check_timeout()",
        related,
    )


def _huey_worker(project: Project) -> Origin | None:
    """The worker type every Huey consumer of the project runs, or None when unknown."""
    found: list[Origin] = []
    command = project.worker_options.get("huey", {}).get("worker_type")
    if command is not None:
        value, location = command
        if isinstance(value, Unknown):
            return None
        if value != DEFAULT:
            found.append((str(value), "-k on the consumer command line", location))
    for facts in project.resolver.modules.values():
        for site, _ in iter_call_sites(facts):
            call = site.call
            named = (
                project.resolver.may_be_framework(call.func)
                and project.external_name(call.func) in HUEY_CONSUMERS
            )
            if not named and method_name(call.func) != "create_consumer":
                continue
            given = call.kwarg("worker_type")
            if given is None:
                continue
            value = project.resolver.evaluate(given)
            if not isinstance(value, str):
                return None
            found.append(
                (value, "create_consumer(worker_type=...)", Location(facts.path, call.span))
            )
    if not found:
        setting = _django_worker_type(project)
        if setting is None:
            return None
        found.append(setting)
    kinds = {kind for kind, _, _ in found}
    return found[0] if len(kinds) == 1 else None


def _django_worker_type(project: Project) -> Origin | None:
    """``HUEY = {"consumer": {"worker_type": ...}}`` in Django settings; thread when unset."""
    for module in project.django_settings_modules():
        settings = project.settings(module)
        setting = settings.get("HUEY")
        if setting is None:
            if settings.incomplete:
                return None
            continue
        value = setting.value
        if not isinstance(value, Mapping):
            return ("thread", "the default worker type", None)  # HUEY is a Huey instance
        consumer = value.get("consumer")
        if consumer is None:
            return ("thread", "the default worker type", None)
        kind = consumer.get("worker_type") if isinstance(consumer, Mapping) else None
        kind = project.resolver.evaluate(kind) if kind is not None else "thread"
        if not isinstance(kind, str):
            return None
        return (kind, f"settings.HUEY['consumer']['worker_type'] = {kind!r}", setting.location)
    return ("thread", "the default worker type", None)


# -- taskiq ---------------------------------------------------------------------------------


def _taskiq(job: Job) -> Problem | None:
    assert job.policy is not None
    limit = job.policy.time_limit
    if job.function.is_async or not isinstance(limit.value, float) or limit.location is None:
        return None
    return (
        limit.location,
        f"has a {limit.value:g} s timeout label, but it is a sync function: taskiq stops waiting "
        "for it and reports a timeout while the thread running it goes on",
        (),
    )


# -- Celery ---------------------------------------------------------------------------------


def _celery(job: Job, celery: Celery, project: Project) -> Problem | None:
    assert job.policy is not None
    pool = _celery_pool(job, celery, project)
    if pool is None:
        return None
    name, how, where = pool
    related = (Related(where, f"the {name} pool is chosen here"),) if where else ()
    soft, hard = job.policy.soft_time_limit, job.policy.time_limit
    if name in CELERY_NO_SOFT and _positive(soft) and soft.location is not None:
        return (
            soft.location,
            f"has a {soft.value:g} s soft time limit ({soft.source}), but the worker runs the "
            f"{name} pool ({how}), which never raises SoftTimeLimitExceeded: only the hard limit "
            "applies",
            related,
        )
    if name in CELERY_NO_LIMIT:
        limit = hard if _positive(hard) else soft
        if not _positive(limit) or limit.location is None:
            return None
        label = "time_limit" if limit is hard else "soft_time_limit"
        return (
            limit.location,
            f"has a {limit.value:g} s {label} ({limit.source}), but the worker runs the {name} "
            f"pool ({how}), which enforces no time limit at all",
            related,
        )
    return None


def _celery_pool(job: Job, celery: Celery, project: Project) -> Origin | None:
    """The pool every worker runs: ``-P`` on the command lines, else ``worker_pool``."""
    command = project.worker_options.get("celery", {}).get("worker_pool")
    if command is not None:
        value, location = command
        if isinstance(value, Unknown):
            return None
        if value != DEFAULT:
            return (str(value).lower(), f"-P {value} on the worker command line", location)
    setting = celery.setting(job, "worker_pool", "prefork")
    if setting.source == "worker command line":  # every line leaves the pool to the settings
        return ("prefork", "the default pool", None)
    value = setting.value
    if not isinstance(value, str):
        return None
    name = value.lower()
    if name not in CELERY_NO_SOFT | CELERY_NO_LIMIT | CELERY_ENFORCING:
        return None
    return (name, f"worker_pool = {value!r} ({setting.source})", setting.location)


def _positive(limit: Resolved) -> bool:
    return isinstance(limit.value, float) and limit.value > 0
