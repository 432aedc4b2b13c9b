"""The words of a function's source, for rules that look for a name anywhere in its body.

Every function's words are kept for the whole run, and rules only ask whether a few
names are among them.  As frozensets they took a quarter of the facts' memory
(polar: 25 MiB for 11,000 functions, most of it empty hash slots); as one string of
words between spaces they take the words' own bytes, and pickle as one object.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Words:
    """A set of words (identifiers: no spaces) held as ``" a b c "``, in the order first seen."""

    __slots__ = ("_text",)

    def __init__(self, words: Iterable[str] = ()) -> None:
        self._text = f" {' '.join(dict.fromkeys(words))} "

    def __contains__(self, word: object) -> bool:
        if not isinstance(word, str) or not word or " " in word:
            return False
        return f" {word} " in self._text

    def __iter__(self) -> Iterator[str]:
        return iter(self._text.split())

    def any_of(self, words: Iterable[str]) -> bool:
        text = self._text
        return any(f" {word} " in text for word in words if word)

    def all_of(self, words: Iterable[str]) -> bool:
        text = self._text
        return all(f" {word} " in text for word in words if word)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Words) and self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"Words({self._text.split()!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return _restore, (self._text,)


def _restore(text: str) -> Words:
    """Unpickle without splitting and joining the words again."""
    words = Words.__new__(Words)
    words._text = text
    return words


__all__ = ["Words"]
