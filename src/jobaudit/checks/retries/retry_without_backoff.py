"""JOB302 retry-without-backoff.

A retry that comes immediately, or after the same delay every time, hits a
failing service again while it is still down, and when many jobs fail together
they all come back together.  Which spelling means "no backoff" differs per
framework: Celery's autoretry waits a fixed ``default_retry_delay`` (180 s) unless
``retry_backoff`` is set, RQ's ``Retry`` and Huey's ``retries`` requeue
immediately by default, arq's ``Retry()`` without ``defer`` too, taskiq's
``SimpleRetryMiddleware`` never waits, and a tenacity ``@retry`` without ``wait=``
retries in a tight loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.discovery import RQ_ENQUEUE
from jobaudit.fix.build import set_on_decorator
from jobaudit.fix.model import SET_KEYWORD, UNSAFE, Edit, Fix
from jobaudit.frameworks.arq import RETRY as ARQ_RETRY
from jobaudit.frameworks.base import exception_names
from jobaudit.frameworks.celery import DEFAULT_RETRY_DELAY, Celery
from jobaudit.frameworks.retry_helpers import body_places, jobs_label, said_of_job, uses_in
from jobaudit.frameworks.rq import RETRY_CLASSES, interval_backoff
from jobaudit.frameworks.taskiq import SIMPLE, Taskiq
from jobaudit.model import Backoff, Job, Location, Resolved
from jobaudit.symbols import seconds
from jobaudit.values import Call, Value, is_number, render

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

NO_BACKOFF = frozenset({"immediate", "fixed"})
HELPER_DEFAULTS = {
    "tenacity": "tenacity without wait= (the default wait_none() does not wait)",
    "retrying": "retrying without a wait_* argument (the default wait is 0)",
    "retry": "retry with delay=0 (the default)",
}


def _no_backoff(backoff: object, attempts: object) -> Backoff | None:
    """The backoff when retries come at once, or after a fixed delay more than once.

    None when the delay grows or is unknown, and for a fixed delay before a
    single retry (two attempts): there is no second delay for it to grow to.
    """
    if not isinstance(backoff, Backoff) or backoff.kind not in NO_BACKOFF:
        return None
    single_retry = isinstance(attempts, int) and not isinstance(attempts, bool) and attempts <= 2
    if backoff.kind == "fixed" and backoff.delay and single_retry:
        return None
    return backoff


def _interval_fix(written: Value, path: str) -> Fix | None:
    """``Retry(max=n)`` written inline → ``Retry(max=n, interval=[10, 30, 90, ...])``.

    Unsafe: it chooses the delays (growing threefold from 10 s, one per
    retry, at most five: RQ repeats the last one).  A ``Retry`` defined
    elsewhere may be shared, so only one written in the call is changed.
    """
    if not isinstance(written, Call) or written.star_args or written.star_kwargs or not path:
        return None
    if len(written.args) > 1 or (written.kwarg("max") is None and not written.args):
        return None
    maximum = written.kwarg("max")
    if maximum is None:
        maximum = written.args[0]
    count = maximum if isinstance(maximum, int) and not isinstance(maximum, bool) else 3
    delays = [10 * 3**index for index in range(max(1, min(count, 5)))]
    edit = Edit(SET_KEYWORD, path, written.span, "interval", repr(delays))
    return Fix(f"Use a growing interval={delays}", UNSAFE, (edit,))


def _every(backoff: Backoff) -> str:
    if backoff.kind == "immediate" or not backoff.delay:
        return "immediately"
    return f"every {backoff.delay:g} s"


class RetryWithoutBackoff(Rule):
    code = "JOB302"
    name = "retry-without-backoff"
    level = "warning"
    gate = "retries"
    summary = "Retries come at a fixed interval or immediately, hammering a failing service."
    frameworks = ("celery", "rq", "huey", "arq", "taskiq", "tenacity")
    fixable = True

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework == "celery":
            yield from self._celery(job, project)
        elif job.framework == "rq":
            yield from self._rq(job, project)
        elif job.framework == "huey":
            yield from self._huey(job, project)
        elif job.framework == "taskiq":
            yield from self._taskiq(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        for location, text, jobs in body_places(project, lambda j, f: self._body(j, f, project)):
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0])

    # -- Celery --------------------------------------------------------------------------

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        framework = project.framework("celery")
        assert isinstance(framework, Celery) and job.policy is not None
        if job.policy.max_attempts.value == 1:
            return
        autoretry = framework.lookup(job, project, "autoretry_for", None)
        names = exception_names(autoretry.value, project)
        backoff = _no_backoff(job.policy.backoff.value, job.policy.max_attempts.value)
        # ``**options`` on the decorator may carry retry_backoff.
        unknown = "**" in job.options and "retry_backoff" not in job.options
        if isinstance(names, tuple) and names and backoff is not None and not unknown:
            location, related = anchor(job, autoretry, project)
            if job.policy.backoff.source.startswith("retry_kwargs"):
                reason = "retry_kwargs['countdown']"
            else:
                delay = framework.lookup(job, project, "default_retry_delay", DEFAULT_RETRY_DELAY)
                reason = f"default_retry_delay, {delay.source}"
            annotated = "task_annotations" in job.policy.backoff.source
            added = None if annotated else set_on_decorator(job, "retry_backoff", "True")
            yield self.finding(
                location,
                f"{job.label()} autoretries {_every(backoff)}, the same delay each time "
                f"({reason}): retry_backoff is not set",
                job,
                related,
                Fix("Add retry_backoff=True", UNSAFE, (added,)) if added else None,
            )
        yield from self._manual_retries(job, project, framework)

    def _manual_retries(self, job: Job, project: Project, framework: Celery) -> Iterator[Finding]:
        """``self.retry()`` in an ``except`` block with a constant countdown, or none at all.

        Outside an ``except`` block a retry with a fixed countdown polls or waits for
        something (a result, a replica, a lock); only retries after a failure need
        to back off.
        """
        assert job.policy is not None
        retry_calls = framework.retry_calls(job, project)
        for site in job.function.calls:
            call = site.call
            if not site.in_handler or call not in retry_calls or call.star_kwargs:
                continue
            countdown = call.kwarg("countdown")
            if countdown is not None:
                delay = seconds(project.resolver.evaluate(countdown))
                location = Location(job.path, call.kwarg_span("countdown") or call.span)
                why = f"countdown={render(countdown)}"
            elif call.kwarg("eta") is None:
                default = framework.lookup(job, project, "default_retry_delay", DEFAULT_RETRY_DELAY)
                delay = seconds(default.value)  # type: ignore[arg-type]
                location = Location(job.path, call.span)
                why = f"no countdown: default_retry_delay, {default.source}"
            else:
                continue
            if not isinstance(delay, float):
                continue
            backoff = _no_backoff(Backoff("fixed", delay), job.policy.max_attempts.value)
            if backoff is None:
                continue
            yield self.finding(
                location,
                f"{job.label()} retries {_every(backoff)} after a failure "
                f"({why}): the delay does not grow between attempts",
                job,
            )

    # -- RQ ------------------------------------------------------------------------------

    def _rq(self, job: Job, project: Project) -> Iterator[Finding]:
        """``Retry(...)`` on the ``@job`` decorator and at each enqueue call."""
        given: list[tuple[Value, Location, tuple[Related, ...], Fix | None]] = []
        option = job.options.get("retry")
        if option is not None:
            location, related = anchor(
                job, Resolved(option.value, option.source, option.location), project
            )
            path = option.location.path if option.location else ""
            given.append((option.value, location, related, _interval_fix(option.written, path)))
        for site in project.sites_of(job):
            call = site.site.call
            value = call.kwarg("retry")
            if site.method in RQ_ENQUEUE and value is not None:
                place = Location(site.path, call.kwarg_span("retry") or call.span)
                fix = _interval_fix(value, site.path)
                given.append((project.resolver.evaluate(value), place, (), fix))
        for value, location, related, fix in given:
            backoff = self._rq_backoff(value, project)
            if backoff is None:
                continue
            how = (
                "Retry has no interval (the default 0)"
                if backoff.kind == "immediate"
                else "Retry waits the same interval every time"
            )
            yield self.finding(
                location, f"{job.label()} is retried {_every(backoff)}: {how}", job, related, fix
            )

    @staticmethod
    def _rq_backoff(value: Value, project: Project) -> Backoff | None:
        if not isinstance(value, Call) or value.star_args or value.star_kwargs:
            return None
        if project.external_name(value.func) not in RETRY_CLASSES:
            return None
        interval = value.kwarg("interval")
        if interval is None and len(value.args) > 1:
            interval = value.args[1]
        maximum = value.kwarg("max")
        if maximum is None and value.args:
            maximum = value.args[0]
        retries = project.resolver.evaluate(maximum)
        attempts = retries + 1 if isinstance(retries, int) else None
        return _no_backoff(interval_backoff(project.resolver.evaluate(interval)), attempts)

    # -- Huey ----------------------------------------------------------------------------

    def _huey(self, job: Job, project: Project) -> Iterator[Finding]:
        """Declared ``retries``; a bare ``RetryTask`` loop is JOB301's business."""
        assert job.policy is not None
        retries = job.options.get("retries")
        if retries is None or not is_number(retries.value) or not retries.value:
            return
        if "**" in job.options and "retry_backoff" not in job.options:
            return
        backoff = _no_backoff(job.policy.backoff.value, job.policy.max_attempts.value)
        if backoff is None:
            return
        delay = (
            "retry_delay=0 (the default)"
            if backoff.kind == "immediate"
            else f"retry_delay={backoff.delay:g}"
        )
        location, related = anchor(
            job, Resolved(retries.value, retries.source, retries.location), project
        )
        yield self.finding(
            location,
            f"{job.label()} is retried {_every(backoff)}: retries={retries.value} with {delay} "
            "and no retry_backoff",
            job,
            related,
        )

    # -- taskiq --------------------------------------------------------------------------

    def _taskiq(self, job: Job, project: Project) -> Iterator[Finding]:
        framework = project.framework("taskiq")
        assert isinstance(framework, Taskiq) and job.policy is not None
        middleware = framework.middlewares.get(job.app or "")
        backoff = _no_backoff(job.policy.backoff.value, job.policy.max_attempts.value)
        if middleware is None or backoff is None or job.policy.max_attempts.value == 1:
            return
        if middleware.kind == SIMPLE:
            how = "SimpleRetryMiddleware never waits between attempts"
        else:
            how = (
                "SmartRetryMiddleware waits default_delay each time without use_delay_exponent=True"
            )
        label = job.options.get("retry_on_error")
        if label is not None and label.location is not None:
            location, related = anchor(
                job, Resolved(label.value, label.source, label.location), project
            )
        else:
            location = job.decorator_location or job.location
            related = (Related(middleware.location, middleware.kind),)
        yield self.finding(
            location, f"{job.label()} is retried {_every(backoff)}: {how}", job, related
        )

    # -- job bodies: arq's Retry and in-job helpers ----------------------------------------

    def _body(
        self, job: Job, function: BodyFunction, project: Project
    ) -> list[tuple[Location, str]]:
        found: list[tuple[Location, str]] = []
        for use in uses_in(function, project):
            if use.immediate(project):
                what = HELPER_DEFAULTS[use.library]
                if use.library == "tenacity" and use.given("wait"):
                    what = "tenacity with wait=wait_none()"
                found.append((use.location, f"{use.action('retries immediately')}: {what}"))
        if job.framework == "arq":
            found.extend(self._arq(job, function, project))
        return found

    @staticmethod
    def _arq(job: Job, function: BodyFunction, project: Project) -> Iterator[tuple[Location, str]]:
        for site in function.facts.calls:
            call = site.call
            if not site.raised or project.external_name(call.func) not in ARQ_RETRY:
                continue
            if call.star_args or call.star_kwargs:
                continue
            defer = call.kwarg("defer")
            if defer is None and call.args:
                defer = call.args[0]
            if defer is None:
                yield (
                    Location(function.path, call.span),
                    said_of_job(function, "raises Retry() without defer")
                    + ": arq runs the job again immediately",
                )
                continue
            delay = seconds(project.resolver.evaluate(defer))
            if not site.in_handler or not isinstance(delay, float):
                continue
            assert job.policy is not None
            backoff = _no_backoff(Backoff("fixed", delay), job.policy.max_attempts.value)
            if backoff is not None:
                yield (
                    Location(function.path, call.kwarg_span("defer") or call.span),
                    said_of_job(function, f"retries {_every(backoff)} after a failure")
                    + f" (Retry(defer={render(defer)})): the delay does not grow between attempts",
                )
