"""The finding a rule yields: all that a reporter, a baseline or a stored result needs.

Kept apart from the rules (``jobaudit.checks``) so that printing a stored
result, the warm path of ``check``, imports no rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jobaudit.fix.model import Fix
from jobaudit.model import Location

LEVELS = ("error", "warning", "note")


@dataclass(frozen=True, order=True)
class Related:
    """A second place that matters for a finding (the setting that causes it...)."""

    location: Location
    message: str


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    column: int
    """0-based UTF-8 byte column, as ast gives it; reporters convert."""
    end_line: int
    end_column: int
    code: str
    name: str
    level: str
    message: str
    job: str | None = None
    """The job's qualified name (``pkg.tasks.send_receipt``)."""
    related: tuple[Related, ...] = field(default=(), compare=False)
    fix: Fix | None = field(default=None, compare=False)
    """How to fix it, as data; ``jobaudit.fix`` turns it into source edits."""

    @property
    def location(self) -> Location:
        return Location(self.path, (self.line, self.column, self.end_line, self.end_column))
