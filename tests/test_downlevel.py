"""Newer-Python syntax is read through a down-levelled copy that keeps positions."""

from __future__ import annotations

import ast
import sys

import pytest

from jobaudit import source
from jobaudit.downlevel import downlevel, inspect, vouches
from jobaudit.source import SourceError, parse_source

needs_old_python = pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="the running Python reads this syntax natively"
)

TYPE_PARAMS = """\
import dramatiq


def actor[**P, R](queue_name: str = "default", **options):
    return dramatiq.actor(queue_name=queue_name, **options)


@actor(max_retries=None)
def sync(order_id):
    pass
"""


def test_type_parameters_are_blanked_in_place() -> None:
    copy = downlevel(TYPE_PARAMS)
    assert copy is not None
    blank = " " * len("[**P, R]")
    assert copy.text.splitlines()[3] == f'def actor{blank}(queue_name: str = "default", **options):'
    tree = ast.parse(copy.text)
    assert [node.lineno for node in tree.body[1:]] == [4, 9]


def test_type_alias_becomes_an_assignment() -> None:
    copy = downlevel("type Payload = dict[str, int]\n")
    assert copy is not None
    assert copy.text == "Payload      = dict[str, int]\n"


def test_except_without_parentheses_becomes_a_union() -> None:
    copy = downlevel("try:\n    pass\nexcept ValueError, TypeError:\n    pass\n")
    assert copy is not None
    assert "except ValueError| TypeError:" in copy.text


def _vouched(text: str) -> bool:
    copy = downlevel(text)
    assert copy is not None
    return vouches(copy, ast.parse(copy.text))


VOUCHED = [
    "except ValueError, TypeError:",
    pytest.param(
        "except* ValueError, TypeError:",
        marks=pytest.mark.skipif(
            sys.version_info < (3, 11), reason="on 3.10 the copy rewrites the star as well"
        ),
    ),
    "except (OSError, EOFError), errors.Retry, KeyError:",
    "except A | B, C:",
    "except a, b | c:",
    "except ÄrgerError, ÜbelError:",
    "except errors['ä'].Timeout, Exception:",
]


def _try(clause: str) -> str:
    return f"try:\n    pass\n{clause}\n    pass\n"


@pytest.mark.parametrize("clause", VOUCHED)
def test_the_copy_vouches_for_except_lists_it_reads_item_by_item(clause: str) -> None:
    """Each ``|`` put for a comma joins two operands, so each item is an expression."""
    assert _vouched(_try(clause))


@pytest.mark.parametrize("clause", VOUCHED)
def test_libcst_agrees_with_every_list_the_copy_vouches_for(clause: str) -> None:
    verdict = inspect(_try(clause), detail=False)
    assert verdict is not None and verdict.valid


@pytest.mark.parametrize(
    "clause",
    [
        "except a if b, c else d:",  # reads as a if (b | c) else d: not a list of expressions
        "except not a, b:",  # valid, but the copy regroups it: libcst decides
    ],
)
def test_the_copy_does_not_vouch_for_lists_it_regroups(clause: str) -> None:
    assert not _vouched(_try(clause))


def test_libcst_rejects_the_list_the_copy_regroups_into_a_valid_one() -> None:
    """Why the copy parsing is not enough: ``a if b`` is not an expression."""
    assert ast.parse(_try("except a if b| c else d:"))
    verdict = inspect(_try("except a if b, c else d:"), detail=False)
    assert verdict is not None and not verdict.valid


def test_the_copy_does_not_vouch_when_it_also_rewrote_something_else() -> None:
    """Blanked type parameters are not read at all, so only libcst can judge them."""
    text = "def first[T](x):\n    try:\n        pass\n    except A, B:\n        pass\n"
    assert not _vouched(text)


@needs_old_python
def test_a_vouched_file_is_read_without_asking_libcst(monkeypatch: pytest.MonkeyPatch) -> None:
    def ask(text: str, detail: bool = True) -> None:
        raise AssertionError("libcst was asked")

    monkeypatch.setattr(source, "inspect", ask)
    parsed = parse_source("try:\n    pass\nexcept ValueError, KeyError:\n    pass\n", "jobs.py")
    statement = parsed.tree.body[0]
    assert isinstance(statement, ast.Try)
    assert isinstance(statement.handlers[0].type, ast.BinOp)


@needs_old_python
def test_a_list_the_copy_regroups_is_judged_by_libcst() -> None:
    with pytest.raises(SourceError) as info:
        parse_source("try:\n    pass\nexcept a if b, c else d:\n    pass\n", "bad.py")
    assert info.value.line == 3
    assert "newer" not in info.value.reason


def test_nothing_to_rewrite() -> None:
    assert downlevel("x = 1\n") is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12 parses PEP 695 natively")
def test_parse_source_reads_pep695_files() -> None:
    parsed = parse_source(TYPE_PARAMS, "worker.py")
    names = [node.name for node in parsed.tree.body if isinstance(node, ast.FunctionDef)]
    assert names == ["actor", "sync"]


@needs_old_python
def test_except_tuple_without_parentheses_is_read_as_a_tuple_of_types() -> None:
    from jobaudit.facts import extract

    text = "def job():\n    try:\n        work()\n    except ValueError, KeyError:\n        pass\n"
    parsed = parse_source(text, "jobs.py")
    facts = extract(parsed.tree, "jobs.py", "jobs", False, tuple(parsed.lines))
    (handler,) = facts.functions[0].handlers
    assert [getattr(t, "name", None) for t in handler.types] == [
        "builtins.ValueError",
        "builtins.KeyError",
    ]


def test_real_syntax_errors_still_fail_with_the_original_message() -> None:
    with pytest.raises(SourceError) as info:
        parse_source("def broken(:\n    pass\n", "bad.py")
    assert info.value.line == 1
    assert "syntax error" in info.value.reason
