"""Reading and parsing Python source: bytes → text → ``ast``, plus the ``# noqa`` map.

This is the only module that parses analysed code, so every way a file can
fail to become a tree is handled here once and turned into a :class:`Notice`
with a reason a user can act on.  A bad file must never stop a run: the
other files are still analysed.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from dataclasses import dataclass

from jobaudit.downlevel import RUNNING, Copy, Feature, downlevel, inspect, vouches
from jobaudit.files import SourceFile
from jobaudit.notices import Notice

__all__ = [
    "MAX_FILE_BYTES",
    "ParsedSource",
    "SourceError",
    "decode",
    "from_tree",
    "load_source",
    "parse_source",
]

MAX_FILE_BYTES = 10 * 1024 * 1024
"""Files above this size are skipped: hand-written job code is never this large,
and parsing generated blobs of that size costs seconds and hundreds of MiB."""

_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")
_COOKIE_RE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_NOQA_RE = re.compile(
    r"#\s*noqa\b(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?",
    re.IGNORECASE,
)
_PRAGMA_RE = re.compile(r"#\s*jobaudit:\s*idempotent\b(?P<rest>.*)", re.IGNORECASE)
_REASON_LEAD_RE = re.compile("^\\s*(?:--|\u2014|:)?\\s*")
_CODE_SPLIT_RE = re.compile(r"[\s,]+")
_SURROGATE_ESCAPE_RE = re.compile(r"\\(?:u|U0000)[dD][89a-fA-F]")
_UTF8_BOM = b"\xef\xbb\xbf"


class SourceError(Exception):
    """Text that cannot be turned into a tree; ``reason`` is shown to the user."""

    def __init__(self, reason: str, line: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass
class ParsedSource:
    """A parsed file with everything the later steps need from its text.

    ``lines`` follows Python's own line numbering (``\\n``, ``\\r\\n`` and
    ``\\r`` only), so ``lines[node.lineno - 1]`` is the node's line even when
    the text holds form feeds or ``\\u2028`` (which ``str.splitlines`` would
    also break on).  ``noqa`` maps a line to its suppressed codes (``None``
    for a blanket ``# noqa``); ``pragmas`` maps a line to the reason given in
    ``# jobaudit: idempotent -- <reason>`` (``""`` when none).
    """

    text: str
    tree: ast.Module
    lines: list[str]
    noqa: dict[int, frozenset[str] | None]
    pragmas: dict[int, str]


def decode(data: bytes) -> str:
    """Decode source bytes the way the interpreter does (PEP 263 cookie, UTF-8 BOM).

    Raises ``UnicodeDecodeError`` for bytes invalid in the declared (or
    default UTF-8) encoding, ``SyntaxError`` for an unknown encoding or one
    that contradicts the BOM, and ``LookupError`` for a codec that is not a
    text encoding (``rot13``).  :func:`load_source` turns these into notices.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        # Without a cookie, detect_encoding rejects non-UTF-8 first lines with a
        # vague message; decoding says exactly which byte is wrong.
        data.decode("utf-8")
        raise
    return data.decode(encoding)


def parse_source(text: str, filename: str) -> ParsedSource:
    """Parse ``text`` into a :class:`ParsedSource`; raise :class:`SourceError` if it cannot be."""
    if "\x00" in text:
        raise SourceError("contains NUL bytes (binary file?)", _line_of(text, text.index("\x00")))
    try:
        tree = _parse_any_python(text, filename)
    except RecursionError:
        raise SourceError("too deeply nested for Python's parser (RecursionError)") from None
    except MemoryError:
        raise SourceError(
            "ran out of memory while parsing (very deeply nested code also causes this)"
        ) from None
    _escape_lone_surrogates(text, tree)
    return from_tree(text, tree)


def _escape_lone_surrogates(text: str, tree: ast.Module) -> None:
    """Keep ``"\\udce9"``-style escapes in string constants as text.

    Such an escape makes a lone surrogate, which no output encoding accepts,
    and strings from code reach every report (job names, settings modules).
    Only an escape in the source can make one, so most files skip the walk.
    """
    if _SURROGATE_ESCAPE_RE.search(text) is None:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                node.value.encode("utf-8")
            except UnicodeEncodeError:
                node.value = node.value.encode("utf-8", "backslashreplace").decode("utf-8")


def from_tree(text: str, tree: ast.Module) -> ParsedSource:
    """The :class:`ParsedSource` of ``text`` parsed elsewhere (flake8 hands plugins its tree)."""
    noqa, pragmas = _suppressions(text)
    return ParsedSource(text=text, tree=tree, lines=_split_lines(text), noqa=noqa, pragmas=pragmas)


def _parse_any_python(text: str, filename: str) -> ast.Module:
    """Parse ``text``, through a down-levelled copy when it is valid newer Python.

    libcst confirms the file is valid Python (up to 3.14) before the copy is
    used, so a real syntax error is reported as one; when libcst cannot answer
    (it crashed or timed out), a copy the running Python reads is used anyway.
    Nesting limits apply to every Python, so those files are not sent to libcst.
    """
    try:
        return _parse(text, filename)
    except SyntaxError as exc:
        error = exc
    if str(error.msg).startswith("too many"):
        raise SourceError(_syntax_reason(error, newer=False), error.lineno or 0)
    copied = _parse_token_copy(text, filename)
    if copied is not None:
        copy, tree = copied
        # Most newer files (PEP 758, PEP 695) need only token rewrites.  When
        # the copy's own tree proves the file valid, libcst is not asked at
        # all; otherwise it confirms validity, skipping its slower search
        # for newer constructs.
        if vouches(copy, tree):
            return tree
        verdict = inspect(text, detail=False)
        if verdict is None or verdict.valid:
            return tree
        raise SourceError(_syntax_reason(error, newer=False), error.lineno or 0)
    verdict = inspect(text)
    if verdict is None or not verdict.valid or not verdict.features:
        newer = verdict is None or verdict.valid
        raise SourceError(_syntax_reason(error, newer=newer), error.lineno or 0)
    blanked = downlevel(text, verdict.blanks)
    try:
        return _parse(blanked.text if blanked is not None else text, filename)
    except SyntaxError as second:
        feature = verdict.needs(second.lineno or 0)
        assert feature is not None
        raise SourceError(_needs_reason(feature), feature.line) from None


def _parse_token_copy(text: str, filename: str) -> tuple[Copy, ast.Module] | None:
    copy = downlevel(text)
    if copy is None:
        return None
    try:
        return copy, _parse(copy.text, filename)
    except SyntaxError:
        return None


def _needs_reason(feature: Feature) -> str:
    python = feature.python
    return (
        f"needs Python {python} ({feature.name} on line {feature.line}), which jobaudit "
        f"cannot read on Python {RUNNING[0]}.{RUNNING[1]}; run jobaudit with Python "
        f"{python} or newer (e.g. uvx --python {python} jobaudit check)"
    )


def _parse(text: str, filename: str) -> ast.Module:
    with warnings.catch_warnings():
        # Invalid escape sequences and the like in analysed code are not
        # the user's concern here and must not be printed on stderr.
        warnings.simplefilter("ignore")
        return ast.parse(text, filename=filename)


def load_source(file: SourceFile, data: bytes | None = None) -> ParsedSource | Notice:
    """Read (unless ``data`` was read already), decode and parse one file.

    Every failure becomes a :class:`Notice`.  This never raises: a run must
    report the other files' findings whatever one file contains, so even an
    unexpected error becomes a notice.
    """
    try:
        if data is None:
            data = _read(file)
        text = _decode_or_error(data)
        return parse_source(text, file.relpath)
    except SourceError as exc:
        return Notice(file.relpath, exc.reason, exc.line)
    except Exception as exc:  # the promise above: one bad file never stops a run
        return Notice(file.relpath, f"internal error while reading: {type(exc).__name__}: {exc}")


def read_bytes(file: SourceFile) -> bytes | None:
    """The file's bytes for the prefilter; None when :func:`load_source` would give a notice."""
    try:
        return _read(file)
    except SourceError:
        return None


def _read(file: SourceFile) -> bytes:
    try:
        with open(file.path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SourceError("file disappeared before it could be read") from None
    except PermissionError:
        raise SourceError("cannot read: permission denied") from None
    except IsADirectoryError:
        raise SourceError("cannot read: is a directory") from None
    except OSError as exc:
        raise SourceError(f"cannot read: {(exc.strerror or str(exc)).lower()}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SourceError(f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, skipped")
    if b"\x00" in data:
        position = data.index(b"\x00")
        raise SourceError("contains NUL bytes (binary file?)", data.count(b"\n", 0, position) + 1)
    return data


def _decode_or_error(data: bytes) -> str:
    try:
        return decode(data)
    except UnicodeDecodeError as exc:
        # exc.object may be a suffix of data (utf-8-sig decodes after the BOM).
        offset = exc.start + len(data) - len(exc.object)
        name = (
            "UTF-8" if exc.encoding.replace("_", "-").lower() in ("utf-8", "utf8") else exc.encoding
        )
        line = data.count(b"\n", 0, offset) + 1
        raise SourceError(
            f"not valid {name} text (byte 0x{data[offset]:02x} at offset {offset})", line
        ) from None
    except SyntaxError as exc:
        raise SourceError(_encoding_reason(data, str(exc.msg)), _cookie(data)[0]) from None
    except LookupError:
        line, name = _cookie(data)
        raise SourceError(
            f"encoding '{name}' declared on line {line} is not a text encoding", line
        ) from None


def _cookie(data: bytes) -> tuple[int, str]:
    """The line (1 or 2) and name of the PEP 263 encoding declaration, or ``(0, "")``."""
    lines = data.removeprefix(_UTF8_BOM).splitlines()[:2]
    for number, line in enumerate(lines, start=1):
        match = _COOKIE_RE.match(line)
        if match:
            return number, match.group(1).decode("ascii", "replace")
    return 0, ""


def _encoding_reason(data: bytes, message: str) -> str:
    line, name = _cookie(data)
    if message.startswith("unknown encoding"):
        return f"unknown encoding '{name}' declared on line {line}"
    if data.startswith(_UTF8_BOM) and name:
        return f"encoding '{name}' declared on line {line} contradicts the UTF-8 byte order mark"
    return f"invalid encoding declaration: {message}"


def _syntax_reason(exc: SyntaxError, *, newer: bool) -> str:
    """The interpreter's message; ``newer`` when libcst could not rule out newer syntax."""
    position = ""
    if exc.lineno:
        position = (
            f" (line {exc.lineno}, column {exc.offset})" if exc.offset else f" (line {exc.lineno})"
        )
    hint = ""
    if newer:
        hint = (
            f"; if the file is valid Python newer than {RUNNING[0]}.{RUNNING[1]}, run jobaudit "
            f"with that Python"
        )
    return f"syntax error: {exc.msg}{position}{hint}"


def _line_of(text: str, index: int) -> int:
    return len(_LINE_BREAK_RE.findall(text, 0, index)) + 1


def _split_lines(text: str) -> list[str]:
    # str.split is several times faster than the regex, and exact without "\r".
    lines = text.split("\n") if "\r" not in text else _LINE_BREAK_RE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _suppressions(text: str) -> tuple[dict[int, frozenset[str] | None], dict[int, str]]:
    """Collect ``# noqa`` and ``# jobaudit:`` comments by line.

    Most files have neither, so a plain substring test (much faster than a
    case-insensitive regex) skips tokenizing them.
    Comments are found with ``tokenize`` so that the same words inside
    strings do not count; if tokenizing fails, every line is searched.
    """
    noqa: dict[int, frozenset[str] | None] = {}
    pragmas: dict[int, str] = {}
    lowered = text.lower()
    if "noqa" not in lowered and "jobaudit:" not in lowered:
        return noqa, pragmas
    for line, comment in _comments(text):
        match = _NOQA_RE.search(comment)
        if match is not None:
            noqa[line] = _noqa_codes(match)
        reason = _pragma_reason(comment)
        if reason is not None:
            pragmas[line] = reason
    return noqa, pragmas


def _comments(text: str) -> list[tuple[int, str]]:
    try:
        return [
            (token.start[0], token.string)
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError):
        return [
            (number, line[line.index("#") :])
            for number, line in enumerate(_split_lines(text), start=1)
            if "#" in line
        ]


def _noqa_codes(match: re.Match[str]) -> frozenset[str] | None:
    """The codes of a ``# noqa`` comment (flake8 syntax), or ``None`` for a blanket one.

    As in flake8, ``# noqa:`` followed by anything that is not a code list is
    a blanket ``# noqa``.
    """
    codes = match.group("codes")
    if codes is None:
        return None
    return frozenset(code.upper() for code in _CODE_SPLIT_RE.split(codes.strip()))


def _pragma_reason(comment: str) -> str | None:
    match = _PRAGMA_RE.search(comment)
    if match is None:
        return None
    rest = match.group("rest")
    trailing_noqa = _NOQA_RE.search(rest)
    if trailing_noqa is not None:
        rest = rest[: trailing_noqa.start()]
    return _REASON_LEAD_RE.sub("", rest, count=1).strip()
