"""Newer-Python syntax is read through a down-levelled copy that keeps positions."""

from __future__ import annotations

import ast
import sys

import pytest

from jobaudit.downlevel import downlevel
from jobaudit.lines import Lines
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
    facts = extract(parsed.tree, "jobs.py", "jobs", False, Lines(parsed.lines))
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
