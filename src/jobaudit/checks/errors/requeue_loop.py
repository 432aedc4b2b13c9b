"""JOB205 requeue-loop: Celery ``Reject(..., requeue=True)``.

``raise Reject(reason, requeue=True)`` asks the broker to put the message back.
What that does depends on when the task acknowledges its message (the
effective ``acks_late``: the option, a base class, ``task_annotations`` or
the ``task_acks_late`` setting):

* without ``acks_late`` the message was acknowledged before the task ran,
  so the reject is a no-op (Celery's docs) and the work is simply dropped,
  although the code says it will be tried again;
* with ``acks_late`` the message goes back to the queue with nothing that
  counts deliveries, so an error that does not go away loops forever ("can
  easily result in an infinite message loop", the docs warn).

A body that looks at ``delivery_info['redelivered']`` or an attempt counter
bounds the loop itself and is left alone; an ``acks_late`` that cannot be
resolved keeps the rule silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.huey import counts_attempts
from jobaudit.frameworks.retry_helpers import said_of_job
from jobaudit.model import Job, Location, Resolved
from jobaudit.values import Call, render

if TYPE_CHECKING:
    from jobaudit.facts import FunctionFacts
    from jobaudit.project import Project

REJECT = frozenset({"celery.exceptions.Reject", "celery.Reject"})
REQUEUE_POSITION = 1
"""``Reject(reason=None, requeue=False)``."""
REDELIVERY_WORDS = frozenset({"redelivered", "delivery_count", "x-delivery-count"})


class RequeueLoop(Rule):
    code = "JOB205"
    name = "requeue-loop"
    level = "warning"
    gate = "error handling"
    summary = "Reject(requeue=True) is a no-op without acks_late and a message loop with it."
    frameworks = ("celery",)

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework != "celery":
            return
        celery = project.framework_of(job)
        assert isinstance(celery, Celery)
        acks_late: Resolved | None = None
        for function in project.body(job):
            for site in function.facts.calls:
                if not _requeues(site.call, project):
                    continue
                if acks_late is None:
                    acks_late = celery.lookup(job, project, "acks_late", False)
                text = _consequence(acks_late, function.facts)
                if text is not None:
                    what = said_of_job(function, "raises Reject(requeue=True)")
                    yield self.finding(
                        Location(function.path, site.call.span),
                        f"{job.label()} {what}: {text}",
                        job,
                    )


def _requeues(call: Call, project: Project) -> bool:
    if project.external_name(call.func) not in REJECT or call.star_kwargs:
        return False
    requeue = call.kwarg("requeue")
    if requeue is None and len(call.args) > REQUEUE_POSITION:
        requeue = call.args[REQUEUE_POSITION]
    return project.resolver.evaluate(requeue) is True


def _consequence(acks_late: Resolved, facts: FunctionFacts) -> str | None:
    """What the requeue does under the task's effective ``acks_late``; None when unsure."""
    if acks_late.value is True:
        if counts_attempts(facts) or facts.identifiers.any_of(REDELIVERY_WORDS):
            return None
        return (
            f"with acks_late=True ({acks_late.source}) the message goes straight back to the "
            "queue with no delivery count, so an error that stays loops forever"
        )
    if acks_late.value is False or acks_late.value is None:
        source = acks_late.source
        spelled = f"acks_late={render(acks_late.value)}"
        return (
            f"without acks_late ({spelled}, {source}) the message was acknowledged before the "
            "task ran, so the reject does nothing and the work is dropped"
        )
    return None
