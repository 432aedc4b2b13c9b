"""JOB201 control-flow-exception-swallowed.

Frameworks stop, retry and time out jobs by raising exceptions through the
job's own code: Celery's ``Retry`` (already published when ``self.retry()``
raises it, so a swallowed retry ends this run SUCCESS *and* runs the task
again), ``Reject``/``Ignore``, ``SoftTimeLimitExceeded``, RQ's
``JobTimeoutException``, Huey's ``RetryTask``/``CancelExecution``, arq's and
Dramatiq's ``Retry``, and the ``CancelledError`` that cancels async jobs.  A
broad ``except`` between the raise and the framework that does not re-raise
ends all of that silently.

Which handlers catch what follows the real class hierarchies
(``shared/reference/frameworks.md`` §1.11): Dramatiq's ``TimeLimitExceeded``
and asyncio's ``CancelledError`` derive from ``BaseException``, so only a bare
``except:`` or ``except BaseException`` swallows them.  Handlers are searched
innermost first and in order, so ``except (Retry, SoftTimeLimitExceeded):
raise`` before ``except Exception`` is recognised as correct code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from jobaudit.blocking import is_blocking
from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.common import exception_classes, raises_retry
from jobaudit.facts import CallSite, FunctionFacts, Handler
from jobaudit.fix.model import GUARD_HANDLER, UNSAFE, Edit, Fix, Import
from jobaudit.frameworks.base import raised_name
from jobaudit.frameworks.retry_helpers import body_places, jobs_label
from jobaudit.model import Job, Location
from jobaudit.project import BODY_DEPTH, BodyFunction
from jobaudit.symbols import External
from jobaudit.values import Call, Ref, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

FRAMEWORK_TITLE = {
    "celery": "Celery",
    "huey": "Huey",
    "arq": "arq",
    "dramatiq": "Dramatiq",
    "rq": "RQ",
    "taskiq": "taskiq",
}
PACKAGES: dict[str, tuple[str, ...]] = {
    "celery": ("celery.", "billiard."),
    "huey": ("huey.",),
    "arq": ("arq.",),
    "dramatiq": ("dramatiq.",),
}
"""Where each framework's control-flow exceptions are imported from."""
RAISED: dict[str, dict[str, str]] = {
    "celery": {
        "Retry": "the retry never happens",
        "Reject": "the message is never rejected and the task carries on",
        "Ignore": "the task is not ignored and carries on",
    },
    "huey": {
        "RetryTask": "the retry never happens",
        "CancelExecution": "the task is not cancelled and carries on",
    },
    "arq": {"Retry": "the retry never happens"},
    "dramatiq": {"Retry": "the retry never happens"},
}
"""Exceptions a job raises itself to steer the framework (all ``Exception`` subclasses).

Each maps to what swallowing it costs, for the message.
"""
SUPERCLASSES: dict[tuple[str, str], frozenset[str]] = {
    ("celery", "Retry"): frozenset({"TaskPredicate", "CeleryError"}),
    ("celery", "Reject"): frozenset({"TaskPredicate", "CeleryError"}),
    ("celery", "Ignore"): frozenset({"TaskPredicate", "CeleryError"}),
    ("rq", "JobTimeoutException"): frozenset({"BaseTimeoutException"}),
    ("dramatiq", "Retry"): frozenset({"DramatiqError"}),
    ("dramatiq", "TimeLimitExceeded"): frozenset({"Interrupt"}),
    ("arq", "Retry"): frozenset({"RuntimeError"}),
}
"""Framework base classes between a control-flow exception and ``Exception``."""
TIME_LIMITS = {
    "celery": ("SoftTimeLimitExceeded", "soft time limit"),
    "rq": ("JobTimeoutException", "job timeout"),
    "dramatiq": ("TimeLimitExceeded", "time limit"),
}
"""The exception each framework raises inside the job when its time is up."""
BASE_EXCEPTION_LIMITS = frozenset({"TimeLimitExceeded"})
CANCELLED = "CancelledError"
PUBLISHED_RETRY = "the retry is already published, so this run ends SUCCESS and the task runs again"
RUNS_ON = "the job runs on past its time limit"

Fate = Handler | Literal["escapes", "stopped"]


@dataclass(frozen=True)
class Trigger:
    """A control-flow exception that can be raised at a point of a function."""

    exception: str
    base_exception: bool
    """A ``BaseException`` subclass, which ``except Exception`` does not catch."""
    what: str
    """How the message names it (``Celery's Retry from raise self.retry()``)."""
    consequence: str
    line: int
    trys: tuple[int, ...]
    """The ``try`` bodies around that point, outermost first."""


