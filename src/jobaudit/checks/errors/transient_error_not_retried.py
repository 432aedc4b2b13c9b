"""JOB206 transient-error-not-retried (preview): network I/O with no way to try again.

A timeout, a 503 or a dropped connection usually goes away within seconds,
so a job that talks to another service needs a retry path for it.  Several
frameworks give none unless asked: arq retries only ``raise Retry``, Huey's
``retries`` defaults to 0, RQ retries only with ``retry=Retry(...)``, taskiq
only with a retry middleware and ``retry_on_error``, Celery only with
``autoretry_for`` or ``self.retry()``, and ``django.tasks`` has no retry API
at all.  Dramatiq and Temporal retry by default and are not checked.

The rule looks for network and database clients in the job's body (the job
and the project functions it calls, two calls deep) and for any retry path:
the framework's own, an in-body retry helper (tenacity, backoff, stamina...),
any ``.retry()`` call or raised ``Retry``, or the job enqueueing itself.  A
call inside a ``try`` whose ``except`` clause does something with the failure
(there, or around the call that leads to it) was given a failure path on
purpose and does not count; a clause that only logs or re-raises was not.
Periodic jobs run again on their schedule and are left alone: Huey
``periodic_task``, arq ``cron``, taskiq ``schedule``, and Celery tasks named in
a beat schedule or given to ``add_periodic_task``/a scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.blocking import is_network
from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.discovery import iter_call_sites, method_name
from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.frameworks.base import raised_name
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import helper_uses
from jobaudit.model import Job, Location
from jobaudit.side_effects import job_body, receiver_origin
from jobaudit.symbols import External, InstanceAttr, ProjectClass, ProjectFunction
from jobaudit.values import Attr, Call, Mapping, Ref, Seq, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

CHECKED = frozenset({"arq", "huey", "rq", "taskiq", "celery", "django_tasks"})
RETRY_EXCEPTIONS = frozenset({"Retry", "RetryTask", "RetryJob"})
NOT_IO = frozenset({"Timeout", "Limits", "ClientTimeout", "Retry", "HTTPAdapter", "codes"})
"""Client configuration objects, not calls that talk to anyone."""
FACTORIES = frozenset({"client", "resource", "session", "connect", "from_url"})
"""Functions that build a client (``boto3.client("s3")``, ``psycopg2.connect()``): their
methods talk to the service, and they are named only when no other call is in sight."""
SCHEDULING = frozenset({"add_periodic_task", "cron", "schedule", "periodic"})
"""Methods that register a job to run on a schedule (Celery beat, rq-scheduler...)."""
SIGNATURES = frozenset({"s", "si", "signature"})
BEAT_NAMES = frozenset({"beat_schedule", "CELERY_BEAT_SCHEDULE", "CELERYBEAT_SCHEDULE"})
_WALK_DEPTH = 4


@dataclass(frozen=True)
class _Io:
    """A call in a job's body that talks to another service."""

    name: str
    location: Location
    depth: int
    rank: int
    """How plainly the call is I/O, for picking the one to name: a client function
    (``requests.post``), a method of a client object, a client constructor."""


