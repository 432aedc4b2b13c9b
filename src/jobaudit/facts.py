"""Per-file facts: the map step.

One parsed module becomes a ``FileFacts``: its imports, module-level
assignments and calls, classes and functions, and for each function the calls,
``except`` handlers and ``raise`` statements of its body.  Facts are plain
frozen dataclasses of ``values.Value`` so they pickle, cache by content hash and
cross process boundaries; no rule ever needs the tree again.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import re
from dataclasses import dataclass, field

from jobaudit.lines import Lines
from jobaudit.values import (
    Attr,
    BinOp,
    Call,
    Element,
    Lambda,
    Local,
    Mapping,
    Record,
    Ref,
    Seq,
    Span,
    Unknown,
    Value,
)
from jobaudit.words import Words

_BUILTINS = frozenset(dir(builtins))
_LOGGING_TRACEBACK = frozenset({"exception", "capture_exception", "captureException"})


@dataclass(frozen=True, slots=True)
class CallSite(Record):
    """A call in a function body or at module level, with the context rules ask about."""

    call: Call
    statement: bool = False
    """The call is a whole expression statement (its result is dropped)."""
    raised: bool = False
    """The call is the operand of ``raise``."""
    awaited: bool = False
    trys: tuple[int, ...] = ()
    """Indices (into ``FunctionFacts.trys``) of the ``try`` bodies enclosing the call."""
    withs: tuple[Value, ...] = ()
    """Context managers of the enclosing ``with`` statements, outermost first."""
    in_handler: bool = False
    in_loop: bool = False
    checks: tuple[int, ...] = ()
    """Indices (into ``FunctionFacts.checks``) of the ``if`` statements the call is inside."""


@dataclass(frozen=True, slots=True)
class Check(Record):
    """An ``if`` statement: what its test reads and whether its body leaves early.

    Guards against running a job twice are tests of stored state
    (``if order.receipt_sent_at: return``); facts keep what the test reads,
    rules decide what it means.
    """

    span: Span
    """The whole statement, body and ``else`` included."""
    reads: tuple[Value, ...]
    """The names, attributes and called functions of the test (``order.receipt_sent_at``)."""
    exits: bool
    """The body ends with ``return``, ``raise``, ``continue`` or ``break``."""


@dataclass(frozen=True, slots=True)
class Handler(Record):
    """One ``except`` clause."""

    span: Span
    try_index: int
    types: tuple[Value, ...]
    """The caught exception types; empty for a bare ``except:``."""
    name: str | None
    reraises: bool
    """The handler body contains a ``raise`` statement (re-raise or a new exception)."""
    exits: bool
    """The handler body returns, or ends the job with ``sys.exit``/``os._exit``."""
    logs_traceback: bool
    """It logs with a traceback (``logger.exception``, ``exc_info=``, ``capture_exception``)."""
    body_is_trivial: bool
    """The body is only ``pass``, ``...``, ``continue`` or a docstring."""
    only_logs: bool = False
    """The body does nothing but log (or pass, or return nothing): the error goes no further."""
    breaks: bool = False
    """The body leaves the enclosing loop with ``break``."""


@dataclass(frozen=True, slots=True)
class TryBlock(Record):
    """A ``try`` statement: its handlers' indices and what its body raises directly."""

    span: Span
    handlers: tuple[int, ...]
    raises: tuple[Value, ...]
    in_loop: bool = False
    """The ``try`` statement is inside a loop of the function."""


