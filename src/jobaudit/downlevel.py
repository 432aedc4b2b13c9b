"""Reading code written for a newer Python than the one jobaudit runs on.

Projects already use syntax older interpreters' ``ast`` rejects: PEP 695 type
parameters and ``type`` statements (3.12), PEP 701 f-strings (3.12), PEP 750
t-strings and PEP 758 ``except A, B:`` (3.14), ``except*`` and PEP 646 star
unpacking (3.11).  A linter that skips those files misses the jobs in them.

When a file does not parse, :func:`downlevel` writes a copy the running
``ast`` reads, keeping every other token on its line and column so findings
point at the real source, and :func:`inspect` asks libcst (``libcst>=1.8.4``,
whose parser reads every Python 3 grammar up to 3.14 whatever the interpreter)
whether the original is valid newer Python.  Most rewrites are found from
tokens; only string literals need libcst to find them, which costs several
times the parse, so it is asked for them only when the token copy fails:

* string literals the running Python cannot read become a blank f-string of
  the same extent (``f"     "``; across lines, ``f""`` and backslash
  continuations);
* type parameter lists become spaces and ``type X = v`` becomes ``X = v``;
* the commas of an unparenthesised ``except`` become ``|`` (which facts read as
  a tuple of exception types);
* on 3.10, the star of ``except*`` and of ``tuple[*Ts]`` / ``*args: *Ts``
  becomes a space (only there: on 3.11 it means something).

The rewrites other than the stars are harmless to apply on any version: they
only run on files the running Python rejected.

libcst runs in a child process: its native parser can crash the process
(stack overflow) or take minutes on pathologically nested code, and a linter
must survive any file.  The child is started on the first file that needs it,
reused for the rest of the run, and replaced if it dies or times out.  libcst
is never imported by the process that runs ``check``.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import io
import itertools
import json
import keyword
import os
import queue
import subprocess
import sys
import threading
import tokenize
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

__all__ = ["Copy", "Feature", "Inspection", "downlevel", "inspect", "serve", "vouches"]

Version = tuple[int, int]
Span = tuple[int, int, int, int]
"""Start line, start column, end line, end column: 1-based lines, 0-based
character columns, end exclusive (libcst's ``CodeRange``)."""
Edit = tuple[int, int, int, str]
"""Line, start column, end column, replacement (same length unless at a line end)."""

RUNNING: Version = (sys.version_info.major, sys.version_info.minor)


@dataclass(frozen=True)
class Feature:
    """A construct the running Python cannot parse, and the first Python that can."""

    version: Version
    name: str
    line: int

    @property
    def python(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"


@dataclass(frozen=True)
class Inspection:
    """libcst's verdict on a file the running Python could not parse.

    ``features`` are the constructs newer than the running Python; ``blanks``
    the string literals among them, which :func:`downlevel` blanks.
    """

    valid: bool
    features: tuple[Feature, ...] = ()
    blanks: tuple[Span, ...] = ()

    def needs(self, line: int = 0) -> Feature | None:
        """The feature to name in a notice: one on ``line`` if any, else the newest."""
        if not self.features:
            return None
        on_line = [f for f in self.features if f.line == line]
        return max(on_line or self.features, key=lambda f: (f.version, -f.line))


# --- the position-keeping copy -------------------------------------------------------


def downlevel(text: str, blanks: Sequence[Span] = (), version: Version = RUNNING) -> Copy | None:
    """A copy of ``text`` the ``version`` parser reads, or None when there was nothing to rewrite.

    ``blanks`` are string-literal spans to replace first (from :func:`inspect`);
    the other rewrites are found from tokens, so they need no libcst.
    """
    lines = _split(text)
    if blanks:
        lines = _apply(lines, [e for span in blanks for e in _blank(lines, span, literal=True)])
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO("".join(lines)).readline))
    except (tokenize.TokenError, SyntaxError):
        return Copy("".join(lines), (), only_unions=False) if blanks else None
    edits, unions = _token_edits([t for t in tokens if t.type not in _TRIVIA], lines, version)
    if not edits and not blanks:
        return None
    only_unions = not blanks and len(edits) == sum(len(u.commas) for u in unions)
    return Copy("".join(_apply(lines, edits)), tuple(unions), only_unions)


@dataclass(frozen=True)
class Union:
    """An ``except A, B:`` whose commas the copy turned into ``|``.

    Positions are as ``ast`` gives them: 1-based line, UTF-8 byte column.
    """

    keyword: tuple[int, int]
    commas: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Copy:
    """The down-levelled text, and the ``except`` lists rewritten in it.

    ``only_unions`` is true when those lists were the only rewrites, so that
    :func:`vouches` can tell from the copy's own tree whether the original
    is valid.
    """

    text: str
    unions: tuple[Union, ...]
    only_unions: bool


