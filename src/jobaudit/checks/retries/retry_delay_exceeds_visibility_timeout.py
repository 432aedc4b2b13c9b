"""JOB306 retry-delay-exceeds-visibility-timeout.

A Celery retry is a new message with an ETA.  On Redis and SQS a worker takes
that message at once and holds it, unacknowledged, until the ETA comes; when
the wait is longer than the broker's visibility timeout (kombu: 3600 s on
Redis, 1800 s on SQS) the broker hands the message to another worker as well,
and the retry runs twice, or more, once per timeout (kombu#337,
celery/celery#2599).  The delays a task retries with are its ``countdown``/
``eta`` in ``self.retry()``, ``retry_kwargs['countdown']``,
``default_retry_delay`` when no countdown is given, and the largest
``retry_backoff`` step (capped by ``retry_backoff_max``).  Only the Redis and
SQS transports have the timeout, and an unknown broker keeps the rule silent.

A ``countdown``/``eta`` passed at an ``apply_async()`` call is the same hazard
at a call site; it is JOB604's, which uses the same ``jobaudit.broker`` API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.broker import Broker, exceeds, job_broker, scheduled_delay
from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.retries.backoff_without_jitter import setting_anchor
from jobaudit.frameworks.base import exception_names
from jobaudit.frameworks.celery import DEFAULT_BACKOFF_MAX, DEFAULT_RETRY_DELAY, Celery
from jobaudit.model import UNBOUNDED, Backoff, Job, Location, Resolved
from jobaudit.symbols import seconds
from jobaudit.values import render

if TYPE_CHECKING:
    from jobaudit.project import Project


def duration(value: float) -> str:
    """``2 h``, ``45 min``, ``1.5 days``: a delay in the unit that reads best."""
    for unit, size in (("days", 86_400.0), ("h", 3_600.0), ("min", 60.0)):
        if value >= size:
            amount = value / size
            return f"{amount:.3g} {unit}" if amount < 1000 else f"{amount:.0f} {unit}"
    return f"{value:g} s"


class RetryDelayExceedsVisibilityTimeout(Rule):
    code = "JOB306"
    name = "retry-delay-exceeds-visibility-timeout"
    level = "error"
    gate = "retries"
    summary = "A retry waits longer than the broker's visibility timeout and runs twice."
    frameworks = ("celery",)

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        attempts = job.policy.max_attempts.value
        if job.framework != "celery" or (isinstance(attempts, int) and attempts < 2):
            return  # no retry: max_retries=0 (or less) fails at the first retry()
        broker = job_broker(job, project)
        if broker.timeout is None:
            return
        celery = project.framework("celery")
        assert isinstance(celery, Celery)
        found: dict[Location, tuple[str, tuple[Related, ...]]] = {}
        for delay, what, location, related in (
            *self._autoretry(job, project, celery),
            *self._retry_calls(job, project, celery),
        ):
            if exceeds(delay, broker) and location not in found:
                found[location] = (what, related)
        for location, (what, related) in found.items():
            yield self.finding(
                location,
                f"{job.label()} retries after {what}, longer than the {broker.title} visibility "
                f"timeout of {duration(broker.timeout)} ({broker.visibility_timeout.source}): "
                "the broker hands the waiting retry to another worker, so it runs more than once",
                job,
                related + _broker_places(broker),
            )

    # -- the delays a task retries with ------------------------------------------------------

    def _autoretry(
        self, job: Job, project: Project, celery: Celery
    ) -> Iterator[tuple[float, str, Location, tuple[Related, ...]]]:
        """``autoretry_for``: the largest backoff step, ``retry_kwargs['countdown']`` or
        ``default_retry_delay``, as the task's policy resolved them."""
        assert job.policy is not None
        autoretry = celery.lookup(job, project, "autoretry_for", None)
        names = exception_names(autoretry.value, project)
        backoff = job.policy.backoff.value
        if not (isinstance(names, tuple) and names) or not isinstance(backoff, Backoff):
            return
        if "**" in job.options:
            return  # the options passed with ** may change the delay
        if backoff.kind == "exponential" and backoff.delay is not None:
            largest = self._largest_step(backoff, job.policy.max_attempts.value)
            if largest is None:
                return
            if backoff.cap is not None and largest >= backoff.cap:
                setting = celery.lookup(job, project, "retry_backoff_max", DEFAULT_BACKOFF_MAX)
                written = f"retry_backoff_max={largest:g}, {setting.source}"
            else:
                setting = celery.lookup(job, project, "retry_backoff", False)
                written = f"the last step of retry_backoff, {setting.source}"
            yield (
                largest,
                f"up to {duration(largest)} ({written})",
                *setting_anchor(job, setting, project),
            )
        elif backoff.kind == "fixed" and backoff.delay is not None:
            name, setting = self._fixed_setting(job, project, celery)
            yield (
                backoff.delay,
                f"{duration(backoff.delay)} ({name}={backoff.delay:g}, {setting.source})",
                *setting_anchor(job, setting, project),
            )

    @staticmethod
    def _largest_step(backoff: Backoff, attempts: object) -> float | None:
        """The longest autoretry wait: ``min(cap, factor * 2**(retries - 1))``."""
        assert backoff.delay is not None
        if attempts == UNBOUNDED:
            return backoff.cap
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 2:
            return None
        try:
            step = backoff.delay * backoff.factor ** (attempts - 2)
        except OverflowError:
            return backoff.cap
        return step if backoff.cap is None else min(step, backoff.cap)

    @staticmethod
    def _fixed_setting(job: Job, project: Project, celery: Celery) -> tuple[str, Resolved]:
        """The setting a fixed autoretry delay comes from, and its name."""
        assert job.policy is not None
        if job.policy.backoff.source.startswith("retry_kwargs"):
            return "retry_kwargs['countdown']", celery.lookup(job, project, "retry_kwargs", None)
        return "default_retry_delay", celery.lookup(
            job, project, "default_retry_delay", DEFAULT_RETRY_DELAY
        )

    def _retry_calls(
        self, job: Job, project: Project, celery: Celery
    ) -> Iterator[tuple[float, str, Location, tuple[Related, ...]]]:
        """``self.retry(countdown=...)``/``eta=``, or ``default_retry_delay`` without either."""
        for call in celery.retry_calls(job, project):
            delay = scheduled_delay(call, project)
            if isinstance(delay, float):
                key = "countdown" if call.kwarg("countdown") is not None else "eta"
                span = call.kwarg_span(key) or call.span
                what = f"{duration(delay)} ({key}={render(call.kwarg(key))})"
                yield delay, what, Location(job.path, span), ()
            elif delay is None:
                setting = celery.lookup(job, project, "default_retry_delay", DEFAULT_RETRY_DELAY)
                value = seconds(setting.value)  # type: ignore[arg-type]
                if isinstance(value, float):
                    what = (
                        f"{duration(value)} (no countdown: default_retry_delay={value:g}, "
                        f"{setting.source})"
                    )
                    yield (value, what, *setting_anchor(job, setting, project))


def _broker_places(broker: Broker) -> tuple[Related, ...]:
    return tuple(Related(location, text) for location, text in broker.related())
