"""Which call sites run inside an open database transaction.

A job enqueued inside a transaction reaches the broker before the rows it
needs are committed: a fast worker reads the old state, or nothing at all,
and if the transaction rolls back the job runs for data that never existed.
Only what the code says lexically counts, because that is what can be known
without running it:

- Django: the body of ``with transaction.atomic():`` (any spelling of
  ``django.db.transaction.atomic``, with or without arguments), a function
  decorated with ``@transaction.atomic``, and a view when a non-test settings
  module sets ``ATOMIC_REQUESTS`` (Django wraps each sync view in ``atomic``;
  a view here is a sync function whose first parameter, after ``self``, is
  ``request``, outside middleware, context processors and template tags, and
  not marked ``@transaction.non_atomic_requests``);
- peewee: ``with db.atomic():`` / ``db.transaction()`` on a database object;
- SQLAlchemy: ``with session.begin():`` (or ``engine.begin()``), and a
  session that writes (``add``, ``flush``, ``merge``, ``delete``) before the
  call and commits after it, in the same function.

A helper called from inside the block is not followed; a function defined
inside the block (usually an ``on_commit`` callback) is not in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.facts import CallSite, FileFacts, FunctionFacts
from jobaudit.model import Location
from jobaudit.project import is_test_path
from jobaudit.symbols import Assigned, External, InstanceAttr
from jobaudit.values import Attr, Call, Mapping, Ref, Value, dotted, render

if TYPE_CHECKING:
    from jobaudit.project import Project

ATOMIC = frozenset({"django.db.transaction.atomic"})
NON_ATOMIC_REQUESTS = frozenset({"django.db.transaction.non_atomic_requests"})
PEEWEE = ("peewee.", "playhouse.")
SESSION_WRITES = frozenset({"add", "add_all", "flush", "merge", "delete", "bulk_save_objects"})
SQLALCHEMY = ("sqlalchemy", "flask_sqlalchemy", "sqlmodel")
READ_ONLY = ("replica", "read_only", "readonly")
NOT_VIEWS = ("middleware", "context_processors", "templatetags")
NON_PRODUCTION = re.compile(
    r"(^|[._])(tests?|testing|test_\w+|\w+_tests?|dev|development|local|ci)($|[._])"
)
"""Settings modules that do not configure production (``settings.test``, ``settings_dev``...)."""


@dataclass(frozen=True)
class Transaction:
    """Where a call's enclosing transaction is opened, and how to say it."""

    description: str
    """``inside 'with transaction.atomic()'``, ``in a view (ATOMIC_REQUESTS)``..."""
    location: Location
    """The ``with`` item, the decorator, the settings line or the ``commit()`` call."""
    related: str
    """What the location is, for the related place of a finding."""
    django: bool
    """Django's transaction, so ``transaction.on_commit`` is the fix."""


def non_production(module: str) -> bool:
    """Whether a settings module's name says it is for tests, development or CI."""
    return bool(NON_PRODUCTION.search(module.lower()))


