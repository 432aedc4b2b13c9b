"""Django 6 ``django.tasks`` and the ``django_tasks`` backport (§1.7).

The API has no retries and no time limits; what happens on failure or a crash
is up to the backend.  An unconfigured project runs every task inline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.frameworks.base import Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Resolved
from jobaudit.values import Unknown

if TYPE_CHECKING:
    from jobaudit.project import Project

NO_API = "django.tasks has no retry or time-limit API"


class DjangoTasks(Framework):
    name = "django_tasks"
    title = "django.tasks"
    decorators = frozenset({"django.tasks.task", "django_tasks.task"})
    enqueue_methods = frozenset({"enqueue", "aenqueue"})

    def policy(self, job: Job, project: Project) -> JobPolicy:
        return JobPolicy(
            max_attempts=Resolved(1, NO_API),
            backoff=Resolved(Backoff("none"), NO_API),
            retry_on=Resolved("none", NO_API),
            permanent=Resolved((), NO_API),
            time_limit=Resolved(None, NO_API),
            soft_time_limit=Resolved(None, NO_API),
            delivery=Resolved(Unknown("decided by the tasks backend"), "TASKS backend"),
            idempotency_guard=idempotency_guard(job, project),
        )
