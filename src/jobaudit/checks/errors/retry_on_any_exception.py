"""JOB202 retry-on-any-exception.

A retry only helps an error that can go away: a timeout, a 503, a lock.  A
job whose retry policy covers every exception also retries the ones that
cannot (a deleted row, a validation error, a bug), wasting attempts, delaying
the failure report and repeating side effects.  Celery's
``autoretry_for=(Exception,)``, Dramatiq's default (every exception, 20
retries), RQ's ``Retry`` (no classification at all), taskiq's
``retry_on_error`` without ``types_of_exceptions``, tenacity's default
``retry=`` and Temporal's ``RetryPolicy`` all do that unless the project says
which errors are permanent.

The rule stays silent wherever the project does classify: ``dont_autoretry_for``,
``throws=``, ``retry_when=``, an RQ exception handler that sets
``retries_left``, ``non_retryable_error_types`` or ``ApplicationError(
non_retryable=True)``, a backoff ``giveup=``, or a job that itself catches a
specific error and returns (the permanent error never reaches the framework).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.common import attempts_text, spelled_option
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import BROAD, HelperUse, body_places, jobs_label, uses_in
from jobaudit.model import Job, Location
from jobaudit.symbols import Assigned
from jobaudit.values import Call, Ref, Seq, Value, render

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

PERMANENT = "permanent errors are retried too"


def discards_specific_error(job: Job) -> bool:
    """The job catches a specific exception and returns: it classifies errors itself."""
    return any(
        handler.types
        and handler.exits
        and not handler.reraises
        and not any(_named(t) in BROAD for t in handler.types)
        for handler in job.function.handlers
    )


def _named(value: Value) -> str:
    return value.name if isinstance(value, Ref) else ""


class RetryOnAnyException(Rule):
    code = "JOB202"
    name = "retry-on-any-exception"
    level = "warning"
    gate = "error handling"
    summary = "Every exception is retried, so permanent errors are retried too."
    frameworks = ("celery", "dramatiq", "rq", "taskiq", "tenacity", "temporal")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        policy = job.policy
        retries = policy.max_attempts.value != 1 and policy.max_attempts.known
        if retries and not discards_specific_error(job):
            framework = {
                "celery": self._celery,
                "dramatiq": self._dramatiq,
                "rq": self._rq,
                "taskiq": self._taskiq,
                "temporal": self._temporal,
            }.get(job.framework)
            if framework is not None:
                yield from framework(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        # A helper is part of every job that calls it: report it once, naming them.
        for location, text, jobs in body_places(project, lambda j, f: self._helpers(f, project)):
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0])

    # -- frameworks ----------------------------------------------------------------------

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        retry_on = job.policy.retry_on
        if retry_on.value != "all" or retry_on.location is None:
            return  # not autoretry_for (self.retry() in an except is the job's own choice)
        celery = project.framework_of(job)
        assert isinstance(celery, Celery)
        # Celery re-raises dont_autoretry_for before autoretry_for (``throws`` does not).
        if celery.lookup(job, project, "dont_autoretry_for", None).value not in (None, Seq(())):
            return
        autoretry = celery.lookup(job, project, "autoretry_for", None)
        spelled = spelled_option(job, "autoretry_for", autoretry)
        location, related = anchor(job, retry_on, project)
        yield self.finding(
            location,
            f"{job.label()} is retried on any exception ({spelled}){attempts_text(job)}; "
            f"{PERMANENT}",
            job,
            related,
        )

    def _dramatiq(self, job: Job, project: Project) -> Iterator[Finding]:
        if "throws" in job.options or "retry_when" in job.options:
            return
        yield self.finding(
            job.decorator_location or job.location,
            f"{job.label()} is retried on every exception (no throws= or retry_when=)"
            f"{attempts_text(job)}; {PERMANENT}",
            job,
        )

    def _rq(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        if job.policy.retry_on.value != "all" or _rq_classifies(project):
            return
        option = job.options.get("retry")
        location = option.location if option is not None else None
        for site in project.sites_of(job):
            span = site.site.call.kwarg_span("retry")
            if location is None and span is not None:
                location = Location(site.path, span)
        yield self.finding(
            location or job.location,
            f"{job.label()} is retried on any exception (RQ's Retry has no exception filter)"
            f"{attempts_text(job)}; {PERMANENT}",
            job,
        )

    def _taskiq(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        if job.policy.retry_on.value != "all":
            return
        label = job.options.get("retry_on_error")
        location = label.location if label is not None else None
        yield self.finding(
            location or job.decorator_location or job.location,
            f"{job.label()} is retried on any exception (retry_on_error without "
            f"types_of_exceptions){attempts_text(job)}; {PERMANENT}",
            job,
        )

    def _temporal(self, job: Job, project: Project) -> Iterator[Finding]:
        if _raises_non_retryable(job, project):
            return
        for site in project.sites_of(job):
            written = site.site.call.kwarg("retry_policy")
            policy = project.resolver.evaluate(written)
            if not isinstance(policy, Call) or policy.star_kwargs:
                continue
            if policy.kwarg("non_retryable_error_types") is not None:
                continue
            if project.resolver.evaluate(policy.kwarg("maximum_attempts")) == 1:
                continue
            yield self.finding(
                _definition(project, written, site.path) or Location(site.path, policy.span),
                f"{job.label()} is retried on every error: its RetryPolicy has no "
                "non_retryable_error_types and the activity raises no "
                f"ApplicationError(non_retryable=True); {PERMANENT}",
                job,
            )

    # -- in-job retry helpers ------------------------------------------------------------

    @staticmethod
    def _helpers(function: BodyFunction, project: Project) -> list[tuple[Location, str]]:
        found: list[tuple[Location, str]] = []
        for use in uses_in(function, project):
            if use.library == "tenacity" and _tenacity_retries_all(project, use):
                what = "tenacity without a retry= filter (the default is retry_if_exception_type())"
            elif use.name == "backoff.on_exception" and not use.given("giveup"):
                caught = use.call.args[1] if len(use.call.args) > 1 else use.call.kwarg("exception")
                if not _is_broad(project, caught):
                    continue
                what = f"backoff on {render(caught)} without giveup="
            else:
                continue
            found.append(
                (use.location, f"{use.action('retries every exception')}: {what}; {PERMANENT}")
            )
        return found


def _is_broad(project: Project, value: Value | None) -> bool:
    """``Exception``/``BaseException``, alone or in a tuple, through module constants."""
    value = project.resolver.evaluate(value) if isinstance(value, Ref) else value
    if isinstance(value, Seq):
        return any(_is_broad(project, item) for item in value.items)
    return isinstance(value, Ref) and (project.external_name(value) or value.name) in BROAD


def _tenacity_retries_all(project: Project, use: HelperUse) -> bool:
    if use.call.star_kwargs:
        return False
    condition = use.call.kwarg("retry")
    if condition is None:
        return True
    if not isinstance(condition, Call) or condition.kwargs or condition.star_args:
        return False
    name = project.external_name(condition.func) or ""
    if not name.endswith("retry_if_exception_type"):
        return False
    return not condition.args or any(_is_broad(project, arg) for arg in condition.args)


def _rq_classifies(project: Project) -> bool:
    """An exception handler somewhere sets ``job.retries_left`` (the documented discard)."""
    return any(
        "retries_left" in function.identifiers
        for facts in project.resolver.modules.values()
        for function in (*facts.functions, *(m for c in facts.classes for m in c.methods))
    )


def _raises_non_retryable(job: Job, project: Project) -> bool:
    return any(
        isinstance(r.value, Call)
        and (project.external_name(r.value.func) or "").endswith("ApplicationError")
        and r.value.kwarg("non_retryable") is True
        for function in project.body(job)
        for r in function.facts.raises
    )


def _definition(project: Project, written: Value | None, path: str) -> Location | None:
    """Where a retry policy is written: inline at the call, or a module constant."""
    if isinstance(written, Call):
        return Location(path, written.span)
    if isinstance(written, Ref):
        symbol = project.resolver.lookup(written.name)
        if isinstance(symbol, Assigned) and isinstance(symbol.value, Call):
            return Location(symbol.path, symbol.value.span)
    return None
