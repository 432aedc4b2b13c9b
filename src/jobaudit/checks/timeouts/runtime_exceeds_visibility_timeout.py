"""JOB408 runtime-exceeds-visibility-timeout: an acks_late task outlives its redelivery window.

With ``acks_late`` a Celery worker acknowledges the message only when the task
finishes.  On Redis and SQS an unacknowledged message becomes visible to other
workers again after the broker's visibility timeout (kombu: 3600 s on Redis,
1800 s on SQS), so a task still running then is started a second time, and a
third after another timeout, while the first copy carries on
(dimagi/open-chat-studio#4084).  The task's time limit is what bounds its run:
a hard limit above the visibility timeout, or no limit at all, lets it happen.

The transport and timeout come from ``jobaudit.broker`` (shared with JOB306);
acks_late and the limits from the task's policy.  When all of it comes from
shared configuration, the finding is reported once, at the ``acks_late``
setting, naming the tasks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.broker import job_broker
from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.common import Problem, by_place
from jobaudit.checks.retries.retry_delay_exceeds_visibility_timeout import duration
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import jobs_label
from jobaudit.model import Job, Location, Resolved

if TYPE_CHECKING:
    from jobaudit.project import Project


class RuntimeExceedsVisibilityTimeout(Rule):
    code = "JOB408"
    name = "runtime-exceeds-visibility-timeout"
    level = "error"
    scope = "job / config"
    gate = "timeouts"
    summary = "An acks_late task may run longer than the broker's visibility timeout and run twice."
    frameworks = ("celery",)

    def check_project(self, project: Project) -> Iterator[Finding]:
        celery = project.framework("celery")
        if not isinstance(celery, Celery):
            return
        found = by_place(project.jobs_of("celery"), lambda job: _problems(job, celery, project))
        for location, text, related, jobs in found:
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0], related)


def _problems(job: Job, celery: Celery, project: Project) -> list[Problem]:
    problem = _problem(job, celery, project)
    return [] if problem is None else [problem]


def _problem(job: Job, celery: Celery, project: Project) -> Problem | None:
    assert job.policy is not None
    acks_late = celery.lookup(job, project, "acks_late", False)
    if acks_late.value is not True or "**" in job.options:
        return None
    broker = job_broker(job, project)
    timeout = broker.timeout
    if timeout is None:
        return None
    hard, soft = job.policy.time_limit, job.policy.soft_time_limit
    if not hard.known or not soft.known:
        return None
    if _bounded(hard):
        assert isinstance(hard.value, float)
        if hard.value <= timeout:
            return None
        runs = f"for up to {duration(hard.value)} (time_limit, {hard.source})"
    elif _bounded(soft) and isinstance(soft.value, float) and soft.value <= timeout:
        return None  # the soft limit ends the run first, unless the task swallows it (JOB406)
    else:
        runs = "and no time limit"
    vt = broker.visibility_timeout
    text = (
        f"runs with acks_late ({acks_late.source}) {runs} on {broker.title}, whose visibility "
        f"timeout is {duration(timeout)} ({vt.source}): a run still going then is handed to "
        "another worker and runs twice at once"
    )
    where, related = _anchor(job, acks_late, hard)
    config = [Related(location, label) for location, label in broker.related()]
    return where, text, tuple(dict.fromkeys([*related, *config]))


def _bounded(limit: Resolved) -> bool:
    """A limit that stops the task (0 means none to Celery's pool)."""
    return isinstance(limit.value, float) and limit.value > 0


def _anchor(job: Job, acks_late: Resolved, hard: Resolved) -> tuple[Location, list[Related]]:
    """The task's own ``time_limit``, else its own ``acks_late``, else the shared setting."""
    own = {option.location for option in job.options.values() if option.location is not None}
    if hard.location in own and hard.location is not None:
        return hard.location, []
    if acks_late.location in own and acks_late.location is not None:
        return acks_late.location, []
    related = []
    if hard.location is not None:
        related.append(Related(hard.location, f"time limit: {hard.source}"))
    if acks_late.location is not None:
        return acks_late.location, related
    return job.decorator_location or job.location, related
