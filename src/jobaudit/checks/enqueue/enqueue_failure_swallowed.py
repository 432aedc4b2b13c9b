"""JOB608 enqueue-failure-swallowed: a failed enqueue that is logged and forgotten.

Enqueueing talks to the broker, and the broker can be down, full or
unreachable.  ``try: task.delay(...) except Exception: log`` turns that into a
job that silently never exists while the caller carries on as if it had been
queued (Celery retries the publish three times first, ``task_publish_retry``,
then raises).  The handler that catches the failure decides: the first
``except`` of the innermost enclosing ``try`` that catches a broker error (a
bare ``except``, ``Exception``/``BaseException``, ``OSError``/
``ConnectionError``, kombu's ``OperationalError``, redis' ``ConnectionError``
and ``RedisError``).  It is reported when its body only logs, passes,
continues or returns nothing; re-raising, returning an error, or keeping the
job somewhere to send it later (an outbox row) is handling it.  Enqueues that
wait for the commit (``delay_on_commit``) fail later, outside the ``try``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.enqueue.calls import Enqueue, enqueue_calls
from jobaudit.facts import FunctionFacts, Handler
from jobaudit.model import Location
from jobaudit.values import render

if TYPE_CHECKING:
    from jobaudit.project import Project

BROKER_ERRORS = frozenset(
    {
        "builtins.Exception",
        "builtins.BaseException",
        "builtins.OSError",
        "builtins.ConnectionError",
        "builtins.IOError",
        "kombu.exceptions.OperationalError",
        "kombu.exceptions.KombuError",
        "redis.ConnectionError",
        "redis.RedisError",
        "redis.exceptions.ConnectionError",
        "redis.exceptions.RedisError",
        "redis.exceptions.TimeoutError",
    }
)
PUBLISH_RETRIES = {
    "celery": " (Celery has already retried the publish 3 times: task_publish_retry)",
}


class EnqueueFailureSwallowed(Rule):
    code = "JOB608"
    name = "enqueue-failure-swallowed"
    level = "warning"
    scope = "call site"
    gate = "enqueue safety"
    summary = "An enqueue whose failure is caught and only logged, so the job is silently lost."
    frameworks = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        swallowed: dict[Location, tuple[Handler, list[Enqueue]]] = {}
        for enqueue in enqueue_calls(project):
            if enqueue.timing != "now" or enqueue.function is None:
                continue
            handler = _catching(enqueue, enqueue.function, project)
            if handler is None or handler.reraises or not handler.only_logs:
                continue
            where = Location(enqueue.path, handler.span)
            swallowed.setdefault(where, (handler, []))[1].append(enqueue)
        for where, (handler, enqueues) in sorted(swallowed.items()):
            first = enqueues[0]
            others = len(enqueues) - 1
            also = f" (and {others} more enqueue{'s' if others > 1 else ''})" if others else ""
            caught = ", ".join(render(t) for t in handler.types)
            clause = f"'except {caught}'" if caught else "bare 'except:'"
            does = "passes" if handler.body_is_trivial else "only logs"
            yield self.finding(
                where,
                f"{first.subject()} is enqueued with {first.spelling()} (line "
                f"{first.call.span[0]}){also} in a try whose {clause} {does}: when "
                "the broker cannot be reached the job is lost and the caller carries on as if "
                f"it had been queued{PUBLISH_RETRIES.get(first.framework, '')}; re-raise, or "
                "keep the job to send it later (an outbox table)",
                first.job,
                tuple(Related(e.location, "the enqueue call") for e in enqueues),
            )


def _catching(enqueue: Enqueue, function: FunctionFacts, project: Project) -> Handler | None:
    """The handler that catches a broker error raised by the call, if any."""
    for index in reversed(enqueue.site.trys):
        handlers = [h for h in function.handlers if h.try_index == index]
        for handler in handlers:
            if not handler.types or any(
                project.external_name(t) in BROKER_ERRORS for t in handler.types
            ):
                return handler
    return None


__all__ = ["EnqueueFailureSwallowed"]
