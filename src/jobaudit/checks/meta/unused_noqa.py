"""JOB901 unused-noqa: ``# noqa`` comments that no longer suppress anything.

A suppression outlives the problem it silenced: the retry limit gets fixed,
the comment stays, and the next real finding on that line is hidden without
anyone deciding so.  Whether a comment is used can only be known after every
rule has run, so this rule does not look at jobs itself: the engine hands it
the findings of *all* registered rules (selected or not) before suppression,
and a comment counts as used when any of them lands on its line with a code
it names.  Judging against every rule keeps it precise: a ``# noqa: JOB302``
for a rule the configuration turns off is still doing its job there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.model import Job, Location

if TYPE_CHECKING:
    from jobaudit.facts import FileFacts
    from jobaudit.project import Project

_DIRECTIVE = re.compile(r"#\s*noqa\b(?::\s*[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)?", re.IGNORECASE)


class UnusedNoqa(Rule):
    code = "JOB901"
    name = "unused-noqa"
    level = "note"
    preview = True
    scope = "project"
    summary = "A # noqa comment suppresses no jobaudit finding, so it would hide the next one."

    def check_suppressions(
        self, project: Project, findings: Sequence[Finding], known: Sequence[str]
    ) -> Iterator[Finding]:
        """The ``# noqa`` comments of the project that none of ``findings`` uses.

        ``findings`` are every rule's findings before suppression; ``known``
        the registered rule codes.  Comments naming only other tools' codes
        (``# noqa: E501``) are left alone, and a blanket ``# noqa`` only counts
        on the lines of a job, where it is most likely meant for jobaudit.
        """
        used: dict[tuple[str, int], set[str]] = {}
        for finding in findings:
            used.setdefault((finding.path, finding.line), set()).add(finding.code)
        for facts in project.resolver.facts_by_path.values():
            if not facts.noqa:
                continue
            jobs = [job for job in project.jobs if job.path == facts.path]
            for line, codes in facts.noqa:
                found = used.get((facts.path, line), set())
                job = _job_at(jobs, line)
                if codes is None:
                    if job is not None and not found:
                        yield self._finding(facts, line, job, "Blanket `# noqa`", _BLANKET)
                    continue
                ours = sorted(code for code in codes if code.startswith("JOB"))
                unused = [c for c in ours if not any(f.startswith(c) for f in found)]
                if unused:
                    yield self._finding(facts, line, job, _listing(unused), _why(unused, known))

    def _finding(
        self, facts: FileFacts, line: int, job: Job | None, what: str, why: str
    ) -> Finding:
        text = facts.lines[line - 1] if 0 < line <= len(facts.lines) else ""
        match = _DIRECTIVE.search(text)
        start, end = (match.start(), match.end()) if match else (0, len(text))
        span = (line, len(text[:start].encode()), line, len(text[:end].encode()))
        where = f" in {job.label()}" if job is not None else ""
        verb = "suppress" if what.startswith("`# noqa` codes") else "suppresses"
        message = f"{what}{where} {verb} nothing: {why}"
        return self.finding(Location(facts.path, span), message, job)


def _job_at(jobs: list[Job], line: int) -> Job | None:
    """The job whose definition (decorators included) holds ``line``."""
    for job in jobs:
        span = job.location.span
        starts = [span[0], *(s[0] for s in job.function.decorator_spans)]
        if job.decorator_location is not None:
            starts.append(job.decorator_location.span[0])
        if min(starts) <= line <= max(span[2], job.function.end_line):
            return job
    return None


_BLANKET = "no jobaudit finding is on this line; name the codes it is for, or remove it"


def _listing(codes: list[str]) -> str:
    if len(codes) == 1:
        return f"`# noqa: {codes[0]}`"
    return f"`# noqa` codes {', '.join(codes)}"


def _why(codes: list[str], known: Sequence[str]) -> str:
    unknown = [c for c in codes if not any(k.startswith(c) for k in known)]
    quiet = [c for c in codes if c not in unknown]
    reasons = []
    if quiet:
        verb = "reports" if len(quiet) == 1 else "report"
        reasons.append(f"{', '.join(quiet)} {verb} nothing on this line")
    if unknown:
        verb = "is" if len(unknown) == 1 else "are"
        reasons.append(f"{', '.join(unknown)} {verb} not a jobaudit rule")
    return "; ".join(reasons)
