"""Reading code written for a newer Python than the one jobaudit runs on.

Projects already use syntax older interpreters' ``ast`` rejects — PEP 695 type
parameters (``def actor[**P, R](...)``, ``type Alias = ...``) and PEP 758
``except A, B:`` — and a linter that skips those files misses the jobs in
them.  When a file does not parse, this rewrites those constructs in place,
keeping every other token on its line and column, and the caller parses the
copy: type parameter lists become spaces, ``type X = v`` becomes ``X = v``,
and the commas of an unparenthesised ``except`` become ``|`` (which facts read
as a tuple of exception types).
"""

from __future__ import annotations

import io
import tokenize

NEWEST_SYNTAX = "3.14"


def downlevel(text: str) -> str | None:
    """A copy of ``text`` without newer-Python syntax, or None when there was nothing to rewrite."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    lines = text.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []
    significant = [t for t in tokens if t.type not in _TRIVIA]
    for index, token in enumerate(significant):
        if token.type != tokenize.NAME:
            continue
        if token.string in {"def", "class"}:
            edits.extend(_type_params(significant, index + 1))
        elif token.string == "type" and _starts_statement(significant, index):
            edits.extend(_type_alias(significant, index))
        elif token.string == "except":
            edits.extend(_except_commas(significant, index + 1))
    if not edits:
        return None
    for line, start, end, replacement in sorted(edits, reverse=True):
        original = lines[line - 1]
        lines[line - 1] = original[:start] + replacement + original[end:]
    return "".join(lines)


_TRIVIA = {tokenize.NL, tokenize.COMMENT, tokenize.ENCODING}


def _starts_statement(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    if index + 2 >= len(tokens) or tokens[index + 1].type != tokenize.NAME:
        return False
    after = tokens[index + 2]
    if after.string not in {"=", "["}:
        return False
    previous = tokens[index - 1] if index else None
    return previous is None or previous.type in {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT} or (
        previous.string == ";"
    )


def _type_params(tokens: list[tokenize.TokenInfo], index: int) -> list[tuple[int, int, int, str]]:
    """``def name[T, **P](`` → ``def name       (``: blank the bracketed parameters."""
    if index + 1 >= len(tokens) or tokens[index].type != tokenize.NAME or tokens[index + 1].string != "[":
        return []
    close = _matching(tokens, index + 1)
    if close is None:
        return []
    start, end = tokens[index + 1].start, tokens[close].end
    if start[0] != end[0]:
        return []
    return [(start[0], start[1], end[1], " " * (end[1] - start[1]))]


def _type_alias(tokens: list[tokenize.TokenInfo], index: int) -> list[tuple[int, int, int, str]]:
    """``type X = v`` → ``X      = v``; a parameterised alias also loses its brackets."""
    keyword, name = tokens[index], tokens[index + 1]
    if keyword.start[0] != name.start[0]:
        return []
    edits = [(keyword.start[0], keyword.start[1], name.end[1], name.string.ljust(name.end[1] - keyword.start[1]))]
    edits.extend(_type_params(tokens, index + 1))
    return edits


def _except_commas(tokens: list[tokenize.TokenInfo], index: int) -> list[tuple[int, int, int, str]]:
    """``except A, B:`` → ``except A| B:``; a parenthesised tuple or ``as`` clause is left alone."""
    depth = 0
    commas: list[tokenize.TokenInfo] = []
    for token in tokens[index:]:
        if token.string in {"(", "[", "{"}:
            depth += 1
        elif token.string in {")", "]", "}"}:
            depth -= 1
        elif depth == 0 and token.string == ",":
            commas.append(token)
        elif depth == 0 and token.string in {":", "as"}:
            if token.string == "as":
                return []
            break
        elif token.type == tokenize.NEWLINE:
            return []
    return [(c.start[0], c.start[1], c.end[1], "|") for c in commas]


def _matching(tokens: list[tokenize.TokenInfo], index: int) -> int | None:
    depth = 0
    for position in range(index, len(tokens)):
        string = tokens[position].string
        if string in {"(", "[", "{"}:
            depth += 1
        elif string in {")", "]", "}"}:
            depth -= 1
            if depth == 0:
                return position
    return None
