"""JOB301 unbounded-retries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.frameworks.huey import unguarded_retry_tasks
from jobaudit.frameworks.retry_helpers import helper_uses
from jobaudit.model import UNBOUNDED, Job, Location
from jobaudit.symbols import InstanceAttr
from jobaudit.values import Call

if TYPE_CHECKING:
    from jobaudit.project import Project

HELPER_DEFAULTS = {
    "tenacity": "without stop= (tenacity's default is stop_never)",
    "backoff": "with neither max_tries nor max_time (both default to None)",
    "retrying": "without a stop_* argument",
    "retry": "with tries=-1 (the default)",
}


class UnboundedRetries(Rule):
    code = "JOB301"
    name = "unbounded-retries"
    level = "error"
    gate = "retries"
    summary = "A job, or a retry helper inside it, retries forever."
    frameworks = ("celery", "dramatiq", "huey", "temporal", "tenacity")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        yield from self._policy(job)
        if job.framework == "huey":
            yield from self._huey(job, project)
        if job.framework == "temporal":
            yield from self._temporal(job, project)
        for use in helper_uses(job, project):
            if use.unbounded():
                yield self.finding(
                    use.location,
                    f"{job.label()}: {use.where} is retried forever by {use.library} "
                    f"({use.name.rpartition('.')[2]} {HELPER_DEFAULTS[use.library]}); "
                    "the job never fails and never frees its worker",
                    job,
                )

    def _policy(self, job: Job) -> Iterator[Finding]:
        assert job.policy is not None
        attempts = job.policy.max_attempts
        if attempts.value != UNBOUNDED or job.framework not in {"celery", "dramatiq", "custom"}:
            return
        location = attempts.location or job.location
        related: tuple[Related, ...] = ()
        if attempts.location is not None and attempts.location.path != job.path:
            related = (Related(attempts.location, f"set here ({attempts.source})"),)
            location = job.location
        yield self.finding(
            location,
            f"{job.label()} retries without limit: {attempts.source}",
            job,
            related,
        )

    def _huey(self, job: Job, project: Project) -> Iterator[Finding]:
        for function in project.body(job):
            for raised in unguarded_retry_tasks(function.facts):
                yield self.finding(
                    Location(function.path, raised.span),
                    f"{job.label()} raises RetryTask with no attempt counter: RetryTask "
                    "ignores and does not consume retries, so the task can retry forever",
                    job,
                )
            for site in function.facts.calls:
                symbol = project.resolver.symbol_of(site.call.func)
                if not (isinstance(symbol, InstanceAttr) and symbol.attrs == ("rate_limit",)):
                    continue
                if site.call.kwarg("retry") is False or len(site.call.args) >= 4:
                    continue
                yield self.finding(
                    Location(function.path, site.call.span),
                    f"{job.label()} is rate-limited with retry=True (the default): rate-limited "
                    "runs are rescheduled every window without using up retries",
                    job,
                )
        for decorator, span in zip(job.function.decorators, job.function.decorator_spans):
            if not isinstance(decorator, Call):
                continue
            symbol = project.resolver.symbol_of(decorator.func)
            if isinstance(symbol, InstanceAttr) and symbol.attrs == ("rate_limit",):
                if decorator.kwarg("retry") is not False and len(decorator.args) < 4:
                    yield self.finding(
                        Location(job.path, span),
                        f"{job.label()} is rate-limited with retry=True (the default): rate-limited "
                        "runs are rescheduled every window without using up retries",
                        job,
                    )

    def _temporal(self, job: Job, project: Project) -> Iterator[Finding]:
        for site in project.sites_of(job):
            call = site.site.call
            if call.kwarg("schedule_to_close_timeout") is not None or call.star_kwargs:
                continue
            policy = project.resolver.evaluate(call.kwarg("retry_policy"))
            if policy is None:
                reason = "no retry_policy (the default policy has maximum_attempts=0, unlimited)"
            elif isinstance(policy, Call) and not policy.star_kwargs:
                attempts = project.resolver.evaluate(policy.kwarg("maximum_attempts"))
                if attempts not in (None, 0):
                    continue
                reason = "RetryPolicy without maximum_attempts (0 means unlimited)"
            else:
                continue
            yield self.finding(
                Location(site.path, call.span),
                f"{job.label()} is retried without limit: {reason} and no "
                "schedule_to_close_timeout",
                job,
            )