@dataclass(frozen=True, slots=True)
class Raise(Record):
    value: Value | None
    span: Span
    trys: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class FunctionFacts(Record):
    """A function or method: its signature, decorators and a summary of its body."""

    name: str
    qualname: str
    module: str
    span: Span
    is_async: bool
    decorators: tuple[Value, ...]
    decorator_spans: tuple[Span, ...]
    params: tuple[str, ...]
    defaults: tuple[tuple[str, Value], ...]
    vararg: str | None
    kwarg: str | None
    calls: tuple[CallSite, ...]
    trys: tuple[TryBlock, ...]
    handlers: tuple[Handler, ...]
    raises: tuple[Raise, ...]
    returns: tuple[Value, ...]
    locals: tuple[tuple[str, Value], ...]
    nested: tuple[FunctionFacts, ...]
    docstring: str | None
    identifiers: Words = field(default=Words())
    """Every name and attribute name the body mentions (for counters, guards and markers)."""
    class_name: str | None = None
    checks: tuple[Check, ...] = ()
    """The ``if`` statements of the body, in source order."""
    local_spans: tuple[tuple[str, Span], ...] = ()
    """Where each value of ``locals`` was written, in the same order."""
    annotations: tuple[tuple[str, Value], ...] = ()
    """Parameter annotations as written (``order: Order``; a string one stays a string)."""
    end_line: int = 0
    """The last line of the body (``span`` covers only ``def name``)."""

    def local(self, name: str) -> Value | None:
        """The last value assigned to local ``name`` in the body, if any."""
        for key, value in reversed(self.locals):
            if key == name:
                return value
        return None

    def default(self, name: str) -> Value | None:
        for key, value in self.defaults:
            if key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class ClassFacts(Record):
    name: str
    qualname: str
    module: str
    span: Span
    bases: tuple[Value, ...]
    keywords: tuple[tuple[str, Value], ...]
    attrs: tuple[tuple[str, Value, Span], ...]
    methods: tuple[FunctionFacts, ...]
    inner: tuple[ClassFacts, ...]
    decorators: tuple[Value, ...] = ()

    def attr(self, name: str) -> tuple[Value, Span] | None:
        for key, value, span in reversed(self.attrs):
            if key == name:
                return value, span
        return None

    def method(self, name: str) -> FunctionFacts | None:
        for method in self.methods:
            if method.name == name:
                return method
        return None

    def inner_class(self, name: str) -> ClassFacts | None:
        for cls in self.inner:
            if cls.name == name:
                return cls
        return None


@dataclass(frozen=True, slots=True)
class AttrAssign(Record):
    """``target.attr = value`` at module level (``app.conf.task_time_limit = 60``)."""

    target: Value
    value: Value
    span: Span


@dataclass(frozen=True, slots=True)
class FileFacts(Record):
    """Everything the project model needs from one module."""

    path: str
    module: str
    is_package: bool
    imports: tuple[tuple[str, str], ...]
    star_imports: tuple[str, ...]
    assigns: tuple[tuple[str, Value, Span], ...]
    attr_assigns: tuple[AttrAssign, ...]
    calls: tuple[CallSite, ...]
    functions: tuple[FunctionFacts, ...]
    classes: tuple[ClassFacts, ...]
    upper_names: frozenset[str]
    """UPPER_CASE attribute names and strings the module reads (settings it uses itself)."""
    noqa: tuple[tuple[int, frozenset[str] | None], ...] = ()
    pragmas: tuple[tuple[int, str], ...] = ()
    lines: Lines = field(default=Lines(), repr=False)
    """Source lines, kept for fingerprints, ``--show-source`` and non-ASCII column conversion."""


def span_of(node: ast.AST) -> Span:
    line = getattr(node, "lineno", 0)
    col = getattr(node, "col_offset", 0)
    end_line = getattr(node, "end_lineno", None) or line
    end_col = getattr(node, "end_col_offset", None)
    return (line, col, end_line, col if end_col is None else end_col)


def _bound_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for elt in target.elts for name in _bound_names(elt)]
    if isinstance(target, ast.Starred):
        return _bound_names(target.value)
    return []


_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Pow: "**",
    ast.Mod: "%",
}


def fold(op: str, left: Value, right: Value) -> Value:
    """Arithmetic on two known numbers; BinOp when an operand still needs resolving."""
    numbers = (int, float)
    if (
        isinstance(left, numbers)
        and isinstance(right, numbers)
        and not isinstance(left, bool)
        and not isinstance(right, bool)
    ):
        try:
            if op == "+":
                return left + right
            if op == "-":
                return left - right
            if op == "*":
                return left * right
            if op == "/":
                return left / right
            if op == "//":
                return left // right
            if op == "%":
                return left % right
            if op == "**" and abs(right) < 64:
                return left**right
        except (ArithmeticError, ValueError):
            return Unknown("arithmetic error")
        return Unknown(f"unsupported arithmetic '{op}'")
    if isinstance(left, Unknown):
        return left
    if isinstance(right, Unknown):
        return right
    if isinstance(left, str) and isinstance(right, str) and op == "+":
        return left + right
    return BinOp(op, left, right)


_TRY = tuple(kind for kind in (ast.Try, getattr(ast, "TryStar", None)) if kind is not None)
"""``try`` statements; ``try``/``except*`` (Python 3.11+) has the same fields."""

_NO_CALLS = frozenset(
    {ast.Lambda, ast.Name, ast.Constant}
    | {
        kind
        for base in (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)
        for kind in base.__subclasses__()
    }
)
"""Node types :meth:`_BodyWalker.expr` need not look into (a lambda's calls run later)."""


