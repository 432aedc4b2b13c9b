"""The normalised job model that every rule is written against.

Frameworks count and spell things differently (Celery counts retries, arq and
taskiq count attempts; RQ has no time limit of zero...).  Discovery turns each
declaration into a ``Job`` whose ``JobPolicy`` states what the framework will
actually do, each value with the place it came from, so rules are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobaudit.values import Span, Unknown, Value

if TYPE_CHECKING:  # a finding's Location is all a warm run unpickles from here
    from jobaudit.facts import ClassFacts, FunctionFacts

UNBOUNDED = "unbounded"


@dataclass(frozen=True, order=True)
class Location:
    path: str
    span: Span


@dataclass(frozen=True)
class Resolved:
    """An effective value and where it came from (``task option``, ``framework default``...)."""

    value: object
    source: str
    location: Location | None = None

    @property
    def known(self) -> bool:
        return not isinstance(self.value, Unknown)

    @property
    def reason(self) -> str:
        return self.value.reason if isinstance(self.value, Unknown) else ""


@dataclass(frozen=True)
class Backoff:
    """How long a job waits before its next attempt."""

    kind: str
    """``none`` (no retries), ``immediate``, ``fixed``, ``schedule`` (delays) or ``exponential``."""
    delay: float | None = None
    cap: float | None = None
    jitter: bool | None = None
    factor: float = 2.0
    """For ``exponential``: each delay is the previous one times this (Huey's
    ``retry_backoff``, Temporal's ``backoff_coefficient``; the others double)."""

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {_seconds(self.delay)}"
        if self.kind == "schedule":
            return f"delays from {_seconds(self.delay)} to {_seconds(self.cap)}"
        if self.kind == "exponential":
            parts = [f"exponential from {_seconds(self.delay)}" if self.delay else "exponential"]
            if self.cap is not None:
                parts.append(f"capped at {_seconds(self.cap)}")
            if self.jitter is not None:
                parts.append("with jitter" if self.jitter else "without jitter")
            return ", ".join(parts)
        return self.kind


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:g} s"


@dataclass(frozen=True)
class Option:
    """One job option as written somewhere: on the decorator, a base class, a wrapper..."""

    name: str
    value: Value
    """The value with names followed (``Ref`` to a constant becomes the constant)."""
    written: Value
    """The value as written, for messages."""
    source: str
    location: Location | None = None


@dataclass(frozen=True)
class JobPolicy:
    max_attempts: Resolved
    """Total executions: an int, ``"unbounded"`` or Unknown."""
    backoff: Resolved
    retry_on: Resolved
    """``"all"``, ``"none"`` or a tuple of exception names."""
    permanent: Resolved
    """Exception names that fail the job without retrying (a tuple, possibly empty)."""
    time_limit: Resolved
    """Hard limit in seconds, None for no limit, or Unknown."""
    soft_time_limit: Resolved
    delivery: Resolved
    """``"at-most-once"`` or ``"at-least-once"``."""
    idempotency_guard: Resolved
    """The guard found or declared, or None."""


@dataclass
class Job:
    """A background job: a function (or class) a worker runs, with its effective policy."""

    name: str
    qualname: str
    framework: str
    path: str
    module: str
    function: FunctionFacts
    declaration: str
    """How it was declared, for users: ``@app.task``, ``wrapper polar.worker.actor``..."""
    decorator_location: Location | None = None
    options: dict[str, Option] = field(default_factory=dict)
    cls: ClassFacts | None = None
    app: str | None = None
    """Which app/broker/instance the job belongs to, as ``module.name`` when known."""
    idempotent_pragma: str | None = None
    policy: JobPolicy | None = None

    @property
    def location(self) -> Location:
        span = self.cls.span if self.cls is not None else self.function.span
        return Location(self.path, span)

    @property
    def noun(self) -> str:
        return {"celery": "Task", "dramatiq": "Actor", "temporal": "Activity", "huey": "Task"}.get(
            self.framework, "Job"
        )

    def label(self) -> str:
        """``Task 'send_receipt'`` — how messages name the job."""
        return f"{self.noun} '{self.name}'"

    def option(self, name: str) -> Option | None:
        return self.options.get(name)
