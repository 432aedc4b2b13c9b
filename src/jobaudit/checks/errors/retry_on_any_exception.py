"""JOB202 retry-on-any-exception."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks.retry_helpers import BROAD, helper_uses
from jobaudit.model import Job, Location
from jobaudit.values import Call, Ref

if TYPE_CHECKING:
    from jobaudit.project import Project


def attempts_text(job: Job) -> str:
    assert job.policy is not None
    value = job.policy.max_attempts.value
    if isinstance(value, int):
        return f"up to {value} times"
    if value == "unbounded":
        return "without limit"
    return ""


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
        runs = attempts_text(job)
        if job.framework == "celery" and policy.retry_on.value == "all":
            option = job.options.get("autoretry_for")
            if option is not None:
                yield self.finding(
                    option.location or job.location,
                    f"{job.label()} retries {runs} on any Exception (autoretry_for="
                    f"(Exception,)); permanent errors are retried too",
                    job,
                )
        elif (
            job.framework == "dramatiq"
            and policy.max_attempts.value not in (1,)
            and policy.max_attempts.known
        ):
            if "throws" not in job.options and "retry_when" not in job.options:
                yield self.finding(
                    job.decorator_location or job.location,
                    f"{job.label()} retries every exception {runs} (no throws= or retry_when=); "
                    "permanent errors are retried too",
                    job,
                )
        elif job.framework == "rq" and policy.retry_on.value == "all":
            location = policy.max_attempts.location or job.location
            yield self.finding(
                location,
                f"{job.label()} is retried {runs} on any exception: RQ's Retry cannot tell "
                "permanent errors from transient ones",
                job,
            )
        elif job.framework == "taskiq" and policy.retry_on.value == "all":
            label = job.options.get("retry_on_error")
            yield self.finding(
                label.location if label is not None and label.location else job.location,
                f"{job.label()} is retried {runs} on any exception: no types_of_exceptions",
                job,
            )
        elif job.framework == "temporal":
            yield from self._temporal(job, project)
        for use in helper_uses(job, project):
            if use.library == "tenacity" and not use.given("retry"):
                yield self.finding(
                    use.location,
                    f"{job.label()}: {use.where} is retried by tenacity on any Exception "
                    "(no retry=; the default is retry_if_exception_type())",
                    job,
                )
            elif use.name == "backoff.on_exception" and not use.given("giveup"):
                caught = use.call.args[1] if len(use.call.args) > 1 else use.call.kwarg("exception")
                if isinstance(caught, Ref) and caught.name in BROAD:
                    yield self.finding(
                        use.location,
                        f"{job.label()}: {use.where} is retried by backoff on any Exception "
                        "without giveup=",
                        job,
                    )

    def _temporal(self, job: Job, project: Project) -> Iterator[Finding]:
        marks_permanent = any(
            isinstance(r.value, Call)
            and (project.external_name(r.value.func) or "").endswith("ApplicationError")
            and r.value.kwarg("non_retryable") is True
            for function in project.body(job)
            for r in function.facts.raises
        )
        if marks_permanent:
            return
        for site in project.sites_of(job):
            policy = project.resolver.evaluate(site.site.call.kwarg("retry_policy"))
            if not isinstance(policy, Call) or policy.star_kwargs:
                continue
            if policy.kwarg("non_retryable_error_types") is not None:
                continue
            yield self.finding(
                Location(site.path, policy.span if policy.span[0] else site.site.call.span),
                f"{job.label()} is retried on every error: RetryPolicy has no "
                "non_retryable_error_types and the activity raises no "
                "ApplicationError(non_retryable=True)",
                job,
            )