def _children(node: ast.AST) -> list[ast.AST]:
    """``ast.iter_child_nodes`` as a list, without its two generators: this runs for every
    node of every function body."""
    found: list[ast.AST] = []
    for name in node._fields:
        child = getattr(node, name, None)
        if isinstance(child, list):
            found.extend(item for item in child if isinstance(item, ast.AST))
        elif isinstance(child, ast.AST):
            found.append(child)
    return found


class _Scope:
    """Name resolution for one module, optionally inside a function."""

    def __init__(
        self,
        module: str,
        imports: dict[str, str],
        module_names: set[str],
        locals_: frozenset[str] = frozenset(),
    ) -> None:
        self.module = module
        self.imports = imports
        self.module_names = module_names
        self.locals = locals_
        self._calls: dict[int, tuple[ast.Call, Call]] = {}
        """Each call node's value: a nested call is valued with its parent, then visited."""

    def inner(self, locals_: frozenset[str]) -> _Scope:
        return _Scope(self.module, self.imports, self.module_names, self.locals | locals_)

    def name(self, ident: str) -> Value:
        if ident in self.locals:
            return Local(ident)
        if ident in self.imports:
            return Ref(self.imports[ident])
        if ident in self.module_names:
            return Ref(f"{self.module}.{ident}")
        if ident in _BUILTINS:
            return Ref(f"builtins.{ident}")
        return Ref(f"{self.module}.{ident}")

    def value(self, node: ast.expr | None) -> Value:
        if node is None:
            return None
        # The commonest nodes first: names and attribute chains are most of any body.
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.Attribute):
            base = self.value(node.value)
            if isinstance(base, Ref):
                return Ref(f"{base.name}.{node.attr}")
            if isinstance(base, Local):
                return Local(f"{base.name}.{node.attr}")
            return Attr(base, node.attr)
        if isinstance(node, ast.Constant):
            constant = node.value
            if constant is None or isinstance(constant, (bool, int, float, str)):
                return constant
            if constant is Ellipsis:
                return Unknown("...")
            return Unknown("bytes or complex constant")
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            if any(isinstance(elt, ast.Starred) for elt in node.elts):
                return Unknown("sequence built with *unpacking")
            return Seq(tuple(self.value(elt) for elt in node.elts))
        if isinstance(node, ast.Dict):
            items: list[tuple[Value, Value]] = []
            for key, val in zip(node.keys, node.values, strict=True):
                if key is None:
                    return Unknown("dict built with **unpacking")
                items.append((self.value(key), self.value(val)))
            return Mapping(tuple(items))
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand)
            if isinstance(node.op, ast.USub) and isinstance(operand, (int, float)):
                return -operand
            if isinstance(node.op, ast.Not) and isinstance(operand, (bool, int, str, type(None))):
                return not operand
            if isinstance(node.op, ast.USub):
                return BinOp("*", -1, operand)
            return Unknown("unary expression")
        if isinstance(node, ast.BinOp):
            op = _OPS.get(type(node.op))
            if op is None:
                return Unknown("unsupported operator")
            return fold(op, self.value(node.left), self.value(node.right))
        if isinstance(node, ast.Lambda):
            body = node.body
            if isinstance(body, ast.Constant):
                return Lambda(self.value(body))
            return Lambda(Unknown("lambda body is not a constant"))
        if isinstance(node, ast.JoinedStr):
            return Unknown("f-string")
        if isinstance(node, ast.Subscript):
            container = self.value(node.value)
            if container == Ref("os.environ"):
                return Unknown("read from the environment at run time")
            return Element("subscript", container, self.value(node.slice))
        if isinstance(node, ast.Await):
            return self.value(node.value)
        return Unknown(f"{type(node).__name__} expression")

    def call(self, node: ast.Call) -> Call:
        known = self._calls.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        found = self._call(node)
        self._calls[id(node)] = (node, found)
        return found

    def _call(self, node: ast.Call) -> Call:
        args: list[Value] = []
        star_args: list[Value] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                star_args.append(self.value(arg.value))
            else:
                args.append(self.value(arg))
        kwargs: list[tuple[str, Value]] = []
        spans: list[Span] = []
        star_kwargs: list[Value] = []
        for keyword in node.keywords:
            if keyword.arg is None:
                star_kwargs.append(self.value(keyword.value))
            else:
                kwargs.append((keyword.arg, self.value(keyword.value)))
                spans.append(span_of(keyword))
        return Call(
            func=self.value(node.func),
            args=tuple(args),
            kwargs=tuple(kwargs),
            star_args=tuple(star_args),
            star_kwargs=tuple(star_kwargs),
            span=span_of(node),
            kwarg_spans=tuple(spans),
        )


