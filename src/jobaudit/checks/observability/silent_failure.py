"""JOB502 silent-failure: a broad ``except`` in a job that makes the failure disappear.

A job that catches its own error and carries on ends as a success: the
framework does not retry it, the failed-job registry never sees it, and the
error tracker (whose integrations hook the framework's failure path) gets
nothing.  The rule is narrow on purpose, because real jobs are full of
deliberate ``except X: return``:

* only broad handlers count (a bare ``except:``, ``Exception``,
  ``BaseException``, or a tuple holding one); a named exception is a decision
  about an expected condition (``except Order.DoesNotExist: return``);
* only handlers whose body does nothing but ``pass``, ``continue``, ``break``,
  ``return``/``return None`` or log count; anything else (marking a record
  failed, returning an error value, cleaning up) is handling the failure;
* a handler that re-raises, retries, logs with the traceback, sends the error
  to a tracker, or logs at ERROR level or above is not silent: Sentry's logging
  integration turns ERROR records into events by default;
* an ``except`` line that silences a swallowing lint (``# noqa: BLE001``,
  ``S110``, ``S112``, ``# pylint: disable=broad-except``) is a declared
  decision (principle 7: a declared contract beats a guess);
* a ``try`` inside another handler is cleanup on the way out of a failure
  the outer handler deals with (``except Exception: pass`` around removing a
  lock after the real error was reported);
* in a helper the job calls, a ``return`` hands the caller a value it can
  check, so only handlers that fall through are reported there;
* a handler that JOB201 (control flow swallowed), JOB406 (timeout swallowed)
  or JOB608 (enqueue failure swallowed) reports is left to them: one finding
  per handler.

What a handler does with the error is read from the calls in its body
(facts mark each call as sitting in a handler; which one is read from line
ranges); JOB506 reads the same calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.common import exception_classes, handler_at
from jobaudit.checks.enqueue.enqueue_failure_swallowed import EnqueueFailureSwallowed
from jobaudit.checks.errors.control_flow_swallowed import ControlFlowExceptionSwallowed
from jobaudit.checks.timeouts.timeout_exception_swallowed import TimeoutExceptionSwallowed
from jobaudit.facts import CallSite, FunctionFacts, Handler
from jobaudit.frameworks.retry_helpers import body_places, jobs_label
from jobaudit.model import Job, Location
from jobaudit.values import Attr, Call, Local, Ref, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})
TRACEBACK_CALLS = frozenset(
    {
        "exception",
        "print_exc",
        "print_exception",
        "format_exc",
        "format_exception",
        "format_tb",
        "print_tb",
        "exc_info",
        "report_exc_info",
    }
)
"""Calls that write or capture the traceback: ``logger.exception``, ``traceback.*``,
``sys.exc_info()``, ``rollbar.report_exc_info``."""
REPORT_CALLS = frozenset(
    {"capture_exception", "captureException", "capture_message", "captureMessage", "notify"}
)
"""Calls that send the error to a tracker (Sentry, Raven, Bugsnag)."""
LOG_CALLS = frozenset({"debug", "info", "warning", "warn", "log", "print"})
ERROR_LEVELS = frozenset({"error", "critical", "fatal"})
"""Log levels that reach people: Sentry's logging integration turns ERROR records into
events by default, and log alerting keys on them."""
ERROR_NUMBER = 40
"""``logging.ERROR``."""
DECLARED = re.compile(
    r"#\s*noqa:[^#]*\b(BLE001|S110|S112)\b"
    r"|#\s*pylint:\s*disable=[^#]*\b(broad-except|broad-exception-caught|W0703)\b"
)
"""``# noqa: BLE001`` (blind except), ``S110``/``S112`` (``except: pass``/``continue``) or
``# pylint: disable=broad-except`` on the ``except`` line.  ``E722`` is not one: it
allows the bare spelling, and says nothing about what the handler does."""
TRACEBACK_KEYWORDS = ("exc_info", "exception")
"""``logger.error(..., exc_info=True)``; loguru's ``logger.opt(exception=True)``."""


def called_name(func: Value) -> str:
    """The last name of what a call calls: ``warning`` for ``logger.warning``."""
    if isinstance(func, (Ref, Local)):
        return func.name.rpartition(".")[2]
    if isinstance(func, Attr):
        return func.name
    return ""


def is_broad(project: Project, handler: Handler) -> bool:
    """``except:``, ``except Exception``/``BaseException``, or a tuple that holds one."""
    if not handler.types:
        return True
    for value in handler.types:
        names = exception_classes(project, value)
        if names is not None and BROAD.intersection(names):
            return True
    return False


