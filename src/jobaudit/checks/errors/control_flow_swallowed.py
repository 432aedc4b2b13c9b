"""JOB201 control-flow-exception-swallowed.

A broad ``except`` that does not re-raise swallows the exceptions frameworks
use for control flow: Celery's ``Retry`` (already published, so the job runs
again *and* this run ends SUCCESS), ``SoftTimeLimitExceeded``, RQ's
``JobTimeoutException``, Huey's ``RetryTask``, the ``CancelledError`` that
enforces async timeouts.  Which ones ``except Exception`` catches differs per
framework (``shared/reference/frameworks.md`` §1.11).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.blocking import is_blocking
from jobaudit.checks.base import Finding, Rule
from jobaudit.facts import FunctionFacts, Handler
from jobaudit.frameworks.base import raised_name
from jobaudit.model import Job, Location
from jobaudit.symbols import ProjectFunction
from jobaudit.values import Local, Ref, dotted

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

BROAD_EXCEPTION = "builtins.Exception"
BROAD_BASE = "builtins.BaseException"


@dataclass(frozen=True)
class Trigger:
    """An exception the framework may raise at a point inside a ``try`` body."""

    exception: str
    base_exception: bool
    """True for BaseException subclasses, which ``except Exception`` does not catch."""
    what: str
    line: int
    trys: tuple[int, ...]


def catches(handler: Handler, trigger: Trigger) -> bool:
    if not handler.types:
        return True
    for value in handler.types:
        name = dotted(value) or ""
        if name == BROAD_BASE:
            return True
        if name == BROAD_EXCEPTION and not trigger.base_exception:
            return True
        if name.rpartition(".")[2] == trigger.exception:
            return True
    return False


def swallowing_handler(function: FunctionFacts, trigger: Trigger) -> Handler | None:
    """The handler that ends the trigger's propagation without re-raising, if any."""
    for index in reversed(trigger.trys):
        block = function.trys[index]
        for handler_index in block.handlers:
            handler = function.handlers[handler_index]
            if catches(handler, trigger):
                if handler.reraises:
                    break
                return handler
    return None


class ControlFlowExceptionSwallowed(Rule):
    code = "JOB201"
    name = "control-flow-exception-swallowed"
    level = "error"
    gate = "error handling"
    summary = "A broad except swallows the exception a framework uses to retry or time out a job."
    frameworks = ("celery", "huey", "arq", "dramatiq", "rq", "taskiq")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        reported: set[tuple[str, int]] = set()
        for function in project.body(job):
            for trigger in self.triggers(job, project, function):
                handler = swallowing_handler(function.facts, trigger)
                if handler is None or not _is_broad(handler):
                    continue
                key = (function.path, handler.span[0])
                if key in reported:
                    continue
                reported.add(key)
                yield self.finding(
                    Location(function.path, handler.span),
                    f"{job.label()}: {_describe(handler)} swallows {trigger.what} "
                    f"(line {trigger.line}){_consequence(job, trigger)}",
                    job,
                )

    def triggers(self, job: Job, project: Project, function: BodyFunction) -> list[Trigger]:
        facts = function.facts
        assert job.policy is not None
        found: list[Trigger] = []
        for raised in facts.raises:
            if not raised.trys:
                continue
            name = raised_name(raised.value)
            if name in _RAISED.get(job.framework, ()):
                base = job.framework == "dramatiq" and name == "TimeLimitExceeded"
                found.append(
                    Trigger(
                        name or "",
                        base,
                        f"{_FRAMEWORK[job.framework]}'s {name}",
                        raised.span[0],
                        raised.trys,
                    )
                )
        if job.framework == "celery" and function.depth == 0:
            for site in facts.calls:
                func = site.call.func
                name = func.name if isinstance(func, (Local, Ref)) else ""
                if site.trys and (
                    name == "self.retry" or name.endswith(f"{job.function.name}.retry")
                ):
                    if not site.raised:
                        found.append(
                            Trigger(
                                "Retry",
                                False,
                                "Celery's Retry raised by self.retry()",
                                site.call.span[0],
                                site.trys,
                            )
                        )
                    else:
                        found.append(
                            Trigger(
                                "Retry",
                                False,
                                "Celery's Retry from raise self.retry()",
                                site.call.span[0],
                                site.trys,
                            )
                        )
        timeout = self._timeout_exception(job)
        if timeout is not None:
            exception, base, what = timeout
            for site in facts.calls:
                if site.trys and self._can_take_time(site.call, project, site.awaited):
                    found.append(Trigger(exception, base, what, site.call.span[0], site.trys))
        return found

    def _timeout_exception(self, job: Job) -> tuple[str, bool, str] | None:
        assert job.policy is not None
        policy = job.policy
        limited = isinstance(policy.time_limit.value, float)
        soft = isinstance(policy.soft_time_limit.value, float)
        if job.framework == "celery" and soft:
            return "SoftTimeLimitExceeded", False, "SoftTimeLimitExceeded (soft_time_limit is set)"
        if job.framework == "rq" and limited:
            return "JobTimeoutException", False, "RQ's JobTimeoutException"
        if job.framework == "dramatiq" and limited:
            return "TimeLimitExceeded", True, "Dramatiq's TimeLimitExceeded"
        if job.framework in {"arq", "taskiq"} and job.function.is_async:
            return (
                "CancelledError",
                True,
                "the CancelledError that enforces the timeout and shutdown",
            )
        return None

    def _can_take_time(self, call: object, project: Project, awaited: bool) -> bool:
        from jobaudit.values import Call

        assert isinstance(call, Call)
        if awaited:
            return True
        if is_blocking(project.external_name(call.func)):
            return True
        if isinstance(call.func, Ref):
            return isinstance(project.resolver.lookup(call.func.name), ProjectFunction)
        return False


_FRAMEWORK = {
    "celery": "Celery",
    "huey": "Huey",
    "arq": "arq",
    "dramatiq": "Dramatiq",
    "rq": "RQ",
    "taskiq": "taskiq",
}
_RAISED: dict[str, frozenset[str]] = {
    "celery": frozenset({"Retry", "Reject", "Ignore"}),
    "huey": frozenset({"RetryTask", "CancelExecution"}),
    "arq": frozenset({"Retry"}),
    "dramatiq": frozenset({"Retry"}),
}


def _is_broad(handler: Handler) -> bool:
    if not handler.types:
        return True
    return any((dotted(t) or "") in {BROAD_EXCEPTION, BROAD_BASE} for t in handler.types)


def _describe(handler: Handler) -> str:
    if not handler.types:
        return "a bare `except:`"
    names = ", ".join((dotted(t) or "?").removeprefix("builtins.") for t in handler.types)
    return f"`except {names}`" if len(handler.types) == 1 else f"`except ({names})`"


def _consequence(job: Job, trigger: Trigger) -> str:
    if job.framework == "celery" and trigger.exception == "Retry":
        return "; the retry is already published, so this run ends SUCCESS and the task runs again"
    if trigger.exception in {"SoftTimeLimitExceeded", "JobTimeoutException", "TimeLimitExceeded"}:
        return "; the job runs on past its time limit"
    if trigger.exception == "CancelledError":
        return "; the job cannot be cancelled at its timeout or at shutdown"
    return "; the retry never happens"
