"""JOB101 unguarded-side-effect.

Every job framework delivers at least once somewhere: a retry after an error,
a message delivered again after a worker died, a job re-run after a shutdown.
A job that then repeats an external write (a POST, a mail, a payment, a queue
message, a new row) repeats it for the user too: two receipts, two charges.
The rule reports each write a second run would repeat, at the call, when the
job can run more than once (``reruns.rerun``), the write is not protected by
a guard (``guards``) and the job is not declared idempotent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.idempotency.reruns import Rerun, repeats, rerun
from jobaudit.guards import write_guard
from jobaudit.model import Job
from jobaudit.side_effects import Write, job_writes

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project


def unguarded_writes(job: Job, project: Project) -> tuple[Rerun | None, list[Write]]:
    """How the job runs again, and the writes a second run repeats with nothing to stop it."""
    assert job.policy is not None
    guard = job.policy.idempotency_guard
    if not guard.known or guard.value is not None:
        return None, []
    again = rerun(job, project)
    if again is None:
        return None, []
    return again, [
        write
        for write in job_writes(job, project)
        if write_guard(write, project) is None and repeats(write, again, job, project)
    ]


def through(function: BodyFunction) -> str:
    """``calls 'notify' → '_post', which `` for a helper of the job, else nothing."""
    chain = function.via[1:]
    if not chain:
        return ""
    return "calls " + " → ".join(f"'{name}'" for name in chain) + ", which "


class UnguardedSideEffect(Rule):
    code = "JOB101"
    name = "unguarded-side-effect"
    level = "warning"
    gate = "idempotency"
    summary = "A job that can run twice makes an external write with no idempotency guard."
    frameworks = (
        "celery",
        "rq",
        "dramatiq",
        "huey",
        "arq",
        "taskiq",
        "django_tasks",
        "temporal",
    )

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        again, writes = unguarded_writes(job, project)
        if again is None:
            return
        for write in writes:
            finding = self.finding(
                write.location,
                f"{job.label()} can run {again.times} ({again.reason}) and "
                f"{through(write.function)}{write.action} with no idempotency guard",
                job,
            )
            yield replace(finding, level=again.level) if again.level else finding
