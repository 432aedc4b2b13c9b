"""Reading, decoding and parsing analysed files; every failure is a notice, never a crash."""

from __future__ import annotations

import ast
import os
import sys
import tokenize
from pathlib import Path

import pytest

from jobaudit import source
from jobaudit.files import SourceFile
from jobaudit.notices import Notice
from jobaudit.source import ParsedSource, SourceError, decode, load_source, parse_source


def _load(tmp_path: Path, data: bytes, name: str = "mod.py") -> ParsedSource | Notice:
    path = tmp_path / name
    path.write_bytes(data)
    return load_source(SourceFile(name, path))


def _notice(tmp_path: Path, data: bytes) -> Notice:
    result = _load(tmp_path, data)
    assert isinstance(result, Notice), result
    assert result.path == "mod.py"
    return result


def _parsed(text: str) -> ParsedSource:
    return parse_source(text, "mod.py")


class TestDecode:
    def test_plain_utf8(self) -> None:
        assert decode("x = 'é'\n".encode()) == "x = 'é'\n"

    def test_bom_is_stripped(self) -> None:
        assert decode(b"\xef\xbb\xbfx = 1\n") == "x = 1\n"

    def test_latin1_cookie(self) -> None:
        data = b"# -*- coding: latin-1 -*-\nx = '\xe9'\n"
        assert decode(data) == "# -*- coding: latin-1 -*-\nx = '\u00e9'\n"

    def test_cookie_on_second_line(self) -> None:
        data = b"#!/usr/bin/env python\n# vim: set fileencoding=cp1252 :\nx = '\x80'\n"
        assert decode(data).endswith("x = '\u20ac'\n")

    def test_invalid_utf8_raises_unicode_error(self) -> None:
        with pytest.raises(UnicodeDecodeError):
            decode(b"x = '\xff'\n")

    def test_unknown_encoding_raises_syntax_error(self) -> None:
        with pytest.raises(SyntaxError):
            decode(b"# coding: foo\nx = 1\n")

    def test_empty(self) -> None:
        assert decode(b"") == ""


