"""Apply :class:`~jobaudit.fix.model.Edit` descriptions to a libcst tree.

Edits name nodes by their ast span: lines match libcst's, but ast columns are
UTF-8 byte offsets while libcst counts characters, so every span is converted
with the line's text first (a non-ASCII string earlier on the line would
otherwise shift the match).  A node is matched by where it starts and, for
calls, where it ends too, since ``app``, ``app.task`` and ``app.task(...)``
all start at the same place.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange, PositionProvider

from jobaudit.fix import model
from jobaudit.positions import char_column

Point = tuple[int, int]


def char_span(edit: model.Edit, lines: Sequence[str]) -> tuple[Point, Point]:
    """The edit's span in libcst's terms: 1-based lines, 0-based character columns."""
    line, column, end_line, end_column = edit.span

    def at(row: int, byte: int) -> Point:
        text = lines[row - 1] if 0 < row <= len(lines) else ""
        return row, char_column(text, byte)

    return at(line, column), at(end_line, end_column)


class Applier(cst.CSTTransformer):
    """One pass over a module applying every edit whose node it meets."""

    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(
        self, edits: Sequence[model.Edit], lines: Sequence[str], layout: Layout | None = None
    ) -> None:
        super().__init__()
        self.pending: dict[Point, list[tuple[model.Edit, Point]]] = defaultdict(list)
        for edit in edits:
            start, end = char_span(edit, lines)
            self.pending[start].append((edit, end))
        self.applied: set[model.Edit] = set()
        self.layout = layout or Layout()

    def _take(self, node: cst.CSTNode, kinds: set[str], exact: bool = False) -> list[model.Edit]:
        where: CodeRange = self.get_metadata(PositionProvider, node)
        start = (where.start.line, where.start.column)
        end = (where.end.line, where.end.column)
        found = [
            edit
            for edit, edit_end in self.pending.get(start, [])
            if edit.kind in kinds and (not exact or edit_end == end) and edit not in self.applied
        ]
        self.applied.update(found)
        return found

    # -- calls and keywords -----------------------------------------------------------

    def leave_Call(self, original_node: cst.Call, updated_node: cst.Call) -> cst.BaseExpression:
        kinds = {
            model.SET_KEYWORD,
            model.REMOVE_KEYWORD,
            model.RENAME_KEYWORD,
            model.RENAME_METHOD,
            model.ON_COMMIT,
        }
        node: cst.BaseExpression = updated_node
        for edit in self._take(original_node, kinds, exact=True):
            assert isinstance(node, cst.Call)
            node = _edit_call(node, edit)
        return node

    def leave_Decorator(
        self, original_node: cst.Decorator, updated_node: cst.Decorator
    ) -> cst.Decorator:
        """A bare ``@app.task`` given a keyword becomes ``@app.task(keyword=...)``.

        A decorator written on one line that an edit made longer than the line
        length is split one argument per line, as black and ruff format it
        (unless it was longer already: the project keeps long lines then).
        """
        target = original_node.decorator
        if isinstance(target, cst.Call):
            node = updated_node
        else:
            edits = self._take(target, {model.SET_KEYWORD}, exact=True)
            if not edits:
                return updated_node
            call = cst.Call(func=updated_node.decorator)
            for edit in edits:
                call = _set_keyword(call, edit.name, edit.value)
            node = updated_node.with_changes(decorator=call)
        where: CodeRange = self.get_metadata(PositionProvider, original_node)
        new = node.decorator
        if node is original_node or where.start.line != where.end.line:
            return node
        if not isinstance(new, cst.Call) or not new.args:
            return node
        width = where.start.column + 1 + len(EMPTY.code_for_node(new))
        if width <= self.layout.line_length or where.end.column > self.layout.line_length:
            return node  # short enough, or the project writes longer lines anyway
        return node.with_changes(decorator=_exploded(new, self.layout.indent))

    # -- statements -------------------------------------------------------------------

    def leave_Expr(self, original_node: cst.Expr, updated_node: cst.Expr) -> cst.BaseSmallStatement:
        if not isinstance(original_node.value, cst.Call):
            return updated_node
        if not self._take(original_node.value, {model.RAISE_CALL}, exact=True):
            return updated_node
        return cst.Raise(exc=updated_node.value, semicolon=updated_node.semicolon)

    def leave_Assign(
        self, original_node: cst.Assign, updated_node: cst.Assign
    ) -> cst.BaseSmallStatement:
        node = updated_node
        for edit in self._take(original_node, {model.RENAME_TARGET}):
            node = node.with_changes(
                targets=[
                    target.with_changes(target=_renamed(target.target, edit.name, edit.value))
                    for target in node.targets
                ]
            )
        return node

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.SimpleStatementLine | cst.FlattenSentinel[cst.BaseStatement]:
        where: CodeRange = self.get_metadata(PositionProvider, original_node)
        added = [
            edit
            for start, edits in self.pending.items()
            if where.start.line <= start[0] <= where.end.line
            for edit, _ in edits
            if edit.kind == model.ADD_STATEMENT and edit not in self.applied
        ]
        self.applied.update(added)
        if not added:
            return updated_node
        lines = [cst.parse_statement(edit.value + "\n") for edit in added]
        return cst.FlattenSentinel([updated_node, *lines])

    def leave_Try(self, original_node: cst.Try, updated_node: cst.Try) -> cst.Try:
        handlers: list[cst.ExceptHandler] = []
        for original, updated in zip(original_node.handlers, updated_node.handlers, strict=True):
            for edit in self._take(original, {model.GUARD_HANDLER}):
                handlers.append(_reraise(edit.value))
            handlers.append(updated)
        return updated_node.with_changes(handlers=handlers)


EMPTY = cst.Module(body=[])


@dataclass(frozen=True)
class Layout:
    """How the file is formatted: its line length and one level of indentation."""

    line_length: int = 88
    indent: str = "    "


def _exploded(call: cst.Call, indent: str) -> cst.Call:
    """``f(a, b)`` as ``f(\\n    a,\\n    b,\\n)``, relative to the enclosing block."""

    def line_break(extra: str) -> cst.ParenthesizedWhitespace:
        return cst.ParenthesizedWhitespace(indent=True, last_line=cst.SimpleWhitespace(extra))

    args = [
        arg.with_changes(
            comma=cst.Comma(
                whitespace_after=line_break(indent if index < len(call.args) - 1 else "")
            ),
            whitespace_after_arg=cst.SimpleWhitespace(""),
        )
        for index, arg in enumerate(call.args)
    ]
    return call.with_changes(args=args, whitespace_before_args=line_break(indent))


def _reraise(types: str) -> cst.ExceptHandler:
    names = [name.strip() for name in types.split(",") if name.strip()]
    spelled = names[0] if len(names) == 1 else f"({', '.join(names)})"
    return cst.ExceptHandler(
        type=cst.parse_expression(spelled),
        body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Raise()])]),
    )


def _renamed(target: cst.BaseExpression, old: str, new: str) -> cst.BaseExpression:
    if isinstance(target, cst.Name) and target.value == old:
        return target.with_changes(value=new)
    if isinstance(target, cst.Attribute) and target.attr.value == old:
        return target.with_changes(attr=cst.Name(new))
    return target


def _edit_call(call: cst.Call, edit: model.Edit) -> cst.BaseExpression:
    if edit.kind == model.SET_KEYWORD:
        return _set_keyword(call, edit.name, edit.value)
    if edit.kind == model.REMOVE_KEYWORD:
        return _remove_keyword(call, edit.name)
    if edit.kind == model.RENAME_KEYWORD:
        args = [
            arg.with_changes(keyword=cst.Name(edit.value))
            if arg.keyword is not None and arg.keyword.value == edit.name
            else arg
            for arg in call.args
        ]
        return call.with_changes(args=args)
    if edit.kind == model.RENAME_METHOD and isinstance(call.func, cst.Attribute):
        return call.with_changes(func=call.func.with_changes(attr=cst.Name(edit.value)))
    if edit.kind == model.ON_COMMIT:
        return _on_commit(call, edit.value)
    return call


def _set_keyword(call: cst.Call, name: str, value: str) -> cst.Call:
    """Replace keyword ``name``'s value, or add the keyword after the last argument.

    The new argument copies the layout of the last one: a call written one
    argument per line gets one more line, with the trailing comma kept.
    """
    expression = cst.parse_expression(value)
    args = list(call.args)
    for index, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == name:
            args[index] = arg.with_changes(value=expression)
            return call.with_changes(args=args)
    new = cst.Arg(
        keyword=cst.Name(name),
        value=expression,
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace("")
        ),
    )
    # Keywords go before ``**kwargs``; after it Python accepts them too, but it reads oddly.
    position = len(args)
    while position and args[position - 1].star == "**":
        position -= 1
    if not args:
        return call.with_changes(args=[new])
    space = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    if position == len(args):
        # The separator before the new argument is the one between the last two
        # (a newline and indentation in a call laid out one argument per line).
        if len(args) >= 2 and isinstance(args[-2].comma, cst.Comma):
            separator = _without_comment(args[-2].comma)
        elif isinstance(call.whitespace_before_args, cst.ParenthesizedWhitespace):
            # One argument on its own line: the new one goes on a line of its own too.
            separator = _without_comment(cst.Comma(whitespace_after=call.whitespace_before_args))
        else:
            separator = space
        # What followed the last argument (a trailing comma, the line break before
        # the closing parenthesis) now follows the new one.
        new = new.with_changes(
            comma=args[-1].comma, whitespace_after_arg=args[-1].whitespace_after_arg
        )
        closing = args[-1].whitespace_after_arg
        if (
            isinstance(separator.whitespace_after, cst.ParenthesizedWhitespace)
            and not isinstance(args[-1].comma, cst.Comma)
            and isinstance(closing, cst.ParenthesizedWhitespace)
        ):
            # Now one argument per line: a trailing comma, as black adds when it splits.
            new = new.with_changes(
                comma=cst.Comma(whitespace_after=closing),
                whitespace_after_arg=cst.SimpleWhitespace(""),
            )
        args[-1] = args[-1].with_changes(
            comma=separator, whitespace_after_arg=cst.SimpleWhitespace("")
        )
        args.append(new)
    else:
        before = args[position - 1].comma if position else None
        new = new.with_changes(comma=before if isinstance(before, cst.Comma) else space)
        args.insert(position, new)
    return call.with_changes(args=args)


def _without_comment(comma: cst.Comma) -> cst.Comma:
    """A copy of a separator without the comment that belongs to the argument before it."""
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        after = after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return comma.with_changes(whitespace_after=after)


def _remove_keyword(call: cst.Call, name: str) -> cst.Call:
    args = list(call.args)
    index = next(
        (i for i, arg in enumerate(args) if arg.keyword is not None and arg.keyword.value == name),
        None,
    )
    if index is None:
        return call
    removed = args.pop(index)
    if index == len(args) and args:
        # The new last argument takes the removed one's comma (or lack of one).
        args[-1] = args[-1].with_changes(comma=removed.comma)
    return call.with_changes(args=args)


def _on_commit(call: cst.Call, helper: str) -> cst.Call:
    """``f(a, b=1)`` → ``transaction.on_commit(partial(f, a, b=1))``; ``f()`` → ``...(f)``."""
    if call.args:
        # The callable becomes partial()'s first argument, laid out as the others are.
        after_first = call.args[0].comma
        if len(call.args) > 1 and isinstance(after_first, cst.Comma):
            comma = _without_comment(after_first)
        elif isinstance(after_first, cst.Comma):
            comma = _without_comment(cst.Comma(whitespace_after=call.whitespace_before_args))
        else:
            comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
        first = cst.Arg(value=call.func, comma=comma)
        inner: cst.BaseExpression = cst.Call(
            func=cst.Name("partial"), args=[first, *call.args], lpar=[], rpar=[]
        )
        inner = inner.with_changes(whitespace_before_args=call.whitespace_before_args)
    else:
        inner = call.func
    return cst.Call(func=cst.parse_expression(helper), args=[cst.Arg(value=inner)])