def _handler_types(node: ast.expr | None) -> list[ast.expr]:
    """``except (A, B)`` and the ``except A | B`` that down-levelled ``except A, B:`` becomes."""
    if node is None:
        return []
    if isinstance(node, ast.Tuple):
        return [t for elt in node.elts for t in _handler_types(elt)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _handler_types(node.left) + _handler_types(node.right)
    return [node]


def _is_trivial(body: list[ast.stmt]) -> bool:
    for stmt in body:
        if isinstance(stmt, (ast.Pass, ast.Continue)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue
        return False
    return True


_LOG_CALLS = frozenset(
    {"debug", "info", "warning", "warn", "error", "critical", "fatal", "log", "print"}
    | _LOGGING_TRACEBACK
    | {"capture_message", "captureMessage"}
)


def _only_logs(body: list[ast.stmt]) -> bool:
    """Statements that log, pass, ``continue``/``break`` or return nothing, and nothing else."""
    for stmt in body:
        if isinstance(stmt, (ast.Pass, ast.Continue, ast.Break)):
            continue
        if isinstance(stmt, ast.Return) and (
            stmt.value is None
            or (isinstance(stmt.value, ast.Constant) and stmt.value.value is None)
        ):
            continue
        value = stmt.value if isinstance(stmt, ast.Expr) else None
        if isinstance(value, ast.Await):
            value = value.value
        if isinstance(value, ast.Constant):
            continue
        if isinstance(value, ast.Call):
            func = value.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in _LOG_CALLS:
                continue
        return False
    return True


def _logs_traceback(body: list[ast.stmt]) -> bool:
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in _LOGGING_TRACEBACK:
            return True
        for keyword in node.keywords:
            if keyword.arg == "exc_info" and not (
                isinstance(keyword.value, ast.Constant) and not keyword.value.value
            ):
                return True
            if keyword.arg == "stack_info":
                continue
    return False


def _exits(body: list[ast.stmt]) -> bool:
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Return):
            return True
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in {"exit", "_exit"}:
                return True
            if isinstance(func, ast.Name) and func.id == "exit":
                return True
    return False


def _ends_early(body: list[ast.stmt]) -> bool:
    """A block whose last statement leaves it: ``return``, ``raise``, ``continue``, ``break``."""
    return bool(body) and isinstance(body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break))


def _contains_raise(body: list[ast.stmt]) -> bool:
    """A ``raise`` in the handler, not counting nested function definitions."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


def _breaks(body: list[ast.stmt]) -> bool:
    """A ``break`` of the loop around the block, not of a loop or function inside it."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Break):
            return True
        if isinstance(
            node,
            (ast.For, ast.AsyncFor, ast.While, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef),
        ):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


_BINDS_NOTHING = frozenset(
    {ast.Expr, ast.Return, ast.Pass, ast.Raise, ast.Break, ast.Continue, ast.Delete, ast.Assert}
)
"""Statements that bind no name and hold no block (a walrus aside, as everywhere here)."""


def _local_names(node: ast.FunctionDef | ast.AsyncFunctionDef) -> frozenset[str]:
    """Parameters and every name the function body binds (its locals), skipping nested defs."""
    names: set[str] = set()
    arguments = node.args
    for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
        names.add(arg.arg)
    if arguments.vararg:
        names.add(arguments.vararg.arg)
    if arguments.kwarg:
        names.add(arguments.kwarg.arg)
    declared_global: set[str] = set()
    stack: list[ast.stmt] = list(node.body)
    while stack:
        statement = stack.pop()
        if type(statement) in _BINDS_NOTHING:
            continue
        if isinstance(statement, (ast.Global, ast.Nonlocal)):
            declared_global.update(statement.names)
            continue
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
            continue
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for alias in statement.names:
                names.add((alias.asname or alias.name).split(".")[0])
            continue
        for target in _statement_targets(statement):
            names.update(_bound_names(target))
        if isinstance(statement, _TRY):
            for handler in statement.handlers:
                if handler.name:
                    names.add(handler.name)
                stack.extend(handler.body)
        if isinstance(statement, ast.Match):
            for case in statement.cases:
                stack.extend(case.body)
        for block in ("body", "orelse", "finalbody"):
            stack.extend(getattr(statement, block, ()))
    return frozenset(names - declared_global)


