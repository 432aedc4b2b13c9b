"""Small pieces of job-body reading that several rules share.

Celery's ``retry()`` is reached through ``self`` only where ``self`` is the
task: the function of a ``bind=True`` task (whatever its first parameter is
called) and the methods of a class-based task.  Which ``except`` clause a
call or ``raise`` belongs to is read from line ranges, because facts keep
handlers as spans rather than trees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Related
from jobaudit.facts import CallSite, FunctionFacts, Handler
from jobaudit.model import Job, Location, Resolved
from jobaudit.symbols import Assigned, External, ProjectClass
from jobaudit.values import Local, Ref, Seq, Value, render

if TYPE_CHECKING:
    from jobaudit.project import Project

Problem = tuple[Location, str, tuple[Related, ...]]
"""Where a problem is, what it is, and the other places that matter."""


def by_place(
    jobs: Iterable[Job], problems: Callable[[Job], Iterable[Problem]]
) -> Iterator[tuple[Location, str, tuple[Related, ...], list[Job]]]:
    """Each place once, in place order, with every job whose problem is there: a setting
    many jobs share is reported once, in the words of the first job found there."""
    places: dict[Location, tuple[str, tuple[Related, ...], list[Job]]] = {}
    for job in jobs:
        for location, text, related in problems(job):
            places.setdefault(location, (text, related, []))[2].append(job)
    for location in sorted(places):
        text, related, reached = places[location]
        yield location, text, related, reached


def task_self(job: Job, facts: FunctionFacts) -> str | None:
    """The name under which ``facts`` sees the Celery task object, if it sees it at all.

    ``self`` in a class-based task's methods; in a decorated task function the
    first parameter, which is the task only with ``bind=True``.
    """
    if job.cls is not None:
        return "self" if facts.class_name == job.cls.name else None
    if facts is not job.function or not facts.params:
        return None
    bind = job.options.get("bind")
    return facts.params[0] if bind is not None and bind.value is True else None


def is_task_retry(job: Job, facts: FunctionFacts, func: Value) -> bool:
    """``self.retry`` on the task object, or ``<task>.retry`` named through the module."""
    if isinstance(func, Ref):
        return func.name.endswith(f".{job.function.name}.retry")
    name = task_self(job, facts)
    return isinstance(func, Local) and name is not None and func.name == f"{name}.retry"


def raises_retry(job: Job, facts: FunctionFacts, site: CallSite) -> bool:
    """A call of the task's ``retry()`` that raises ``Retry`` (all but ``throw=False``)."""
    if site.call.kwarg("throw") is False:
        return False
    func = site.call.func
    if isinstance(func, Local) and func.name == "self.retry" and facts is job.function:
        return True  # a bound task's ``self`` even when ``bind`` comes from a wrapper
    return is_task_retry(job, facts, func)


def handler_end(facts: FunctionFacts, handler: Handler) -> int:
    """The last line of an ``except`` clause: before the next clause, or the end of the ``try``.

    A ``try``'s ``else``/``finally`` blocks count as part of its last clause,
    which only matters for the rare call placed there.
    """
    block = facts.trys[handler.try_index]
    following = [
        facts.handlers[index].span[0]
        for index in block.handlers
        if facts.handlers[index].span[0] > handler.span[0]
    ]
    return min(following) - 1 if following else block.span[2]


def handler_at(facts: FunctionFacts, line: int) -> Handler | None:
    """The innermost ``except`` clause whose body holds ``line``, if any."""
    found: Handler | None = None
    for handler in facts.handlers:
        if handler.span[0] <= line <= handler_end(facts, handler) and (
            found is None or handler.span[0] >= found.span[0]
        ):
            found = handler
    return found


def attempts_text(job: Job) -> str:
    """``, up to 4 attempts`` for messages, from the job's effective ``max_attempts``."""
    assert job.policy is not None
    value = job.policy.max_attempts.value
    if isinstance(value, int):
        return f", up to {value} attempts"
    if value == "unbounded":
        return ", without limit"
    return ""


def spelled_option(job: Job, name: str, resolved: Resolved) -> str:
    """``autoretry_for=(Exception,)`` as written on the job, else with where it comes from."""
    option = job.options.get(name)
    if option is not None:
        return f"{name}={render(option.written)}"
    return f"{name}={render(resolved.value)} from {resolved.source}"  # type: ignore[arg-type]


def exception_classes(project: Project, value: Value) -> list[str] | None:
    """The classes an ``except`` type names, following tuples and constants; None when unknown.

    External classes by their dotted name (``celery.exceptions.Retry``),
    project classes as ``module.qualname``.
    """
    if isinstance(value, Seq):
        names: list[str] = []
        for item in value.items:
            inner = exception_classes(project, item)
            if inner is None:
                return None
            names.extend(inner)
        return names
    if not isinstance(value, Ref):
        return None
    symbol = project.resolver.lookup(value.name)
    if isinstance(symbol, Assigned):
        return exception_classes(project, symbol.value)
    if isinstance(symbol, External):
        return [symbol.name]
    if isinstance(symbol, ProjectClass):
        return [f"{symbol.facts.module}.{symbol.facts.qualname}"]
    return None
