"""The rule base class and the finding it produces.

A rule owns its code, name, level, default and scope, and yields findings from
the project model; it never parses or reads files itself.  ``check_job`` runs
once per job, ``check_project`` once per run (call-site and project rules).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from jobaudit.findings import LEVELS, Finding, Related
from jobaudit.fix.model import Fix
from jobaudit.model import Job, Location

if TYPE_CHECKING:
    from jobaudit.project import Project

__all__ = ["LEVELS", "Finding", "Related", "Rule"]
"""What a rule module needs: its base class and the finding it yields."""


class Rule:
    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    level: ClassVar[str] = "warning"
    preview: ClassVar[bool] = False
    scope: ClassVar[str] = "job"
    """``job``, ``call site`` or ``project``; project rules do not run in the flake8 plugin."""
    gate: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    """One sentence for ``jobaudit rules`` and SARIF ``shortDescription``."""
    frameworks: ClassVar[tuple[str, ...]] = ()
    """Frameworks the trigger names (documentation and the fixture checks)."""
    fixable: ClassVar[bool] = False
    """Some of its findings carry a fix; its page then explains the fix's safety."""

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        return iter(())

    def check_project(self, project: Project) -> Iterator[Finding]:
        return iter(())

    def finding(
        self,
        location: Location,
        message: str,
        job: Job | None = None,
        related: tuple[Related, ...] = (),
        fix: Fix | None = None,
    ) -> Finding:
        line, column, end_line, end_column = location.span
        return Finding(
            path=location.path,
            line=line,
            column=column,
            end_line=end_line,
            end_column=end_column,
            code=self.code,
            name=self.name,
            level=self.level,
            message=message,
            job=job.qualname if job is not None else None,
            related=related,
            fix=fix,
        )