def calls_in(facts: FunctionFacts, handler: Handler) -> list[CallSite]:
    """The calls of the handler's own body (not of a ``try`` nested in it)."""
    return [
        site
        for site in facts.calls
        if site.in_handler and handler_at(facts, site.call.span[0]) is handler
    ]


def passes_traceback(call: Call) -> bool:
    """``exc_info=True``/``exc_info=exc``/``exception=e``: anything but a false constant."""
    for keyword in TRACEBACK_KEYWORDS:
        if keyword in dict(call.kwargs) and call.kwarg(keyword) not in (False, None, 0):
            return True
    return False


def records_traceback(call: Call) -> bool:
    """The call logs the traceback or sends the error to a tracker."""
    name = called_name(call.func)
    return name in TRACEBACK_CALLS or name in REPORT_CALLS or passes_traceback(call)


def reports(facts: FunctionFacts, handler: Handler) -> bool:
    """The handler makes the error visible: a traceback, a tracker, or an ERROR-level log."""
    if handler.logs_traceback:
        return True
    return any(
        records_traceback(site.call) or _error_level(site.call) for site in calls_in(facts, handler)
    )


def _error_level(call: Call) -> bool:
    """``logger.error(...)``, ``logger.critical(...)`` or ``logger.log(logging.ERROR, ...)``."""
    name = called_name(call.func)
    if name in ERROR_LEVELS:
        return True
    if name != "log" or not call.args:
        return False
    level = call.args[0]
    if isinstance(level, int):
        return level >= ERROR_NUMBER
    return called_name(level).lower() in ERROR_LEVELS


def _log_calls(facts: FunctionFacts, handler: Handler) -> list[str]:
    """The logging calls of a handler as written, for the message (``logger.warning()``)."""
    found: list[str] = []
    for site in calls_in(facts, handler):
        if called_name(site.call.func) not in LOG_CALLS:
            continue
        spelled = ".".join((dotted(site.call.func) or "").removeprefix("builtins.").split(".")[-2:])
        if spelled and f"{spelled}()" not in found:
            found.append(f"{spelled}()")
    return found


def _silent(
    job: Job, function: BodyFunction, project: Project, claimed: set[Location]
) -> list[tuple[Location, str]]:
    """The broad handlers of one function of a job's body that make the error disappear."""
    facts = function.facts
    in_job = facts is job.function
    out: list[tuple[Location, str]] = []
    for handler in facts.handlers:
        where = Location(function.path, handler.span)
        if (
            where in claimed
            or handler.reraises
            or not handler.only_logs
            or (handler.exits and not in_job)
            or not is_broad(project, handler)
            or reports(facts, handler)
            or handler_at(facts, facts.trys[handler.try_index].span[0]) is not None
            or _declared(project, facts, handler)
        ):
            continue
        logs = _log_calls(facts, handler)
        if logs:
            does = f"only logs with {', '.join(logs)}, without the traceback,"
        elif handler.exits:
            does = "returns None"
        else:
            does = "does nothing"
        place = (
            "" if in_job else f" in '{facts.name}' (called from {' → '.join(function.via[:-1])})"
        )
        out.append(
            (
                where,
                f"{_describe(handler)}{place} {does} and the job carries on: the failure is "
                "not retried, not recorded as failed and not reported to the error tracker",
            )
        )
    return out


def _declared(project: Project, facts: FunctionFacts, handler: Handler) -> bool:
    """The ``except`` line silences a blind-except lint: the author declared the catch-all."""
    module = project.resolver.modules.get(facts.module)
    line = handler.span[0]
    if module is None or not 0 < line <= len(module.lines):
        return False
    return DECLARED.search(module.lines[line - 1]) is not None


def _describe(handler: Handler) -> str:
    if not handler.types:
        return "a bare `except:`"
    names = ", ".join((dotted(t) or "?").rpartition(".")[2] for t in handler.types)
    return f"`except {names}`" if len(handler.types) == 1 else f"`except ({names})`"


class SilentFailure(Rule):
    code = "JOB502"
    name = "silent-failure"
    level = "warning"
    gate = "error handling"
    summary = "A broad except in a job's body swallows the failure without a traceback or re-raise."
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

    def check_project(self, project: Project) -> Iterator[Finding]:
        claimed = {
            finding.location
            for rule in (
                ControlFlowExceptionSwallowed(),
                TimeoutExceptionSwallowed(),
                EnqueueFailureSwallowed(),
            )
            for finding in rule.check_project(project)
        }
        for location, text, jobs in body_places(
            project, lambda job, function: _silent(job, function, project, claimed)
        ):
            yield self.finding(location, f"{jobs_label(jobs)}: {text}", jobs[0])
