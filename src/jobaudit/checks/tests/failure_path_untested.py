"""JOB702 failure-path-untested: the job has tests, and none of them makes it fail.

Retries, dead-lettering and idempotency are the parts of a job that only run
when something goes wrong, so a suite that only ever sees the job succeed
leaves them untried.  A test exercises a failure when it makes something
raise (``side_effect=`` an exception, a fake that raises), expects an
exception (``pytest.raises``, ``assertRaises``), looks at retries or the
framework's failure state, runs the job twice, or is named for it
(``test_sync_retries_on_timeout``).  Fixtures, ``setUp`` and the test helpers
a test calls count as part of it.  Jobs without any test are JOB701's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.tests.job_without_tests import FRAMEWORKS
from jobaudit.job_tests import coverage_index

if TYPE_CHECKING:
    from jobaudit.project import Project

_SHOWN = 2


class FailurePathUntested(Rule):
    code = "JOB702"
    name = "failure-path-untested"
    level = "note"
    scope = "project"
    gate = "tests"
    summary = "The job's tests never make it fail, retry or run twice."
    frameworks = FRAMEWORKS

    def check_project(self, project: Project) -> Iterator[Finding]:
        jobs = project.reported_jobs()  # each finding is on its job's definition
        index = coverage_index(project)
        for job in jobs:
            tests = index.of(job)
            if tests is None or tests.failures:
                continue
            names = sorted({unit.label for unit in tests.units})
            shown = ", ".join(names[:_SHOWN])
            more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
            noun = "test" if len(names) == 1 else "tests"
            message = (
                f"{job.label()} is tested ({len(names)} {noun}: {shown}{more}) but no test "
                "exercises a failure: no side_effect raising an exception, no pytest.raises or "
                "assertRaises, no retry assertion, no second run"
            )
            yield self.finding(job.location, message, job)
