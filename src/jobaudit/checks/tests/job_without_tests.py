"""JOB701 job-without-tests: no test file refers to the job at all.

A job nobody tests is a job whose retries, timeouts and error handling have
only ever run in production.  The rule reads the project's test files (option
``test-paths``), which every other rule skips, through the shared index of
:mod:`jobaudit.job_tests`; a test counts when it imports the job, names it,
calls or enqueues it, or spells its dotted path or registered name in a
string (a ``patch`` target included).  When the scanned paths hold no test
file at all the rule is silent: ``jobaudit check src/`` cannot know about
tests kept beside ``src``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.job_tests import coverage_index

if TYPE_CHECKING:
    from jobaudit.project import Project

FRAMEWORKS = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks", "temporal")


class JobWithoutTests(Rule):
    code = "JOB701"
    name = "job-without-tests"
    level = "note"
    scope = "project"
    gate = "tests"
    summary = "No test file refers to the job: not by import, call, enqueue or registered name."
    frameworks = FRAMEWORKS

    def check_project(self, project: Project) -> Iterator[Finding]:
        jobs = project.reported_jobs()  # each finding is on its job's definition
        index = coverage_index(project)
        if not index.files:
            return
        count = len(index.files)
        looked = f"{count} test file{'s' if count != 1 else ''} matching test-paths"
        for job in jobs:
            if index.of(job) is None:
                message = f"{job.label()} is not referred to by any test (looked in {looked})"
                yield self.finding(job.location, message, job)