def vouches(copy: Copy, tree: ast.Module) -> bool:
    """Does the copy's tree prove the original valid Python 3.14, so libcst need not be asked?

    PEP 758 asks only that each item of ``except A, B:`` be an expression.
    A ``|`` put for a comma can regroup the items (``except a if b, c else d:``
    reads as ``a if (b | c) else d``), so each comma must fall between two
    operands of the handler's chain of ``|``: then every item is a run of
    those operands, an expression on its own.  Everything else in the file
    was read as written.
    """
    if not copy.only_unions:
        return False
    handlers = {
        (node.lineno, node.col_offset): node.type
        for node in ast.walk(tree)
        if isinstance(node, ast.ExceptHandler)
    }
    return all(_between_operands(handlers.get(u.keyword), u.commas) for u in copy.unions)


def _between_operands(types: ast.expr | None, commas: tuple[tuple[int, int], ...]) -> bool:
    operands: list[ast.expr] = []
    node = types
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        operands.append(node.right)
        node = node.left
    if node is None:
        return False
    operands.append(node)
    operands.reverse()
    gaps = {
        ((left.end_lineno or 0, left.end_col_offset or 0), (right.lineno, right.col_offset))
        for left, right in itertools.pairwise(operands)
    }
    return all(any(end <= comma < start for end, start in gaps) for comma in commas)


_TRIVIA = {tokenize.NL, tokenize.COMMENT, tokenize.ENCODING}
_STATEMENT_START = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
_SOFT_KEYWORDS = {"match", "case"}


def _split(text: str) -> list[str]:
    """Lines with their endings, broken where Python breaks them (not at ``\\f`` or ``\\u2028``)."""
    return io.StringIO(text, newline="").readlines()


def _apply(lines: list[str], edits: list[Edit]) -> list[str]:
    out = list(lines)
    for line, start, end, replacement in sorted(edits, reverse=True):
        original = out[line - 1]
        out[line - 1] = original[:start] + replacement + original[end:]
    return out


def _content_width(line: str) -> int:
    return len(line.rstrip("\r\n"))


def _blank(lines: list[str], span: Span, *, literal: bool) -> list[Edit]:
    """Blank ``span``; a ``literal`` blank is still a string literal (an expression).

    The literal is an f-string, so that facts see "an f-string" (an unknown
    value) as they would have in the original, not a known constant.

    A span across lines keeps its line breaks: each broken line ends in a
    backslash continuation, so the statement goes on as before.
    """
    start_line, start_col, end_line, end_col = span
    if start_line == end_line:
        width = end_col - start_col
        filler = 'f"' + " " * (width - 3) + '"' if literal else " " * width
        return [(start_line, start_col, end_col, filler)]
    first = _content_width(lines[start_line - 1])
    head = 'f""' if literal else ""
    edits = [(start_line, start_col, first, _continued(head, first - start_col))]
    for number in range(start_line + 1, end_line):
        width = _content_width(lines[number - 1])
        edits.append((number, 0, width, _continued("", width)))
    edits.append((end_line, 0, end_col, " " * end_col))
    return edits


def _continued(head: str, width: int) -> str:
    """``head``, spaces, and a trailing backslash, ``width`` long when that fits."""
    return head + " " * max(width - len(head) - 1, 0) + "\\"


def _token_edits(
    tokens: list[tokenize.TokenInfo], lines: list[str], version: Version
) -> tuple[list[Edit], list[Union]]:
    edits: list[Edit] = []
    unions: list[Union] = []
    subscripts: list[bool] = []  # open brackets, innermost last: is it a subscript?
    for index, token in enumerate(tokens):
        previous = tokens[index - 1] if index else None
        if token.type == tokenize.OP:
            if token.string in {"(", "[", "{"}:
                subscripts.append(token.string == "[" and _follows_value(previous))
            elif token.string in {")", "]", "}"}:
                if subscripts:
                    subscripts.pop()
            elif (
                token.string == "*"
                and version < (3, 11)
                and _star_unpacks_type(previous, subscripts)
            ):
                edits.append((token.start[0], token.start[1], token.end[1], " "))
        elif token.type == tokenize.NAME:
            if token.string in {"def", "class"}:
                edits.extend(_type_params(tokens, index + 1, lines))
            elif token.string == "type" and _starts_statement(tokens, index):
                edits.extend(_type_alias(tokens, index, lines))
            elif token.string == "except":
                star, commas = _except(tokens, index + 1, version)
                edits.extend(star)
                if commas:
                    edits.extend((c.start[0], c.start[1], c.end[1], "|") for c in commas)
                    unions.append(
                        Union(
                            _byte_position(token, lines),
                            tuple(_byte_position(c, lines) for c in commas),
                        )
                    )
    return edits, unions