class ControlFlowExceptionSwallowed(Rule):
    code = "JOB201"
    name = "control-flow-exception-swallowed"
    level = "error"
    gate = "error handling"
    summary = "A broad except swallows the exception a framework uses to retry or time out a job."
    frameworks = ("celery", "huey", "arq", "dramatiq", "rq", "taskiq")
    fixable = True

    def check_project(self, project: Project) -> Iterator[Finding]:
        # A helper's handler is part of every job that calls it: report it once, naming them.
        self._swallows: dict[Location, dict[str, str]] = {}
        for location, text, jobs in body_places(
            project, lambda j, f: self._swallowed(j, f, project)
        ):
            fix = _guard_fix(location, self._swallows.get(location, {}))
            yield self.finding(location, f"{jobs_label(jobs)}: {text}", jobs[0], fix=fix)

    def _swallowed(
        self, job: Job, function: BodyFunction, project: Project
    ) -> list[tuple[Location, str]]:
        """The broad handlers of one function of a job's body that swallow control flow."""
        if job.framework not in FRAMEWORK_TITLE:
            return []
        triggers = _Triggers(job, project)
        found = triggers.raised(function, BODY_DEPTH - function.depth)
        out: list[tuple[Location, str]] = []
        for trigger in found + triggers.time_limits(function):
            handler = swallowing_handler(job, project, function, trigger)
            if handler is not None:
                where = Location(function.path, handler.span)
                swallowed = self._swallows.setdefault(where, {})
                swallowed.setdefault(trigger.exception, job.framework)
                out.append(
                    (
                        Location(function.path, handler.span),
                        f"{_describe(handler)} swallows {trigger.what} (line {trigger.line}); "
                        f"{trigger.consequence}",
                    )
                )
        return out


class _Triggers:
    """Where a job's body can raise its framework's control-flow exceptions."""

    def __init__(self, job: Job, project: Project) -> None:
        self.job = job
        self.project = project
        self.framework = job.framework

    def raised(self, function: BodyFunction, budget: int) -> list[Trigger]:
        """Raises and ``retry()`` calls in ``function``, and those escaping the helpers it calls."""
        facts = function.facts
        wanted = RAISED.get(self.framework, {})
        title = FRAMEWORK_TITLE[self.framework]
        found: list[Trigger] = []
        for raise_ in facts.raises:
            name = raised_name(raise_.value) or ""
            if name in wanted and self._from_framework(raise_.value):
                found.append(
                    Trigger(
                        name,
                        False,
                        f"{title}'s {name}",
                        wanted[name],
                        raise_.span[0],
                        raise_.trys,
                    )
                )
        if self.framework == "celery":
            for site in facts.calls:
                if raises_retry(self.job, facts, site):
                    spelled = "raise self.retry()" if site.raised else "self.retry()"
                    found.append(
                        Trigger(
                            "Retry",
                            False,
                            f"Celery's Retry from {spelled}",
                            PUBLISHED_RETRY,
                            site.call.span[0],
                            site.trys,
                        )
                    )
        if budget > 0:
            found.extend(self._escaping_callees(function, budget))
        return found

    def _escaping_callees(self, function: BodyFunction, budget: int) -> list[Trigger]:
        """Control-flow exceptions that escape a project helper, placed at the call."""
        found: list[Trigger] = []
        for site in function.facts.calls:
            callee = self.project.callee(site.call, function.facts, self.job)
            if callee is None:
                continue
            inner = BodyFunction(callee.facts, callee.path, function.depth + 1, ())
            for trigger in self.raised(inner, budget - 1):
                if _fate(self.job, self.project, inner, trigger) == "escapes":
                    found.append(
                        Trigger(
                            trigger.exception,
                            trigger.base_exception,
                            f"{trigger.what} in '{callee.facts.name}'",
                            trigger.consequence,
                            site.call.span[0],
                            site.trys,
                        )
                    )
        return found

    def _from_framework(self, value: Value | None) -> bool:
        """The raised class is the framework's own, not a project class of the same name."""
        target = value.func if isinstance(value, Call) else value
        if not isinstance(target, Ref):
            return False
        symbol = self.project.resolver.lookup(target.name)
        return isinstance(symbol, External) and symbol.name.startswith(PACKAGES[self.framework])

    def time_limits(self, function: BodyFunction) -> list[Trigger]:
        """Time limits the runtime delivers as an exception wherever the code spends time."""
        facts = function.facts
        if self.framework in {"arq", "taskiq"}:
            # Cancellation reaches a coroutine only where it awaits.
            if not facts.is_async:
                return []
            return [
                Trigger(
                    CANCELLED,
                    True,
                    "asyncio's CancelledError raised inside the await",
                    "the job cannot be cancelled at its timeout or at shutdown",
                    site.call.span[0],
                    site.trys,
                )
                for site in facts.calls
                if site.awaited and site.trys
            ]
        if self.framework not in TIME_LIMITS:
            return []
        policy = self.job.policy
        assert policy is not None
        limit = policy.soft_time_limit if self.framework == "celery" else policy.time_limit
        if not isinstance(limit.value, float):
            return []
        exception, label = TIME_LIMITS[self.framework]
        what = f"{exception}, which the {limit.value:g} s {label} ({limit.source}) raises"
        return [
            Trigger(
                exception,
                exception in BASE_EXCEPTION_LIMITS,
                what,
                RUNS_ON,
                site.call.span[0],
                site.trys,
            )
            for site in facts.calls
            if site.trys and self._takes_time(site, facts)
        ]

    def _takes_time(self, site: CallSite, facts: FunctionFacts) -> bool:
        """A call a time limit is likely to interrupt: I/O, sleeps, awaits, project code."""
        if site.awaited or is_blocking(self.project.external_name(site.call.func)):
            return True
        return self.project.callee(site.call, facts, self.job) is not None


