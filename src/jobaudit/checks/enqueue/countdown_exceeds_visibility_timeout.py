"""JOB604 countdown-exceeds-visibility-timeout: a delayed enqueue the broker will not hold.

Celery: a message sent with ``countdown=``/``eta=`` is taken by a worker at
once and kept unacknowledged until its time comes.  On Redis and SQS the
broker gives an unacknowledged message to another worker when the visibility
timeout runs out (kombu 5.7.0: 3600 s on Redis, 1800 s on SQS), so a task
scheduled further ahead than that is delivered again and again while it waits,
and runs once per delivery (kombu#337).  The transport and timeout come from
``jobaudit.broker`` (shared with JOB306, which covers retry delays); an unknown
broker, an unknown delay or a transport without the timeout keeps the rule
silent.

RQ: ``enqueue_in``/``enqueue_at`` put the job in the scheduled registry, and
only a worker started with ``--with-scheduler`` (or ``work(with_scheduler=True)``)
moves it to the queue.  When the project's worker command lines are found and
none of them has the flag, and no code starts a worker with it, the job never
runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.broker import Broker, app_broker, exceeds, job_broker, scheduled_delay
from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.enqueue.calls import Enqueue, enqueue_calls
from jobaudit.checks.retries.retry_delay_exceeds_visibility_timeout import duration
from jobaudit.discovery import iter_call_sites
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Location
from jobaudit.values import render

if TYPE_CHECKING:
    from jobaudit.project import Project

SCHEDULED = frozenset({"apply_async", "apply_async_on_commit"})
RQ_SCHEDULED = frozenset({"enqueue_in", "enqueue_at"})


class CountdownExceedsVisibilityTimeout(Rule):
    code = "JOB604"
    name = "countdown-exceeds-visibility-timeout"
    level = "error"
    scope = "call site / config"
    gate = "enqueue safety"
    summary = "A job is scheduled further ahead than the broker holds an unacknowledged message."
    frameworks = ("celery", "rq")

    def check_project(self, project: Project) -> Iterator[Finding]:
        scheduler = _rq_scheduler(project)
        for enqueue in enqueue_calls(project):
            if enqueue.framework == "celery" and enqueue.method in SCHEDULED:
                yield from self._celery(enqueue, project)
            elif enqueue.framework == "rq" and enqueue.method in RQ_SCHEDULED and scheduler:
                yield self.finding(
                    enqueue.location,
                    f"{enqueue.subject()} is scheduled with {enqueue.spelling()}, but "
                    "no RQ worker runs the scheduler (the worker command has no "
                    "--with-scheduler): the job stays in the scheduled registry and never runs",
                    enqueue.job,
                    (Related(scheduler, "the worker command, without --with-scheduler"),),
                )

    def _celery(self, enqueue: Enqueue, project: Project) -> Iterator[Finding]:
        call = enqueue.call
        delay = scheduled_delay(call, project)
        if not isinstance(delay, float):
            return
        broker = _broker(enqueue, project)
        if broker is None or not exceeds(delay, broker):
            return
        timeout = broker.timeout
        assert timeout is not None
        keyword = "countdown" if call.kwarg("countdown") is not None else "eta"
        written = render(call.kwarg(keyword))
        span = call.kwarg_span(keyword) or call.span
        related = tuple(Related(location, text) for location, text in broker.related())
        yield self.finding(
            Location(enqueue.path, span),
            f"{enqueue.subject()} is scheduled {duration(delay)} ahead ({keyword}={written}), "
            f"longer than the {broker.title} visibility timeout of {duration(timeout)} "
            f"({broker.visibility_timeout.source}): the broker redelivers the waiting message "
            "each time the timeout runs out and the task runs more than once; raise "
            "broker_transport_options['visibility_timeout'] above the longest delay, or keep "
            "far-off work in the database and start it from a periodic task",
            enqueue.job,
            related,
        )


def _broker(enqueue: Enqueue, project: Project) -> Broker | None:
    """The broker of the enqueued task, or of every app when it is named by a string."""
    if enqueue.job is not None:
        return job_broker(enqueue.job, project)
    celery = project.framework("celery")
    if not isinstance(celery, Celery) or not celery.apps:
        return None
    brokers = [app_broker(app, project) for app in celery.apps.values()]
    first = brokers[0]
    if all(b.visibility_timeout.value == first.visibility_timeout.value for b in brokers):
        return first
    return None


def _rq_scheduler(project: Project) -> Location | None:
    """The worker command line, when the project's RQ workers certainly run no scheduler."""
    found = project.worker_options.get("rq", {}).get("with_scheduler")
    if found is None or found[0] is not False:
        return None
    for facts in project.resolver.modules.values():
        for site, _ in iter_call_sites(facts):
            if site.call.kwarg("with_scheduler") is not None:
                return None  # ``worker.work(with_scheduler=...)``: started from code
    return found[1]


__all__ = ["CountdownExceedsVisibilityTimeout"]