class TransientErrorNotRetried(Rule):
    code = "JOB206"
    name = "transient-error-not-retried"
    level = "note"
    preview = True
    gate = "error handling"
    summary = "A job does network I/O and nothing retries it when that fails for a moment."
    frameworks = ("arq", "huey", "rq", "taskiq", "celery", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        periodic = _Periodic(project)
        for job in project.jobs:
            if job.framework not in CHECKED or periodic.contains(job):
                continue
            reason = _no_retry(job, project)
            if reason is None or _retries_in_body(job, project):
                continue
            found = _unhandled_io(job, project)
            if not found:
                continue
            first = min(found, key=lambda io: (io.rank, io.depth, io.location))
            how = "calls" if first.depth == 0 else "reaches"
            yield self.finding(
                job.decorator_location or job.location,
                f"{job.label()} {how} {first.name} with no retry path: {reason}; "
                "a timeout or a dropped connection fails the job for good",
                job,
                (Related(first.location, f"{first.name} is called here"),),
            )


# -- retry paths ----------------------------------------------------------------------------


def _no_retry(job: Job, project: Project) -> str | None:
    """Why the framework will not retry the job, or None when it may."""
    assert job.policy is not None
    attempts = job.policy.max_attempts
    if job.framework == "arq":
        return "arq retries a job only when it raises Retry"
    if job.framework == "django_tasks":
        return "django.tasks has no retry API"
    if not attempts.known or attempts.value != 1:
        return None
    if job.framework == "huey":
        retries = job.options.get("retries")
        return "retries=0" if retries is not None else "Huey's retries defaults to 0"
    if job.framework == "taskiq":
        return f"taskiq retries nothing here ({attempts.source})"
    if job.framework == "rq":
        if "retry" in job.options or not project.sites_of(job, tests=False):
            return None  # how the job is enqueued is not known
        return "RQ retries only with retry=Retry(...), and no enqueue call passes one"
    return _celery_no_retry(job, project)


def _celery_no_retry(job: Job, project: Project) -> str | None:
    """A Celery task with no autoretry_for anywhere and no base class that may retry."""
    if "**" in job.options:
        return None
    celery = project.framework_of(job)
    assert isinstance(celery, Celery)
    autoretry = celery.lookup(job, project, "autoretry_for", None)
    if autoretry.value not in (None, Seq(())) or not celery.classes_known(job, project):
        return None
    classes = [ProjectClass(job.cls, job.path)] if job.cls is not None else []
    base = celery.task_base(job, project)
    if isinstance(base, ProjectClass):
        classes.append(base)
    for cls in classes:
        for klass, _ in project.resolver.mro(cls):
            if any("retry" in name for m in klass.methods for name in m.identifiers):
                return None  # a base class that retries in __call__, on_failure...
    return "no autoretry_for, no self.retry() and no retry helper"


def _retries_in_body(job: Job, project: Project) -> bool:
    """A retry path written in the body: a helper, a retry() call, a raised Retry, a re-enqueue."""
    if helper_uses(job, project):
        return True
    body = project.body(job)
    for function in body:
        facts = function.facts
        if any(method_name(site.call.func) == "retry" for site in facts.calls):
            return True
        if any(raised_name(r.value) in RETRY_EXCEPTIONS for r in facts.raises):
            return True
    functions = {id(function.facts) for function in body}
    return any(
        site.job is job and site.function is not None and id(site.function) in functions
        for site in project.sites
    )


# -- network I/O -----------------------------------------------------------------------------


def _unhandled_io(job: Job, project: Project) -> list[_Io]:
    """Calls to network and database clients that no ``try``/``except`` surrounds."""
    found: list[_Io] = []
    for reached in job_body(job, project):
        if any(_handled(step.facts, step.site) for step in reached.steps):
            continue
        function = reached.function
        for site in function.facts.calls:
            client = _client_call(site, function.facts, project)
            if client is not None and not _handled(function.facts, site):
                name, rank = client
                location = Location(function.path, site.call.span)
                found.append(_Io(name, location, function.depth, rank))
    return found


def _handled(facts: FunctionFacts, site: CallSite) -> bool:
    """A ``try`` around the call has a clause that deals with a failure in its own way.

    A clause that only logs (or passes) drops the work, and one that re-raises
    passes the failure on: neither is a way of dealing with it.
    """
    return any(
        not handler.reraises and not handler.only_logs and not handler.body_is_trivial
        for index in site.trys
        for handler in (facts.handlers[h] for h in facts.trys[index].handlers)
    )


def _client_call(site: CallSite, facts: FunctionFacts, project: Project) -> tuple[str, int] | None:
    """How messages name a call that talks to a service, with its rank; None for other calls."""
    func = site.call.func
    name = project.external_name(func)
    if name is not None:
        short = name.rpartition(".")[2]
        if not is_network(name) or short in NOT_IO or short.endswith(("Error", "Exception")):
            return None
        return f"{name}()", 2 if short[:1].isupper() or short in FACTORIES else 0
    # A method of a client object; not one of what a call returned (``.json()`` of a response).
    origin = receiver_origin(func, facts, project)
    if origin is None or not is_network(origin):
        return None
    built_by = origin.rpartition(".")[2]
    if not built_by[:1].isupper() and built_by not in FACTORIES:
        return None
    return f"{dotted(func) or method_name(func)}() ({origin})", 1


# -- periodic jobs ---------------------------------------------------------------------------


class _Periodic:
    """The jobs that run on a schedule, and whether a schedule could not be read."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.names: set[str] = set()
        self.functions: set[int] = set()
        self.unknown = False
        for facts in project.resolver.modules.values():
            for name, value, _ in facts.assigns:
                if name in BEAT_NAMES:
                    self._schedule(value, 0)
            for assign in facts.attr_assigns:
                target = assign.target
                if isinstance(target, Attr) and _beat_name(target.name):
                    self._schedule(assign.value, 0)  # ``app.conf.beat_schedule = {...}``
                elif isinstance(target, Attr) and _beat_name(dotted(target.base) or ""):
                    self._entry(assign.value)  # ``CELERY_BEAT_SCHEDULE["x"] = {...}``
                elif _beat_name(dotted(target) or ""):
                    self._schedule(assign.value, 0)
            for site, _ in iter_call_sites(facts):
                self._call(site.call)

    def contains(self, job: Job) -> bool:
        if _periodic_decorator(job, self.project) or {"__cron__", "schedule"} & set(job.options):
            return True
        if job.framework != "celery":
            return id(job.function) in self.functions
        if self.unknown or id(job.function) in self.functions:
            return True
        celery = self.project.framework_of(job)
        assert isinstance(celery, Celery)
        return bool({celery.registered_name(job), job.qualname} & self.names)

    def _call(self, call: Call) -> None:
        func = dotted(call.func) or ""
        method = method_name(call.func)
        if method == "update" and _beat_name(func.rpartition(".")[0]):
            for arg in (*call.args, *(v for _, v in call.kwargs)):
                self._schedule(arg, 0)
        elif method == "update" and func.endswith("conf.update"):
            given = [*call.kwargs]
            for arg in call.args:
                if isinstance(arg, Mapping):
                    given.extend((k, v) for k, v in arg.items if isinstance(k, str))
            for key, value in given:
                if _beat_name(key):
                    self._schedule(value, 0)
        elif method in SCHEDULING:
            for arg in (*call.args, *(v for _, v in call.kwargs)):
                self._scheduled(arg)

    def _schedule(self, value: Value, depth: int) -> None:
        """A beat schedule: a dict of entries, or what a project function builds.

        Only the schedule itself being unreadable makes the schedule unknown;
        other values met on the way (``crontab(...)``, a local) are skipped.
        """
        value = self.project.resolver.evaluate(value) if isinstance(value, Ref) else value
        if depth > _WALK_DEPTH:
            return
        if isinstance(value, Mapping):
            if value.get("task") is not None:
                self._entry(value)
                return
            for _, entry in value.items:
                self._schedule(entry, depth + 1)
        elif isinstance(value, Seq):
            for item in value.items:
                self._schedule(item, depth + 1)
        elif isinstance(value, Call) and _builds_dict(value, self.project):
            for _, entry in value.kwargs:
                self._schedule(entry, depth + 1)
        elif isinstance(value, Call) and isinstance(value.func, Ref) and depth == 0:
            symbol = self.project.resolver.lookup(value.func.name)
            before = len(self.names)
            if isinstance(symbol, ProjectFunction):
                for _, local in symbol.facts.locals:
                    self._schedule(local, depth + 1)
                for returned in symbol.facts.returns:
                    self._schedule(returned, depth + 1)
            self.unknown = self.unknown or len(self.names) == before
        elif depth == 0:
            self.unknown = True

    def _entry(self, value: Value) -> None:
        """One beat entry: ``{"task": "proj.tasks.cleanup", "schedule": ...}``."""
        value = self.project.resolver.evaluate(value) if isinstance(value, Ref) else value
        if not isinstance(value, Mapping):
            self.unknown = True
            return
        task = self.project.resolver.evaluate(value.get("task"))
        if isinstance(task, str):
            self.names.add(task)
        else:
            self._scheduled(value.get("task"))

    def _scheduled(self, value: Value) -> None:
        """A job handed to a scheduler: the function, its name, or ``task.s(...)``."""
        if isinstance(value, Call) and method_name(value.func) in SIGNATURES:
            value = value.func
            name = dotted(value) or ""
            value = Ref(name.rpartition(".")[0]) if isinstance(value, Ref) else None
        if isinstance(value, str):
            self.names.add(value)
        elif isinstance(value, Ref):
            symbol = self.project.resolver.lookup(value.name)
            if isinstance(symbol, ProjectFunction):
                self.functions.add(id(symbol.facts))


def _beat_name(name: str) -> bool:
    return name.rpartition(".")[2] in BEAT_NAMES


def _builds_dict(call: Call, project: Project) -> bool:
    return project.external_name(call.func) == "builtins.dict"


def _periodic_decorator(job: Job, project: Project) -> bool:
    """``@huey.periodic_task(...)``, ``@db_periodic_task``, Celery's old ``@periodic_task``."""
    for decorator in job.function.decorators:
        target = decorator.func if isinstance(decorator, Call) else decorator
        symbol = project.resolver.symbol_of(target)
        if isinstance(symbol, External) and symbol.name.endswith("periodic_task"):
            return True
        if isinstance(symbol, InstanceAttr) and symbol.attrs[-1:] == ("periodic_task",):
            return True
    return False
