"""Apply the fixes of one file: pick those that do not overlap, edit, add imports.

Fixes are applied one at a time from the bottom of the file up, so that an
edit never moves the lines of a fix still to come; imports are added last,
at the top.  A fix is applied whole or not at all: when one of its edits
finds no node, or an import it needs would shadow another name, the file
keeps its text for that fix.  The result must parse, or the file is left as
it was: a fixer must never leave a file worse than it found it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper

from jobaudit.fix.edits import Applier, Layout, Point, char_span
from jobaudit.fix.imports import ImportConflict, add_imports
from jobaudit.fix.model import Fix, Import

LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _region(fix: Fix, lines: Sequence[str]) -> tuple[Point, Point]:
    spans = [char_span(edit, lines) for edit in fix.edits]
    return min(start for start, _ in spans), max(end for _, end in spans)


def choose(fixes: Sequence[Fix], lines: Sequence[str]) -> list[Fix]:
    """Fixes whose regions do not overlap, in file order; the others wait for the next round."""
    chosen: list[tuple[tuple[Point, Point], Fix]] = []
    for fix in sorted(set(fixes), key=lambda f: (_region(f, lines), f.message)):
        region = _region(fix, lines)
        if all(region[1] <= other[0] or other[1] <= region[0] for other, _ in chosen):
            chosen.append((region, fix))
    return [fix for _, fix in chosen]


def apply_fixes(
    source: bytes,
    fixes: Sequence[Fix],
    first_party: frozenset[str] = frozenset(),
    line_length: int = 88,
) -> tuple[bytes, list[Fix]]:
    """``source`` with as many of ``fixes`` applied as can be this round, and which ones.

    ``first_party``: the project's top-level packages, for placing imports;
    ``line_length``: beyond it, a decorator an edit lengthened is split.
    """
    try:
        module = cst.parse_module(source)
    except (cst.ParserSyntaxError, UnicodeDecodeError, SyntaxError):
        return source, []
    original = module.code
    lines = LINE_BREAK.split(original)
    applied: list[Fix] = []
    imports: list[Import] = []
    for fix in reversed(choose(fixes, lines)):
        try:
            add_imports(module, [*imports, *fix.imports])
        except ImportConflict:
            continue
        applier = Applier(fix.edits, lines, Layout(line_length, module.default_indent))
        edited = MetadataWrapper(module, unsafe_skip_copy=True).visit(applier)
        if applier.applied != set(fix.edits):
            continue
        module = edited
        applied.append(fix)
        imports.extend(fix.imports)
    if not applied:
        return source, []
    module = add_imports(module, sorted(imports), first_party)
    if not _parses(module.code, original):
        return source, []
    return module.bytes, list(reversed(applied))


def _parses(code: str, original: str) -> bool:
    """Whether fixed code parses as well as the original did.

    With this Python's own parser when the original parses with it; a file in
    newer syntax (PEP 701 f-strings on an older Python) is checked with
    libcst's parser instead, which accepts it.
    """
    try:
        ast.parse(original)
    except SyntaxError:
        try:
            cst.parse_module(code)
        except cst.ParserSyntaxError:
            return False
        return True
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True