def _byte_position(token: tokenize.TokenInfo, lines: list[str]) -> tuple[int, int]:
    line, column = token.start
    return line, len(lines[line - 1][:column].encode())


def _follows_value(previous: tokenize.TokenInfo | None) -> bool:
    """Is a ``[`` after ``previous`` a subscript (``x[``, ``f()[``) rather than a list display?"""
    if previous is None:
        return False
    if previous.type == tokenize.NAME:
        return not keyword.iskeyword(previous.string) and previous.string not in _SOFT_KEYWORDS
    return previous.type == tokenize.STRING or previous.string in {")", "]"}


def _star_unpacks_type(previous: tokenize.TokenInfo | None, subscripts: list[bool]) -> bool:
    """PEP 646: ``*args: *Ts`` or ``tuple[int, *Ts]`` (3.11)."""
    if previous is None:
        return False
    if previous.string == ":":
        return True
    return bool(subscripts) and subscripts[-1] and previous.string in {"[", ","}


def _starts_statement(tokens: list[tokenize.TokenInfo], index: int) -> bool:
    if index + 2 >= len(tokens) or tokens[index + 1].type != tokenize.NAME:
        return False
    if tokens[index + 2].string not in {"=", "["}:
        return False
    previous = tokens[index - 1] if index else None
    return previous is None or previous.type in _STATEMENT_START or previous.string == ";"


def _type_params(tokens: list[tokenize.TokenInfo], index: int, lines: list[str]) -> list[Edit]:
    """``def name[T, **P](`` → ``def name       (``: blank the bracketed parameters."""
    if (
        index + 1 >= len(tokens)
        or tokens[index].type != tokenize.NAME
        or tokens[index + 1].string != "["
    ):
        return []
    close = _matching(tokens, index + 1)
    if close is None:
        return []
    start, end = tokens[index + 1].start, tokens[close].end
    return _blank(lines, (start[0], start[1], end[0], end[1]), literal=False)


def _type_alias(tokens: list[tokenize.TokenInfo], index: int, lines: list[str]) -> list[Edit]:
    """``type X = v`` → ``X      = v``; a parameterised alias also loses its brackets."""
    keyword_token, name = tokens[index], tokens[index + 1]
    if keyword_token.start[0] != name.start[0]:
        return []
    width = name.end[1] - keyword_token.start[1]
    edits = [
        (keyword_token.start[0], keyword_token.start[1], name.end[1], name.string.ljust(width))
    ]
    edits.extend(_type_params(tokens, index + 1, lines))
    return edits


def _except(
    tokens: list[tokenize.TokenInfo], index: int, version: Version
) -> tuple[list[Edit], list[tokenize.TokenInfo]]:
    """The star edit of ``except*`` (3.10 only) and the commas of an unparenthesised list.

    ``except* A, B:`` becomes ``except  A| B:``; a parenthesised tuple or ``as`` is left alone.
    """
    star: list[Edit] = []
    if index < len(tokens) and tokens[index].string == "*":
        if version < (3, 11):
            token = tokens[index]
            star.append((token.start[0], token.start[1], token.end[1], " "))
        index += 1
    depth = 0
    commas: list[tokenize.TokenInfo] = []
    for position in range(index, len(tokens)):
        token = tokens[position]
        if token.string in {"(", "[", "{"}:
            depth += 1
        elif token.string in {")", "]", "}"}:
            depth -= 1
        elif depth == 0 and token.string == ",":
            commas.append(token)
        elif depth == 0 and token.string == "as":
            return star, []
        elif (depth == 0 and token.string == ":") or token.type == tokenize.NEWLINE:
            break
    return star, commas


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


# --- asking libcst, in a child process -----------------------------------------------


def inspect(text: str, *, detail: bool = True) -> Inspection | None:
    """libcst's verdict on ``text``, or None when libcst could not give one.

    None means libcst is missing, crashed, timed out or failed on this file.  Without
    ``detail`` only validity is asked: finding the newer constructs and their
    positions costs several times the parse, and a copy made from tokens alone
    usually needs neither.
    """
    reply = _CHILD.ask(text, detail)
    if reply is None:
        return None
    try:
        if reply["valid"] is None:
            return None
        if not reply["valid"]:
            return Inspection(valid=False)
        features = tuple(
            Feature((v[0], v[1]), str(n), int(line)) for v, n, line in reply["features"]
        )
        blanks = tuple((int(a), int(b), int(c), int(d)) for a, b, c, d in reply["blanks"])
    except (KeyError, TypeError, ValueError):
        return None
    return Inspection(valid=True, features=features, blanks=blanks)


_READY = "ready"
_START_TIMEOUT = 60.0
_SECONDS_PER_MIB = 10.0
_BASE_TIMEOUT = 10.0


