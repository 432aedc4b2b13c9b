"""JOB103 unbounded-redelivery.

Celery acknowledges an ``acks_late`` task even when the worker process running
it dies, unless ``reject_on_worker_lost`` sends the message back to the queue.
Nothing counts those returns: a task that kills its worker (out of memory, a
segfault in a C extension) comes back, kills the next worker, and so on;
Celery's docs warn it "can cause message loops".  Celery 5.7's
``retry_on_worker_lost`` re-sends it "the same way retry would", bounded by
``max_retries``.  Huey's documented way to survive a crash, a
``SIGNAL_INTERRUPTED`` handler calling ``huey.enqueue(task)``, loops the same
way unless the handler counts.  Without ``acks_late`` the setting does
nothing, so the rule stays silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.idempotency.reruns import interrupt_handlers
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import jobs_label
from jobaudit.model import Job, Location

if TYPE_CHECKING:
    from jobaudit.project import Project

LOOP = (
    "when its worker process dies (out of memory, SIGKILL) the message goes back to the queue "
    "with no limit, so a task that kills its worker loops forever; retry_on_worker_lost=True "
    "(Celery 5.7+) re-sends it within max_retries instead"
)


class UnboundedRedelivery(Rule):
    code = "JOB103"
    name = "unbounded-redelivery"
    level = "error"
    scope = "job / config"
    gate = "idempotency"
    summary = "A job lost with its worker is put back on the queue with no limit."
    frameworks = ("celery", "huey")

    def check_project(self, project: Project) -> Iterator[Finding]:
        yield from self._celery(project)
        yield from self._huey(project)

    def _celery(self, project: Project) -> Iterator[Finding]:
        celery = project.framework("celery")
        if not isinstance(celery, Celery):
            return
        shared: dict[Location, tuple[str, list[Job]]] = {}
        for job in project.jobs_of("celery"):
            assert job.policy is not None
            reject = celery.lookup(job, project, "reject_on_worker_lost", False)
            if reject.value is not True or job.policy.delivery.value != "at-least-once":
                continue
            if celery.lookup(job, project, "retry_on_worker_lost", False).value is True:
                continue
            option = job.options.get("reject_on_worker_lost")
            if option is not None and option.location is not None and option.value is True:
                yield self.finding(
                    option.location,
                    f"{job.label()} sets reject_on_worker_lost=True with acks_late: {LOOP}",
                    job,
                )
                continue
            where = reject.location or job.decorator_location or job.location
            shared.setdefault(where, (reject.source, []))[1].append(job)
        for where in sorted(shared):
            source, jobs = shared[where]
            verb = "acknowledges" if len(jobs) == 1 else "acknowledge"
            yield self.finding(
                where,
                f"reject_on_worker_lost=True ({source}) applies to {jobs_label(jobs)}, which "
                f"{verb} late: {LOOP}",
                jobs[0] if len(jobs) == 1 else None,
            )

    def _huey(self, project: Project) -> Iterator[Finding]:
        if not project.jobs_of("huey"):
            return
        for reenqueue in interrupt_handlers(project):
            if reenqueue.counted:
                continue
            yield self.finding(
                reenqueue.location,
                f"SIGNAL_INTERRUPTED handler '{reenqueue.handler.name}' enqueues every "
                "interrupted task again without counting: a task whose run kills the consumer "
                "(out of memory, SIGKILL) is put back and run again forever",
            )
