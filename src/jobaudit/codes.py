"""Every rule's code, and which rules are in preview, without importing the rules.

Choosing the rules is the first thing a run does, and all that a warm ``check``
does before printing its stored result; importing the rule modules (and the
model they are written against) would be most of its time.  A test checks
this table against the rule classes of :data:`jobaudit.checks.ALL_RULES`.
"""

from __future__ import annotations

CODES: tuple[str, ...] = (
    *("JOB101", "JOB102", "JOB103", "JOB104", "JOB105", "JOB106"),
    *("JOB201", "JOB202", "JOB203", "JOB204", "JOB205", "JOB206"),
    *("JOB301", "JOB302", "JOB303", "JOB304", "JOB305", "JOB306", "JOB307"),
    *("JOB401", "JOB402", "JOB403", "JOB404", "JOB405", "JOB406", "JOB407", "JOB408"),
    *("JOB501", "JOB502", "JOB503", "JOB504", "JOB505", "JOB506"),
    *("JOB601", "JOB602", "JOB603", "JOB604", "JOB605", "JOB606", "JOB607", "JOB608", "JOB609"),
    *("JOB701", "JOB702"),
    "JOB901",
)
"""In the order of ``ALL_RULES``."""

PREVIEW: frozenset[str] = frozenset(
    {"JOB106", "JOB206", "JOB407", "JOB505", "JOB506", "JOB607", "JOB609", "JOB901"}
)
"""Rules that run only with ``preview`` on or when their full code is selected."""

UNUSED_NOQA = "JOB901"
"""The rule that audits ``# noqa`` comments (``--show-unused-noqa``)."""
