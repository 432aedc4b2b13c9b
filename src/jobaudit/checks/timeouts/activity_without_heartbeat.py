"""JOB407 activity-without-heartbeat: a long Temporal activity the server cannot watch.

Temporal learns that an activity attempt is still alive only from its
heartbeats.  Without ``activity.heartbeat()`` and a ``heartbeat_timeout``, a
worker that dies mid-attempt is noticed only when ``start_to_close_timeout``
expires, and a cancellation request never reaches the activity (it is
delivered in the reply to a heartbeat).  For an activity that loops over
slow calls or sleeps, under a start-to-close timeout of more than a few
minutes, that is a long wait for every lost attempt.

The timeout is read at the workflow calls of the activity; calls that
disagree or cannot be resolved keep the rule silent.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.blocking import is_blocking
from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks.retry_helpers import said_of_job
from jobaudit.frameworks.temporal import CALLS
from jobaudit.model import Job
from jobaudit.symbols import seconds
from jobaudit.values import dotted

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

LONG_ATTEMPT = 300.0
"""Up to 5 minutes, waiting out a lost attempt costs little; above it, heartbeats pay off."""
SLEEPS = frozenset({"time.sleep", "asyncio.sleep"})
LONG_CALLS = ("subprocess.",)


class ActivityWithoutHeartbeat(Rule):
    code = "JOB407"
    name = "activity-without-heartbeat"
    level = "warning"
    preview = True
    gate = "timeouts"
    summary = "A long-running Temporal activity never heartbeats, so lost attempts go unnoticed."
    frameworks = ("temporal",)

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework != "temporal":
            return
        attempt = _attempt_timeout(job, project)
        if attempt is None or attempt[0] <= LONG_ATTEMPT:
            return
        body = project.body(job)
        if any(_heartbeats(function) for function in body):
            return
        sign = next((s for f in body if (s := _long_running(job, f, project)) is not None), None)
        if sign is None:
            return
        limit, name = attempt
        yield self.finding(
            job.decorator_location or job.location,
            f"{job.label()} {sign}, with a {_duration(limit)} {name}, and never calls "
            "activity.heartbeat(): a lost attempt is noticed only when that timeout expires, "
            "and a cancellation never reaches it",
            job,
        )


def _attempt_timeout(job: Job, project: Project) -> tuple[float, str] | None:
    """The longest time one attempt may take at the activity's workflow calls, and its name.

    None when a call passes ``heartbeat_timeout`` (the caller expects
    heartbeats), when there is no call, or when a timeout cannot be resolved.
    """
    sites = [site for site in project.sites_of(job, tests=False) if site.method in CALLS]
    if not sites:
        return None
    longest: tuple[float, str] = (0.0, "")
    for site in sites:
        call = site.site.call
        if call.star_kwargs or call.kwarg("heartbeat_timeout") is not None:
            return None
        name = next(
            (n for n in ("start_to_close_timeout", "schedule_to_close_timeout") if call.kwarg(n)),
            None,
        )
        if name is None:
            return None
        value = seconds(project.resolver.evaluate(call.kwarg(name)))
        if not isinstance(value, float):
            return None
        longest = max(longest, (value, name))
    return longest


def _heartbeats(function: BodyFunction) -> bool:
    """The function heartbeats, or is wrapped by something that does (``@auto_heartbeat``)."""
    if "heartbeat" in function.facts.identifiers:
        return True
    return any("heartbeat" in (dotted(d) or "").lower() for d in function.facts.decorators)


def _long_running(job: Job, function: BodyFunction, project: Project) -> str | None:
    """What makes one function of the body long-running, said of the activity."""
    facts = function.facts
    for site in facts.calls:
        name = project.external_name(site.call.func) or ""
        line = site.call.span[0]
        if name in SLEEPS:
            return said_of_job(function, f"sleeps ({name}(), line {line})")
        if name.startswith(LONG_CALLS):
            return said_of_job(function, f"runs {name}() (line {line})")
        slow = (
            site.awaited or is_blocking(name) or project.callee(site.call, facts, job) is not None
        )
        if site.in_loop and slow:
            return said_of_job(function, f"loops over slow calls (line {line})")
    return None


def _duration(value: float) -> str:
    if math.isinf(value):
        return "unlimited"
    for size, unit in ((3600, "hour"), (60, "minute")):
        if value >= size:
            count = value / size
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    return f"{value:g} s"
