"""Static values: what an expression in analysed code is known to be, without running it.

Facts hold expressions as these small, picklable values instead of ast nodes so
that the per-file step can be cached and the project step can resolve names
across modules.  Anything jobaudit cannot know statically is ``Unknown`` with a
reason, which is what keeps rules silent instead of guessing.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeAlias

Span = tuple[int, int, int, int]
"""(line, column, end line, end column): 1-based lines, 0-based UTF-8 byte columns (as ast)."""


class Record:
    """The base of the frozen, slotted dataclasses facts are made of: pickled as a call.

    Facts are pickled in bulk (the cache, ``-j`` workers).  Python's own pickling of
    a frozen slotted dataclass looks its fields up again for every object it loads,
    which made loading facts cost a third of extracting them; a constructor call
    with the field values (every field is a positional ``__init__`` argument, which
    a test checks) costs half as much to write and a fifth less to load.
    """

    __slots__ = ()
    __match_args__: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[type[Record], tuple[object, ...]]:
        cls = type(self)
        fields = _FIELDS.get(cls)
        if fields is None:
            fields = _FIELDS[cls] = _fields_getter(cls.__match_args__)
        return cls, fields(self)


_FIELDS: dict[type[Record], Callable[[Record], tuple[object, ...]]] = {}
"""Per record class, a function taking the field values in ``__init__`` order.

Made on first use: ``__match_args__`` is set by ``@dataclass``, after the class
is created.  An ``operator.attrgetter`` of the names takes them in C, a third
faster to pickle than a generator of ``getattr`` calls."""


def _fields_getter(names: tuple[str, ...]) -> Callable[[Record], tuple[object, ...]]:
    if len(names) == 1:  # attrgetter of one name gives the value, not a tuple
        one = operator.attrgetter(names[0])
        return lambda record: (one(record),)
    return operator.attrgetter(*names)


@dataclass(frozen=True, slots=True)
class Unknown(Record):
    """A value that cannot be resolved statically; ``reason`` is shown to users."""

    reason: str


@dataclass(frozen=True, slots=True)
class Element(Unknown):
    """An unknown value taken out of a known one: ``rows[0]``, ``obj, created = ...``, a loop
    variable.  Still Unknown to every rule; those that care where a value comes from (an
    ORM query's result) read ``container``.  ``key`` is the subscript or the unpacked
    position, or an Unknown for a loop variable."""

    container: Value = None
    key: Value = None


@dataclass(frozen=True, slots=True)
class Ref(Record):
    """A module-level name, qualified by where it was imported from or defined.

    ``Ref("celery.shared_task")`` or ``Ref("myapp.settings.TIMEOUT")``; the
    project model follows it to its definition.
    """

    name: str


@dataclass(frozen=True, slots=True)
class Local(Record):
    """A name bound inside a function (a parameter or a local variable)."""

    name: str


@dataclass(frozen=True, slots=True)
class Attr(Record):
    """Attribute access on a value that is not a dotted module path: ``Celery(...).conf``."""

    base: Value
    name: str


@dataclass(frozen=True, slots=True)
class Call(Record):
    """A call expression: ``func(*args, **kwargs)``."""

    func: Value
    args: tuple[Value, ...] = ()
    kwargs: tuple[tuple[str, Value], ...] = ()
    star_args: tuple[Value, ...] = ()
    star_kwargs: tuple[Value, ...] = ()
    span: Span = (0, 0, 0, 0)
    kwarg_spans: tuple[Span, ...] = ()
    """Where each of ``kwargs`` was written, in the same order (no name kept twice: there are
    tens of thousands of keywords in a large project's facts)."""

    def kwarg(self, name: str) -> Value | None:
        """The value passed as keyword ``name``, or None when it was not passed."""
        for key, value in self.kwargs:
            if key == name:
                return value
        return None

    def kwarg_span(self, name: str) -> Span | None:
        """Where keyword ``name`` was written (recorded in ``kwarg_spans``)."""
        for (key, _), span in zip(self.kwargs, self.kwarg_spans, strict=False):
            if key == name:
                return span
        return None


@dataclass(frozen=True, slots=True)
class Seq(Record):
    """A list, tuple or set display."""

    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Mapping(Record):
    """A dict display with static keys (a non-static key makes the whole dict Unknown)."""

    items: tuple[tuple[Value, Value], ...]

    def get(self, key: object) -> Value | None:
        for k, v in self.items:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class BinOp(Record):
    """An arithmetic expression whose operands need name resolution first (``60 * MINUTES``)."""

    op: str
    left: Value
    right: Value


@dataclass(frozen=True, slots=True)
class Lambda(Record):
    """A lambda; ``constant`` is its body when that is a constant (``lambda r, e: True``)."""

    constant: Value


Value: TypeAlias = (
    "bool | int | float | str | Unknown | Ref | Local | Attr | Call | Seq | Mapping | BinOp"
    " | Lambda | None"
)

NUMBER = (int, float)


def is_number(value: Value) -> bool:
    """True for int and float but not bool, which Python counts as an int."""
    return isinstance(value, NUMBER) and not isinstance(value, bool)


def dotted(value: Value) -> str | None:
    """The dotted name a value spells, for names, attributes of names and locals."""
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, Local):
        return value.name
    if isinstance(value, Attr):
        base = dotted(value.base)
        return f"{base}.{value.name}" if base else None
    return None


def render(value: Value) -> str:
    """A short source-like rendering for messages (``(Exception,)``, ``None``, ``app.task``)."""
    if isinstance(value, Unknown):
        return "<unknown>"
    if isinstance(value, (Ref, Local)):
        return value.name.rsplit(".", 1)[-1] if isinstance(value, Ref) else value.name
    if isinstance(value, Attr):
        return f"{render(value.base)}.{value.name}"
    if isinstance(value, Call):
        return f"{render(value.func)}(...)"
    if isinstance(value, Seq):
        inner = ", ".join(render(item) for item in value.items)
        return f"({inner},)" if len(value.items) == 1 else f"({inner})"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in value.items) + "}"
    if isinstance(value, BinOp):
        return f"{render(value.left)} {value.op} {render(value.right)}"
    if isinstance(value, Lambda):
        return "lambda"
    return repr(value)
