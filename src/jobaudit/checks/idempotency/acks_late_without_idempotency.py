"""JOB102 acks-late-without-idempotency.

Acknowledging a message after the job ran (Celery ``acks_late``, Dramatiq,
arq, taskiq's ``when_saved`` on a broker that redelivers, a Huey handler that
re-enqueues interrupted tasks) trades lost jobs for repeated ones: a worker
that dies mid-run gets the whole job run again.  The Celery docs make it a
promise: set ``acks_late`` "if your task is idempotent".  The rule asks for
that promise to be kept visibly: a guard, or a ``# jobaudit: idempotent``
declaration, on a job whose body makes an external write a redelivery repeats.
It points at the setting that turns redelivery on, or at the job when that is
the framework's own behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.idempotency.reruns import interrupt_handlers, rerun
from jobaudit.checks.idempotency.unguarded_side_effect import through, unguarded_writes
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Job, Location

if TYPE_CHECKING:
    from jobaudit.project import Project

BY_DESIGN = {
    "dramatiq": "Dramatiq acknowledges a message only after the actor returns",
    "arq": "arq runs a job again when it is cancelled at shutdown",
}


class AcksLateWithoutIdempotency(Rule):
    code = "JOB102"
    name = "acks-late-without-idempotency"
    level = "warning"
    gate = "idempotency"
    summary = (
        "A job acknowledged after it runs (redelivered after a crash) is neither guarded "
        "nor declared idempotent."
    )
    frameworks = ("celery", "dramatiq", "arq", "taskiq", "huey")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        redelivery = self._redelivery(job, project)
        if redelivery is None:
            return
        location, reason, related = redelivery
        again, writes = unguarded_writes(job, project)
        if again is None or not writes:
            return
        first = writes[0]
        yield self.finding(
            location,
            f"{job.label()} runs again when its worker dies mid-run ({reason}), but it has no "
            f"idempotency guard and is not declared idempotent; it {through(first.function)}"
            f"{first.action}",
            job,
            related,
        )

    def _redelivery(
        self, job: Job, project: Project
    ) -> tuple[Location, str, tuple[Related, ...]] | None:
        """Where redelivery is turned on for the job, why, and related places."""
        assert job.policy is not None
        own = job.decorator_location or job.location
        if job.framework == "celery":
            celery = project.framework("celery")
            assert isinstance(celery, Celery)
            acks_late = celery.lookup(job, project, "acks_late", False)
            if acks_late.value is not True:
                return None
            location, related = anchor(job, acks_late, project)
            return location, f"acks_late=True, {acks_late.source}", related
        if job.framework in BY_DESIGN:
            return own, BY_DESIGN[job.framework], ()
        if job.framework == "taskiq":
            again = rerun(job, project)
            if again is None or not again.redelivered:
                return None
            option = job.options.get("ack_type")
            where = option.location if option is not None and option.location else own
            return where, again.reason, ()
        if job.framework == "huey":
            handlers = [h for h in interrupt_handlers(project) if h.every_task]
            if not handlers:
                return None
            related = tuple(
                Related(h.location, "enqueues every interrupted task again") for h in handlers
            )
            return own, "a SIGNAL_INTERRUPTED handler enqueues interrupted tasks again", related
        return None
