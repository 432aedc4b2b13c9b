"""Which rules run: ``select`` / ``extend-select`` / ``ignore`` / ``preview``, as ruff does it.

Codes match by prefix (``JOB3`` selects the retry family).  When a rule is both
selected and ignored, the more specific entry wins, so ``select = ["JOB301"]``
with ``ignore = ["JOB3"]`` still runs JOB301; on a tie, ignore wins.  Preview rules run only when
``preview`` is on or their full code is selected.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobaudit.checks import ALL_RULES, Rule


def _best(code: str, entries: Sequence[str]) -> int:
    """Length of the longest entry that selects ``code`` (-1 when none does)."""
    matches = [len(entry) for entry in entries if code.startswith(entry.upper())]
    return max(matches, default=-1)


def select_rules(
    select: Sequence[str] | None,
    ignore: Sequence[str] = (),
    extend_select: Sequence[str] = (),
    preview: bool = False,
) -> list[Rule]:
    chosen = list(select) if select is not None else ["JOB"]
    chosen += list(extend_select)
    rules: list[Rule] = []
    for rule in ALL_RULES:
        selected = _best(rule.code, chosen)
        if selected < 0 or _best(rule.code, ignore) >= selected:
            continue
        if rule.preview and not preview and rule.code not in {c.upper() for c in chosen}:
            continue
        rules.append(rule())
    return rules


def known_codes() -> list[str]:
    return [rule.code for rule in ALL_RULES]
