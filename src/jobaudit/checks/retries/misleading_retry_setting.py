"""JOB307 misleading-retry-setting.

Some retry settings do not mean what they say.  Celery's
``self.retry(max_retries=None)`` reads as "retry forever" but means "use the
task's ``max_retries``" (celery/celery#1875); taskiq's ``max_retries`` label and
arq's ``max_tries`` count attempts, so ``max_retries=3`` runs a taskiq task
three times, not four, and ``max_retries=1`` never retries.  The code is not
wrong, but whoever reads it next will be; the message gives the normalised
number of executions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.frameworks.base import exception_names
from jobaudit.frameworks.celery import DEFAULT_MAX_RETRIES, Celery
from jobaudit.model import Job, Location, Resolved
from jobaudit.values import Mapping, render

if TYPE_CHECKING:
    from jobaudit.project import Project

ATTEMPT_LABELS = {"taskiq": "max_retries", "arq": "max_tries"}
"""The option each framework spells like a retry count but counts attempts with."""


def _executions(attempts: int) -> str:
    if attempts == 1:
        return "1 execution in all: no retry at all"
    retries = attempts - 1
    return f"{attempts} executions in all ({retries} retr{'y' if retries == 1 else 'ies'})"


class MisleadingRetrySetting(Rule):
    code = "JOB307"
    name = "misleading-retry-setting"
    level = "note"
    gate = "retries"
    summary = "A retry setting that does not mean what it says (None as 'default', attempts)."
    frameworks = ("celery", "taskiq", "arq")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework == "celery":
            yield from self._celery(job, project)
        elif job.framework in ATTEMPT_LABELS:
            yield from self._attempts(job, project)

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        """``retry(max_retries=None)``: None means the task's limit, not "no limit"."""
        celery = project.framework("celery")
        assert isinstance(celery, Celery)
        task_limit = self._task_limit(job, project, celery)
        limit = task_limit.value
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            return  # the task's own max_retries=None is unlimited: the call says what it does
        for call in celery.retry_calls(job, project):
            if "max_retries" not in dict(call.kwargs):
                continue
            if project.resolver.evaluate(call.kwarg("max_retries")) is not None:
                continue
            span = call.kwarg_span("max_retries") or call.span
            yield self.finding(
                Location(job.path, span),
                f"{job.label()} calls {render(call.func)}(max_retries=None), which does not "
                f"retry forever: None means the task's own max_retries={limit} "
                f"({task_limit.source}), {_executions(limit + 1)}",
                job,
            )

    @staticmethod
    def _task_limit(job: Job, project: Project, celery: Celery) -> Resolved:
        """The task's ``max_retries``, as ``retry(max_retries=None)`` falls back to it."""
        autoretry = celery.lookup(job, project, "autoretry_for", None)
        kwargs = celery.lookup(job, project, "retry_kwargs", None)
        if (
            exception_names(autoretry.value, project)
            and isinstance(kwargs.value, Mapping)
            and kwargs.value.get("max_retries") is not None
        ):
            value = project.resolver.evaluate(kwargs.value.get("max_retries"))
            return Resolved(value, "retry_kwargs", kwargs.location)
        return celery.lookup(job, project, "max_retries", DEFAULT_MAX_RETRIES)

    def _attempts(self, job: Job, project: Project) -> Iterator[Finding]:
        """taskiq's ``max_retries`` label and arq's ``max_tries`` count executions."""
        assert job.policy is not None
        name = ATTEMPT_LABELS[job.framework]
        attempts = job.policy.max_attempts
        value = attempts.value
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            return  # retries are off or unknown
        if attempts.location is None:
            return  # the framework default is in force: nothing is written to mislead
        if job.framework == "taskiq" and name not in job.options:
            return  # the middleware's default_retry_count, not a label that says "retries"
        if job.policy.retry_on.value == "none":
            return  # arq without ``raise Retry``: the limit never comes into play
        title = project.framework_of(job).title
        location, related = anchor(job, attempts, project)
        yield self.finding(
            location,
            f"{job.label()} has {name}={value} ({attempts.source}), which {title} counts as "
            f"attempts, not retries: {_executions(value)}",
            job,
            related,
        )
