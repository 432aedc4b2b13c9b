"""Rule pages: the markdown in ``rules/``, shipped in the wheel as ``jobaudit/_rules``.

An editable install has no ``_rules`` folder, so the source tree's ``rules/`` is
the fallback; ``jobaudit rule`` and SARIF ``help`` read the same text.
"""

from __future__ import annotations

from pathlib import Path

from jobaudit.checks.base import Rule

_PACKAGED = Path(__file__).parent / "_rules"
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "rules"


def rules_dir() -> Path:
    return _PACKAGED if _PACKAGED.is_dir() else _SOURCE_TREE


def page_path(rule: type[Rule]) -> Path:
    return rules_dir() / f"{rule.code}-{rule.name}.md"


def rule_page(rule: type[Rule]) -> str:
    """The rule's page, or a short summary when the page is missing from this install."""
    path = page_path(rule)
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return f"# {rule.code} {rule.name}\n\n{rule.summary}\n"
