"""JOB203 permanent-error-retried.

Some errors say that the input or the code is wrong, not that the world was
briefly unavailable: a row that does not exist, a payload that fails
validation, a ``KeyError``, a unique constraint already taken.  A job that
names one of them as retryable (Celery ``autoretry_for`` or an ``except``
clause that calls ``self.retry()``, a Dramatiq ``retry_when`` that accepts it,
taskiq ``types_of_exceptions``, tenacity ``retry_if_exception_type``, backoff
``on_exception``, stamina ``on=``, an ``except`` clause that raises arq's
``Retry``, Huey's ``RetryTask`` or Dramatiq's ``Retry``) spends every attempt
failing the same way, then fails anyway, later and with its side effects
repeated.

Only classes named outright count: a project class deriving from
``ValueError`` may well be transient, so the built-in list matches names,
not subclasses.  The project's own list (option ``permanent-errors``) does
match subclasses, since the project said what its base classes mean.  A
``DoesNotExist`` handler that retries is how jobs wait for a row that is not
visible yet (a read replica, an enqueue before the commit) and is left alone;
``autoretry_for`` listing it is not, since it covers every lookup of the task.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.common import (
    attempts_text,
    handler_at,
    is_task_retry,
    spelled_option,
)
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.huey import RETRY_TASK
from jobaudit.frameworks.retry_helpers import BROAD, body_places, jobs_label, said_of_job, uses_in
from jobaudit.frameworks.taskiq import Taskiq
from jobaudit.model import Job, Location
from jobaudit.symbols import Assigned, External, ProjectClass, ProjectFunction
from jobaudit.values import Call, Local, Ref, Seq, Value, render

if TYPE_CHECKING:
    from jobaudit.facts import Handler
    from jobaudit.project import BodyFunction, Project

WHY = "a later attempt fails the same way"
BUILTINS = frozenset(
    {
        "ValueError",
        "TypeError",
        "KeyError",
        "AttributeError",
        "NotImplementedError",
        "AssertionError",
        "UnicodeError",
        "UnicodeDecodeError",
        "UnicodeEncodeError",
    }
)
NAMED = frozenset(
    {
        "json.JSONDecodeError",
        "json.decoder.JSONDecodeError",
        "simplejson.JSONDecodeError",
        "simplejson.errors.JSONDecodeError",
        "django.core.exceptions.ValidationError",
        "django.forms.ValidationError",
        "django.core.exceptions.PermissionDenied",
        "rest_framework.exceptions.ValidationError",
        "rest_framework.exceptions.PermissionDenied",
        "pydantic.ValidationError",
        "pydantic.v1.ValidationError",
        "pydantic.error_wrappers.ValidationError",
        "pydantic_core.ValidationError",
        "marshmallow.ValidationError",
        "marshmallow.exceptions.ValidationError",
        "jsonschema.ValidationError",
        "jsonschema.exceptions.ValidationError",
    }
)
"""Permanent classes of libraries, by the names they are imported under."""
ANY_LIBRARY = frozenset({"ObjectDoesNotExist", "IntegrityError"})
"""Class names that are permanent whichever database library they come from."""
DOES_NOT_EXIST = "DoesNotExist"
"""Every Django model's own ``Model.DoesNotExist``, a project attribute jobaudit cannot follow."""
SUPERCLASSES = {
    "DoesNotExist": ("ObjectDoesNotExist",),
    "KeyError": ("LookupError",),
    "JSONDecodeError": ("ValueError",),
    "UnicodeError": ("ValueError",),
    "UnicodeDecodeError": ("UnicodeError", "ValueError"),
    "UnicodeEncodeError": ("UnicodeError", "ValueError"),
}
"""Classes that also exclude a permanent one when listed in ``dont_autoretry_for``/``throws``."""
ARQ_RETRY = frozenset({"arq.Retry", "arq.worker.Retry", "arq.jobs.Retry"})
DRAMATIQ_RETRY = frozenset({"dramatiq.Retry", "dramatiq.errors.Retry"})
RAISED_RETRY = {"arq": ARQ_RETRY, "huey": RETRY_TASK, "dramatiq": DRAMATIQ_RETRY}
"""The exception each framework retries a job on, raised by the job itself."""


