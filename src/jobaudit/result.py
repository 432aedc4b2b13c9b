"""What a run gives the reporters: findings, notices, jobs and, unless reused, the model.

Kept apart from :mod:`jobaudit.engine` so that printing a stored result (the
warm path of ``check``) imports none of the analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobaudit.checks.base import Rule
    from jobaudit.findings import Finding
    from jobaudit.model import Job
    from jobaudit.notices import Notice
    from jobaudit.project import Project


@dataclass
class Result:
    root: Path
    files: int
    jobs: list[Job]
    findings: list[Finding]
    notices: list[Notice]
    project: Project | None
    """None when the whole result came from the cache (:func:`run` with ``reuse``)."""
    rules: list[Rule]
    """The rules run; empty when a stored result is printed without running them (the warm
    ``check``), which keeps their ``codes``."""
    codes: list[str] = field(default_factory=list)
    """The codes of the rules run."""
    suppressed: int = 0
    internal_errors: list[Notice] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    """Each analysed file's absolute path by its relative path (git and baselines need both)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds per phase of the run (``--timings``)."""
    parsed: int = 0
    """How many files were parsed (or taken from the cache); the others could not matter."""
    job_count: int = 0
    sources: dict[str, Sequence[str]] = field(default_factory=dict)
    """A reused result's source lines of the files with findings (reporters quote them)."""

    @property
    def model(self) -> Project:
        """The project model, for what reads more than the findings (reports, ``--diff``)."""
        if self.project is None:
            raise LookupError("a result reused from the cache has no project model")
        return self.project

    def lines(self, path: str) -> Sequence[str]:
        """The source lines of an analysed file (empty when it was not parsed)."""
        if self.project is None:
            return self.sources.get(path, ())
        facts = self.project.resolver.facts_by_path.get(path)
        return facts.lines if facts is not None else ()
