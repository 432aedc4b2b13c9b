"""JOB401 no-time-limit: nothing stops a job that hangs.

A call that never returns (a socket without a timeout, a lock that is never
released) holds its worker forever; with no time limit the framework never
takes it back, and a handful of such jobs stall a whole queue.  Each framework
has its own default and its own places to set a limit, so the rule reads the
effective limit of the job's policy: Celery looks at the task, its base class,
``task_annotations``, the app's settings and the worker command line; RQ's
180 s default is a limit, ``-1`` is none; Huey and taskiq have none unless
asked; Dramatiq and arq have one, which only matters when it is huge;
``django.tasks`` has no API for it at all; a Temporal activity called with
only a ``schedule_to_close_timeout`` lets one hung attempt use the whole
window.  A limit that cannot be resolved (an environment variable, options
passed with ``**``, a third-party base class) keeps the rule silent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from jobaudit.blocking import is_blocking
from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.discovery import iter_call_sites, method_name
from jobaudit.fix.build import set_on_decorator
from jobaudit.fix.model import ADD_STATEMENT, UNSAFE, Edit, Fix
from jobaudit.frameworks.celery import UNREAD_DOCUMENTED, AppConfig, Celery
from jobaudit.frameworks.rq import called_on_job, parse_timeout
from jobaudit.frameworks.temporal import CALLS as TEMPORAL_CALLS
from jobaudit.model import Job, Location, Resolved
from jobaudit.symbols import ProjectClass, ProjectFunction, seconds
from jobaudit.values import Attr, Call, Mapping, Ref, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

LONG = 3600.0
"""Above an hour a limit no longer protects a worker (Dramatiq's default is 10 minutes)."""
LONG_WINDOW = 300.0
"""A ``schedule_to_close_timeout`` up to 5 minutes bounds a hung attempt well enough."""
TIMEOUT_KWARGS = ("timeout", "socket_timeout", "connect_timeout")
RQ_CALLS = {"enqueue": "job_timeout", "enqueue_in": "job_timeout", "enqueue_at": "job_timeout"}
RQ_CALLS_TIMEOUT = {"enqueue_call": "timeout"}
NO_LIMIT_BACKENDS = (".immediate.", ".dummy.", ".database.", "django_tasks_db.")
"""django.tasks backends that bring no time limit of their own (the built-ins, the DB backend)."""
TASKIQ = "taskiq"


class NoTimeLimit(Rule):
    code = "JOB401"
    name = "no-time-limit"
    level = "warning"
    scope = "job / config"
    gate = "timeouts"
    summary = "Nothing limits how long the job may run, so a hung call holds a worker forever."
    frameworks = ("celery", "rq", "huey", "taskiq", "django_tasks", "dramatiq", "arq", "temporal")
    fixable = True

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        framework = job.framework
        if framework == "celery":
            yield from self._celery(job, project)
        elif framework == "rq":
            yield from self._rq(job, project)
        elif framework in {"huey", "taskiq"}:
            yield from self._unset(job, project)
        elif framework == "django_tasks":
            yield from self._django(job, project)
        elif framework in {"dramatiq", "arq"}:
            yield from self._too_long(job, project)
        elif framework == "temporal":
            yield from self._temporal(job, project)

    # -- Celery --------------------------------------------------------------------------

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        hard, soft = job.policy.time_limit, job.policy.soft_time_limit
        if not hard.known or not soft.known or hard.value is not None or soft.value is not None:
            return
        celery = project.framework("celery")
        if not isinstance(celery, Celery) or "**" in job.options:
            return
        if not celery.classes_known(job, project):
            return  # a class jobaudit cannot read may set time_limit
        apps = celery.app_for(job)
        if any(key in app.values for app in apps for key in UNREAD_DOCUMENTED):
            return  # JOB402 reports the CELERYD_TIME_LIMIT line, which is the one to fix
        settings = sorted(
            {
                f"{app.namespace}_TASK_TIME_LIMIT" if app.namespace else "task_time_limit"
                for app in apps
            }
        )
        related = tuple(
            Related(app.location, f"no time limit is set for app '{app.name}'") for app in apps
        )
        yield self.finding(
            job.decorator_location or job.location,
            f"{job.label()} has no time limit: no time_limit or soft_time_limit on the task, "
            f"its base class or task_annotations, no {' / '.join(settings)} setting and no "
            "--time-limit on a worker command line",
            job,
            related,
            _celery_fix(job, apps, project),
        )

    # -- RQ ------------------------------------------------------------------------------

    def _rq(self, job: Job, project: Project) -> Iterator[Finding]:
        """``-1`` (infinite) on the decorator, at an enqueue call or as a queue's default."""
        assert job.policy is not None
        reported: set[Location] = set()
        option = job.options.get("timeout")
        if (
            option is not None
            and option.location is not None
            and parse_timeout(option.value) is None
        ):
            reported.add(option.location)
            yield self.finding(
                option.location,
                f"{job.label()} runs without a time limit: the decorator's timeout=-1 means "
                "infinite (RQ's default is 180 s)",
                job,
            )
        for site in project.sites_of(job, tests=False):
            key = RQ_CALLS.get(site.method) or RQ_CALLS_TIMEOUT.get(site.method)
            call = site.site.call
            if key is None or called_on_job(call, job, project) or call.kwarg(key) is None:
                continue
            if parse_timeout(project.resolver.evaluate(call.kwarg(key))) is not None:
                continue
            location = Location(site.path, call.kwarg_span(key) or call.span)
            reported.add(location)
            yield self.finding(
                location,
                f"{job.label()} runs without a time limit: {site.method}({key}=-1) means "
                "infinite (RQ's default is 180 s)",
                job,
            )
        limit = job.policy.time_limit
        from_queue = limit.source.startswith(("Queue(", "settings."))
        if (
            limit.value is None
            and from_queue
            and limit.location is not None
            and limit.location not in reported
        ):
            yield self.finding(
                job.decorator_location or job.location,
                f"{job.label()} runs without a time limit: its queue's default timeout is -1, "
                f"which means infinite ({limit.source})",
                job,
                (Related(limit.location, "the queue's default timeout is -1 here"),),
            )

    # -- Huey, taskiq ----------------------------------------------------------------------

    def _unset(self, job: Job, project: Project) -> Iterator[Finding]:
        """Huey and taskiq: no limit unless the decorator (or taskiq's kicker) sets one."""
        assert job.policy is not None
        hard = job.policy.time_limit
        if not hard.known or hard.value is not None or "**" in job.options:
            return
        if job.framework == "taskiq" and _taskiq_timeout_elsewhere(job, project):
            return
        option = job.options.get("timeout")
        if option is not None and option.location is not None:
            where, what = option.location, "timeout=None"
        elif job.framework == "huey":
            where, what = job.decorator_location or job.location, "no timeout= on its decorator"
        else:
            where, what = job.decorator_location or job.location, "no timeout label"
        title = "Huey" if job.framework == "huey" else "taskiq"
        limit = project.config.fix.time_limit
        edit = set_on_decorator(job, "timeout", str(limit))
        fix = Fix(f"Set timeout={limit}", UNSAFE, (edit,)) if edit else None
        yield self.finding(
            where,
            f"{job.label()} has no time limit: {what} ({title} sets none by default)",
            job,
            fix=fix,
        )

    # -- django.tasks --------------------------------------------------------------------

    def _django(self, job: Job, project: Project) -> Iterator[Finding]:
        if not _backend_without_limit(job, project):
            return
        blocking = [
            site
            for function in project.body(job)
            for site in function.facts.calls
            if is_blocking(project.external_name(site.call.func))
        ]
        unguarded = [
            site
            for site in blocking
            if not any(site.call.kwarg(name) is not None for name in TIMEOUT_KWARGS)
        ]
        where = job.decorator_location or job.location
        if unguarded:
            call = project.external_name(unguarded[0].call.func)
            yield self.finding(
                where,
                f"{job.label()} has no time limit: django.tasks has no time-limit API, and "
                f"{call}() in it has no timeout of its own",
                job,
            )
            return
        body = (
            "every blocking call in it sets its own timeout, the only bound it has"
            if blocking
            else "it makes no blocking call jobaudit knows of"
        )
        finding = self.finding(
            where,
            f"{job.label()} has no time limit: django.tasks has no time-limit API; {body}",
            job,
        )
        yield Finding(**{**finding.__dict__, "level": "note"})

    # -- Dramatiq, arq -------------------------------------------------------------------

    def _too_long(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        hard = job.policy.time_limit
        if not hard.known:
            return
        value = hard.value
        name = "time_limit" if job.framework == "dramatiq" else "timeout"
        own = hard.source in {"task option", "class Meta", "func()", "cron()"}
        origin = "" if own else f" ({hard.source})"
        if value is None and job.framework == "dramatiq":
            message = (
                f"{job.label()} has no time limit: time_limit=None does not turn the limit off "
                "cleanly; Dramatiq's TimeLimit middleware fails on it for every message and the "
                "actor runs unbounded"
            )
        elif value is None:
            message = f"{job.label()} has no time limit: its {name} is None{origin}"
        elif isinstance(value, float) and value > LONG:
            message = (
                f"{job.label()} may run for {_duration(value)} before its {name} stops it{origin}; "
                "a limit that long does not free a hung worker"
            )
        else:
            return
        where, related = _anchor(job, hard, project)
        yield self.finding(where, message, job, related)

    # -- Temporal ------------------------------------------------------------------------

    def _temporal(self, job: Job, project: Project) -> Iterator[Finding]:
        for site in project.sites_of(job, tests=False):
            call = site.site.call
            if site.method not in TEMPORAL_CALLS or call.star_kwargs:
                continue
            window = call.kwarg("schedule_to_close_timeout")
            if window is None or any(
                call.kwarg(name) is not None
                for name in ("start_to_close_timeout", "heartbeat_timeout")
            ):
                continue
            span = seconds(project.resolver.evaluate(window))
            if not isinstance(span, float) or span <= LONG_WINDOW:
                continue
            yield self.finding(
                Location(site.path, call.span),
                f"{job.label()} is called with only schedule_to_close_timeout ({_duration(span)}) "
                "and no start_to_close_timeout: one hung attempt uses the whole window and is "
                "never retried",
                job,
            )


def _celery_fix(job: Job, apps: Sequence[AppConfig], project: Project) -> Fix | None:
    """Limits on the task, or (``time-limit-scope = "project"``) once on the app.

    Unsafe: the limits are chosen (``[tool.jobaudit.fix]``), and a task that
    used to run longer is now killed.  The app-wide form sets ``app.conf``
    right after the app is created: values set there win over
    ``config_from_object``, whatever the namespace.
    """
    config = project.config.fix
    hard, soft = str(config.time_limit), str(config.soft_time_limit)
    if config.time_limit_scope == "project" and len(apps) == 1:
        app = apps[0]
        name = app.name.rpartition(".")[2]
        if name.isidentifier():
            where = app.location
            edits = tuple(
                Edit(ADD_STATEMENT, where.path, where.span, value=f"{name}.conf.{key} = {value}")
                for key, value in (("task_time_limit", hard), ("task_soft_time_limit", soft))
            )
            return Fix(
                f"Set task_time_limit={hard} and task_soft_time_limit={soft} on the app",
                UNSAFE,
                edits,
            )
    edits_on_task = [
        set_on_decorator(job, "time_limit", hard),
        set_on_decorator(job, "soft_time_limit", soft),
    ]
    if None in edits_on_task:
        return None
    return Fix(
        f"Set time_limit={hard} and soft_time_limit={soft}",
        UNSAFE,
        tuple(edit for edit in edits_on_task if edit is not None),
    )


def _anchor(job: Job, resolved: Resolved, project: Project) -> tuple[Location, tuple[Related, ...]]:
    """The option when only this job has it; otherwise the job, with the shared setting related.

    A middleware default, a worker-settings class attribute or an inherited
    ``Meta`` serves many jobs; stacking one finding per job on that line would
    hide which jobs they are.
    """
    own = job.decorator_location or job.location
    where = resolved.location
    if where is None:
        return own, ()
    shared = any(
        other is not job and any(option.location == where for option in other.options.values())
        for other in project.jobs
    )
    if any(option.location == where for option in job.options.values()) and not shared:
        return where, ()
    return own, (Related(where, f"set here ({resolved.source})"),)


def _backend_without_limit(job: Job, project: Project) -> bool:
    """Whether the job's ``TASKS`` backend adds no limit (unset: the immediate backend)."""
    alias_option = job.options.get("backend")
    alias = alias_option.value if alias_option is not None else "default"
    for module in project.django_settings_modules():
        settings = project.settings(module)
        setting = settings.get("TASKS")
        if setting is None:
            if settings.incomplete:
                return False  # TASKS may be in the part jobaudit could not read
            continue
        if not isinstance(setting.value, Mapping) or not isinstance(alias, str):
            return False
        entry = setting.value.get(alias)
        backend = entry.get("BACKEND") if isinstance(entry, Mapping) else None
        backend = project.resolver.evaluate(backend) if backend is not None else None
        return isinstance(backend, str) and any(part in backend for part in NO_LIMIT_BACKENDS)
    return True


def _taskiq_timeout_elsewhere(job: Job, project: Project) -> bool:
    """A timeout label set per call (``kicker().with_labels(timeout=...)``) or by middleware."""
    for facts in project.resolver.modules.values():
        for cls in facts.classes:
            bases = project.resolver.external_bases(ProjectClass(cls, facts.path))
            if any(base.startswith(TASKIQ) for base in bases) and any(
                method.identifiers.all_of(("timeout", "labels")) for method in cls.methods
            ):
                return True
        for site, _ in iter_call_sites(facts):
            call = site.call
            if (
                method_name(call.func) == "with_labels"
                and call.kwarg("timeout") is not None
                and _kicker_of(call.func, job, project)
            ):
                return True
    return False


def _kicker_of(value: Value, job: Job, project: Project) -> bool:
    """Whether a call chain starts at ``<job>.kicker()``."""
    while isinstance(value, (Attr, Call)):
        if isinstance(value, Call) and isinstance(value.func, Ref):
            name = value.func.name
            if not name.endswith(".kicker"):
                return False
            symbol = project.resolver.lookup(name.rpartition(".")[0])
            return isinstance(symbol, ProjectFunction) and symbol.facts is job.function
        value = value.func if isinstance(value, Call) else value.base
    return False


def _duration(value: float) -> str:
    if math.isinf(value):
        return "forever"
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if value >= size:
            count = value / size
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    return f"{value:g} s"
