"""JOB406 timeout-exception-swallowed: a job catches its own time limit and carries on.

Frameworks stop a job at its time limit by raising an exception inside it:
Celery's ``SoftTimeLimitExceeded``, RQ's ``JobTimeoutException``, Huey's
``TaskTimeout``, Dramatiq's ``TimeLimitExceeded`` and, for async arq and
taskiq jobs, ``asyncio.CancelledError``.  A handler for it is the place to
clean up and end the job; one that neither re-raises nor returns lets the job
run on past its limit, as if the limit had never fired.

This rule reports handlers that *name* the timeout exception (or its framework
base class).  A broad ``except Exception`` / ``except BaseException`` / bare
``except:`` that swallows the same exception is JOB201's, which reports it
with the other control-flow exceptions, so each handler is reported once.
Which exception each framework raises comes from JOB201's tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.common import exception_classes, handler_end, raises_retry
from jobaudit.checks.errors.control_flow_swallowed import SUPERCLASSES, TIME_LIMITS
from jobaudit.facts import FunctionFacts, Handler, TryBlock
from jobaudit.frameworks.retry_helpers import body_places, jobs_label
from jobaudit.model import Job, Location, Resolved
from jobaudit.values import dotted

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

CANCELLED = "CancelledError"
ASYNC_FRAMEWORKS = frozenset({"arq", "taskiq"})
LIMIT_EXCEPTIONS: dict[str, str] = {
    **{framework: exception for framework, (exception, _) in TIME_LIMITS.items()},
    "huey": "TaskTimeout",
    "arq": CANCELLED,
    "taskiq": CANCELLED,
}
"""The exception each framework raises inside a job whose time is up."""
PACKAGES: dict[str, tuple[str, ...]] = {
    "celery": ("celery.", "billiard."),
    "rq": ("rq.",),
    "huey": ("huey.",),
    "dramatiq": ("dramatiq.",),
    "arq": ("asyncio.", "concurrent.futures."),
    "taskiq": ("asyncio.", "concurrent.futures."),
}
BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})
LOGGING = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "print"}
)
"""Calls after a handler that are not more work (logging the timeout is fine)."""


class TimeoutExceptionSwallowed(Rule):
    code = "JOB406"
    name = "timeout-exception-swallowed"
    level = "error"
    gate = "timeouts"
    summary = "A handler catches the job's timeout exception and the job carries on past its limit."
    frameworks = ("celery", "rq", "huey", "dramatiq", "arq", "taskiq")

    def check_project(self, project: Project) -> Iterator[Finding]:
        for location, text, jobs in body_places(project, lambda j, f: _swallowed(j, f, project)):
            yield self.finding(location, f"{jobs_label(jobs)}: {text}", jobs[0])


def _swallowed(job: Job, function: BodyFunction, project: Project) -> list[tuple[Location, str]]:
    exception = LIMIT_EXCEPTIONS.get(job.framework)
    limit = _limit(job)
    if exception is None or limit is None:
        return []
    facts = function.facts
    if exception == CANCELLED and not facts.is_async:
        return []  # cancellation reaches a coroutine only where it awaits
    names = {exception} | SUPERCLASSES.get((job.framework, exception), frozenset())
    out: list[tuple[Location, str]] = []
    for block in facts.trys:
        handler = _first_catching(block, facts, names, job, project)
        if handler is None or handler.reraises or handler.exits:
            continue
        if _retries_in(job, handler, facts):
            continue
        goes_on = _goes_on(handler, block, facts)
        if goes_on is None:
            continue
        caught = ", ".join((dotted(t) or "?").rpartition(".")[2] for t in handler.types)
        out.append(
            (
                Location(function.path, handler.span),
                f"`except {caught}` catches the {_describe(exception, limit)} and {goes_on}: "
                "the limit no longer stops the job",
            )
        )
    return out


def _limit(job: Job) -> Resolved | None:
    """The limit that raises the exception inside the job, when one applies."""
    assert job.policy is not None
    limit = job.policy.soft_time_limit if job.framework == "celery" else job.policy.time_limit
    if isinstance(limit.value, float) and limit.value > 0:
        return limit
    return None


def _describe(exception: str, limit: Resolved) -> str:
    assert isinstance(limit.value, float)
    if exception == CANCELLED:
        return f"CancelledError that ends the job at its {limit.value:g} s timeout ({limit.source})"
    kind = "soft time limit" if exception == "SoftTimeLimitExceeded" else "time limit"
    return f"{exception} raised at the {limit.value:g} s {kind} ({limit.source})"


def _first_catching(
    block: TryBlock, facts: FunctionFacts, names: set[str], job: Job, project: Project
) -> Handler | None:
    """The handler of ``block`` that names the timeout, when no earlier one catches it.

    A broad handler that gets there first (or that names it along with
    ``Exception``) is JOB201's to report.
    """
    for index in block.handlers:
        handler = facts.handlers[index]
        caught = _caught(handler, project)
        if caught is None:
            return None
        if not handler.types or BROAD & set(caught):
            return None
        packages = PACKAGES[job.framework]
        if any(name.startswith(packages) and name.rpartition(".")[2] in names for name in caught):
            return handler
    return None


def _caught(handler: Handler, project: Project) -> list[str] | None:
    """The classes an ``except`` clause names, as external or project names; None if unknown."""
    names: list[str] = []
    for value in handler.types:
        found = exception_classes(project, value)
        if found is None:
            return None
        names.extend(found)
    return names


def _retries_in(job: Job, handler: Handler, facts: FunctionFacts) -> bool:
    """The task's ``retry()`` in the handler raises Celery's ``Retry``, which ends this run."""
    end = handler_end(facts, handler)
    return any(
        site.in_handler
        and handler.span[0] <= site.call.span[0] <= end
        and raises_retry(job, facts, site)
        for site in facts.calls
    )


def _goes_on(handler: Handler, block: TryBlock, facts: FunctionFacts) -> str | None:
    """How the code goes on after the handler, or None when the job ends there."""
    if block.in_loop and not handler.breaks:
        return "the loop goes on to its next iteration"
    for site in facts.calls:
        line = site.call.span[0]
        if line <= block.span[2] or (dotted(site.call.func) or "").rpartition(".")[2] in LOGGING:
            continue
        called = (dotted(site.call.func) or "the next call").rpartition(".")[2]
        return f"goes on to {called}() (line {line})"
    return None