class Transactions:
    """Answers "is this call inside a transaction?" for one project."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.resolver = project.resolver
        self._atomic_requests: Location | None = None
        self._searched = False

    def around(
        self, site: CallSite, function: FunctionFacts | None, path: str
    ) -> Transaction | None:
        """The transaction open at a call, innermost known first, or None."""
        if function is None:
            return None
        for manager in reversed(site.withs):
            found = self._manager(manager, site, path)
            if found is not None:
                return found
        for decorator, span in zip(function.decorators, function.decorator_spans, strict=True):
            if self.is_atomic(decorator):
                return Transaction(
                    f"in '{function.name}', which is decorated with @{_spelled(decorator)}",
                    Location(path, span),
                    "the transaction: the whole function runs in it",
                    True,
                )
        found = self._session(site, function, path)
        if found is not None:
            return found
        settings = self.atomic_requests()
        if settings is not None and self.is_view(function, path):
            return Transaction(
                f"in the view '{function.name}', which runs in a transaction because "
                "ATOMIC_REQUESTS is set",
                settings,
                "ATOMIC_REQUESTS wraps every view in transaction.atomic",
                True,
            )
        return None

    # -- with blocks and decorators ------------------------------------------------------

    def is_atomic(self, value: Value) -> bool:
        """``transaction.atomic`` or ``transaction.atomic(using=...)``, in any spelling.

        A transaction on a read replica (``atomic(using=REPLICA)``, saleor's way to
        pin reads to one replica) writes nothing a job could miss, so it does not count.
        """
        target = value.func if isinstance(value, Call) else value
        if self._external(target) not in ATOMIC:
            return False
        if isinstance(value, Call):
            using = value.kwarg("using")
            if using is None and value.args:
                using = value.args[0]
            if using is not None and _names_replica(using, self.resolver.evaluate(using)):
                return False
        return True

    def _external(self, value: Value) -> str | None:
        symbol = self.resolver.symbol_of(value) if isinstance(value, Ref) else None
        if isinstance(symbol, Assigned) and isinstance(symbol.value, Ref):
            symbol = self.resolver.symbol_of(symbol.value)
        return symbol.name if isinstance(symbol, External) else None

    def _manager(self, manager: Value, site: CallSite, path: str) -> Transaction | None:
        span = manager.span if isinstance(manager, Call) else site.call.span
        where = Location(path, span)
        if self.is_atomic(manager):
            return Transaction(
                f"inside 'with {_spelled(manager)}'",
                where,
                "the transaction is opened here",
                True,
            )
        if not isinstance(manager, Call):
            return None
        symbol = self.resolver.symbol_of(manager.func)
        if (
            isinstance(symbol, InstanceAttr)
            and symbol.cls.startswith(PEEWEE)
            and symbol.attrs[-1:] in {("atomic",), ("transaction",)}
        ):
            return Transaction(
                f"inside 'with {_spelled(manager)}'", where, "the transaction is opened here", False
            )
        name = dotted(manager.func) or ""
        receiver, _, method = name.rpartition(".")
        if method in {"begin", "begin_nested"} and _session_like(receiver, symbol):
            return Transaction(
                f"inside 'with {_spelled(manager)}'", where, "the transaction is opened here", False
            )
        return None

    # -- SQLAlchemy sessions ---------------------------------------------------------------

    def _session(self, site: CallSite, function: FunctionFacts, path: str) -> Transaction | None:
        """A session that wrote before the call and commits after it, in the same function."""
        facts = self.resolver.facts_by_path.get(path)
        if facts is None or not _uses_sqlalchemy(facts, function):
            return None
        line = site.call.span[:2]
        writes: dict[str, tuple[tuple[int, int], str]] = {}
        commits: dict[str, list[Call]] = {}
        for other in function.calls:
            name = dotted(other.call.func) or ""
            receiver, _, method = name.rpartition(".")
            if not receiver or not _session_like(receiver, None):
                continue
            where = other.call.span[:2]
            if method in SESSION_WRITES and where < line:
                if receiver not in writes or writes[receiver][0] < where:
                    writes[receiver] = (where, method)
            elif method == "commit":
                commits.setdefault(receiver, []).append(other.call)
        for receiver, (written, method) in writes.items():
            after = [c for c in commits.get(receiver, []) if c.span[:2] > line]
            between = [c for c in commits.get(receiver, []) if written < c.span[:2] < line]
            if after and not between:
                commit = min(after, key=lambda c: c.span)
                return Transaction(
                    f"after {receiver}.{method}() (line {written[0]}) and before "
                    f"{receiver}.commit() (line {commit.span[0]})",
                    Location(path, commit.span),
                    "the transaction commits here",
                    False,
                )
        return None

    # -- ATOMIC_REQUESTS views -------------------------------------------------------------

    def atomic_requests(self) -> Location | None:
        """Where a production settings module sets ``ATOMIC_REQUESTS = True``, if one does."""
        if not self._searched:
            self._atomic_requests = self._find_atomic_requests()
            self._searched = True
        return self._atomic_requests

    def _find_atomic_requests(self) -> Location | None:
        project = self.project
        for module in project.django_settings_modules():
            if non_production(module):
                continue
            databases = project.settings(module).get("DATABASES")
            if databases is not None and isinstance(databases.value, Mapping):
                for _, entry in databases.value.items:
                    entry = self.resolver.evaluate(entry)
                    if isinstance(entry, Mapping) and (
                        self.resolver.evaluate(entry.get("ATOMIC_REQUESTS")) is True
                    ):
                        return databases.location
            for facts in self._module_chain(module):
                for assign in facts.attr_assigns:
                    target = assign.target
                    if (
                        isinstance(target, Attr)
                        and target.name == "ATOMIC_REQUESTS"
                        and self.resolver.evaluate(assign.value) is True
                    ):
                        return Location(facts.path, assign.span)
        return None

    def _module_chain(self, module: str) -> list[FileFacts]:
        """A settings module and the modules it star-imports."""
        out: list[FileFacts] = []
        pending = [module]
        while pending:
            name = pending.pop()
            facts = self.resolver.modules.get(name)
            if facts is None or facts in out:
                continue
            out.append(facts)
            pending.extend(facts.star_imports)
        return out

    def is_view(self, function: FunctionFacts, path: str) -> bool:
        """A sync function taking ``request`` first that Django runs as a view."""
        if function.is_async or "<locals>" in function.qualname:
            return False
        if is_test_path(path, self.project.config.test_paths):
            return False
        params = list(function.params)
        if function.class_name is not None and params[:1] in (["self"], ["cls"]):
            params = params[1:]
        if params[:1] != ["request"]:
            return False
        if function.name == "__call__" or function.name.startswith("process_"):
            return False
        if any(part in function.module.split(".") for part in NOT_VIEWS):
            return False
        return not any(
            self._external(d.func if isinstance(d, Call) else d) in NON_ATOMIC_REQUESTS
            for d in function.decorators
        )


def _spelled(value: Value) -> str:
    """``transaction.atomic()`` / ``transaction.atomic`` as written (modulo arguments)."""
    if isinstance(value, Call):
        inner = "..." if value.args or value.kwargs else ""
        return f"{_short(value.func)}({inner})"
    return _short(value)


def _short(value: Value) -> str:
    name = dotted(value)
    if name is None:
        return render(value)
    parts = name.split(".")
    return ".".join(parts[-2:]) if isinstance(value, Ref) else name


def _names_replica(written: Value, value: Value) -> bool:
    """``using=settings.DATABASE_CONNECTION_REPLICA_NAME`` or ``using="replica"``."""
    names = [dotted(written) or "", value if isinstance(value, str) else ""]
    return any(word in name.lower() for name in names for word in READ_ONLY)


def _session_like(receiver: str, symbol: object) -> bool:
    """``session``, ``db.session``, ``self.session``, ``SessionLocal``, an SQLAlchemy engine."""
    if isinstance(symbol, InstanceAttr) and symbol.cls.startswith("sqlalchemy."):
        return True
    last = receiver.rpartition(".")[2].lower()
    return "session" in last or last == "engine"


def _uses_sqlalchemy(facts: FileFacts, function: FunctionFacts) -> bool:
    """The module imports SQLAlchemy (or Flask-SQLAlchemy, SQLModel), or a parameter is
    annotated with one of its session classes (``session: AsyncSession``)."""
    if any(target.startswith(SQLALCHEMY) for _, target in facts.imports):
        return True
    for _, annotation in function.annotations:
        name = dotted(annotation) or (annotation if isinstance(annotation, str) else "")
        if "Session" in name.rpartition(".")[2]:
            return True
    return False


__all__ = ["Transaction", "Transactions", "non_production"]
