"""Which files can matter: a byte-level prefilter and the closure over imports.

Most files of an application define no job, enqueue none and configure no
framework, and parsing them is most of the cost of a run.  So every file is
read, but only the files that can contribute to the project model are parsed
up front:

1. files that import a job framework or a library a rule reads (the
   :data:`REGISTRY`, one entry per framework or rule family), or whose bytes
   contain one of its tokens (``CELERY_`` settings, ``# noqa: JOB`` comments);
2. then, to a fixpoint, files that import a *relevant name* from a file
   already selected: a name defined in a file that imports a framework, a job,
   an app, a wrapper, a base class or a ``functools.partial`` built from one,
   or a re-export of any of these (:class:`Closure`).

Any other module the project model reaches by name (a helper a job calls, a
settings module, a constant) is parsed on demand by the resolver.  Imports are
found with a byte scan, not a parser, so it errs on the side of selecting:
an ``import`` inside a string or a comment selects too.  Files that cannot be
read or decoded as plain UTF-8 are always selected, so they keep their notice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.values import Attr, Call, Mapping, Ref, Seq, Value

if TYPE_CHECKING:
    from jobaudit.facts import FileFacts, FunctionFacts


@dataclass(frozen=True)
class Relevance:
    """What makes a file relevant to one framework or rule family.

    ``imports`` are dotted module prefixes (``celery``, ``django.tasks``): a
    file importing one is parsed.  ``tokens`` are byte strings: a file whose
    bytes contain one is parsed (settings names, hooks found by name).
    ``declares``: what a file builds from these imports (an app, a wrapper, a
    job) is relevant to the files importing it in turn; a library that rules
    only read where it is used (Sentry, tenacity) does not make its users'
    names relevant.
    """

    imports: tuple[str, ...] = ()
    tokens: tuple[bytes, ...] = ()
    declares: bool = True


REGISTRY: dict[str, Relevance] = {
    "celery": Relevance(
        ("celery", "kombu", "django_celery_beat", "django_celery_results"),
        (b"CELERY",),
    ),
    "rq": Relevance(("rq", "django_rq", "rq_scheduler"), (b"RQ_", b"enqueue")),
    "dramatiq": Relevance(("dramatiq", "django_dramatiq", "periodiq"), (b"DRAMATIQ",)),
    "huey": Relevance(("huey",), (b"HUEY",)),
    "arq": Relevance(("arq",), (b"enqueue",)),
    "taskiq": Relevance(("taskiq", "taskiq_redis", "taskiq_aio_pika", "taskiq_nats")),
    "django_tasks": Relevance(("django.tasks", "django_tasks"), (b"TASKS",)),
    "temporal": Relevance(("temporalio",)),
    "retry helpers": Relevance(
        ("tenacity", "backoff", "retrying", "retry", "stamina"), declares=False
    ),
    "clients (JOB404)": Relevance(
        (
            "requests",
            "httpx",
            "aiohttp",
            "urllib3",
            "urllib.request",
            "http.client",
            "socket",
            "smtplib",
            "ftplib",
            "redis",
            "boto3",
            "botocore",
            "psycopg",
            "psycopg2",
            "pymysql",
            "pymongo",
            "pika",
            "paramiko",
            "grpc",
            "elasticsearch",
            "stripe",
        ),
    ),
    "django settings": Relevance((), (b"DJANGO_SETTINGS_MODULE", b"ATOMIC_REQUESTS")),
    "observability (JOB501, JOB504)": Relevance(
        ("sentry_sdk", "prometheus_client", "statsd", "datadog", "opentelemetry", "ddtrace"),
        (
            b"task_failure",
            b"signal(",
            b"Middleware",
            b"on_failure",
            b"exception_handlers",
        ),
        declares=False,
    ),
    "RQ exception classification (JOB202)": Relevance((), (b"retries_left",), declares=False),
    "suppressions (# noqa: JOB, # jobaudit:)": Relevance((), (b"JOB", b"jobaudit")),
}
"""Owner → what makes a file relevant to it.  A new rule that reads files the
project model does not otherwise reach adds its entry here."""

_IMPORT = re.compile(
    rb"[ \t]*(?:from[ \t]+(\.*)[ \t]*([\w.]*)[ \t]+import[ \t]*(\([^)]*\)|(?:[^\n\\#;]|\\\n)*)"
    rb"|import[ \t]+((?:[^\n\\#;]|\\\n)*))"
)
_NAME = re.compile(r"[\w.*]+")
_NOQA_JOB = re.compile(rb"(?i)noqa[ \t]*:[^\n]*\bjob")
"""A ``# noqa`` naming a jobaudit code in any case (``# noqa: job301`` counts for JOB901)."""


