"""Name resolution across the project's modules.

Facts name things by where they were imported from (``Ref("proj.celery.app.task")``);
this module follows such names through module assignments, re-exports, star
imports and class bodies to what they finally denote: a function or class of
the project, an attribute of an instance of a framework class, or an external
name.  It never imports anything; what cannot be followed is ``Missing``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from jobaudit.facts import ClassFacts, FileFacts, FunctionFacts, fold
from jobaudit.values import Attr, BinOp, Call, Local, Ref, Seq, Span, Unknown, Value, render

_MAX_DEPTH = 12


@dataclass(frozen=True)
class External:
    """A name outside the project (``celery.shared_task``): frameworks are matched on these."""

    name: str


@dataclass(frozen=True)
class ProjectFunction:
    facts: FunctionFacts
    path: str


@dataclass(frozen=True)
class ProjectClass:
    facts: ClassFacts
    path: str


@dataclass(frozen=True)
class Assigned:
    """A module-level variable of the project and the value it was given."""

    module: str
    name: str
    value: Value
    path: str
    span: Span


@dataclass(frozen=True)
class InstanceAttr:
    """``attrs`` looked up on an instance of class ``cls`` (``app.conf.update`` on a Celery app).

    ``instance`` is the variable holding the instance when it is a module-level
    one, which identifies *which* app or broker it is.
    """

    cls: str
    attrs: tuple[str, ...]
    instance: Assigned | None


@dataclass(frozen=True)
class ModuleSym:
    facts: FileFacts


@dataclass(frozen=True)
class Missing:
    reason: str


Symbol = External | ProjectFunction | ProjectClass | Assigned | InstanceAttr | ModuleSym | Missing


Loader = Callable[[str], "FileFacts | None"]
"""Parses the module of that name on demand; None when it cannot be parsed."""


class Modules(Mapping[str, FileFacts]):
    """The project's modules by name; the ones the prefilter skipped are parsed on first use.

    Membership and lookup load a module when it is asked for by name (a helper
    a job calls, a settings module, a constant).  Iteration yields only the
    modules the model was built from: the prefilter guarantees that a module it
    skipped contributes nothing to a scan over all modules, and scanning the
    modules loaded on demand would only load what *they* refer to, in a
    cascade that ends in parsing the whole project.
    """

    def __init__(self, files: list[FileFacts], loader: Loader | None = None) -> None:
        self._loaded: dict[str, FileFacts] = {}
        self.by_path: dict[str, FileFacts] = {}
        self._loader = loader
        self._failed: set[str] = set()
        for facts in sorted(files, key=lambda f: f.path):
            self._add(facts)
        self._scanned = list(self._loaded.values())

    def _add(self, facts: FileFacts) -> None:
        self._loaded.setdefault(facts.module, facts)
        self.by_path[facts.path] = facts

    def _load(self, module: str) -> FileFacts | None:
        found = self._loaded.get(module)
        if found is not None or self._loader is None or module in self._failed:
            return found
        facts = self._loader(module)
        if facts is None:
            self._failed.add(module)
            return None
        self._add(facts)
        return self._loaded.get(module)

    def __getitem__(self, module: str) -> FileFacts:
        facts = self._load(module)
        if facts is None:
            raise KeyError(module)
        return facts

    def __contains__(self, module: object) -> bool:
        return isinstance(module, str) and self._load(module) is not None

    def __iter__(self) -> Iterator[str]:
        return iter([facts.module for facts in self._scanned])

    def __len__(self) -> int:
        return len(self._scanned)

    def values(self) -> list[FileFacts]:  # type: ignore[override]
        return list(self._scanned)

    def items(self) -> list[tuple[str, FileFacts]]:  # type: ignore[override]
        return [(facts.module, facts) for facts in self._scanned]


class Resolver:
    """Looks names up in the merged facts of every module of the project."""

    def __init__(
        self,
        files: list[FileFacts],
        loader: Loader | None = None,
        relevant: Callable[[str], bool] | None = None,
    ) -> None:
        self.modules = Modules(files, loader)
        self.facts_by_path: dict[str, FileFacts] = self.modules.by_path
        self._relevant = relevant
        self._index: dict[str, dict[str, object]] = {}
        self._imports: dict[str, dict[str, str]] = {}
        self._cache: dict[str, Symbol] = {}

    # -- module tables -------------------------------------------------------------------

    def _table(self, module: str) -> dict[str, object]:
        table = self._index.get(module)
        if table is None:
            facts = self.modules[module]
            table = {}
            for name, value, span in facts.assigns:
                table[name] = Assigned(module, name, value, facts.path, span)
            for function in facts.functions:
                table[function.name] = ProjectFunction(function, facts.path)
            for cls in facts.classes:
                table[cls.name] = ProjectClass(cls, facts.path)
            self._index[module] = table
            self._imports[module] = dict(facts.imports)
        return table

    def module_for(self, dotted: str) -> tuple[str, list[str]] | None:
        """Split ``dotted`` into the longest project module prefix and the attribute path."""
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            prefix = ".".join(parts[:cut])
            if prefix in self.modules:
                return prefix, parts[cut:]
        return None

    # -- lookup --------------------------------------------------------------------------

    def lookup(self, dotted: str, depth: int = 0) -> Symbol:
        cached = self._cache.get(dotted)
        if cached is not None:
            return cached
        result = self._lookup(dotted, depth)
        if depth == 0:
            self._cache[dotted] = result
        return result

    def _lookup(self, dotted: str, depth: int) -> Symbol:
        if depth > _MAX_DEPTH:
            return Missing(f"'{dotted}' refers to itself through too many names")
        split = self.module_for(dotted)
        if split is None:
            return External(dotted)
        module, rest = split
        if not rest:
            return ModuleSym(self.modules[module])
        return self._in_module(module, rest, depth)

    def _in_module(self, module: str, rest: list[str], depth: int) -> Symbol:
        table = self._table(module)
        head, tail = rest[0], rest[1:]
        entry = table.get(head)
        if entry is None:
            imported = self._imports[module].get(head)
            if imported is not None:
                return self.lookup(".".join([imported, *tail]), depth + 1)
            facts = self.modules[module]
            for star in facts.star_imports:
                if self.module_for(star) is None:
                    return Missing(f"'{head}' may come from 'from {star} import *'")
                found = self.lookup(".".join([star, head, *tail]), depth + 1)
                if not isinstance(found, Missing):
                    return found
            submodule = f"{module}.{head}"
            if submodule in self.modules:
                return self.lookup(".".join([submodule, *tail]), depth + 1)
            return Missing(f"'{head}' is not defined in module '{module}'")
        if not tail:
            return entry  # type: ignore[return-value]
        return self.attribute(entry, tail, depth)  # type: ignore[arg-type]

    def attribute(self, symbol: Symbol, attrs: list[str], depth: int) -> Symbol:
        """``symbol.attrs[0].attrs[1]...``."""
        if not attrs:
            return symbol
        if isinstance(symbol, ProjectClass):
            found = self.class_member(symbol, attrs[0])
            if found is None:
                return Missing(f"class '{symbol.facts.name}' has no attribute '{attrs[0]}'")
            return self.attribute(found, attrs[1:], depth + 1)
        if isinstance(symbol, Assigned):
            value = symbol.value
            if isinstance(value, Ref):
                return self.lookup(".".join([value.name, *attrs]), depth + 1)
            cls = self.instance_class(value, depth + 1)
            if cls is not None:
                return InstanceAttr(cls, tuple(attrs), symbol)
            return Missing(f"'{symbol.name}' is not a known object")
        if isinstance(symbol, InstanceAttr):
            return InstanceAttr(symbol.cls, symbol.attrs + tuple(attrs), symbol.instance)
        if isinstance(symbol, External):
            return External(".".join([symbol.name, *attrs]))
        if isinstance(symbol, ModuleSym):
            return self._in_module(symbol.facts.module, attrs, depth + 1)
        return Missing("attribute of a function")

    def class_member(self, cls: ProjectClass, name: str) -> Symbol | None:
        for klass, path in self.mro(cls):
            method = klass.method(name)
            if method is not None:
                return ProjectFunction(method, path)
            attr = klass.attr(name)
            if attr is not None:
                return Assigned(klass.module, f"{klass.name}.{name}", attr[0], path, attr[1])
            inner = klass.inner_class(name)
            if inner is not None:
                return ProjectClass(inner, path)
        return None

    def mro(self, cls: ProjectClass) -> Iterator[tuple[ClassFacts, str]]:
        """The class and its project base classes, depth first (good enough for options)."""
        seen: set[str] = set()
        stack = [cls]
        while stack:
            current = stack.pop(0)
            key = f"{current.facts.module}.{current.facts.qualname}"
            if key in seen or len(seen) > _MAX_DEPTH:
                continue
            seen.add(key)
            yield current.facts, current.path
            for base in current.facts.bases:
                symbol = self.symbol_of(base)
                if isinstance(symbol, ProjectClass):
                    stack.append(symbol)

    def external_bases(self, cls: ProjectClass) -> list[str]:
        """The external classes a project class derives from, through project bases."""
        out: list[str] = []
        for klass, _ in self.mro(cls):
            for base in klass.bases:
                symbol = self.symbol_of(base)
                if isinstance(symbol, External):
                    out.append(symbol.name)
                elif isinstance(symbol, InstanceAttr):
                    out.append(f"{symbol.cls}." + ".".join(symbol.attrs))
        return out

    def may_be_framework(self, value: Value) -> bool:
        """False when the prefilter proved that ``value`` cannot denote a framework object
        (an app, a middleware, a decorator): a scan for those can skip it without
        loading the modules it names."""
        return self._relevant is None or not isinstance(value, Ref) or self._relevant(value.name)

    def symbol_of(self, value: Value, depth: int = 0) -> Symbol:
        """What a name-like value denotes."""
        if isinstance(value, Ref):
            return self.lookup(value.name, depth)
        if isinstance(value, Attr):
            cls = self.instance_class(value.base, depth + 1)
            if cls is not None:
                return InstanceAttr(cls, (value.name,), None)
            base = self.symbol_of(value.base, depth + 1)
            if isinstance(base, InstanceAttr):
                return InstanceAttr(base.cls, (*base.attrs, value.name), base.instance)
            return Missing("attribute of an expression")
        return Missing("not a name")

    def instance_class(self, value: Value, depth: int = 0) -> str | None:
        """The external class of which ``value`` (a call) builds an instance.

        Builder methods such as ``broker.with_result_backend(...)`` return the
        same object, so a call of a ``with_*`` method keeps its receiver's class.
        """
        if depth > _MAX_DEPTH or not isinstance(value, Call):
            if isinstance(value, Ref) and depth <= _MAX_DEPTH:
                symbol = self.lookup(value.name, depth + 1)
                if isinstance(symbol, Assigned):
                    return self.instance_class(symbol.value, depth + 1)
            return None
        func = value.func
        if isinstance(func, Attr) and func.name.startswith("with_"):
            return self.instance_class(func.base, depth + 1)
        symbol = self.symbol_of(func, depth + 1)
        if isinstance(symbol, Assigned) and isinstance(symbol.value, Ref):
            return self.instance_class(Call(symbol.value), depth + 1)  # ``Queue = RedashQueue``
        if isinstance(symbol, External):
            head, _, last = symbol.name.rpartition(".")
            if head and last.startswith("with_"):
                return self.instance_class(Ref(head), depth + 1)
            return symbol.name
        if isinstance(symbol, ProjectClass):
            bases = self.external_bases(symbol)
            return bases[0] if bases else None
        if (
            isinstance(symbol, InstanceAttr)
            and symbol.attrs
            and symbol.attrs[-1].startswith("with_")
        ):
            return symbol.cls
        return None

    # -- values --------------------------------------------------------------------------

    def evaluate(self, value: Value, depth: int = 0) -> Value:
        """Follow names to constants: ``Ref('settings.TIMEOUT')`` → ``300``.

        Calls, classes and functions stay as they are; a name that cannot be
        followed becomes ``Unknown`` with the reason.
        """
        if depth > _MAX_DEPTH:
            return Unknown("too many indirections")
        if isinstance(value, Ref):
            symbol = self.lookup(value.name)
            if isinstance(symbol, Assigned):
                return self.evaluate(symbol.value, depth + 1)
            if isinstance(symbol, Missing):
                return Unknown(symbol.reason)
            return value
        if isinstance(value, BinOp):
            return fold(
                value.op,
                self.evaluate(value.left, depth + 1),
                self.evaluate(value.right, depth + 1),
            )
        if isinstance(value, Seq):
            return Seq(tuple(self.evaluate(item, depth + 1) for item in value.items))
        if isinstance(value, Local):
            return Unknown(f"local variable '{value.name}'")
        if isinstance(value, Call):
            return self._evaluate_call(value, depth)
        return value

    def _evaluate_call(self, value: Call, depth: int) -> Value:
        """A few pure calls whose result is known: ``timedelta(minutes=5)``, ``int("3")``."""
        func = value.func
        name = func.name if isinstance(func, Ref) else None
        if name is not None and name.rpartition(".")[2] == "timedelta":
            return Call(
                func,
                tuple(self.evaluate(arg, depth + 1) for arg in value.args),
                tuple((key, self.evaluate(arg, depth + 1)) for key, arg in value.kwargs),
                span=value.span,
            )
        if name in {"builtins.int", "builtins.float"} and len(value.args) == 1 and not value.kwargs:
            inner = self.evaluate(value.args[0], depth + 1)
            if isinstance(inner, (int, float, str)) and not isinstance(inner, bool):
                try:
                    return int(inner) if name == "builtins.int" else float(inner)
                except ValueError:
                    return Unknown("not a number")
            return inner if isinstance(inner, Unknown) else Unknown(f"computed by {name[9:]}()")
        if isinstance(func, Ref):
            symbol = self.symbol_of(func)
            if isinstance(symbol, External) and symbol.name.startswith(("os.environ", "os.getenv")):
                return Unknown("read from the environment at run time")
        return value


def seconds(value: Value) -> float | Unknown | None:
    """A duration in seconds from a number or ``timedelta(...)``; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Unknown("a boolean is not a duration")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Unknown):
        return value
    if (
        isinstance(value, Call)
        and isinstance(value.func, Ref)
        and value.func.name.endswith("timedelta")
    ):
        units = {
            "days": 86400,
            "seconds": 1,
            "microseconds": 1e-6,
            "milliseconds": 1e-3,
            "minutes": 60,
            "hours": 3600,
            "weeks": 604800,
        }
        total = 0.0
        names = ["days", "seconds", "microseconds", "milliseconds", "minutes", "hours", "weeks"]
        for index, arg in enumerate(value.args):
            if not isinstance(arg, (int, float)) or isinstance(arg, bool):
                return Unknown("timedelta with a computed argument")
            total += arg * units[names[index]]
        for key, arg in value.kwargs:
            if key not in units or not isinstance(arg, (int, float)) or isinstance(arg, bool):
                return Unknown("timedelta with a computed argument")
            total += arg * units[key]
        return total
    if isinstance(value, Call):
        return Unknown(f"computed at run time by {render(value.func)}()")
    return Unknown("not a constant duration")


__all__ = [
    "Assigned",
    "External",
    "InstanceAttr",
    "Missing",
    "ModuleSym",
    "ProjectClass",
    "ProjectFunction",
    "Resolver",
    "Symbol",
    "seconds",
]
