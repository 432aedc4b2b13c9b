"""JOB403 soft-limit-cannot-fire: a Celery soft time limit that never gets its turn.

Celery's soft limit raises ``SoftTimeLimitExceeded`` inside the task so it can
clean up before the hard limit kills the process.  The pool checks the hard
limit first (billiard ``TimeoutHandler``), so a soft limit equal to or above
the hard one never fires; when both are task attributes and the soft one is
larger, ``Task.apply_async`` refuses to send the task at all.  A limit of ``0``
on the task is not "no change": Celery passes it to the pool, which reads 0 as
"no limit" instead of falling back to the app's ``task_time_limit``.

The effective values come from the task's policy (task option, base class,
``task_annotations``, app settings, worker command line).  A pair that comes
from shared configuration is reported once, at the soft limit's place, naming
every task it affects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.common import Problem, by_place
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import jobs_label
from jobaudit.model import Job, Location, Resolved
from jobaudit.symbols import seconds

if TYPE_CHECKING:
    from jobaudit.discovery import EnqueueSite
    from jobaudit.project import Project


class SoftLimitCannotFire(Rule):
    code = "JOB403"
    name = "soft-limit-cannot-fire"
    level = "warning"
    scope = "job / config"
    gate = "timeouts"
    summary = "A Celery soft time limit is not below the hard one, or a limit of 0 turns one off."
    frameworks = ("celery",)

    def check_project(self, project: Project) -> Iterator[Finding]:
        celery = project.framework("celery")
        if not isinstance(celery, Celery):
            return
        found = by_place(project.jobs_of("celery"), lambda job: _problems(job, celery, project))
        for location, text, related, jobs in found:
            yield self.finding(location, f"{jobs_label(jobs)}: {text}", jobs[0], related)


def _problems(job: Job, celery: Celery, project: Project) -> list[Problem]:
    assert job.policy is not None
    hard, soft = job.policy.time_limit, job.policy.soft_time_limit
    found = [problem] if (problem := _zero(job, celery, hard)) is not None else []
    ordered = _soft_not_below(job, soft, hard)
    if ordered is not None:
        found.append(ordered)
    found.extend(
        problem
        for site in project.sites_of(job, tests=False)
        if (problem := _at_call(job, site, project)) is not None
    )
    return found


def _zero(job: Job, celery: Celery, limit: Resolved) -> Problem | None:
    """``time_limit=0`` on the task: the pool reads it as "none", not as "the app's"."""
    if limit.value != 0 or limit.location is None or not _on_task(job, limit):
        return None
    setting = "task_time_limit"
    app_limit = celery.setting(job, setting, None)
    value = seconds(app_limit.value)  # type: ignore[arg-type]
    if not isinstance(value, float) or value <= 0:
        return None
    related = (
        (Related(app_limit.location, f"the app's {setting} is set here"),)
        if app_limit.location is not None
        else ()
    )
    return (
        limit.location,
        f"time_limit=0 ({limit.source}) turns off the app's {value:g} s {setting} "
        f"({app_limit.source}) instead of keeping it: the task runs with no hard limit",
        related,
    )


def _soft_not_below(job: Job, soft: Resolved, hard: Resolved) -> Problem | None:
    if not isinstance(soft.value, float) or not isinstance(hard.value, float):
        return None
    if soft.value <= 0 or hard.value <= 0 or soft.value < hard.value:
        return None
    both_on_task = _on_task(job, soft) and _on_task(job, hard)
    values = (
        f"soft_time_limit {soft.value:g} s ({soft.source}) is "
        f"{'equal to' if soft.value == hard.value else 'above'} "
        f"time_limit {hard.value:g} s ({hard.source})"
    )
    if soft.value > hard.value and both_on_task:
        consequence = "Task.apply_async() raises ValueError, so the task cannot be sent at all"
    else:
        consequence = (
            "the hard limit kills the task first, so SoftTimeLimitExceeded is never raised "
            "and the task gets no chance to clean up"
        )
    if _on_task(job, soft) and soft.location is not None:
        where, other = soft.location, hard
    elif _on_task(job, hard) and hard.location is not None:
        where, other = hard.location, soft
    elif soft.location is not None:
        where, other = soft.location, hard
    else:
        return None
    related = (
        (Related(other.location, f"{other.source} sets the other limit here"),)
        if other.location is not None and other.location != where
        else ()
    )
    return where, f"{values}: {consequence}", related


def _at_call(job: Job, site: EnqueueSite, project: Project) -> Problem | None:
    """``apply_async(soft_time_limit=..., time_limit=...)`` with the soft one not below."""
    call = site.site.call
    if site.method != "apply_async":
        return None
    soft_value, hard_value = call.kwarg("soft_time_limit"), call.kwarg("time_limit")
    if soft_value is None or hard_value is None:
        return None
    soft = seconds(project.resolver.evaluate(soft_value))
    hard = seconds(project.resolver.evaluate(hard_value))
    if not isinstance(soft, float) or not isinstance(hard, float):
        return None
    if soft <= 0 or hard <= 0 or soft < hard:
        return None
    location = Location(site.path, call.kwarg_span("soft_time_limit") or call.span)
    return (
        location,
        f"apply_async(soft_time_limit={soft:g}, time_limit={hard:g}): the hard limit kills the "
        "task first, so SoftTimeLimitExceeded is never raised and the task gets no chance to "
        "clean up",
        (),
    )


def _on_task(job: Job, limit: Resolved) -> bool:
    """The value is a task attribute (option, base class, annotation), not an app setting.

    ``Task.apply_async`` compares task attributes only; app settings are
    applied by the worker.
    """
    if limit.source.startswith(("base class", "task_annotations")):
        return True
    return any(
        option.location == limit.location and option.location is not None
        for option in job.options.values()
    )