@dataclass(frozen=True)
class Scan:
    """What the byte scan learnt about one file."""

    imports: tuple[str, ...]
    """Absolute dotted targets: ``pkg.mod`` for ``import pkg.mod``, ``pkg.mod.name`` for
    ``from pkg.mod import name`` (``pkg.mod.*`` for a star import)."""
    static: bool
    """Selected by itself: a registry import or token, or bytes only a full read can judge."""


class Registry:
    """The :data:`REGISTRY` (plus the configured custom job system) compiled for matching."""

    def __init__(self, custom: Iterable[str] = ()) -> None:
        self.prefixes: frozenset[str] = frozenset(
            prefix for entry in REGISTRY.values() for prefix in entry.imports
        )
        self.declaring: frozenset[str] = frozenset(
            prefix for entry in REGISTRY.values() if entry.declares for prefix in entry.imports
        )
        tokens = {token for entry in REGISTRY.values() for token in entry.tokens}
        # A configured custom decorator may be an external package or the project's own module.
        self.custom: frozenset[str] = frozenset(custom)
        tokens.update(name.rpartition(".")[2].encode() for name in self.custom if name)
        self.tokens: tuple[bytes, ...] = tuple(sorted(tokens))

    def selects(self, target: str) -> bool:
        """An import of ``target`` makes the file relevant."""
        return any(prefix in self.prefixes for prefix in _prefixes(target))

    def declares(self, target: str) -> bool:
        """What is built from ``target`` is relevant to the files that import it."""
        return any(prefix in self.declaring for prefix in _prefixes(target))

    def scan(self, data: bytes | None, module: str, is_package: bool) -> Scan:
        """The file's imports and whether it is relevant by itself (``data`` None: unreadable)."""
        if data is None or not _plain_utf8(data):
            return Scan((), True)
        imports = tuple(_imports(data, module, is_package))
        static = (
            any(map(self.selects, imports))
            or any(token in data for token in self.tokens)
            or ((b"noqa" in data or b"NOQA" in data) and _NOQA_JOB.search(data) is not None)
        )
        return Scan(imports, static)


def _plain_utf8(data: bytes) -> bool:
    """UTF-8 without a BOM, NUL bytes or an encoding declaration: decoded the same everywhere."""
    if b"\x00" in data or data.startswith(b"\xef\xbb\xbf") or b"coding" in data[:400]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _prefixes(dotted: str) -> Iterator[str]:
    """``a``, ``a.b``, ``a.b.c`` for ``a.b.c``."""
    end = dotted.find(".")
    while end != -1:
        yield dotted[:end]
        end = dotted.find(".", end + 1)
    yield dotted


def _imports(data: bytes, module: str, is_package: bool) -> Iterator[str]:
    position = data.find(b"import")
    while position != -1:
        line = data.rfind(b"\n", 0, position) + 1
        start = max(line, data.rfind(b";", line, position) + 1)
        match = _IMPORT.match(data, start)
        if match is None or match.end() <= position:
            position = data.find(b"import", position + 6)
            continue
        position = data.find(b"import", match.end())
        dots, source, names, plain = match.groups()
        if plain is not None:
            for item in plain.decode("utf-8", "replace").replace("\\\n", " ").split(","):
                name = _NAME.match(item.strip())
                if name:
                    yield name.group()
            continue
        base = _absolute(len(dots), source.decode("utf-8", "replace"), module, is_package)
        if base is None:
            continue
        text = names.decode("utf-8", "replace").strip("()").replace("\\\n", " ")
        for item in text.split(","):
            name = _NAME.match(item.strip())
            if name:
                yield f"{base}.{name.group()}" if base else name.group()


def _absolute(level: int, source: str, module: str, is_package: bool) -> str | None:
    """The absolute module of ``from <level dots><source> import``; None beyond the top."""
    if not level:
        return source
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if level - 1 > len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, source] if source else base)