class PermanentErrorRetried(Rule):
    code = "JOB203"
    name = "permanent-error-retried"
    level = "warning"
    gate = "error handling"
    summary = "An error that no later attempt can fix is listed as one to retry."
    frameworks = ("celery", "dramatiq", "taskiq", "arq", "huey", "tenacity", "backoff")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        if job.policy.max_attempts.value == 1:
            return
        if job.framework == "celery":
            yield from self._autoretry(job, project)
        elif job.framework == "dramatiq":
            yield from self._retry_when(job, project)
        elif job.framework == "taskiq":
            yield from self._taskiq_label(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        # Handlers and helpers are part of every job that calls them: report each place once.
        for location, text, jobs in body_places(project, lambda j, f: self._body(j, f, project)):
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0])
        yield from self._taskiq_middlewares(project)

    # -- Celery --------------------------------------------------------------------------

    def _autoretry(self, job: Job, project: Project) -> Iterator[Finding]:
        if "**" in job.options and "dont_autoretry_for" not in job.options:
            return  # options passed through ** may exclude what autoretry_for lists
        celery = project.framework_of(job)
        assert isinstance(celery, Celery)
        autoretry = celery.lookup(job, project, "autoretry_for", None)
        listed = classes(project, autoretry.value)
        excluded = classes(project, celery.lookup(job, project, "dont_autoretry_for", None).value)
        if not listed or excluded is None or any(_broad(project, item) for item in listed):
            return  # nothing listed, unknown, or every exception: JOB202's finding
        names = permanent_names(project, listed, excluded)
        if not names:
            return
        location, related = anchor(job, autoretry, project)
        throws = celery.lookup(job, project, "throws", None)
        note = ""
        if permanent_names(project, listed, classes(project, throws.value) or []) != names:
            note = " (throws= only changes how the last failure is logged)"
        yield self.finding(
            location,
            f"{job.label()} retries {_join(names)} "
            f"({spelled_option(job, 'autoretry_for', autoretry)}){attempts_text(job)}; "
            f"{WHY}{note}",
            job,
            related,
        )

    # -- Dramatiq ------------------------------------------------------------------------

    def _retry_when(self, job: Job, project: Project) -> Iterator[Finding]:
        option = job.options.get("retry_when")
        if option is None:
            return
        listed = _predicate_classes(project, option.value)
        if not listed:
            return
        throws = job.options.get("throws")
        excluded = classes(project, throws.value) if throws is not None else []
        if excluded is None:
            return
        names = permanent_names(project, listed, excluded)
        if names:
            yield self.finding(
                option.location or job.decorator_location or job.location,
                f"{job.label()} retries {_join(names)} (retry_when={render(option.written)} "
                f"returns True for {'it' if len(names) == 1 else 'them'}); {WHY}",
                job,
            )

    # -- taskiq --------------------------------------------------------------------------

    def _taskiq_label(self, job: Job, project: Project) -> Iterator[Finding]:
        label = job.options.get("types_of_exceptions")
        assert job.policy is not None
        if label is None or not job.policy.max_attempts.known:
            return
        names = permanent_names(project, classes(project, label.value) or [], [])
        if names:
            yield self.finding(
                label.location or job.decorator_location or job.location,
                f"{job.label()} retries {_join(names)} (types_of_exceptions)"
                f"{attempts_text(job)}; {WHY}",
                job,
            )

    def _taskiq_middlewares(self, project: Project) -> Iterator[Finding]:
        """A retry middleware's ``types_of_exceptions``: once, naming the jobs it retries."""
        taskiq = project.framework("taskiq")
        if not isinstance(taskiq, Taskiq):
            return
        places: dict[Location, tuple[list[str], list[Job]]] = {}
        for job in project.jobs_of("taskiq"):
            middleware = taskiq.middlewares.get(job.app or "")
            assert job.policy is not None
            retries = job.policy.max_attempts
            if middleware is None or "types_of_exceptions" in job.options:
                continue
            if not retries.known or retries.value == 1:
                continue
            written = middleware.call.kwarg("types_of_exceptions")
            names = permanent_names(project, classes(project, written) or [], [])
            if not names:
                continue
            span = middleware.call.kwarg_span("types_of_exceptions") or middleware.call.span
            places.setdefault(Location(middleware.location.path, span), (names, []))[1].append(job)
        for location, (names, jobs) in sorted(places.items()):
            yield self.finding(
                location,
                f"{jobs_label(jobs)} retries {_join(names)} (types_of_exceptions of the retry "
                f"middleware); {WHY}",
                jobs[0],
            )

    # -- handlers and in-job helpers ----------------------------------------------------

    def _body(
        self, job: Job, function: BodyFunction, project: Project
    ) -> list[tuple[Location, str]]:
        found = _handler_retries(job, function, project)
        for use in uses_in(function, project):
            listed, location, how = _helper_classes(use.library, use.name, use.call, project)
            names = permanent_names(project, listed, [])
            if names:
                where = Location(use.location.path, location) if location else use.location
                found.append((where, f"{use.action(f'retries {_join(names)}')} ({how}); {WHY}"))
        return found


