"""JOB505 retry-exhaustion-unobserved: a retried job's last failure goes unnoticed.

Retries hide transient failures, which is their point; the failure that
remains after the last attempt is the one someone must hear about.  Each
framework has its own place for it: Dramatiq's ``on_retry_exhausted`` actor
(the Retries middleware only logs a warning), Huey's ``SIGNAL_ERROR`` (and
``SIGNAL_INTERRUPTED`` for the tasks a stopping consumer loses), RQ's
exception handlers, callbacks or Sentry (which reports only the final
failure), and for Celery the result backend, ``on_failure`` or
``task_failure`` — unless ``ignore_result=True`` throws the final state away.
Only jobs that really retry (a known attempt count above one) are judged.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Job, Location
from jobaudit.observability import TRACKING, observability

if TYPE_CHECKING:
    from jobaudit.project import Project

RQ_CALLBACKS = ("on_failure", "webhooks")


class RetryExhaustionUnobserved(Rule):
    code = "JOB505"
    name = "retry-exhaustion-unobserved"
    level = "note"
    preview = True
    scope = "job"
    gate = "observability"
    summary = "A retried job's final failure reaches no handler, callback or error tracker."
    frameworks = ("dramatiq", "huey", "rq", "celery")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.policy is None:
            return
        attempts = job.policy.max_attempts
        value = attempts.value
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            return
        found = observability(project)
        if found.unknown is not None and job.framework in {"rq", "celery"}:
            return  # a Sentry init may hide in the settings that could not be read
        where = attempts.location or job.decorator_location or job.location
        retries = f"{value - 1} {'retry' if value == 2 else 'retries'} ({attempts.source})"
        message: str | None = None
        if job.framework == "dramatiq":
            if not self._dramatiq_observed(job, project):
                message = (
                    f"{job.label()} gives up after {retries} with only a log warning: no "
                    "on_retry_exhausted actor, no middleware watching exhausted retries or "
                    "dead letters"
                )
        elif job.framework == "huey":
            if not found.huey_handles("error", "interrupted"):
                message = (
                    f"{job.label()} is retried ({retries}), and no @huey.signal handler "
                    "receives SIGNAL_ERROR or SIGNAL_INTERRUPTED: its last failure, and a "
                    "run lost when the consumer stops, leave only a log line"
                )
        elif job.framework == "rq":
            where = attempts.location or _retry_keyword(job, project) or where
            if not self._rq_observed(job, project):
                message = (
                    f"{job.label()} is retried ({retries}) and nothing sees its final failure: "
                    "no on_failure callback, no exception handler, no Sentry; it waits "
                    "unnoticed in the FailedJobRegistry"
                )
        elif job.framework == "celery":
            message = self._celery(job, project, retries)
        if message is not None:
            yield self.finding(where, message, job)

    def _dramatiq_observed(self, job: Job, project: Project) -> bool:
        if job.options.get("on_retry_exhausted") is not None:
            return True
        if any(
            site.site.call.kwarg("on_retry_exhausted") is not None or site.site.call.star_kwargs
            for site in project.sites_of(job, tests=False)
        ):
            return True
        return bool(observability(project).exhaustion.get("dramatiq"))

    def _rq_observed(self, job: Job, project: Project) -> bool:
        if any(job.options.get(name) is not None for name in RQ_CALLBACKS):
            return True
        for site in project.sites_of(job, tests=False):
            call = site.site.call
            if call.star_kwargs or any(call.kwarg(name) is not None for name in RQ_CALLBACKS):
                return True
        found = observability(project)
        return bool(found.found(TRACKING, "rq") or found.exhaustion.get("rq"))

    def _celery(self, job: Job, project: Project, retries: str) -> str | None:
        celery = project.framework("celery")
        if not isinstance(celery, Celery):
            return None
        ignore = celery.lookup(job, project, "ignore_result", None)
        if ignore.value is None:
            ignore = celery.setting(job, "task_ignore_result", False)
        if ignore.value is not True or observability(project).found(TRACKING, "celery"):
            return None
        return (
            f"{job.label()} is retried ({retries}) with ignore_result=True ({ignore.source}), "
            "and no on_failure, task_failure handler or Sentry sees the final failure: once "
            "retries run out it is only a line in the worker's log"
        )


def _retry_keyword(job: Job, project: Project) -> Location | None:
    """RQ retries set at the enqueue call: its ``retry=`` keyword is what to look at."""
    for site in project.sites_of(job, tests=False):
        span = site.site.call.kwarg_span("retry")
        if span is not None:
            return Location(site.path, span)
    return None


__all__ = ["RetryExhaustionUnobserved"]
