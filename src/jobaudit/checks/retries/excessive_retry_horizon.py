"""JOB304 excessive-retry-horizon.

How long a job keeps retrying matters as much as whether it stops.  A job
retried for days sends its email, charges its card or posts its webhook long
after anyone expects it, keeps a permanent error cycling through the queue, and
(when it is not idempotent) repeats whatever its failed attempts half did.
Dramatiq's defaults are the common case: 20 retries with delays doubling from
15 s up to 7 days, about a month in all.  Any framework can get there with more
than 25 attempts or delays that add up to more than a day; the horizon is
computed from the normalised ``max_attempts`` and ``backoff`` of the job.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.frameworks.base import DEFAULT, exception_names
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.dramatiq import Dramatiq
from jobaudit.model import Backoff, Job, Location

if TYPE_CHECKING:
    from jobaudit.project import Project

MAX_ATTEMPTS = 25
MAX_HORIZON = 86_400.0
"""A day of retrying, in seconds."""
ABSURD = 100
HORIZON_ATTEMPTS = 10_000
"""Beyond this many attempts the sum says nothing the count does not."""
INTEGER_ONLY = frozenset({"rq", "arq", "taskiq"})
"""Frameworks that cannot say "retry forever", where a huge limit stands in for it."""
DAY = 86_400.0
HOUR = 3_600.0
KNOBS = {
    "celery": ("max_retries={}", 1),
    "dramatiq": ("max_retries={}", 1),
    "huey": ("retries={}", 1),
    "rq": ("Retry(max={})", 1),
    "arq": ("max_tries={}", 0),
    "taskiq": ("max_retries={}", 0),
    "temporal": ("maximum_attempts={}", 0),
}
"""How each framework spells the limit, and how many executions it adds to it."""


def horizon(backoff: object, attempts: int) -> float | None:
    """The sum of the delays between ``attempts`` executions, before jitter; None if unknown.

    Exponential delays start at ``delay`` and grow by ``factor`` up to ``cap``
    (Celery: ``retry_backoff * 2**n`` up to ``retry_backoff_max``; Dramatiq:
    ``min_backoff * 2**n`` up to ``max_backoff``; Huey: ``retry_delay`` times
    ``retry_backoff`` after each retry, uncapped).  A list of RQ intervals is
    not kept in the model, so its horizon is unknown.
    """
    if not isinstance(backoff, Backoff) or attempts > HORIZON_ATTEMPTS:
        return None
    retries = attempts - 1
    if backoff.kind in {"none", "immediate"}:
        return 0.0
    if backoff.delay is None:
        return None
    if backoff.kind == "fixed":
        return backoff.delay * retries
    if backoff.kind != "exponential":
        return None
    total, delay = 0.0, backoff.delay
    for done in range(retries):
        if backoff.cap is not None and delay >= backoff.cap:
            return total + backoff.cap * (retries - done)
        total += delay
        delay *= backoff.factor
    return total if math.isfinite(total) else None


def delays(backoff: Backoff) -> str:
    """``delays doubling from 15 s up to 7 days``, ``a fixed 180 s delay``."""
    if backoff.kind == "fixed" and backoff.delay is not None:
        return f"a fixed {_span(backoff.delay)} delay"
    if backoff.kind != "exponential" or backoff.delay is None:
        return backoff.describe()
    growth = "doubling" if backoff.factor == 2 else f"growing {backoff.factor:g}-fold"
    text = f"delays {growth} from {_span(backoff.delay)}"
    return text if backoff.cap is None else f"{text} up to {_span(backoff.cap)}"


def _span(seconds: float) -> str:
    for unit, size in (("days", DAY), ("h", HOUR), ("min", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def about(seconds: float) -> str:
    """``about 39 days``, ``about 30 hours``: a horizon is an estimate, said as one."""
    if seconds >= 2 * DAY:
        days = seconds / DAY
        return f"about {days:.0f} days" if days >= 10 else f"about {days:.2g} days"
    if seconds >= 2 * HOUR:
        return f"about {seconds / HOUR:.0f} hours"
    return f"about {seconds / 60:.0f} minutes"


class ExcessiveRetryHorizon(Rule):
    code = "JOB304"
    name = "excessive-retry-horizon"
    level = "note"
    gate = "retries"
    summary = "A job retries for days, or more than 25 times."
    frameworks = ("dramatiq", "celery", "rq", "huey", "arq", "taskiq", "temporal")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        if job.framework == "dramatiq" and self._dramatiq_defaults(job, project):
            yield from self._defaults(job)
            return
        attempts = job.policy.max_attempts.value
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts <= 1:
            return
        if job.policy.retry_on.value == "none" or self._polls(job, project):
            return
        title = project.framework_of(job).title
        backoff = job.policy.backoff
        span = horizon(backoff.value, attempts)
        limit = self._limit(job, attempts)
        if attempts > MAX_ATTEMPTS:
            message = f"{job.label()} can run {attempts} times ({limit})"
            if span:
                message += f", with delays adding up to {about(span)}"
            if attempts > ABSURD and job.framework in INTEGER_ONLY:
                message += (
                    f"; a limit this high usually stands in for 'retry forever', which {title} "
                    "cannot say, and keeps a failing job cycling through the queue"
                )
        elif span is not None and span > MAX_HORIZON:
            assert isinstance(backoff.value, Backoff)
            message = (
                f"{job.label()} keeps retrying for {about(span)}: {attempts} executions "
                f"({limit}) with {delays(backoff.value)} ({backoff.source})"
            )
        else:
            return
        location, related = self._where(job, project)
        yield self.finding(location, message, job, related)

    @staticmethod
    def _limit(job: Job, attempts: int) -> str:
        """``max_retries=50, task option``: the limit as the framework spells it."""
        assert job.policy is not None
        knob, extra = KNOBS.get(job.framework, ("{} attempts", 0))
        return f"{knob.format(attempts - extra)}, {job.policy.max_attempts.source}"

    # -- Dramatiq's defaults ---------------------------------------------------------------

    @staticmethod
    def _dramatiq_defaults(job: Job, project: Project) -> bool:
        """Whether ``max_retries`` and ``max_backoff`` are Dramatiq's own (20, 7 days)."""
        dramatiq = project.framework("dramatiq")
        assert isinstance(dramatiq, Dramatiq)
        return "retry_when" not in job.options and all(
            dramatiq.get(job, key).source == DEFAULT for key in ("max_retries", "max_backoff")
        )

    def _defaults(self, job: Job) -> Iterator[Finding]:
        """The defaults are the framework's design; they are a problem for unguarded jobs."""
        assert job.policy is not None
        if "**" in job.options or job.policy.idempotency_guard.value is not None:
            return
        attempts = job.policy.max_attempts.value
        backoff = job.policy.backoff.value
        if not isinstance(attempts, int) or not isinstance(backoff, Backoff):
            return
        span = horizon(backoff, attempts)
        if span is None or span <= MAX_HORIZON:
            return
        yield self.finding(
            job.decorator_location or job.location,
            f"{job.label()} keeps Dramatiq's default retries: {attempts - 1} retries with "
            f"{delays(backoff)}, {about(span)} in all before jitter, and no idempotency "
            "guard was found",
            job,
        )

    # -- where and when -------------------------------------------------------------------

    @staticmethod
    def _polls(job: Job, project: Project) -> bool:
        """A Celery task whose only retries are ``self.retry()`` outside ``except`` blocks.

        Such a task polls (for a result, a replica, an approval); many attempts
        are its design, not a failure retried for days.
        """
        if job.framework != "celery":
            return False
        celery = project.framework("celery")
        assert isinstance(celery, Celery)
        autoretry = celery.lookup(job, project, "autoretry_for", None)
        if exception_names(autoretry.value, project) != ():
            return False
        calls = celery.retry_calls(job, project)
        return bool(calls) and not any(
            site.in_handler for site in job.function.calls if site.call in calls
        )

    @staticmethod
    def _where(job: Job, project: Project) -> tuple[Location, tuple[Related, ...]]:
        """The attempt limit when it is written somewhere, else the backoff setting.

        RQ's ``Retry`` given at enqueue calls has no single place in the policy;
        the first call's ``retry=`` stands for it.
        """
        assert job.policy is not None
        for resolved in (job.policy.max_attempts, job.policy.backoff):
            if resolved.location is not None:
                return anchor(job, resolved, project)
        if job.framework == "rq":
            for site in project.sites_of(job, tests=False):
                span = site.site.call.kwarg_span("retry")
                if span is not None:
                    return Location(site.path, span), ()
        return job.decorator_location or job.location, ()