# -- exception classes --------------------------------------------------------------------


def classes(project: Project, value: object) -> list[Value] | None:
    """The exception classes a value lists, through tuples and module constants.

    An empty list for None; None when any item is not a plain class name.
    """
    if value is None:
        return []
    if isinstance(value, Ref):
        # ``Order.DoesNotExist`` is an attribute jobaudit cannot follow: it stays a name.
        symbol = project.resolver.lookup(value.name)
        if isinstance(symbol, Assigned):
            return classes(project, project.resolver.evaluate(value))
        return [value]
    if isinstance(value, Seq):
        out: list[Value] = []
        for item in value.items:
            inner = classes(project, item)
            if inner is None:
                return None
            out.extend(inner)
        return out
    return None


def _name(project: Project, value: Value) -> str:
    """The dotted name of a class: external, a project class where it is defined, or as written."""
    assert isinstance(value, Ref)
    symbol = project.resolver.lookup(value.name)
    if isinstance(symbol, External):
        return symbol.name
    if isinstance(symbol, ProjectClass):
        return f"{symbol.facts.module}.{symbol.facts.qualname}"
    return value.name


def _broad(project: Project, value: Value) -> bool:
    return _name(project, value) in BROAD


def _external(project: Project, value: Value) -> bool:
    return isinstance(value, Ref) and isinstance(project.resolver.lookup(value.name), External)


def permanent(project: Project, value: Value) -> str | None:
    """How messages name a class that cannot succeed on a later attempt, or None."""
    name = _name(project, value)
    module, _, short = name.rpartition(".")
    if short == DOES_NOT_EXIST:
        return f"{module.rpartition('.')[2]}.{short}" if module else short
    if _external(project, value) and (
        (module == "builtins" and short in BUILTINS) or name in NAMED or short in ANY_LIBRARY
    ):
        return short
    configured = project.config.permanent_errors
    if configured and _configured(project, value, name, configured):
        return short
    return None


def _configured(project: Project, value: Value, name: str, configured: tuple[str, ...]) -> bool:
    """The class, or one of its bases, is in the project's ``permanent-errors`` list."""
    if name in configured:
        return True
    assert isinstance(value, Ref)
    symbol = project.resolver.lookup(value.name)
    if not isinstance(symbol, ProjectClass):
        return False
    bases = {f"{cls.module}.{cls.qualname}" for cls, _ in project.resolver.mro(symbol)}
    return bool(bases.union(project.resolver.external_bases(symbol)).intersection(configured))


def permanent_names(project: Project, listed: list[Value], excluded: list[Value]) -> list[str]:
    """The permanent classes of ``listed`` that ``excluded`` does not take back out."""
    taken = {_name(project, item).rpartition(".")[2] for item in excluded}
    names: list[str] = []
    for item in listed:
        shown = permanent(project, item)
        short = _name(project, item).rpartition(".")[2]
        covering = {short, *SUPERCLASSES.get(short, ()), "Exception", "BaseException"}
        if shown is not None and not covering & taken and shown not in names:
            names.append(shown)
    return names


