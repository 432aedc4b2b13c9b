"""``Lines`` behaves as the list of lines it replaces, and survives the facts cache."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobaudit.lines import Lines

_LINE = st.text(st.characters(blacklist_characters="\n"), max_size=12)
_LINES = st.lists(_LINE, max_size=8)
_BOUND = st.one_of(st.none(), st.integers(-10, 10))


@given(items=_LINES)
def test_length_items_and_iteration_are_the_lists(items: list[str]) -> None:
    lines = Lines(items)
    assert len(lines) == len(items)
    assert list(lines) == items
    assert [lines[i] for i in range(len(items))] == items
    assert [lines[-i] for i in range(1, len(items) + 1)] == [
        items[-i] for i in range(1, len(items) + 1)
    ]


@given(items=_LINES, start=_BOUND, stop=_BOUND, step=st.sampled_from([None, 1, 2, -1, -3]))
def test_slices_are_the_lists(
    items: list[str], start: int | None, stop: int | None, step: int | None
) -> None:
    assert Lines(items)[start:stop:step] == items[start:stop:step]


@given(items=_LINES, first=st.integers(-2, 10), last=st.integers(-2, 10))
def test_block_is_the_joined_slice_it_replaces(items: list[str], first: int, last: int) -> None:
    expected = "\n".join(items[max(first - 1, 0) : max(last, 0)])
    assert Lines(items).block(first, last) == expected


@given(items=_LINES)
def test_pickling_keeps_every_line(items: list[str]) -> None:
    lines = Lines(items)
    copy = pickle.loads(pickle.dumps(lines))
    assert copy == lines
    assert list(copy) == items
    assert len(copy) == len(items)


def test_no_lines_and_one_empty_line_differ() -> None:
    """Both join to ``""``: the count of lines tells an empty file from a blank line."""
    assert len(Lines([])) == 0
    assert list(Lines([])) == []
    assert list(Lines([""])) == [""]
    assert Lines([]) != Lines([""])
    assert hash(Lines(["a", "b"])) == hash(Lines(["a", "b"]))


def test_an_index_past_either_end_raises() -> None:
    lines = Lines(["a", "b"])
    with pytest.raises(IndexError):
        lines[2]
    with pytest.raises(IndexError):
        lines[-3]


def test_text_joins_with_newlines_whatever_the_file_used() -> None:
    from jobaudit.source import parse_source

    parsed = parse_source("a = 1\r\nb = 2\rc = 3\n", "m.py")
    assert Lines(parsed.lines).text == "a = 1\nb = 2\nc = 3"