def _statement_targets(statement: ast.stmt) -> list[ast.expr]:
    """The expressions a statement binds names through (walrus and match patterns aside)."""
    if isinstance(statement, ast.Assign):
        return list(statement.targets)
    if isinstance(statement, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
        return [statement.target]
    if isinstance(statement, (ast.With, ast.AsyncWith)):
        return [item.optional_vars for item in statement.items if item.optional_vars is not None]
    return []


class _BodyWalker:
    """Summarises one function body: calls with context, try/except structure, raises."""

    def __init__(self, scope: _Scope) -> None:
        self.scope = scope
        self.calls: list[CallSite] = []
        self.trys: list[TryBlock] = []
        self.handlers: list[Handler] = []
        self.raises: list[Raise] = []
        self.returns: list[Value] = []
        self.locals: list[tuple[str, Value]] = []
        self.nested: list[ast.FunctionDef | ast.AsyncFunctionDef] = []
        self._trys: tuple[int, ...] = ()
        self._withs: tuple[Value, ...] = ()
        self.checks: list[Check] = []
        self._checks: tuple[int, ...] = ()
        self.local_spans: list[tuple[str, Span]] = []
        self._in_handler = False
        self._in_loop = False

    def walk(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def stmt(self, node: ast.stmt) -> None:
        # The commonest statements first.
        if isinstance(node, ast.Expr):
            expression = node.value
            awaited = isinstance(expression, ast.Await)
            inner = expression.value if isinstance(expression, ast.Await) else expression
            if isinstance(inner, ast.Call):
                self.call(inner, statement=True, awaited=awaited)
                self.args_of(inner)
                return
            self.expr(expression)
            return
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target_nodes = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None:
                value = self.scope.value(node.value)
                for target in target_nodes:
                    if isinstance(target, ast.Name):
                        self.bind(target.id, value, node.value)
                    elif isinstance(target, (ast.Tuple, ast.List)):
                        self.unpack(target, value, node.value)
                self.expr(node.value)
            return
        if isinstance(node, ast.Return):
            self.returns.append(self.scope.value(node.value))
            if node.value is not None:
                self.expr(node.value)
            return
        if isinstance(node, ast.If):
            self.expr(node.test)
            self.checks.append(Check(span_of(node), self.reads(node.test), _ends_early(node.body)))
            saved_checks = self._checks
            self._checks = (*saved_checks, len(self.checks) - 1)
            self.walk(node.body)
            self.walk(node.orelse)
            self._checks = saved_checks
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self.nested.append(node)
            for decorator in node.decorator_list:
                self.expr(decorator)
            return
        if isinstance(node, ast.ClassDef):
            return
        if isinstance(node, _TRY):
            self.try_(node)
            return
        if isinstance(node, (ast.With, ast.AsyncWith)):
            managers = tuple(self.scope.value(item.context_expr) for item in node.items)
            for item, manager in zip(node.items, managers, strict=True):
                self.expr(item.context_expr)
                if isinstance(item.optional_vars, ast.Name):  # ``with Session() as session``
                    self.bind(item.optional_vars.id, manager, item.context_expr)
            saved = self._withs
            self._withs = saved + managers
            self.walk(node.body)
            self._withs = saved
            return
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            saved_loop = self._in_loop
            if isinstance(node, ast.While):
                self._in_loop = True  # the test runs again on every iteration
                self.expr(node.test)
            else:
                self.expr(node.iter)
                if isinstance(node.target, ast.Name):
                    each = Element("loop variable", self.scope.value(node.iter), Unknown("each"))
                    self.bind(node.target.id, each, node.iter)
            self._in_loop = True
            self.walk(node.body)
            self._in_loop = saved_loop
            self.walk(node.orelse)
            return
        if isinstance(node, ast.Raise):
            value = self.scope.value(node.exc) if node.exc is not None else None
            self.raises.append(Raise(value, span_of(node), self._trys))
            if isinstance(node.exc, ast.Call):
                self.call(node.exc, raised=True)
                self.args_of(node.exc)
            elif node.exc is not None:
                self.expr(node.exc)
            if node.cause is not None:
                self.expr(node.cause)
            return
        if isinstance(node, ast.Match):
            self.expr(node.subject)
            for case in node.cases:
                self.walk(case.body)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self.expr(child)
            elif isinstance(child, ast.stmt):
                self.stmt(child)

    def try_(self, node: ast.Try) -> None:
        index = len(self.trys)
        self.trys.append(TryBlock(span_of(node), (), ()))
        saved = self._trys
        self._trys = (*saved, index)
        raises_before = len(self.raises)
        self.walk(node.body)
        self._trys = saved
        body_raises = tuple(r.value for r in self.raises[raises_before:] if r.value is not None)
        handler_indices: list[int] = []
        for handler in node.handlers:
            handler_indices.append(len(self.handlers))
            types = tuple(self.scope.value(t) for t in _handler_types(handler.type))
            line = handler.lineno
            col = handler.col_offset
            self.handlers.append(
                Handler(
                    span=(line, col, line, col + len("except")),
                    try_index=index,
                    types=types,
                    name=handler.name,
                    reraises=_contains_raise(handler.body),
                    exits=_exits(handler.body),
                    logs_traceback=_logs_traceback(handler.body),
                    body_is_trivial=_is_trivial(handler.body),
                    only_logs=_only_logs(handler.body),
                    breaks=_breaks(handler.body),
                )
            )
            saved_handler = self._in_handler
            self._in_handler = True
            self.walk(handler.body)
            self._in_handler = saved_handler
        self.trys[index] = TryBlock(
            span_of(node), tuple(handler_indices), body_raises, self._in_loop
        )
        self.walk(node.orelse)
        self.walk(node.finalbody)

    def call(
        self, node: ast.Call, statement: bool = False, raised: bool = False, awaited: bool = False
    ) -> None:
        self.calls.append(
            CallSite(
                call=self.scope.call(node),
                statement=statement,
                raised=raised,
                awaited=awaited,
                trys=self._trys,
                withs=self._withs,
                in_handler=self._in_handler,
                in_loop=self._in_loop,
                checks=self._checks,
            )
        )

    def bind(self, name: str, value: Value, node: ast.expr) -> None:
        self.locals.append((name, value))
        self.local_spans.append((name, span_of(node)))

    def unpack(self, target: ast.Tuple | ast.List, value: Value, node: ast.expr) -> None:
        """``order, created = get_or_create(...)``: each name is that element of the value."""
        if any(isinstance(elt, ast.Starred) for elt in target.elts):
            return
        for position, elt in enumerate(target.elts):
            if isinstance(elt, ast.Name):
                self.bind(elt.id, Element("unpacked", value, position), node)

    def reads(self, test: ast.expr) -> tuple[Value, ...]:
        """The names and attribute chains a test reads, outermost first (calls' too)."""
        found: list[Value] = []
        stack: list[ast.AST] = [test]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Lambda):
                continue
            if isinstance(node, (ast.Name, ast.Attribute)):
                found.append(self.scope.value(node))
                base: ast.expr = node
                while isinstance(base, ast.Attribute):
                    base = base.value
                if not isinstance(base, ast.Name):
                    stack.append(base)
                continue
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
        return tuple(found)

    def args_of(self, node: ast.Call) -> None:
        self.expr(node.func)
        for arg in node.args:
            self.expr(arg)
        for keyword in node.keywords:
            self.expr(keyword.value)

    def expr(self, node: ast.expr) -> None:
        """Record every call inside an expression, outermost first, skipping lambdas.

        This visits every node of every body, so it tests the exact type first:
        names, constants and attribute chains are most of any body.
        """
        stack: list[ast.AST] = [node]
        while stack:
            child = stack.pop()
            if type(child) in _NO_CALLS:
                continue
            if isinstance(child, ast.Attribute):
                stack.append(child.value)
                continue
            if isinstance(child, ast.Await) and isinstance(child.value, ast.Call):
                call = child.value
                self.call(call, awaited=True)
            elif isinstance(child, ast.Call):
                call = child
                self.call(call)
            else:
                stack.extend(reversed(_children(child)))
                continue
            stack.extend(reversed([keyword.value for keyword in call.keywords]))
            stack.extend(reversed(call.args))
            stack.append(call.func)


class _ModuleExtractor:
    def __init__(self, module: str, is_package: bool, lines: Lines) -> None:
        self.lines = lines
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.imports: dict[str, str] = {}
        self.star_imports: list[str] = []
        self.module_names: set[str] = set()

    def absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.package.split(".") if self.package else []
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join(parts)
        if node.module:
            return f"{base}.{node.module}" if base else node.module
        return base

    def collect_names(self, tree: ast.Module) -> None:
        """First pass: imports and module-level bindings, so forward references resolve."""
        for node in _module_statements(tree.body):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.imports[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.imports[top] = top
            elif isinstance(node, ast.ImportFrom):
                source = self.absolute(node)
                for alias in node.names:
                    if alias.name == "*":
                        self.star_imports.append(source)
                    else:
                        dotted_name = f"{source}.{alias.name}" if source else alias.name
                        self.imports[alias.asname or alias.name] = dotted_name
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.module_names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    self.module_names.update(_bound_names(target))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self.module_names.add(node.target.id)
        for name in self.module_names:
            self.imports.pop(name, None)

    def extract(self, tree: ast.Module, path: str, is_package: bool) -> FileFacts:
        self.collect_names(tree)
        scope = _Scope(self.module, self.imports, self.module_names)
        assigns: list[tuple[str, Value, Span]] = []
        attr_assigns: list[AttrAssign] = []
        calls: list[CallSite] = []
        functions: list[FunctionFacts] = []
        classes: list[ClassFacts] = []
        seen: dict[str, Value] = {}
        for node in _module_statements(tree.body):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append(self.function(node, scope, None))
            elif isinstance(node, ast.ClassDef):
                classes.append(self.class_(node, scope, node.name))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                if node.value is None:
                    continue
                value = scope.value(node.value)
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        previous = seen.get(target.id)
                        if target.id in seen and previous != value:
                            value_to_store: Value = Unknown("assigned more than once")
                        else:
                            value_to_store = value
                        seen[target.id] = value
                        assigns.append((target.id, value_to_store, span_of(node)))
                    elif isinstance(target, ast.Attribute):
                        attr_assigns.append(AttrAssign(scope.value(target), value, span_of(node)))
                    elif isinstance(target, ast.Subscript):
                        key = scope.value(target.slice)
                        if isinstance(key, str):
                            attr_assigns.append(
                                AttrAssign(
                                    Attr(scope.value(target.value), key), value, span_of(node)
                                )
                            )
                    else:
                        for name in _bound_names(target):
                            assigns.append((name, Unknown("unpacked"), span_of(node)))
                walker = _BodyWalker(scope)
                walker.expr(node.value)
                calls.extend(walker.calls)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                assigns.append((node.target.id, Unknown("augmented assignment"), span_of(node)))
            elif isinstance(node, ast.Expr):
                walker = _BodyWalker(scope)
                walker.stmt(node)
                calls.extend(walker.calls)
        return FileFacts(
            path=path,
            module=self.module,
            is_package=is_package,
            imports=tuple(sorted(self.imports.items())),
            star_imports=tuple(self.star_imports),
            assigns=tuple(assigns),
            attr_assigns=tuple(attr_assigns),
            calls=tuple(calls),
            functions=tuple(functions),
            classes=tuple(classes),
            upper_names=_upper_names(self.lines),
        )

    def identifiers(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Words:
        """Every word in the function's source: names, attributes, short strings.

        A superset (comments count too) that is cheap to take from the text,
        used only to find counters and guards, where more words mean fewer findings.
        """
        end = node.end_lineno or node.lineno
        return Words(_WORD.findall(self.lines.block(node.lineno, end)))

    def function(
        self,
        node: ast.FunctionDef | ast.AsyncFunctionDef,
        scope: _Scope,
        class_name: str | None,
        prefix: str = "",
    ) -> FunctionFacts:
        inner = scope.inner(_local_names(node))
        walker = _BodyWalker(inner)
        walker.walk(node.body)
        arguments = node.args
        positional = [*arguments.posonlyargs, *arguments.args]
        defaults: list[tuple[str, Value]] = []
        with_defaults = positional[len(positional) - len(arguments.defaults) :]
        for arg, default in zip(with_defaults, arguments.defaults, strict=True):
            defaults.append((arg.arg, scope.value(default)))
        for arg, kw_default in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True):
            if kw_default is not None:
                defaults.append((arg.arg, scope.value(kw_default)))
        qualname = f"{prefix}{node.name}"
        nested = tuple(
            self.function(child, inner, None, prefix=f"{qualname}.<locals>.")
            for child in walker.nested
        )
        decorator_values = tuple(scope.value(d) for d in node.decorator_list)
        return FunctionFacts(
            name=node.name,
            qualname=qualname,
            module=self.module,
            span=_def_span(node),
            is_async=isinstance(node, ast.AsyncFunctionDef),
            decorators=decorator_values,
            decorator_spans=tuple(span_of(d) for d in node.decorator_list),
            params=tuple(arg.arg for arg in [*positional, *arguments.kwonlyargs]),
            defaults=tuple(defaults),
            vararg=arguments.vararg.arg if arguments.vararg else None,
            kwarg=arguments.kwarg.arg if arguments.kwarg else None,
            calls=tuple(walker.calls),
            trys=tuple(walker.trys),
            handlers=tuple(walker.handlers),
            raises=tuple(walker.raises),
            returns=tuple(walker.returns),
            locals=tuple(walker.locals),
            checks=tuple(walker.checks),
            local_spans=tuple(walker.local_spans),
            annotations=tuple(
                (arg.arg, scope.value(arg.annotation))
                for arg in [*positional, *arguments.kwonlyargs]
                if arg.annotation is not None
            ),
            nested=nested,
            docstring=_first_doc_line(node),
            identifiers=self.identifiers(node),
            class_name=class_name,
            end_line=node.end_lineno or node.lineno,
        )

    def class_(self, node: ast.ClassDef, scope: _Scope, qualname: str) -> ClassFacts:
        attrs: list[tuple[str, Value, Span]] = []
        methods: list[FunctionFacts] = []
        inner: list[ClassFacts] = []
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                methods.append(self.function(stmt, scope, node.name, prefix=f"{qualname}."))
            elif isinstance(stmt, ast.ClassDef):
                inner.append(self.class_(stmt, scope, f"{qualname}.{stmt.name}"))
            elif isinstance(stmt, ast.Assign):
                value = scope.value(stmt.value)
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        attrs.append((target.id, value, span_of(stmt)))
            elif (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and stmt.value is not None
            ):
                attrs.append((stmt.target.id, scope.value(stmt.value), span_of(stmt)))
        return ClassFacts(
            name=node.name,
            qualname=qualname,
            module=self.module,
            span=_def_span(node),
            bases=tuple(scope.value(base) for base in node.bases),
            keywords=tuple(
                (kw.arg, scope.value(kw.value)) for kw in node.keywords if kw.arg is not None
            ),
            attrs=tuple(attrs),
            methods=tuple(methods),
            inner=tuple(inner),
            decorators=tuple(scope.value(d) for d in node.decorator_list),
        )


def _def_span(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> Span:
    """The ``def``/``class`` keyword through the end of the name: where users look for the job."""
    line = node.lineno
    col = node.col_offset
    keyword = "class " if isinstance(node, ast.ClassDef) else "def "
    if isinstance(node, ast.AsyncFunctionDef):
        keyword = "async def "
    return (line, col, line, col + len(keyword) + len(node.name))


def _first_doc_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    doc = ast.get_docstring(node, clean=True)
    lines = doc.strip().splitlines() if doc else []
    return lines[0] if lines else None


def _module_statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Module-level statements, looking inside ``if``/``try``/``with`` blocks (not defs)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            out.extend(_module_statements(node.body))
            out.extend(_module_statements(node.orelse))
        elif isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
            out.extend(_module_statements(node.body))  # type: ignore[attr-defined]
            for handler in node.handlers:  # type: ignore[attr-defined]
                out.extend(_module_statements(handler.body))
            out.extend(_module_statements(node.orelse))  # type: ignore[attr-defined]
            out.extend(_module_statements(node.finalbody))  # type: ignore[attr-defined]
        elif isinstance(node, ast.With):
            out.extend(_module_statements(node.body))
        else:
            out.append(node)
    return out


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UPPER = re.compile(r"(?:\.|[\"'])([A-Z][A-Z0-9_]{2,79})\b")


def _upper_names(lines: Lines) -> frozenset[str]:
    """UPPER_CASE attributes and strings a module mentions, read with a regex over its text.

    A superset of what the code reads (comments count too), which only makes
    the rules that use it quieter; a pass over the tree costs ten times more.
    """
    return frozenset(_UPPER.findall(lines.text))


def extract(
    tree: ast.Module,
    path: str,
    module: str,
    is_package: bool,
    lines: Lines,
    noqa: dict[int, frozenset[str] | None] | None = None,
    pragmas: dict[int, str] | None = None,
) -> FileFacts:
    """Facts of one parsed module.  ``module`` is its dotted import name."""
    facts = _ModuleExtractor(module, is_package, lines).extract(tree, path, is_package)
    return dataclasses.replace(
        facts,
        noqa=tuple(sorted((noqa or {}).items())),
        pragmas=tuple(sorted((pragmas or {}).items())),
        lines=lines,
    )


def all_functions(facts: FileFacts) -> list[FunctionFacts]:
    """Top-level functions and methods of top-level classes (nested classes included)."""
    out = list(facts.functions)
    stack = list(facts.classes)
    while stack:
        cls = stack.pop()
        out.extend(cls.methods)
        stack.extend(cls.inner)
    return out


__all__ = [
    "AttrAssign",
    "CallSite",
    "Check",
    "ClassFacts",
    "FileFacts",
    "FunctionFacts",
    "Handler",
    "Raise",
    "TryBlock",
    "all_functions",
    "extract",
    "span_of",
]