def _join(names: list[str]) -> str:
    return ", ".join(names)


# -- where the classes are listed ---------------------------------------------------------


def _predicate_classes(project: Project, value: object) -> list[Value]:
    """The classes a Dramatiq ``retry_when`` function accepts, when it says so plainly.

    Only ``return isinstance(exception, (A, B))`` (or a constant) in every
    ``return`` is decidable; anything else keeps the rule silent.
    """
    if not isinstance(value, Ref):
        return []
    symbol = project.resolver.lookup(value.name)
    if not isinstance(symbol, ProjectFunction) or len(symbol.facts.params) < 2:
        return []
    facts = symbol.facts
    exception = facts.params[1]
    listed: list[Value] = []
    for returned in facts.returns:
        if isinstance(returned, bool):
            continue
        if not (
            isinstance(returned, Call)
            and project.external_name(returned.func) == "builtins.isinstance"
            and len(returned.args) == 2
            and returned.args[0] == Local(exception)
        ):
            return []
        found = classes(project, returned.args[1])
        if found is None:
            return []
        listed.extend(found)
    return listed


def _helper_classes(
    library: str, name: str, call: Call, project: Project
) -> tuple[list[Value], tuple[int, int, int, int] | None, str]:
    """What an in-job retry helper retries on, where that is written, and how it is spelled."""
    if library == "tenacity":
        condition = call.kwarg("retry")
        if (
            isinstance(condition, Call)
            and (project.external_name(condition.func) or "").endswith("retry_if_exception_type")
            and not condition.kwargs
        ):
            listed = [c for arg in condition.args for c in classes(project, arg) or []]
            return listed, condition.span, "retry_if_exception_type"
    elif name == "backoff.on_exception" and not call.star_kwargs and call.kwarg("giveup") is None:
        caught = call.args[1] if len(call.args) > 1 else call.kwarg("exception")
        return classes(project, caught) or [], None, "no giveup="
    elif library == "stamina":
        return classes(project, call.kwarg("on")) or [], None, "on="
    return [], None, ""


def _handler_retries(
    job: Job, function: BodyFunction, project: Project
) -> list[tuple[Location, str]]:
    """``except`` clauses for permanent errors whose body retries the job."""
    facts = function.facts
    assert job.policy is not None
    raised = RAISED_RETRY.get(job.framework)
    # max_retries=0 / max_tries=1: the retry fails the job at once (but Huey's RetryTask
    # retries whatever ``retries`` says).
    if job.framework != "huey" and job.policy.max_attempts.value == 1:
        return []
    found: dict[Handler, str] = {}
    for site in facts.calls:
        if not site.in_handler:
            continue
        name = project.external_name(site.call.func) or ""
        if job.framework == "celery" and is_task_retry(job, facts, site.call.func):
            how = "calls retry()"
        elif raised is not None and site.raised and name in raised:
            how = f"raises {name.rpartition('.')[2]}"
        else:
            continue
        handler = handler_at(facts, site.call.span[0])
        if handler is None or handler in found:
            continue
        names = _handler_permanent(project, handler)
        if names:
            found[handler] = said_of_job(
                function, f"retries {_join(names)}: the `except` clause {how}; {WHY}"
            )
    return [(Location(function.path, handler.span), text) for handler, text in found.items()]


def _handler_permanent(project: Project, handler: Handler) -> list[str]:
    """The permanent classes an ``except`` clause catches, but a missing row.

    ``except Order.DoesNotExist: raise self.retry(...)`` is how jobs wait for a
    row the web request has not committed yet or a replica has not received.
    """
    listed: list[Value] = []
    for value in handler.types:
        found = classes(project, value)
        if found is None:
            return []
        listed.extend(found)
    return [
        name for name in permanent_names(project, listed, []) if not name.endswith(DOES_NOT_EXIST)
    ]


__all__ = ["PermanentErrorRetried", "classes", "permanent", "permanent_names"]