class _Child:
    """The libcst child process: one JSON request and one JSON reply per line.

    Replies are read by a thread into a queue so that a hung child can be
    given up on after a timeout (portable, unlike ``select`` on pipes).
    """

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.replies: queue.Queue[str | None] = queue.Queue()
        self.unavailable = False
        self.lock = threading.Lock()
        atexit.register(self._stop)

    def ask(self, text: str, detail: bool) -> dict[str, Any] | None:
        with self.lock:
            if self.process is not None and self.process.poll() is not None:
                self._stop()  # it died on an earlier file: start a new one
            if self.unavailable or (self.process is None and not self._start()):
                return None
            assert self.process is not None and self.process.stdin is not None
            try:
                self.process.stdin.write(json.dumps({"text": text, "detail": detail}) + "\n")
                self.process.stdin.flush()
            except OSError:
                self._stop()
                return None
            timeout = _BASE_TIMEOUT + _SECONDS_PER_MIB * len(text) / (1024 * 1024)
            reply = self._next(timeout)
            if reply is None:
                self._stop()
                return None
            try:
                answer = json.loads(reply)
            except ValueError:
                return None
            return answer if isinstance(answer, dict) else None

    def _start(self) -> bool:
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        try:
            # cwd: ``-c`` puts the working directory first on sys.path, and the
            # scanned project's modules must never shadow jobaudit or libcst.
            process = subprocess.Popen(
                [sys.executable, "-c", "from jobaudit.downlevel import serve; serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                cwd=package_parent,
            )
        except OSError:
            self.unavailable = True
            return False
        assert process.stdout is not None
        self.process = process
        self.replies = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, self.replies), daemon=True).start()
        if self._next(_START_TIMEOUT) != json.dumps(_READY):
            # libcst is not installed (or this Python cannot start it): not worth retrying.
            self._stop()
            self.unavailable = True
            return False
        return True

    def _next(self, timeout: float) -> str | None:
        try:
            line = self.replies.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if line is None else line.rstrip("\n")

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pump(stream: IO[str], replies: queue.Queue[str | None]) -> None:
    for line in stream:
        replies.put(line)
    replies.put(None)


_CHILD = _Child()


def serve() -> None:
    """The child's main loop: read requests from stdin, answer on stdout, until EOF."""
    try:
        import libcst  # noqa: F401
    except ImportError:
        return
    print(json.dumps(_READY), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(json.dumps(_verdict(request["text"], request["detail"])), flush=True)


def _verdict(text: str, detail: bool) -> dict[str, Any]:
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError:
        return {"valid": False}
    except Exception:  # CSTLogicError: libcst's own gaps (t"a" t"b"), no verdict
        return {"valid": None}
    features: list[tuple[Version, str, int]] = []
    blanks: list[Span] = []
    newer = [found for found in _newer_nodes(module) if found[1] > RUNNING] if detail else []
    if newer:
        positions = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    for node, version, name in newer:
        where = positions[node]
        features.append((version, name, where.start.line))
        if isinstance(node, (cst.FormattedString, cst.TemplatedString)):
            blanks.append((where.start.line, where.start.column, where.end.line, where.end.column))
    return {"valid": True, "features": features, "blanks": blanks}


def _newer_nodes(module: Any) -> Iterator[tuple[Any, Version, str]]:
    """Every construct of a newer grammar than 3.10's, with the Python that introduced it."""
    import libcst as cst

    stack: list[Any] = [module]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.TemplatedString):
            yield node, (3, 14), "t-string (PEP 750)"
            continue
        if isinstance(node, cst.FormattedString):
            if RUNNING < (3, 12) and not _readable(module.code_for_node(node)):
                yield node, (3, 12), "f-string (PEP 701)"
            continue
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)) and node.type_parameters:
            yield node.type_parameters, (3, 12), "type parameters (PEP 695)"
        elif isinstance(node, cst.TypeParam) and getattr(node, "default", None) is not None:
            yield node, (3, 13), "type parameter default (PEP 696)"
        elif isinstance(node, cst.TypeAlias):
            yield node, (3, 12), "type statement (PEP 695)"
        elif isinstance(node, cst.TryStar):
            yield node, (3, 11), "except* (PEP 654)"
        elif isinstance(node, cst.Index) and getattr(node, "star", None):
            yield node, (3, 11), "star unpacking in a subscript (PEP 646)"
        elif isinstance(node, cst.Annotation) and isinstance(node.annotation, cst.StarredElement):
            yield node, (3, 11), "star unpacking in an annotation (PEP 646)"
        if (
            isinstance(node, (cst.ExceptHandler, cst.ExceptStarHandler))
            and isinstance(node.type, cst.Tuple)
            and not node.type.lpar
        ):
            yield node, (3, 14), "except without parentheses (PEP 758)"
        stack.extend(reversed(node.children))


def _readable(code: str) -> bool:
    """Does the running Python parse this string literal on its own?"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(f"(\n{code}\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
