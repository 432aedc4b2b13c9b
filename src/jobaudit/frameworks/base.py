"""What every framework adapter provides: how its jobs are declared and what its defaults are.

An adapter is mostly data (decorator names, option names, defaults) plus one
``policy()`` that turns a job's options and the project's configuration into
the normalised ``JobPolicy``.  Rules never branch on spellings of a framework;
they ask the adapter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from jobaudit.model import Backoff, Job, JobPolicy, Location, Option, Resolved
from jobaudit.symbols import External, seconds
from jobaudit.values import Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

DEFAULT = "framework default"


class Framework:
    """Base adapter.  Subclasses fill in the tables and ``policy``."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    decorators: ClassVar[frozenset[str]] = frozenset()
    """External names of job decorators (``celery.shared_task``)."""
    positional_options: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Per decorator attribute (``task``, ``job``...), the option names of positional arguments."""
    known_options: ClassVar[frozenset[str] | None] = None
    """Every decorator option the framework reads, when it silently accepts others (for JOB402)."""
    control_flow: ClassVar[frozenset[str]] = frozenset()
    """Exceptions the framework uses for control flow that ``except Exception`` catches."""
    enqueue_methods: ClassVar[frozenset[str]] = frozenset()

    def is_instance_decorator(self, cls: str, attrs: tuple[str, ...]) -> bool:
        """Whether ``attrs`` on an instance of ``cls`` (``app.task``) declares a job."""
        return False

    def decorator_key(self, symbol_name: str) -> str:
        """The last attribute of the decorator, which selects ``positional_options``."""
        return symbol_name.rpartition(".")[2]

    def prepare(self, project: Project) -> None:
        """Read project-wide configuration once, before policies are resolved."""

    def policy(self, job: Job, project: Project) -> JobPolicy:
        raise NotImplementedError


def option_value(job: Job, name: str) -> Option | None:
    return job.options.get(name)


def resolved_option(
    job: Job, name: str, default: object, default_source: str = DEFAULT
) -> Resolved:
    """The option's evaluated value with its source, or the default."""
    option = job.options.get(name)
    if option is None:
        return Resolved(default, default_source)
    return Resolved(option.value, option.source, option.location)


def resolved_seconds(resolved: Resolved, scale: float = 1.0) -> Resolved:
    """Convert a resolved duration (number or timedelta) to seconds, keeping its source."""
    value = resolved.value
    if value is None or isinstance(value, Unknown):
        return resolved
    converted = seconds(value)  # type: ignore[arg-type]
    if isinstance(converted, float):
        converted = converted * scale
    return Resolved(converted, resolved.source, resolved.location)


def as_int(resolved: Resolved) -> Resolved:
    value = resolved.value
    if isinstance(value, bool) or value is None or isinstance(value, (Unknown, int)):
        return resolved
    if isinstance(value, float) and value.is_integer():
        return Resolved(int(value), resolved.source, resolved.location)
    return Resolved(Unknown("not an integer constant"), resolved.source, resolved.location)


def exception_names(value: object, project: Project) -> tuple[str, ...] | Unknown:
    """Exception classes named in a tuple/list option, as dotted names."""
    if isinstance(value, Unknown):
        return value
    items: Iterable[Value]
    from jobaudit.values import Ref, Seq

    if isinstance(value, Seq):
        items = value.items
    elif isinstance(value, Ref):
        items = (value,)
    elif value is None:
        return ()
    else:
        return Unknown("not a tuple of exception classes")
    names: list[str] = []
    for item in items:
        if not isinstance(item, Ref):
            return Unknown("an exception class computed at run time")
        symbol = project.resolver.lookup(item.name)
        names.append(symbol.name if isinstance(symbol, External) else item.name)
    return tuple(names)


def no_retries() -> Resolved:
    return Resolved(Backoff("none"), "no retries")


def location_of(option: Option | None) -> Location | None:
    return option.location if option is not None else None


def raised_name(value: Value | None) -> str | None:
    """The class name a ``raise`` statement raises (``Retry`` for ``raise self.Retry(...)``)."""
    from jobaudit.values import Call, dotted

    target = value.func if isinstance(value, Call) else value
    name = dotted(target) if target is not None else None
    return name.rpartition(".")[2] if name else None
