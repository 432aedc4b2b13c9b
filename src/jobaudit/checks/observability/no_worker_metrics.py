"""JOB504 no-worker-metrics: nothing counts the jobs a framework runs, fails and retries.

Without metrics, a queue that backs up or a job that starts failing at ten
times its usual rate is seen only when users complain.  Each framework has a
standard way to export them (Dramatiq's ``Prometheus`` middleware, taskiq's
``PrometheusMiddleware``, Celery's task events for Flower and exporters,
OpenTelemetry); a project may also record its own from a hook.  Facts cannot
follow a counter into a hook's body, so "a metrics client imported by the
module that defines a hook (or by a project module it imports)" stands for
it, which errs towards silence.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks import FRAMEWORK_TITLES
from jobaudit.observability import METRICS, gaps

if TYPE_CHECKING:
    from jobaudit.project import Project

LOOKED_FOR = {
    "celery": "no task events (worker_send_task_events or worker -E), no OpenTelemetry "
    "CeleryInstrumentor",
    "rq": "no rq-exporter",
    "dramatiq": "no Prometheus middleware (not a default since Dramatiq 2.0)",
    "huey": "no huey.contrib.stats",
    "arq": "no arq-prometheus",
    "taskiq": "no PrometheusMiddleware or OpenTelemetry middleware",
    "django_tasks": "no metrics in a task signal receiver",
}
HOOKS = {
    "celery": "a signal handler or Task base class",
    "rq": "a Worker, Job or Queue subclass",
    "dramatiq": "a middleware",
    "huey": "a signal handler",
    "arq": "WorkerSettings hooks",
    "taskiq": "a middleware",
    "django_tasks": "a task signal receiver",
}


class NoWorkerMetrics(Rule):
    code = "JOB504"
    name = "no-worker-metrics"
    level = "note"
    scope = "project"
    gate = "observability"
    summary = "Nothing exports metrics about a framework's jobs (Prometheus, task events, OTel)."
    frameworks = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        for gap in gaps(project, METRICS):
            yield self.finding(
                gap.where,
                f"No worker metrics for the {gap.jobs} {FRAMEWORK_TITLES[gap.framework]} "
                f"{gap.noun}: {LOOKED_FOR[gap.framework]}, no prometheus_client, statsd, "
                f"datadog or OpenTelemetry metrics in {HOOKS[gap.framework]} found",
            )


__all__ = ["NoWorkerMetrics"]
