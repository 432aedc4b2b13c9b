"""What a fix does, as plain data that a rule can build without libcst.

An :class:`Edit` names the node it changes by the ast span of that node (a
call, a keyword, an ``except`` clause, an assignment) and what to do there;
:mod:`jobaudit.fix.edits` finds the node again in the libcst tree.  Values are
source text (``"4"``, ``"exc"``): the rule knows what it resolved, the fixer
only writes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobaudit.values import Span

SAFE, UNSAFE = "safe", "unsafe"

SET_KEYWORD = "set-keyword"
"""On a call (or a bare decorator, which becomes a call): give keyword ``name`` the ``value``."""
REMOVE_KEYWORD = "remove-keyword"
"""On a call: drop keyword ``name``."""
RENAME_KEYWORD = "rename-keyword"
"""On a call: rename keyword ``name`` to ``value``."""
RENAME_TARGET = "rename-target"
"""On an assignment: rename the assigned name ``name`` to ``value`` (settings, class bodies)."""
RAISE_CALL = "raise-call"
"""On a call that is an expression statement: make it ``raise <call>``."""
GUARD_HANDLER = "guard-handler"
"""On an ``except`` clause: insert ``except (value): raise`` before it."""
ON_COMMIT = "on-commit"
"""On an enqueue call ``f(a, b)``: ``transaction.on_commit(partial(f, a, b))``."""
RENAME_METHOD = "rename-method"
"""On a call ``x.m(...)``: call ``x.value(...)`` instead."""
ADD_STATEMENT = "add-statement"
"""On the statement holding the span's first line: add the statement ``value`` after it."""


@dataclass(frozen=True)
class Edit:
    kind: str
    path: str
    span: Span
    """The ast span of the node edited (1-based lines, 0-based UTF-8 byte columns)."""
    name: str = ""
    value: str = ""


@dataclass(frozen=True, order=True)
class Import:
    """``from module import name``, or ``import module`` when ``name`` is empty."""

    module: str
    name: str = ""


@dataclass(frozen=True)
class Fix:
    message: str
    """What the fix does, for ``--show-fixes`` and the JSON output."""
    safety: str
    edits: tuple[Edit, ...]
    imports: tuple[Import, ...] = ()

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(edit.path for edit in self.edits)
