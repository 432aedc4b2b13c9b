"""JOB302 retry-without-backoff."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks.base import raised_name
from jobaudit.frameworks.retry_helpers import helper_uses
from jobaudit.frameworks.taskiq import SIMPLE, Taskiq
from jobaudit.model import Backoff, Job, Location
from jobaudit.symbols import seconds
from jobaudit.values import Call, Local, Ref

if TYPE_CHECKING:
    from jobaudit.project import Project


class RetryWithoutBackoff(Rule):
    code = "JOB302"
    name = "retry-without-backoff"
    level = "warning"
    gate = "retries"
    summary = "Retries come at a fixed interval or immediately, hammering a failing service."
    frameworks = ("celery", "rq", "huey", "arq", "taskiq", "tenacity")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        checker = getattr(self, f"_{job.framework}", None)
        if checker is not None:
            yield from checker(job, project)
        for use in helper_uses(job, project):
            if use.library == "tenacity" and not use.given("wait"):
                yield self.finding(
                    use.location,
                    f"{job.label()}: {use.where} is retried by tenacity without wait= "
                    "(the default wait_none() retries immediately)",
                    job,
                )

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        backoff = job.policy.backoff
        autoretry = job.options.get("autoretry_for")
        if (
            autoretry is not None
            and isinstance(backoff.value, Backoff)
            and backoff.value.kind == "fixed"
            and "autoretry_for" in backoff.source
        ):
            yield self.finding(
                autoretry.location or job.location,
                f"{job.label()} autoretries after a fixed {backoff.value.describe()[6:]} "
                "(default_retry_delay): retry_backoff is not set",
                job,
            )
        retry_names = {f"{job.function.name}.retry", "self.retry"}
        for site in job.function.calls:
            func = site.call.func
            name = func.name if isinstance(func, (Local, Ref)) else ""
            if not site.in_handler or not any(
                name == n or name.endswith(f".{n}") for n in retry_names
            ):
                continue
            countdown = site.call.kwarg("countdown")
            if countdown is None:
                continue
            value = seconds(project.resolver.evaluate(countdown))
            if isinstance(value, float):
                yield self.finding(
                    Location(job.path, site.call.kwarg_span("countdown") or site.call.span),
                    f"{job.label()} retries every {value:g} s (countdown={value:g}): the delay "
                    "does not grow between attempts",
                    job,
                )

    def _rq(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        backoff = job.policy.backoff
        if not isinstance(backoff.value, Backoff) or backoff.value.kind not in {
            "immediate",
            "fixed",
        }:
            return
        what = (
            "immediately (interval defaults to 0)"
            if backoff.value.kind == "immediate"
            else f"every {backoff.value.delay:g} s"
        )
        yield self.finding(
            backoff.location or job.location,
            f"{job.label()} is retried {what}: give Retry an increasing interval list",
            job,
        )

    def _huey(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        backoff = job.policy.backoff
        if not isinstance(backoff.value, Backoff) or backoff.value.kind not in {
            "immediate",
            "fixed",
        }:
            return
        retries = job.options.get("retries")
        what = (
            "immediately (retry_delay defaults to 0)"
            if backoff.value.kind == "immediate"
            else f"every {backoff.value.delay:g} s"
        )
        yield self.finding(
            retries.location if retries is not None and retries.location else job.location,
            f"{job.label()} is retried {what}: set retry_backoff to grow the delay",
            job,
        )

    def _arq(self, job: Job, project: Project) -> Iterator[Finding]:
        for raised in job.function.raises:
            call = raised.value
            if not isinstance(call, Call) or raised_name(call) != "Retry":
                continue
            if project.external_name(call.func) not in {"arq.Retry", "arq.worker.Retry"}:
                continue
            if call.args or call.kwarg("defer") is not None or call.star_kwargs:
                continue
            yield self.finding(
                Location(job.path, raised.span),
                f"{job.label()} raises Retry() without defer: the job is retried immediately",
                job,
            )

    def _taskiq(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        framework = project.framework("taskiq")
        if not isinstance(framework, Taskiq):
            return
        middleware = framework.middlewares.get(job.app or "")
        if middleware is None or job.policy.max_attempts.value == 1:
            return
        backoff = job.policy.backoff
        if not isinstance(backoff.value, Backoff) or backoff.value.kind not in {
            "immediate",
            "fixed",
        }:
            return
        reason = (
            "SimpleRetryMiddleware never delays a retry"
            if middleware.kind == SIMPLE
            else "SmartRetryMiddleware without use_delay_exponent=True waits a fixed delay"
        )
        yield self.finding(
            Location(job.path, job.function.span),
            f"{job.label()} is retried without backoff: {reason}",
            job,
        )
