"""Helpers rules use to describe fixes on a job's decorator (no libcst here).

A fix changes the job's own decorator only: a setting that comes from a base
class, a wrapper or the app's configuration is shared with other jobs, and
overriding it on this job's decorator leaves the others alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.fix.model import REMOVE_KEYWORD, SET_KEYWORD, Edit
from jobaudit.model import Job, Location
from jobaudit.values import Call, Span, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

FRAMEWORK_DECORATORS = frozenset(
    {"task", "shared_task", "job", "actor", "periodic_task", "db_task", "db_periodic_task"}
)
"""The last name of the decorators the frameworks themselves provide.

A project's own wrapper (``@background_task(...)``) may not forward a new
keyword to the framework, so fixes write only on the framework's decorator.
"""


def written(project: Project, path: str, span: Span) -> str | None:
    """The source text of ``span`` (None when it is not on the file's lines)."""
    facts = project.resolver.facts_by_path.get(path)
    line, column, end_line, end_column = span
    if facts is None or not 0 < line <= end_line <= len(facts.lines):
        return None
    chunk = facts.lines.block(line, end_line).encode("utf-8")
    end = len(chunk) - len(facts.lines[end_line - 1].encode("utf-8")) + end_column
    return chunk[column:end].decode("utf-8", errors="replace")


def within(inner: Location, outer: Location) -> bool:
    """``inner`` lies inside ``outer`` (same file, span nested)."""
    if inner.path != outer.path:
        return False
    start, end = inner.span[:2], inner.span[2:]
    return outer.span[:2] <= start and end <= outer.span[2:]


def on_decorator(job: Job, name: str) -> bool:
    """Option ``name`` is written on the job's own decorator (not inherited)."""
    option = job.options.get(name)
    decorator = job.decorator_location
    return (
        option is not None
        and option.location is not None
        and decorator is not None
        and within(option.location, decorator)
    )


def framework_decorator(job: Job) -> Location | None:
    """Where the job's decorator is, when it is the framework's own (``@app.task(...)``)."""
    decorator = job.decorator_location
    if decorator is None or job.cls is not None:
        return None
    facts = job.function
    for span, value in zip(facts.decorator_spans, facts.decorators, strict=True):
        if span == decorator.span:
            target = value.func if isinstance(value, Call) else value
            name = (dotted(target) or "").rpartition(".")[2]
            return decorator if name in FRAMEWORK_DECORATORS else None
    return None


def set_on_decorator(job: Job, name: str, value: str) -> Edit | None:
    """Give the job's decorator ``name=value`` (None for a job declared otherwise).

    A decorator that takes ``**options`` may already receive ``name`` through
    them, and a duplicate keyword is a TypeError at import time, so none then.
    """
    decorator = framework_decorator(job)
    if decorator is None or ("**" in job.options and name not in job.options):
        return None
    return Edit(SET_KEYWORD, decorator.path, decorator.span, name, value)


def remove_from_decorator(job: Job, name: str) -> Edit | None:
    decorator = framework_decorator(job)
    if decorator is None or not on_decorator(job, name):
        return None
    return Edit(REMOVE_KEYWORD, decorator.path, decorator.span, name)
