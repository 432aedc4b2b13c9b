"""JOB501 no-error-tracking: a framework whose failing jobs nobody is told about.

A job fails in a worker process, away from any request: unless something
reports it, the traceback is a line in the worker's log.  This rule looks, per
framework with jobs, for anything that would tell someone (``observability``
collects it once per project): a Sentry ``init`` whose integrations reach the
framework, the framework's own failure hook, an APM agent, or OpenTelemetry /
ddtrace instrumentation.  When the project's settings cannot be read whole,
something may be set up where jobaudit cannot see, so it stays silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks import FRAMEWORK_TITLES
from jobaudit.observability import TRACKING, gaps, observability

if TYPE_CHECKING:
    from jobaudit.project import Project

LOOKED_FOR = {
    "celery": "no task_failure handler, no Task base class with on_failure used by the tasks",
    "rq": "no Worker exception_handlers (or RQ_EXCEPTION_HANDLERS)",
    "dramatiq": "no middleware overriding after_process_message added to a broker",
    "huey": "no @huey.signal(SIGNAL_ERROR) handler",
    "arq": "no on_job_end or after_job_end in WorkerSettings",
    "taskiq": "no middleware with on_error",
    "django_tasks": "no task_finished receiver",
}
"""The framework's own failure hooks, as the message lists what was looked for."""
INSTRUMENTATION = {
    "celery": "no OpenTelemetry or ddtrace instrumentation",
    "rq": "no OpenTelemetry or ddtrace instrumentation",
    "dramatiq": "no OpenTelemetry or ddtrace instrumentation",
    "arq": "no OpenTelemetry instrumentation",
    "taskiq": "no OpenTelemetry middleware",
}


class NoErrorTracking(Rule):
    code = "JOB501"
    name = "no-error-tracking"
    level = "warning"
    scope = "project"
    gate = "observability"
    summary = "Nothing reports the failures of a framework's jobs (Sentry, failure hook, APM)."
    frameworks = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        sentry_found = observability(project).sentry
        for gap in gaps(project, TRACKING):
            sentry = "no sentry_sdk.init"
            if sentry_found:
                without = " without DramatiqIntegration and" if gap.framework == "dramatiq" else ""
                sentry = f"a sentry_sdk.init{without} with its logging route off"
            looked = [sentry, LOOKED_FOR[gap.framework]]
            if gap.framework in INSTRUMENTATION:
                looked.append(INSTRUMENTATION[gap.framework])
            title = FRAMEWORK_TITLES[gap.framework]
            yield self.finding(
                gap.where,
                f"No error tracking for the {gap.jobs} {title} {gap.noun}: "
                f"{', '.join(looked)} found; a failing job is only a line in the worker's log",
            )


__all__ = ["NoErrorTracking"]
