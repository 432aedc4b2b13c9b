"""JOB305 nested-retry-layers.

A retry helper (tenacity, backoff, retrying, retry, stamina) inside a job that
the framework retries as well multiplies the attempts: five tenacity attempts
in each of four Celery executions call a failing service twenty times, with
the helper's waits inside the worker's time limit and the framework's delays
between them.  Nobody chose twenty.  The rule reports the product, from the
helper's own limit and the job's normalised ``max_attempts``, where the helper
is written.

It only counts a layer the failure actually reaches: the exception that
escapes the helper (the original one, or tenacity's ``RetryError`` unless
``reraise=True``) must be one the framework retries, and it must leave the
job: through ``autoretry_for`` or a framework that retries every exception, or,
for Celery's ``self.retry()`` and arq's ``Retry``, through an ``except`` block
around the call that retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.facts import CallSite, FunctionFacts, Handler
from jobaudit.frameworks.arq import RETRY as ARQ_RETRY
from jobaudit.frameworks.base import exception_names
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import RETRY_POSITIONS, HelperUse, helper_uses, jobs_label
from jobaudit.model import UNBOUNDED, Job, Location
from jobaudit.symbols import seconds
from jobaudit.values import Call, Seq, Value, is_number, render

if TYPE_CHECKING:
    from jobaudit.project import Project

STOP_AFTER_ATTEMPT = frozenset({"tenacity.stop_after_attempt", "tenacity.stop.stop_after_attempt"})
STOP_AFTER_DELAY = frozenset(
    {
        "tenacity.stop_after_delay",
        "tenacity.stop.stop_after_delay",
        "tenacity.stop_before_delay",
        "tenacity.stop.stop_before_delay",
    }
)
STOP_ANY = frozenset({"tenacity.stop_any", "tenacity.stop.stop_any"})
RETRY_IF_TYPE = frozenset(
    {"tenacity.retry_if_exception_type", "tenacity.retry.retry_if_exception_type"}
)
RETRY_ERROR = "tenacity.RetryError"
STAMINA_ATTEMPTS = 10
STAMINA_TIMEOUT = 45.0
RETRY_EXCEPTIONS_POSITION = 0
"""``retry.retry(exceptions, tries, ...)``; ``retry_call(f, fargs, fkwargs, exceptions, ...)``."""
ALL = "all"
BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})


@dataclass(frozen=True)
class Limit:
    """How far a retry helper goes on its own: at most ``attempts`` calls or ``seconds``."""

    attempts: int | None
    seconds: float | None
    text: str
    """How the limit is written, for messages: ``stop_after_attempt(5)``, ``max_tries=4``."""


def helper_limit(use: HelperUse, project: Project) -> Limit | None:
    """The limit a helper stops at; None when it never stops or the limit is unknown."""
    call = use.call
    if call.star_args or call.star_kwargs:
        return None
    if use.library == "tenacity":
        stop = call.kwarg("stop")
        return _tenacity_stop(project.resolver.evaluate(stop), project) if stop else None
    if use.library == "backoff":
        return _given_limit(use, project, "max_tries", "max_time", 1.0)
    if use.library == "retrying":
        return _given_limit(use, project, "stop_max_attempt_number", "stop_max_delay", 0.001)
    if use.library == "retry":
        tries = _positional(call, "tries", RETRY_POSITIONS["tries"], use, project)
        if isinstance(tries, int) and not isinstance(tries, bool) and tries > 0:
            return Limit(tries, None, f"tries={tries}")
        return None
    given = call.kwarg("attempts")
    attempts = STAMINA_ATTEMPTS if given is None else project.resolver.evaluate(given)
    timeout = call.kwarg("timeout")
    limit = STAMINA_TIMEOUT if timeout is None else seconds(project.resolver.evaluate(timeout))
    if not isinstance(attempts, int) or isinstance(attempts, bool):
        return None
    written = f"attempts={attempts}" if given is not None else "stamina's default 10 attempts"
    return Limit(attempts, limit if isinstance(limit, float) else None, written)


def _tenacity_stop(stop: Value, project: Project) -> Limit | None:
    if not isinstance(stop, Call):
        return None
    name = project.external_name(stop.func)
    if name in STOP_AFTER_ATTEMPT and stop.args:
        count = project.resolver.evaluate(stop.args[0])
        if isinstance(count, int) and not isinstance(count, bool):
            return Limit(count, None, f"stop_after_attempt({count})")
    if name in STOP_AFTER_DELAY and stop.args:
        delay = seconds(project.resolver.evaluate(stop.args[0]))
        if isinstance(delay, float):
            return Limit(None, delay, f"{name.rpartition('.')[2]}({render(stop.args[0])})")
    if name in STOP_ANY:
        parts = [_tenacity_stop(project.resolver.evaluate(arg), project) for arg in stop.args]
        known = [part for part in parts if part is not None]
        if not known:
            return None
        counts = [p.attempts for p in known if p.attempts is not None]
        delays = [p.seconds for p in known if p.seconds is not None]
        return Limit(
            min(counts) if counts else None,
            min(delays) if delays else None,
            f"stop_any({', '.join(p.text for p in known)})",
        )
    return None


def _given_limit(
    use: HelperUse, project: Project, count_name: str, time_name: str, scale: float
) -> Limit | None:
    """``max_tries``/``max_time`` style keywords: a count, a duration, or both."""
    count = project.resolver.evaluate(use.call.kwarg(count_name))
    delay = project.resolver.evaluate(use.call.kwarg(time_name))
    attempts = count if isinstance(count, int) and not isinstance(count, bool) else None
    duration = float(delay) * scale if is_number(delay) else None  # type: ignore[arg-type]
    texts = [
        f"{name}={render(value)}"
        for name, value, known in ((count_name, count, attempts), (time_name, delay, duration))
        if known is not None
    ]
    if attempts is None and duration is None:
        return None
    return Limit(attempts, duration, ", ".join(texts))


def _positional(call: Call, name: str, position: int, use: HelperUse, project: Project) -> Value:
    value = call.kwarg(name)
    offset = 3 if use.name.endswith("retry_call") else 0
    if value is None and len(call.args) > position + offset:
        value = call.args[position + offset]
    return project.resolver.evaluate(value) if value is not None else None


def helper_exceptions(use: HelperUse, project: Project) -> tuple[str, ...] | str | None:
    """The exceptions that leave the helper once it gives up: ``"all"``, names, or None.

    tenacity raises ``RetryError`` unless ``reraise=True``; the other helpers
    re-raise the last exception, which is one of those they retry.
    """
    call = use.call
    if use.library == "tenacity":
        reraise = project.resolver.evaluate(call.kwarg("reraise"))
        if reraise is None or reraise is False:
            return (RETRY_ERROR,)
        if reraise is not True:
            return None
        predicate = project.resolver.evaluate(call.kwarg("retry"))
        if predicate is None:
            return ALL
        if isinstance(predicate, Call) and project.external_name(predicate.func) in RETRY_IF_TYPE:
            return _names(Seq(predicate.args), project) if predicate.args else ALL
        return None
    if use.library == "backoff":
        if use.name.endswith("on_predicate"):
            return None  # it retries on return values: nothing to re-raise
        given = call.kwarg("exception") or (call.args[1] if len(call.args) > 1 else None)
        return _names(project.resolver.evaluate(given), project) if given else None
    if use.library == "retrying":
        return ALL if call.kwarg("retry_on_exception") is None else None
    if use.library == "retry":
        given = _positional(call, "exceptions", RETRY_EXCEPTIONS_POSITION, use, project)
        return ALL if given is None else _names(given, project)
    given = call.kwarg("on")
    return _names(project.resolver.evaluate(given), project) if given else None


def _names(value: Value, project: Project) -> tuple[str, ...] | str | None:
    names = exception_names(value, project)
    if not isinstance(names, tuple) or not names:
        return None
    return ALL if BROAD.intersection(names) else names


def _retries(limit: Limit) -> bool:
    """Whether the helper retries at all: a single attempt, or no time, is no layer."""
    if limit.attempts is not None:
        return limit.attempts > 1
    return limit.seconds is not None and limit.seconds > 0


def _catches(caught: tuple[str, ...] | str | None, escaping: tuple[str, ...] | str) -> bool:
    """Whether exceptions ``caught`` (by a framework or handler) include what escapes."""
    if caught == ALL:
        return True
    if not isinstance(caught, tuple):
        return False
    return escaping == ALL or bool(set(caught) & set(escaping))


class NestedRetryLayers(Rule):
    code = "JOB305"
    name = "nested-retry-layers"
    level = "warning"
    gate = "retries"
    summary = "A retry helper inside a job the framework also retries multiplies the attempts."
    frameworks = ("celery", "dramatiq", "rq", "huey", "arq", "temporal", "tenacity")

    def check_project(self, project: Project) -> Iterator[Finding]:
        places: dict[Location, list[tuple[float, Job, str]]] = {}
        for job in project.jobs:
            for use in helper_uses(job, project):
                found = self._product(job, use, project)
                if found is not None:
                    entries = places.setdefault(use.location, [])
                    if all(entry[1] is not job for entry in entries):
                        entries.append((found[0], job, found[1]))
        for location in sorted(places):
            entries = sorted(places[location], key=lambda entry: -entry[0])
            jobs = [entry[1] for entry in entries]
            yield self.finding(location, f"{jobs_label(jobs)} {entries[0][2]}", jobs[0])

    def _product(self, job: Job, use: HelperUse, project: Project) -> tuple[float, str] | None:
        """How many calls the two layers make together (for ordering) and the message."""
        assert job.policy is not None
        executions = job.policy.max_attempts.value
        bounded = isinstance(executions, int) and not isinstance(executions, bool)
        if executions != UNBOUNDED and not (isinstance(executions, int) and executions > 1):
            return None
        limit = helper_limit(use, project)
        escaping = helper_exceptions(use, project)
        if limit is None or escaping is None or not _retries(limit):
            return None
        if not self._reaches(job, use, escaping, project):
            return None
        title = project.framework_of(job).title
        source = job.policy.max_attempts.source
        head = f"{use.action('retries')} inside {title}'s own retries: {limit.text}"
        if not bounded:
            return float("inf"), (
                f"{head}, in each of an unlimited number of {title} executions ({source})"
            )
        assert isinstance(executions, int)
        if limit.attempts is None:
            assert limit.seconds is not None
            return limit.seconds * executions, (
                f"{head}: up to {limit.seconds:g} s of attempts in each of {executions} "
                f"{title} executions ({source})"
            )
        total = limit.attempts * executions
        return float(total), (
            f"{head} × {executions} {title} executions ({source}) = up to {total} calls"  # noqa: RUF001
        )

    # -- does a failure the helper gives up on reach the framework's retry? -------------------

    def _reaches(
        self, job: Job, use: HelperUse, escaping: tuple[str, ...] | str, project: Project
    ) -> bool:
        sites = self._leading_sites(job, use, project)
        handler_retries = self._retrying_handlers(job, project)
        if handler_retries is not None:
            return any(
                _catches(self._handler_types(handler, project), escaping)
                for site in sites or ()
                for handler in self._enclosing(job.function, site)
                if handler in handler_retries
            )
        assert job.policy is not None
        if not _catches(self._retried(job, project), escaping):
            return False
        permanent = job.policy.permanent.value
        if (
            isinstance(escaping, tuple)
            and isinstance(permanent, tuple)
            and set(escaping) <= set(permanent)
        ):
            return False  # ``throws=`` / ``dont_autoretry_for``: failed, not retried
        if sites is None:
            return True  # the helper decorates the job: what it raises leaves the job
        return any(
            all(handler.reraises for handler in self._enclosing(job.function, site))
            for site in sites
        )

    @staticmethod
    def _retried(job: Job, project: Project) -> tuple[str, ...] | str | None:
        assert job.policy is not None
        retry_on = job.policy.retry_on.value
        if retry_on == ALL:
            return ALL
        if isinstance(retry_on, tuple) and retry_on:
            return ALL if BROAD.intersection(retry_on) else retry_on
        return None

    @staticmethod
    def _leading_sites(job: Job, use: HelperUse, project: Project) -> list[CallSite] | None:
        """Calls in the job function through which the helper runs; None when it decorates it."""
        function = job.function
        if use.function.depth == 0:
            own = [site for site in function.calls if site.call.span == use.call.span]
            return own if own and use.location.path == job.path else None
        first = use.function.via[1]
        return [
            site
            for site in function.calls
            if (callee := project.callee(site.call, function, job)) is not None
            and callee.facts.name == first
        ]

    @staticmethod
    def _enclosing(function: FunctionFacts, site: CallSite) -> list[Handler]:
        return [handler for handler in function.handlers if handler.try_index in site.trys]

    def _retrying_handlers(self, job: Job, project: Project) -> set[Handler] | None:
        """For retries raised from ``except`` blocks (Celery ``self.retry()`` without
        ``autoretry_for``, arq ``Retry``): the handlers that retry.  None otherwise."""
        function = job.function
        if job.framework == "celery":
            celery = project.framework("celery")
            assert isinstance(celery, Celery)
            autoretry = celery.lookup(job, project, "autoretry_for", None)
            if exception_names(autoretry.value, project) != ():
                return None  # autoretry_for (or an unknown value): the policy's retry_on says
            calls = celery.retry_calls(job, project)
            sites = [site for site in function.calls if site.call in calls]
        elif job.framework == "arq":
            sites = [
                site
                for site in function.calls
                if site.raised and project.external_name(site.call.func) in ARQ_RETRY
            ]
        else:
            return None
        handlers: set[Handler] = set()
        for site in sites:
            preceding = [h for h in function.handlers if h.span[0] <= site.call.span[0]]
            if site.in_handler and preceding:
                handlers.add(max(preceding, key=lambda handler: handler.span[0]))
        return handlers

    @staticmethod
    def _handler_types(handler: Handler, project: Project) -> tuple[str, ...] | str | None:
        if not handler.types:
            return ALL
        return _names(Seq(handler.types), project)
