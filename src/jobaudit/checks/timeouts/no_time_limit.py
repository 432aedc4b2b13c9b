"""JOB401 no-time-limit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.blocking import is_blocking
from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Job, Location

if TYPE_CHECKING:
    from jobaudit.project import Project

LONG = 3600.0
"""Above this a limit no longer protects a worker (Dramatiq's default is 10 minutes)."""
TIMEOUT_KWARGS = ("timeout", "socket_timeout", "connect_timeout")


class NoTimeLimit(Rule):
    code = "JOB401"
    name = "no-time-limit"
    level = "warning"
    gate = "timeouts"
    summary = "Nothing limits how long the job may run, so a hung call holds a worker forever."
    frameworks = ("celery", "rq", "huey", "taskiq", "django_tasks", "dramatiq", "arq", "temporal")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        hard, soft = job.policy.time_limit, job.policy.soft_time_limit
        if not hard.known or not soft.known:
            return
        framework = job.framework
        if framework == "celery" and hard.value is None and soft.value is None:
            yield self._celery(job, project)
        elif framework == "rq" and hard.value is None:
            yield self.finding(
                hard.location or job.location,
                f"{job.label()} runs without a timeout: {hard.source} is -1 (infinite)",
                job,
            )
        elif framework in {"huey", "taskiq"} and hard.value is None:
            what = "timeout=" if framework == "huey" else "a timeout label"
            yield self.finding(
                job.decorator_location or job.location,
                f"{job.label()} has no time limit: the decorator sets no {what} "
                f"({_title(framework)} has no default)",
                job,
            )
        elif framework == "django_tasks":
            yield self._django(job, project)
        elif (
            framework in {"dramatiq", "arq"} and isinstance(hard.value, float) and hard.value > LONG
        ):
            yield self.finding(
                hard.location or job.location,
                f"{job.label()} may run for {_duration(hard.value)} ({hard.source}): a limit that "
                "long does not protect the worker",
                job,
            )
        elif framework == "temporal":
            yield from self._temporal(job, project)

    def _celery(self, job: Job, project: Project) -> Finding:
        framework = project.framework("celery")
        related: tuple[Related, ...] = ()
        if isinstance(framework, Celery):
            related = tuple(
                Related(app.location, "no task_time_limit in this app's configuration")
                for app in framework.app_for(job)
            )
        return self.finding(
            job.decorator_location or job.location,
            f"{job.label()} has no time limit: no time_limit or soft_time_limit on the task, "
            "its base class, task_annotations, the app's task_time_limit setting or the worker "
            "command line",
            job,
            related,
        )

    def _django(self, job: Job, project: Project) -> Finding:
        unguarded = [
            site
            for function in project.body(job)
            for site in function.facts.calls
            if is_blocking(project.external_name(site.call.func))
            and not any(site.call.kwarg(name) is not None for name in TIMEOUT_KWARGS)
        ]
        finding = self.finding(
            job.decorator_location or job.location,
            f"{job.label()} has no time limit: django.tasks has no time-limit API, so every "
            "blocking call in it needs its own timeout",
            job,
        )
        if unguarded:
            return finding
        return Finding(**{**finding.__dict__, "level": "note"})

    def _temporal(self, job: Job, project: Project) -> Iterator[Finding]:
        for site in project.sites_of(job):
            call = site.site.call
            if call.kwarg("schedule_to_close_timeout") is None or call.star_kwargs:
                continue
            if call.kwarg("start_to_close_timeout") is not None:
                continue
            yield self.finding(
                Location(site.path, call.span),
                f"{job.label()} has only a schedule_to_close_timeout: one hung attempt can use "
                "the whole window and no retry happens; set start_to_close_timeout",
                job,
            )


def _title(framework: str) -> str:
    return {"huey": "Huey", "taskiq": "taskiq"}.get(framework, framework)


def _duration(value: float) -> str:
    if value >= 86400:
        return f"{value / 86400:g} days"
    if value >= 3600:
        return f"{value / 3600:g} h"
    return f"{value:g} s"
