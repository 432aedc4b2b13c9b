"""A file's source lines, held as one string.

The facts keep the lines of every analysed file: findings quote them, fingerprints
and column conversion read them, and several rules search a function's text.  A
string per line costs more in object headers than the text itself (on polar, 22 MiB
for 1,100 files); one string and the offset each line starts at cost the text and
four bytes a line.  The facts cache and ``-j`` workers pickle two objects a file
instead of one a line, and a function's text is one slice, not a join.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from typing import overload


class Lines(Sequence[str]):
    """Lines without their line breaks, numbered from 0 as a sequence."""

    __slots__ = ("_starts", "text")

    def __init__(self, lines: Iterable[str] = ()) -> None:
        items = list(lines)
        self.text = "\n".join(items)
        """The lines joined with ``\\n`` (whatever breaks the file used)."""
        self._starts = (
            array("I", accumulate((len(line) + 1 for line in items[:-1]), initial=0))
            if items
            else array("I")
        )

    def block(self, first: int, last: int) -> str:
        """Lines ``first`` to ``last`` (numbered from 1, both included, numbers past either
        end clamped) joined with ``\\n``: one slice of the text, where a join of the lines
        would build every line first."""
        start, stop = max(first - 1, 0), min(last, len(self._starts))
        if start >= stop:
            return ""
        return self.text[self._starts[start] : self._end(stop - 1)]

    def _end(self, index: int) -> int:
        following = index + 1
        return self._starts[following] - 1 if following < len(self._starts) else len(self.text)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            chosen = range(len(self._starts))[index]
            if chosen.step != 1:
                return [self[i] for i in chosen]
            if not chosen:
                return []
            return self.block(chosen.start + 1, chosen.stop).split("\n")
        if index < 0:
            index += len(self._starts)
        if not 0 <= index < len(self._starts):
            raise IndexError("line index out of range")
        return self.text[self._starts[index] : self._end(index)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.text.split("\n") if self._starts else ())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Lines):
            return NotImplemented
        return len(self) == len(other) and self.text == other.text

    def __hash__(self) -> int:
        return hash((len(self._starts), self.text))

    def __repr__(self) -> str:
        return f"<Lines: {len(self._starts)}>"

    def __reduce__(self) -> tuple[object, ...]:
        return _restore, (self.text, self._starts)


def _restore(text: str, starts: array[int]) -> Lines:
    """Unpickle without splitting the text again."""
    lines = Lines.__new__(Lines)
    lines.text = text
    lines._starts = starts
    return lines


__all__ = ["Lines"]