class TestLoadSource:
    def test_parses_a_file(self, tmp_path: Path) -> None:
        result = _load(tmp_path, b"def job():\n    return 1\n")
        assert isinstance(result, ParsedSource)
        assert isinstance(result.tree.body[0], ast.FunctionDef)
        assert result.lines == ["def job():", "    return 1"]

    def test_empty_file(self, tmp_path: Path) -> None:
        result = _load(tmp_path, b"")
        assert isinstance(result, ParsedSource)
        assert result.tree.body == []
        assert result.lines == []

    def test_bom_file(self, tmp_path: Path) -> None:
        result = _load(tmp_path, b"\xef\xbb\xbfname = 'caf\xc3\xa9'\n")
        assert isinstance(result, ParsedSource)
        assert result.text == "name = 'café'\n"

    def test_latin1_file(self, tmp_path: Path) -> None:
        result = _load(tmp_path, b"# coding: latin-1\nname = 'caf\xe9'\n")
        assert isinstance(result, ParsedSource)
        assert result.lines[1] == "name = 'café'"

    def test_invalid_utf8(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"x = 1\ny = '\xff'\n")
        assert notice.reason == "not valid UTF-8 text (byte 0xff at offset 11)"
        assert notice.line == 2

    def test_invalid_utf8_on_first_line(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"\xff\xfe = 1\n")
        assert notice.reason == "not valid UTF-8 text (byte 0xff at offset 0)"
        assert notice.line == 1

    def test_invalid_utf8_after_bom_counts_the_bom(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"\xef\xbb\xbfx = 1\n\xff\n")
        assert notice.reason == "not valid UTF-8 text (byte 0xff at offset 9)"

    def test_invalid_in_declared_encoding(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"# coding: ascii\nx = '\xe9'\n")
        assert notice.reason == "not valid ascii text (byte 0xe9 at offset 21)"
        assert notice.line == 2

    def test_unknown_encoding(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"# coding: foo\nx = 1\n")
        assert notice.reason == "unknown encoding 'foo' declared on line 1"
        assert notice.line == 1

    def test_non_text_codec(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"#!/usr/bin/python\n# coding: rot13\nx = 1\n")
        assert notice.reason == "encoding 'rot13' declared on line 2 is not a text encoding"

    def test_cookie_contradicting_bom(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"\xef\xbb\xbf# coding: latin-1\nx = 1\n")
        assert notice.reason == (
            "encoding 'latin-1' declared on line 1 contradicts the UTF-8 byte order mark"
        )

    def test_nul_bytes(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"x = 1\n\x00\x01\x02")
        assert notice.reason == "contains NUL bytes (binary file?)"
        assert notice.line == 2

    def test_syntax_error(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"x = 1\n\ndef f(:\n    pass\n")
        assert notice.reason.startswith("syntax error: ")
        assert "(line 3, column " in notice.reason
        assert notice.line == 3

    def test_too_many_parentheses(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"(" * 100_000 + b")" * 100_000)
        assert notice.reason.startswith("syntax error: ")

    def test_nested_lists(self, tmp_path: Path) -> None:
        notice = _notice(tmp_path, b"x = " + b"[" * 2000 + b"]" * 2000 + b"\n")
        assert notice.reason.startswith("syntax error: ")

    @pytest.mark.parametrize(
        "data",
        [
            b"x = 1" + b" + 1" * 100_000 + b"\n",
            b"x = " + b"-" * 100_000 + b"1\n",
            b"x = a" + b".b" * 100_000 + b"\n",
        ],
        ids=["long-sum", "deep-unary", "long-attribute-chain"],
    )
    def test_too_deep_for_the_parser(self, tmp_path: Path, data: bytes) -> None:
        result = _load(tmp_path, data)
        # Which error the parser hits depends on the Python version; 3.10
        # builds some of these trees, and that is fine too: no crash.
        if isinstance(result, Notice):
            reasons = ("too deeply nested", "ran out of memory", "syntax error")
            assert result.reason.startswith(reasons)
        else:
            assert sys.version_info < (3, 11)

    def test_too_large(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(source, "MAX_FILE_BYTES", 1024 * 1024)
        notice = _notice(tmp_path, b"#" * (1024 * 1024 + 1))
        assert notice.reason == "file is larger than 1 MiB, skipped"

    def test_default_limit_is_generous(self) -> None:
        assert source.MAX_FILE_BYTES >= 10 * 1024 * 1024

    def test_file_disappeared(self, tmp_path: Path) -> None:
        result = load_source(SourceFile("gone.py", tmp_path / "gone.py"))
        assert result == Notice("gone.py", "file disappeared before it could be read")

    def test_directory(self, tmp_path: Path) -> None:
        result = load_source(SourceFile("pkg.py", tmp_path))
        assert isinstance(result, Notice)
        assert result.reason.startswith("cannot read: ")

    @pytest.mark.skipif(
        sys.platform == "win32" or os.geteuid() == 0, reason="root reads unreadable files"
    )
    def test_permission_denied(self, tmp_path: Path) -> None:
        path = tmp_path / "secret.py"
        path.write_text("x = 1\n")
        path.chmod(0)
        try:
            result = load_source(SourceFile("secret.py", path))
        finally:
            path.chmod(0o644)
        assert result == Notice("secret.py", "cannot read: permission denied")

    def test_permission_denied_simulated(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def deny(*args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("builtins.open", deny)
        result = load_source(SourceFile("secret.py", tmp_path / "secret.py"))
        assert result == Notice("secret.py", "cannot read: permission denied")

    def test_unexpected_error_is_a_notice(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def explode(text: str, filename: str) -> ParsedSource:
            raise KeyError("boom")

        monkeypatch.setattr(source, "parse_source", explode)
        notice = _notice(tmp_path, b"x = 1\n")
        assert notice.reason.startswith("internal error while reading: KeyError")

    def test_syntax_warnings_are_not_printed(
        self, tmp_path: Path, capfd: pytest.CaptureFixture[str]
    ) -> None:
        result = _load(tmp_path, b"pattern = '\\d+'\nassert (x, 'message')\n")
        assert isinstance(result, ParsedSource)
        assert capfd.readouterr().err == ""


class TestParseSource:
    def test_error_carries_reason_and_line(self) -> None:
        with pytest.raises(SourceError) as info:
            parse_source("x = (\n", "mod.py")
        assert info.value.reason.startswith("syntax error: ")
        assert info.value.line == 1

    def test_nul_in_text(self) -> None:
        with pytest.raises(SourceError, match="NUL bytes"):
            parse_source("x = 1\x00\n", "mod.py")

    def test_lines_follow_python_line_numbers(self) -> None:
        parsed = _parsed("a = 1\r\nb = '\x0c\u2028'\rc = 3\n")
        assert parsed.lines == ["a = 1", "b = '\x0c\u2028'", "c = 3"]
        last = parsed.tree.body[-1]
        assert parsed.lines[last.lineno - 1] == "c = 3"

    def test_recent_syntax(self) -> None:
        parsed = _parsed("match x:\n    case [a, *rest]:\n        pass\n")
        assert isinstance(parsed.tree.body[0], ast.Match)


class TestNoqa:
    def test_no_comments_fast_path(self) -> None:
        parsed = _parsed("x = 1\n")
        assert parsed.noqa == {}
        assert parsed.pragmas == {}

    @pytest.mark.parametrize(
        ("comment", "codes"),
        [
            ("# noqa", None),
            ("# NOQA", None),
            ("#noqa", None),
            ("# noqa: JOB101", frozenset({"JOB101"})),
            ("# noqa:JOB101", frozenset({"JOB101"})),
            ("# noqa: JOB101,JOB102", frozenset({"JOB101", "JOB102"})),
            ("# noqa: JOB101, JOB102", frozenset({"JOB101", "JOB102"})),
            ("# noqa:JOB101 JOB102", frozenset({"JOB101", "JOB102"})),
            ("# noqa: job101", frozenset({"JOB101"})),
            ("# noqa: JOB1", frozenset({"JOB1"})),
            ("# noqa: E501,JOB101  (long line)", frozenset({"E501", "JOB101"})),
            ("# type: ignore  # noqa: JOB101", frozenset({"JOB101"})),
            ("# noqa: this is fine", None),
            ("# noqa:", None),
        ],
    )
    def test_variants(self, comment: str, codes: frozenset[str] | None) -> None:
        parsed = _parsed(f"x = 1\ny = 2  {comment}\n")
        assert parsed.noqa == {2: codes}

    def test_not_noqa(self) -> None:
        parsed = _parsed("x = 1  # noqable\ny = 2  # see noqa docs\n")
        assert parsed.noqa == {}

    def test_inside_a_string_does_not_count(self) -> None:
        parsed = _parsed("x = '# noqa: JOB101'\ny = '''\n# noqa\n'''\n")
        assert parsed.noqa == {}

    def test_each_line_of_a_multiline_statement(self) -> None:
        parsed = _parsed("call(\n    a,  # noqa: JOB201\n    b,\n)  # noqa: JOB202\n")
        assert parsed.noqa == {2: frozenset({"JOB201"}), 4: frozenset({"JOB202"})}

    def test_falls_back_to_lines_when_tokenize_fails(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def broken(readline: object) -> object:
            raise tokenize.TokenError("boom", (1, 0))

        monkeypatch.setattr(tokenize, "generate_tokens", broken)
        parsed = _parsed(
            "x = 1  # noqa: JOB101\n\ndef f():  # jobaudit: idempotent -- keyed\n    pass\n"
        )
        assert parsed.noqa == {1: frozenset({"JOB101"})}
        assert parsed.pragmas == {3: "keyed"}


class TestPragmas:
    def test_with_reason(self) -> None:
        parsed = _parsed(
            "@app.task(acks_late=True)\n"
            "def charge(order_id):  # jobaudit: idempotent -- Stripe idempotency key per order\n"
            "    pass\n"
        )
        assert parsed.pragmas == {2: "Stripe idempotency key per order"}
        assert parsed.noqa == {}

    def test_without_reason(self) -> None:
        parsed = _parsed("def job():  # jobaudit: idempotent\n    pass\n")
        assert parsed.pragmas == {1: ""}

    def test_own_line(self) -> None:
        parsed = _parsed("# jobaudit: idempotent -- upsert\ndef job():\n    pass\n")
        assert parsed.pragmas == {1: "upsert"}

    def test_with_noqa_on_the_same_line(self) -> None:
        parsed = _parsed("def job():  # jobaudit: idempotent -- upsert  # noqa: JOB301\n    pass\n")
        assert parsed.pragmas == {1: "upsert"}
        assert parsed.noqa == {1: frozenset({"JOB301"})}

    def test_reason_may_contain_hash(self) -> None:
        parsed = _parsed("def job():  # jobaudit: idempotent -- see issue #42\n    pass\n")
        assert parsed.pragmas == {1: "see issue #42"}

    def test_other_jobaudit_comments_are_not_pragmas(self) -> None:
        parsed = _parsed("x = 1  # jobaudit: something-else\n")
        assert parsed.pragmas == {}