class Closure:
    """The relevant names of the selected modules, grown to a fixpoint.

    A name is relevant when a file that imports it may declare, configure or
    enqueue a job: a re-export of a relevant name or of a registry package, an
    assignment or a class that refers to one (an app, a queue, a
    ``functools.partial``, a base class), a function decorated with one (a
    job), and a function that may be a decorator factory (nested functions,
    ``**kwargs`` or a relevant return value) calling one.  A function that
    merely calls a job or a helper is not: the files calling *it* need not be
    read, which is what keeps the closure small.
    """

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.names: set[str] = set()
        self.prefixes: set[str] = set()
        self._decorated: set[str] = set()
        self._answers: dict[str, bool] = {}
        self._known: dict[str, list[_Definition]] = {}
        for name in registry.custom:
            self.add(name)

    def add(self, name: str) -> bool:
        if name in self.names:
            return False
        self.names.add(name)
        for prefix in _prefixes(name.rpartition(".")[0]):
            self.prefixes.add(prefix)
        self._answers.clear()
        return True

    def refers(self, target: str) -> bool:
        """Whether an import target or a reference reaches a relevant name."""
        known = self._answers.get(target)
        if known is None:
            known = self._answers[target] = self._refers(target)
        return known

    def _refers(self, target: str) -> bool:
        if target.endswith(".*"):
            return target[:-2] in self.prefixes
        if target in self.prefixes:
            return True
        return any(prefix in self.names for prefix in _prefixes(target)) or (
            self.registry.declares(target)
        )

    def grow(self, modules: Iterable[FileFacts]) -> bool:
        """Add the relevant names of ``modules``; True if any was new."""
        grown = False
        changed = True
        modules = list(modules)
        while changed:
            changed = False
            for facts in modules:
                for name in self._relevant(facts):
                    if self.add(f"{facts.module}.{name}"):
                        changed = grown = True
        return grown

    def _relevant(self, facts: FileFacts) -> Iterator[str]:
        for definition in self._definitions(facts):
            if definition.function is None:
                if f"{facts.module}.{definition.name}" not in self.names and self._any(
                    definition.refs
                ):
                    yield definition.name
            elif self._any(definition.refs):
                self._decorated.add(f"{facts.module}.{definition.name}")
                yield definition.name
            elif self._factory(definition.function) or self._runs_inline(definition.function):
                yield definition.name

    def _definitions(self, facts: FileFacts) -> list[_Definition]:
        """A module's top-level names and what each refers to, computed once per module."""
        found = self._known.get(facts.path)
        if found is None:
            found = [_Definition(alias, (target,)) for alias, target in facts.imports]
            found += [_Definition(name, tuple(_refs(value))) for name, value, _ in facts.assigns]
            found += [
                _Definition(cls.name, tuple(_refs_all((*cls.bases, *cls.decorators))))
                for cls in facts.classes
            ]
            found += [
                _Definition(f.name, tuple(_refs_all(f.decorators)), _Shape.of(f))
                for f in facts.functions
            ]
            self._known[facts.path] = found
        return found

    def add_job(self, name: str) -> bool:
        """A job the project model found (by registration, say): relevant, and calling it
        directly makes a function relevant too."""
        self._decorated.add(name)
        return self.add(name)

    def _runs_inline(self, shape: _Shape) -> bool:
        """Calls a job directly: a rule asks who calls such a function (only management
        commands?), so the files calling it are read too."""
        return any(name in self._decorated for name in shape.direct)

    def _factory(self, shape: _Shape) -> bool:
        """A function that may build a decorator from a relevant name (not one calling a job)."""
        if not (shape.nested_or_kwargs or self._calling(shape.returns)):
            return False
        return self._calling(shape.forwarded)

    def _calling(self, refs: Iterable[str]) -> bool:
        return any(
            self.refers(name) and not any(prefix in self._decorated for prefix in _prefixes(name))
            for name in refs
        )

    def _any(self, refs: Iterable[str]) -> bool:
        return any(self.refers(name) for name in refs)


@dataclass(frozen=True)
class _Shape:
    """What the closure asks of a function, read from its facts once."""

    nested_or_kwargs: bool
    returns: tuple[str, ...]
    forwarded: tuple[str, ...]
    """Names its calls and its nested functions' calls and decorators refer to."""
    direct: tuple[str, ...]
    """Names it calls directly (``send_receipt(...)``)."""

    @staticmethod
    def of(function: FunctionFacts) -> _Shape:
        values = list(_forwarded(function))
        return _Shape(
            bool(function.nested or function.kwarg),
            tuple(_refs_all(function.returns)),
            tuple(_refs_all(values)),
            tuple(v.func.name for v in values if isinstance(v, Call) and isinstance(v.func, Ref)),
        )


@dataclass(frozen=True)
class _Definition:
    """A top-level name: what it refers to (a function's: its decorators) and, for a
    function, its shape."""

    name: str
    refs: tuple[str, ...]
    function: _Shape | None = None


def _forwarded(function: FunctionFacts) -> Iterator[Value]:
    """What a decorator factory may forward to: its calls and its nested functions' calls and
    decorators, at any depth."""
    for site in function.calls:
        yield site.call
    for inner in function.nested:
        yield from inner.decorators
        yield from _forwarded(inner)


def _refs(value: Value) -> Iterator[str]:
    """The dotted names a value refers to."""
    if isinstance(value, Ref):
        yield value.name
    elif isinstance(value, Call):
        yield from _refs(value.func)
        yield from _refs_all(value.args)
        yield from _refs_all(v for _, v in value.kwargs)
        yield from _refs_all(value.star_args)
        yield from _refs_all(value.star_kwargs)
    elif isinstance(value, Attr):
        yield from _refs(value.base)
    elif isinstance(value, Seq):
        yield from _refs_all(value.items)
    elif isinstance(value, Mapping):
        for key, item in value.items:
            yield from _refs(key)
            yield from _refs(item)


def _refs_all(values: Iterable[Value]) -> Iterator[str]:
    for value in values:
        yield from _refs(value)
