"""Add the imports a fix needs, once, in the file's own style.

A name already imported from the module is left alone; a ``from x import a``
that exists takes the new name (kept in order when its names are sorted);
otherwise a new import line goes after the file's last top-level import
(after the docstring when there is none).  A name that the module already
binds to something else would be shadowed, so such an import is refused and
the fix is not applied.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import libcst as cst

from jobaudit.fix.model import Import


class ImportConflict(Exception):
    """The module binds the name an import would add to something else."""


def _dotted(node: cst.BaseExpression) -> str:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        return f"{_dotted(node.value)}.{node.attr.value}"
    return ""


def _bindings(module: cst.Module) -> dict[str, str]:
    """Top-level import bindings: bound name → what it refers to (``functools.partial``)."""
    bound: dict[str, str] = {}
    for statement in module.body:
        if not isinstance(statement, cst.SimpleStatementLine):
            continue
        for small in statement.body:
            if isinstance(small, cst.Import):
                for alias in small.names:
                    full = _dotted(alias.name)
                    if alias.asname is not None:
                        bound[_dotted(alias.asname.name)] = full
                    else:
                        bound[full.split(".")[0]] = full.split(".")[0]
            elif isinstance(small, cst.ImportFrom) and not isinstance(small.names, cst.ImportStar):
                source = "." * len(small.relative) + (_dotted(small.module) if small.module else "")
                for alias in small.names:
                    name = _dotted(alias.name)
                    local = _dotted(alias.asname.name) if alias.asname is not None else name
                    bound[local] = f"{source}.{name}"
    return bound


def _defined(module: cst.Module) -> set[str]:
    """Names the module defines with ``def``, ``class`` or a plain top-level assignment."""
    names: set[str] = set()
    for statement in module.body:
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            names.add(statement.name.value)
        elif isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assign):
                    names.update(
                        t.target.value for t in small.targets if isinstance(t.target, cst.Name)
                    )
    return names


def add_imports(
    module: cst.Module, wanted: Sequence[Import], first_party: frozenset[str] = frozenset()
) -> cst.Module:
    """``module`` with every import of ``wanted`` present; raises :class:`ImportConflict`.

    ``first_party`` are the project's own top-level packages, which isort
    groups after the third-party ones.
    """
    for item in dict.fromkeys(wanted):
        module = _Placer(first_party).add(module, item)
    return module


class _Placer:
    def __init__(self, first_party: frozenset[str]) -> None:
        self.first_party = first_party

    def add(self, module: cst.Module, item: Import) -> cst.Module:
        return _add(module, item, self)

    def key(self, statement: cst.SimpleStatementLine) -> tuple[int, bool, str]:
        """isort's order: future, standard library, third party, first party; then
        ``import x`` before ``from x import``, then by module."""
        small = statement.body[0]
        if isinstance(small, cst.ImportFrom):
            dots = "." * len(small.relative)
            module = dots + (_dotted(small.module) if small.module else "")
            is_from = True
        else:
            assert isinstance(small, cst.Import)
            module, is_from = _dotted(small.names[0].name), False
        top = module.split(".")[0]
        if top == "__future__":
            section = 0
        elif top in sys.stdlib_module_names:
            section = 1
        elif top in self.first_party or module.startswith("."):
            section = 3
        else:
            section = 2
        return section, is_from, module

    def section(self, statement: cst.BaseStatement) -> int | None:
        if isinstance(statement, cst.SimpleStatementLine) and _is_import(statement):
            return self.key(statement)[0]
        return None


def _add(module: cst.Module, item: Import, placer: _Placer) -> cst.Module:
    bound = _bindings(module)
    local = item.name or item.module.split(".")[0]
    target = f"{item.module}.{item.name}" if item.name else local
    if bound.get(local) == target:
        return module
    if local in bound or local in _defined(module):
        raise ImportConflict(f"'{local}' is already bound in this module")
    body = list(module.body)
    if item.name:
        for index, statement in enumerate(body):
            merged = _merge_into(statement, item)
            if merged is not None:
                body[index] = merged
                return module.with_changes(body=body)
    spelled = f"from {item.module} import {item.name}" if item.name else f"import {item.module}"
    new = cst.parse_statement(spelled + "\n")
    assert isinstance(new, cst.SimpleStatementLine)
    section = placer.key(new)[0]
    position = _insert_at(body, placer.key(new), placer)
    before = placer.section(body[position - 1]) if position else None
    following = body[position] if position < len(body) else None
    after = placer.section(following) if following is not None else None
    blank = [cst.EmptyLine()]
    if before == section:
        pass  # the end of its own group
    elif following is not None and after is not None:
        # It opens the group: it takes the blank lines above, and a new group starts below.
        new = new.with_changes(leading_lines=following.leading_lines)
        following = following.with_changes(leading_lines=[] if after == section else blank)
        body[position] = following
    elif position:
        new = new.with_changes(leading_lines=blank)
    body.insert(position, new)
    return module.with_changes(body=body)


def _merge_into(
    statement: cst.SimpleStatementLine | cst.BaseCompoundStatement, item: Import
) -> cst.SimpleStatementLine | None:
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if not isinstance(small, cst.ImportFrom) or small.relative or small.module is None:
        return None
    if _dotted(small.module) != item.module or isinstance(small.names, cst.ImportStar):
        return None
    names = list(small.names)
    spelled = [_dotted(alias.name) for alias in names]
    position = len(names)
    if spelled == sorted(spelled):
        position = next((i for i, n in enumerate(spelled) if n > item.name), len(names))
    comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    new = cst.ImportAlias(name=cst.Name(item.name))
    if position == len(names):
        last = names[-1]
        trailing = last.comma
        names[-1] = last.with_changes(comma=trailing if isinstance(trailing, cst.Comma) else comma)
        new = new.with_changes(comma=trailing)
        names.append(new)
    else:
        names.insert(position, new.with_changes(comma=names[position].comma or comma))
        if not isinstance(names[position].comma, cst.Comma):
            names[position] = names[position].with_changes(comma=comma)
    return statement.with_changes(body=[small.with_changes(names=names)])


def _is_import(statement: cst.BaseStatement) -> bool:
    return isinstance(statement, cst.SimpleStatementLine) and all(
        isinstance(small, (cst.Import, cst.ImportFrom)) for small in statement.body
    )


def _is_docstring(statement: cst.BaseStatement) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def _insert_at(
    body: Sequence[cst.BaseStatement], key: tuple[int, bool, str], placer: _Placer
) -> int:
    """In order among the imports of the module's leading block, else after its docstring.

    The new line goes before the first import that sorts after it; when none
    does, after the last import of the block.
    """
    position = 1 if body and _is_docstring(body[0]) else 0
    for index, statement in enumerate(body):
        if isinstance(statement, cst.SimpleStatementLine) and _is_import(statement):
            if placer.key(statement) > key:
                return index
            position = index + 1
        elif index >= position and not _is_docstring(statement):
            break
    return position
