"""JOB106 periodic-job-overlap (preview).

A scheduler starts a periodic job on time whether or not the previous run has
finished.  When a run can last longer than the period, two runs overlap and
do the same work side by side (two exports, two reminder batches):

- Huey: ``periodic_task`` without ``lock_task`` while the task's ``timeout``
  is unset or longer than the period;
- Celery beat: an entry with no ``expires`` whose task may run (its
  ``time_limit``) longer than the period;
- arq: ``cron(..., unique=False)``; arq's default ``unique=True`` refuses a
  second run while one is queued or running.

Periods come from numbers, ``timedelta`` and ``crontab(...)`` (the shortest gap
between two firings of the minute and hour fields); a schedule jobaudit cannot
read keeps the rule silent, as does a Celery task without a known time limit.
A limit equal to the period ends the run as the next one starts, so it is
not reported; neither is a job guarded by a lock (``lock_task``,
``QueueOnce``, ``celery_singleton``, a redis lock).
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.deploy import DEFAULT
from jobaudit.discovery import iter_call_sites
from jobaudit.frameworks.celery import Celery
from jobaudit.guards import LOCKS, job_guard
from jobaudit.model import Job, Location
from jobaudit.side_effects import chain
from jobaudit.symbols import ProjectFunction, seconds
from jobaudit.values import Attr, Call, Mapping, Ref, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

MINUTES = range(60)
HOURS = range(24)
DAY_FIELDS = ("day", "month", "day_of_week", "day_of_month", "month_of_year")
DAY = 86400.0


class PeriodicJobOverlap(Rule):
    code = "JOB106"
    name = "periodic-job-overlap"
    level = "warning"
    preview = True
    gate = "idempotency"
    summary = "A periodic job can still be running when the scheduler starts the next run."
    frameworks = ("huey", "celery", "arq")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework == "huey":
            yield from self._huey(job, project)
        elif job.framework == "arq":
            yield from self._arq(job)

    def check_project(self, project: Project) -> Iterator[Finding]:
        celery = project.framework("celery")
        if not isinstance(celery, Celery) or not project.jobs_of("celery"):
            return
        for entry in _beat_entries(project, celery):
            yield from self._beat(entry, project)

    # -- Huey ------------------------------------------------------------------------------

    def _huey(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        schedule = job.options.get("validate_datetime")
        if schedule is None or _locked(job, project) or has_lock(job, project):
            return
        workers = huey_workers(project)
        if workers is None or workers[0] < 2:
            return  # one worker runs one task at a time: runs queue up, they cannot overlap
        limit = _number(job.policy.time_limit.value)
        if job.policy.time_limit.value is None:
            why = "it has no timeout"
        else:
            period = period_of(schedule.value, project)
            if limit is None or period is None or limit <= period:
                return
            why = (
                f"its timeout ({_duration(limit)}) is longer than the period ({_duration(period)})"
            )
        count, source = workers
        yield self.finding(
            job.decorator_location or job.location,
            f"{job.label()} is periodic without lock_task and {why}, and the consumer runs "
            f"{count} workers ({source}): a slow run is still going when another worker starts "
            "the next one",
            job,
        )

    # -- arq ---------------------------------------------------------------------------------

    def _arq(self, job: Job) -> Iterator[Finding]:
        unique = job.options.get("unique")
        if unique is None or unique.value is not False or unique.location is None:
            return
        yield self.finding(
            unique.location,
            f"{job.label()} is a cron job with unique=False: arq starts the next run even while "
            "the previous one is queued or running (the default unique=True prevents it)",
            job,
        )

    # -- Celery beat -------------------------------------------------------------------------

    def _beat(self, entry: _Entry, project: Project) -> Iterator[Finding]:
        job = entry.job
        assert job.policy is not None
        limit = _number(job.policy.time_limit.value)
        period = period_of(entry.schedule, project)
        if entry.expires or period is None or limit is None or limit <= period:
            return
        if has_lock(job, project):
            return
        yield self.finding(
            entry.location,
            f"Beat entry '{entry.name}' starts {job.label()} every {_duration(period)} with no "
            f"expires, and the task may run for {_duration(limit)} (time_limit, "
            f"{job.policy.time_limit.source}): a slow run is still going when the next one starts",
            job,
        )


def huey_workers(project: Project) -> tuple[int, str] | None:
    """How many workers the project's Huey consumers run, and where that is set.

    From ``huey_consumer -w N`` / ``run_huey --workers N`` in deployment files,
    ``create_consumer(workers=N)``, or Django's ``HUEY = {"consumer": {"workers":
    N}}``; Huey's default is one.  None when it is computed or places disagree.
    """
    found: list[tuple[object, str]] = []
    command = project.worker_options.get("huey", {}).get("workers")
    if command is not None and command[0] != DEFAULT:
        found.append((command[0], "-w on the consumer command line"))
    for facts in project.resolver.modules.values():
        for site, _ in iter_call_sites(facts):
            call = site.call
            if chain(call.func)[-1:] != ["create_consumer"] or call.kwarg("workers") is None:
                continue
            found.append((project.resolver.evaluate(call.kwarg("workers")), "create_consumer()"))
    if not found:
        found.append(_django_workers(project))
    counts = {value for value, _ in found}
    value, source = found[0]
    if len(counts) != 1 or not isinstance(value, int) or isinstance(value, bool):
        return None
    return value, source


def _django_workers(project: Project) -> tuple[object, str]:
    """``HUEY = {"consumer": {"workers": N}}`` in the Django settings (one when unset)."""
    for module in project.django_settings_modules():
        settings = project.settings(module)
        setting = settings.get("HUEY")
        if setting is None:
            if settings.incomplete:
                return Unknown(settings.incomplete), "settings"
            continue
        value = setting.value
        consumer = value.get("consumer") if isinstance(value, Mapping) else None
        if not isinstance(consumer, Mapping):
            return 1, "the default"  # HUEY is a Huey instance, or has no consumer options
        workers = consumer.get("workers")
        if workers is None:
            return 1, "the default"
        return project.resolver.evaluate(workers), "settings.HUEY['consumer']['workers']"
    return 1, "the default"


def has_lock(job: Job, project: Project) -> bool:
    """A lock guards the job (``QueueOnce``, ``celery_singleton``, a redis lock, an own guard)."""
    found = job_guard(job, project)
    if found is None:
        return False
    return found.source in {"base class", "idempotency-guards"} or found.value in LOCKS


def _locked(job: Job, project: Project) -> bool:
    """``@huey.lock_task(...)`` on the task, or ``with huey.lock_task(...)`` in its body."""
    for decorator in job.function.decorators:
        target = decorator.func if isinstance(decorator, Call) else decorator
        if chain(target)[-1:] == ["lock_task"]:
            return True
    return any(
        chain(site.call.func)[-1:] == ["lock_task"]
        for function in project.body(job)
        for site in function.facts.calls
    )


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _duration(value: float) -> str:
    if value >= 3600 and value % 3600 == 0:
        return f"{value / 3600:g} h"
    if value >= 60 and value % 60 == 0:
        return f"{value / 60:g} min"
    return f"{value:g} s"


# -- schedules ---------------------------------------------------------------------------------


def period_of(value: Value, project: Project) -> float | None:
    """The shortest time between two runs of a schedule, in seconds, or None when unknown."""
    value = project.resolver.evaluate(value)
    number = _number(value)
    if number is not None:
        return number
    if not isinstance(value, Call):
        return None
    name = project.external_name(value.func) if isinstance(value.func, Ref) else None
    short = (name or "").rpartition(".")[2]
    if short == "timedelta":
        found = seconds(value)
        return found if isinstance(found, float) else None
    if short == "schedule":
        every = value.kwarg("run_every") or (value.args[0] if value.args else None)
        return period_of(every, project) if every is not None else None
    if short == "crontab":
        return _crontab_period(value, project)
    return None


def _crontab_period(call: Call, project: Project) -> float | None:
    """The shortest gap between firings of ``crontab(minute=..., hour=...)``.

    Day fields other than ``*`` are only trusted when the schedule fires
    more than once a day; then the gap within a day is the shortest.
    """
    if call.args or call.star_kwargs:
        return None
    fields = {key: project.resolver.evaluate(value) for key, value in call.kwargs}
    minutes = _field(fields.get("minute", "*"), MINUTES)
    hours = _field(fields.get("hour", "*"), HOURS)
    if minutes is None or hours is None:
        return None
    firings = sorted(h * 60 + m for h in hours for m in minutes)
    if not firings:
        return None
    gaps = [(b - a) * 60.0 for a, b in pairwise(firings)]
    restricted = any(fields.get(key, "*") != "*" for key in DAY_FIELDS)
    if restricted:
        return min(gaps) if gaps else None
    gaps.append(DAY - (firings[-1] - firings[0]) * 60.0)
    return min(gaps)


def _field(value: Value, allowed: range) -> set[int] | None:
    """The values a crontab field matches (``*``, ``*/5``, ``1-5``, ``0,30``, ``7``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {value} if value in allowed else None
    if not isinstance(value, str):
        return None
    found: set[int] = set()
    for part in value.replace(" ", "").split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            return None
        if span == "*":
            low, high = allowed.start, allowed.stop - 1
        elif "-" in span:
            first, _, last = span.partition("-")
            if not (first.isdigit() and last.isdigit()):
                return None
            low, high = int(first), int(last)
        elif span.isdigit():
            low = high = int(span)
            if step is not None:
                high = allowed.stop - 1
        else:
            return None
        found.update(n for n in range(low, high + 1, step or 1) if n in allowed)
    return found or None


# -- Celery beat entries -----------------------------------------------------------------------


class _Entry:
    """One beat schedule entry: its name, task, schedule and whether it sets ``expires``."""

    def __init__(
        self, name: str, job: Job, schedule: Value, expires: bool, location: Location
    ) -> None:
        self.name = name
        self.job = job
        self.schedule = schedule
        self.expires = expires
        self.location = location


def _beat_entries(project: Project, celery: Celery) -> Iterator[_Entry]:
    by_name = {celery.registered_name(job): job for job in project.jobs_of("celery")}
    seen: set[tuple[str, int]] = set()
    for app in celery.apps.values():
        found = app.values.get("beat_schedule")
        if found is None:
            continue
        schedule, _, location = found
        schedule = project.resolver.evaluate(schedule)
        if (location.path, location.span[0]) in seen or not isinstance(schedule, Mapping):
            continue
        seen.add((location.path, location.span[0]))
        for key, entry in schedule.items:
            entry = project.resolver.evaluate(entry)
            if not isinstance(key, str) or not isinstance(entry, Mapping):
                continue
            task = project.resolver.evaluate(entry.get("task"))
            job = by_name.get(task) if isinstance(task, str) else None
            every = entry.get("schedule")
            if job is None or every is None:
                continue
            options = project.resolver.evaluate(entry.get("options"))
            if options is not None and not isinstance(options, Mapping):
                continue  # options computed at run time may set expires
            expires = options is not None and options.get("expires") is not None
            where = Location(location.path, every.span) if isinstance(every, Call) else location
            yield _Entry(key, job, every, expires, where)
    yield from _periodic_calls(project)


def _periodic_calls(project: Project) -> Iterator[_Entry]:
    """``add_periodic_task(schedule, task.s(...), expires=...)`` on an app or a sender."""
    for facts in project.resolver.modules.values():
        for site, _ in iter_call_sites(facts):
            call = site.call
            if chain(call.func)[-1:] != ["add_periodic_task"] or len(call.args) < 2:
                continue
            if call.star_kwargs:
                continue
            job = _signature_job(call.args[1], project)
            if job is None:
                continue
            name = project.resolver.evaluate(call.kwarg("name"))
            label = name if isinstance(name, str) else job.name
            expires = call.kwarg("expires") is not None
            yield _Entry(label, job, call.args[0], expires, Location(facts.path, call.span))


def _signature_job(value: Value, project: Project) -> Job | None:
    """The task of ``task.s(...)``, ``task.si(...)`` or ``task.signature(...)``."""
    if not isinstance(value, Call):
        return None
    func = value.func
    if isinstance(func, Attr):
        return None
    if not isinstance(func, Ref) or func.name.rpartition(".")[2] not in {"s", "si", "signature"}:
        return None
    symbol = project.resolver.lookup(func.name.rpartition(".")[0])
    if not isinstance(symbol, ProjectFunction):
        return None
    return next((job for job in project.jobs if job.function is symbol.facts), None)


__all__ = ["PeriodicJobOverlap", "period_of"]
