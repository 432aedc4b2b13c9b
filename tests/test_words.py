"""``Words`` answers as the set of words it replaces, and survives the facts cache."""

from __future__ import annotations

import pickle

from hypothesis import given
from hypothesis import strategies as st

from jobaudit.facts import extract
from jobaudit.lines import Lines
from jobaudit.source import parse_source
from jobaudit.words import Words

_WORD = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True)
_WORDS = st.lists(_WORD, max_size=8)


@given(words=_WORDS, asked=_WORDS)
def test_membership_and_iteration_are_the_sets(words: list[str], asked: list[str]) -> None:
    held = Words(words)
    assert sorted(held) == sorted(set(words))
    for word in [*asked, *words]:
        assert (word in held) is (word in set(words))
    assert held.any_of(asked) is bool(set(asked) & set(words))
    assert held.all_of(asked) is (set(asked) <= set(words))


@given(words=_WORDS)
def test_pickling_keeps_the_words(words: list[str]) -> None:
    held = Words(words)
    copy = pickle.loads(pickle.dumps(held))
    assert copy == held
    assert sorted(copy) == sorted(set(words))


def test_a_part_of_a_word_or_of_two_words_is_not_a_word() -> None:
    held = Words(["retry_count", "max", "retries"])
    assert "retry" not in held
    assert "count" not in held
    assert "max retries" not in held
    assert "" not in held
    assert "" not in Words()
    assert list(Words()) == []


def test_a_function_holds_the_words_of_its_own_lines() -> None:
    text = "def job(attempt):\n    return attempt + 1  # retries\n\n\ndef other():\n    pass\n"
    parsed = parse_source(text, "jobs.py")
    facts = extract(parsed.tree, "jobs.py", "jobs", False, Lines(parsed.lines))
    job, other = facts.functions
    assert sorted(job.identifiers) == ["attempt", "def", "job", "retries", "return"]
    assert "attempt" not in other.identifiers
