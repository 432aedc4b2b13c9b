"""Facts pickle as constructor calls (``values.Record``), and come back equal."""

from __future__ import annotations

import dataclasses
import inspect
import pickle
from pathlib import Path

import pytest

from jobaudit import facts, values
from jobaudit.facts import FileFacts
from jobaudit.files import SourceFile
from jobaudit.lines import Lines
from jobaudit.parallel import analyse
from jobaudit.source import parse_source
from jobaudit.values import Record

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
RECORDS = sorted(
    (
        member
        for module in (facts, values)
        for _, member in inspect.getmembers(module, inspect.isclass)
        if issubclass(member, Record) and member is not Record
    ),
    key=lambda cls: cls.__name__,
)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda cls: cls.__name__)
def test_every_field_is_a_positional_argument(cls: type[Record]) -> None:
    assert dataclasses.is_dataclass(cls)
    assert cls.__match_args__ == tuple(field.name for field in dataclasses.fields(cls))
    assert cls.__reduce__ is Record.__reduce__


def test_the_facts_of_every_fixture_come_back_equal() -> None:
    found = 0
    for path in sorted(FIXTURES.rglob("*.py")):
        result = analyse((SourceFile(path.name, path), None, ("fixture", False)))
        if isinstance(result, FileFacts):
            found += 1
            assert pickle.loads(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)) == result
    assert found > 100


def test_each_keyword_keeps_where_it_was_written() -> None:
    """``kwarg_spans`` follow ``kwargs`` in order; a ``**mapping`` among them takes no place."""
    text = "send.apply_async(\n    args,\n    countdown=5,\n    **extra,\n    queue='mail',\n)\n"
    parsed = parse_source(text, "jobs.py")
    found = facts.extract(parsed.tree, "jobs.py", "jobs", False, Lines(parsed.lines))
    (site,) = found.calls
    assert site.call.kwarg_span("countdown") == (3, 4, 3, 15)
    assert site.call.kwarg_span("queue") == (5, 4, 5, 16)
    assert site.call.kwarg_span("retry") is None
