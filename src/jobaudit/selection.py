"""Which rules run: ``select`` / ``extend-select`` / ``ignore`` / ``preview``, as ruff does it.

Codes match by prefix (``JOB3`` selects the retry family).  When a rule is both
selected and ignored, the more specific entry wins, so ``select = ["JOB301"]``
with ``ignore = ["JOB3"]`` still runs JOB301; on a tie, ignore wins.  Preview rules run only when
``preview`` is on or their full code is selected.  The choice is made on the codes
(:mod:`jobaudit.codes`), so a warm ``check`` imports no rule.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

from jobaudit.codes import CODES, PREVIEW

if TYPE_CHECKING:
    from jobaudit.checks.base import Rule


def _best(code: str, entries: Sequence[str]) -> int:
    """Length of the longest entry that selects ``code`` (-1 when none does)."""
    matches = [len(entry) for entry in entries if code.startswith(entry.upper())]
    return max(matches, default=-1)


def selected_codes(
    select: Sequence[str] | None,
    ignore: Sequence[str] = (),
    extend_select: Sequence[str] = (),
    preview: bool = False,
) -> list[str]:
    """The codes of the rules that run, in code order."""
    chosen = list(select) if select is not None else ["JOB"]
    chosen += list(extend_select)
    full = {entry.upper() for entry in chosen}
    codes: list[str] = []
    for code in CODES:
        selected = _best(code, chosen)
        if selected < 0 or _best(code, ignore) >= selected:
            continue
        if code in PREVIEW and not preview and code not in full:
            continue
        codes.append(code)
    return codes


def select_rules(
    select: Sequence[str] | None,
    ignore: Sequence[str] = (),
    extend_select: Sequence[str] = (),
    preview: bool = False,
) -> list[Rule]:
    """The rules of :func:`selected_codes`, ready to run."""
    return rules_of(selected_codes(select, ignore, extend_select, preview))


def rules_of(codes: Collection[str]) -> list[Rule]:
    """The rules of ``codes``, in code order, ready to run."""
    from jobaudit.checks import ALL_RULES  # the rule modules: only a run that analyses needs them

    return [rule() for rule in ALL_RULES if rule.code in codes]


def known_codes() -> list[str]:
    return list(CODES)