# -- the fix -------------------------------------------------------------------------------

IMPORTED_FROM: dict[tuple[str, str], str] = {
    ("celery", "Retry"): "celery.exceptions",
    ("celery", "Reject"): "celery.exceptions",
    ("celery", "Ignore"): "celery.exceptions",
    ("celery", "SoftTimeLimitExceeded"): "celery.exceptions",
    ("huey", "RetryTask"): "huey.exceptions",
    ("huey", "CancelExecution"): "huey.exceptions",
    ("arq", "Retry"): "arq",
    ("dramatiq", "Retry"): "dramatiq",
    ("dramatiq", "TimeLimitExceeded"): "dramatiq.middleware",
    ("rq", "JobTimeoutException"): "rq.timeouts",
}
"""Where each control-flow exception is imported from, for the fix's import."""


def _guard_fix(location: Location, swallowed: dict[str, str]) -> Fix | None:
    """``except (<what it swallows>): raise`` before the broad handler, with the imports.

    Unsafe: what the broad handler did for these exceptions (logging, marking
    a failure) no longer happens; that is the point, but it is a change in
    behaviour to review.
    """
    names: list[str] = []
    imports: list[Import] = []
    for exception, framework in swallowed.items():
        if exception == CANCELLED:
            names.append("asyncio.CancelledError")
            imports.append(Import("asyncio"))
            continue
        module = IMPORTED_FROM.get((framework, exception))
        if module is None:
            return None
        names.append(exception)
        imports.append(Import(module, exception))
    if not names:
        return None
    edit = Edit(GUARD_HANDLER, location.path, location.span, value=", ".join(names))
    return Fix(f"Re-raise {', '.join(names)} before this handler", UNSAFE, (edit,), tuple(imports))


# -- handlers ------------------------------------------------------------------------------


def _caught(project: Project, value: Value) -> list[str] | None:
    """The class names (last part) an ``except`` type names; None when unknown."""
    names = exception_classes(project, value)
    return None if names is None else [name.rpartition(".")[2] for name in names]


def _handler_names(project: Project, handler: Handler) -> list[str] | None:
    if not handler.types:
        return ["BaseException"]
    names: list[str] = []
    for value in handler.types:
        caught = _caught(project, value)
        if caught is None:
            return None
        names.extend(caught)
    return names


def _catches(job: Job, names: list[str], trigger: Trigger) -> bool:
    if "BaseException" in names or ("Exception" in names and not trigger.base_exception):
        return True
    related = {trigger.exception} | SUPERCLASSES.get((job.framework, trigger.exception), set())
    return bool(related.intersection(names))


def _retries_in(job: Job, facts: FunctionFacts, handler: Handler) -> bool:
    """The handler calls the task's ``retry()``, which raises ``Retry`` in place of the error."""
    block = facts.trys[handler.try_index]
    following = [
        facts.handlers[index].span[0]
        for index in block.handlers
        if facts.handlers[index].span[0] > handler.span[0]
    ]
    end = min(following) if following else block.span[2] + 1
    return any(
        site.in_handler
        and handler.span[0] <= site.call.span[0] < end
        and raises_retry(job, facts, site)
        for site in facts.calls
    )


def _fate(job: Job, project: Project, function: BodyFunction, trigger: Trigger) -> Fate:
    """The handler that ends ``trigger`` without re-raising, or whether it escapes the function.

    ``"stopped"`` covers handlers that deal with it (a specific class, a
    handler of unknown classes, ``return`` after a time limit in the job).
    """
    facts = function.facts
    for index in reversed(trigger.trys):
        for handler_index in facts.trys[index].handlers:
            handler = facts.handlers[handler_index]
            names = _handler_names(project, handler)
            if names is None:
                return "stopped"
            if not _catches(job, names, trigger):
                continue
            if handler.reraises or _retries_in(job, facts, handler):
                break
            ends_job = handler.exits and facts is job.function
            if trigger.consequence == RUNS_ON and ends_job:
                return "stopped"
            return handler
    return "escapes"


def swallowing_handler(
    job: Job, project: Project, function: BodyFunction, trigger: Trigger
) -> Handler | None:
    """The broad handler that ends ``trigger`` without re-raising, if that is what happens."""
    fate = _fate(job, project, function, trigger)
    if not isinstance(fate, Handler):
        return None
    names = _handler_names(project, fate) or []
    return fate if {"Exception", "BaseException"}.intersection(names) else None


def _describe(handler: Handler) -> str:
    if not handler.types:
        return "a bare `except:`"
    names = ", ".join((dotted(t) or "?").rpartition(".")[2] for t in handler.types)
    return f"`except {names}`" if len(handler.types) == 1 else f"`except ({names})`"
