"""JOB404 blocking-call-without-timeout: a job waits on a client that may never answer.

A job's own I/O timeouts are the first defence against a hung worker: Celery's
and Dramatiq's docs say time limits are the safety net for the calls that have
none.  This rule reads the job's body (the job and the project functions it
calls, two calls deep) for the clients that wait forever by default —
``requests`` and its sessions, ``urllib``, ``http.client``, ``smtplib``,
``socket``, ``subprocess``, older ``redis-py``, psycopg — and for the explicit
``None`` that turns off the default of ``httpx`` and ``aiohttp``.  Knowledge of
the clients lives in ``jobaudit.clients``; the finding is at the call, once,
naming every job that reaches it.

ruff S113 and bandit B113 report the same ``requests`` calls anywhere; this
rule is limited to job bodies, where a hang holds a worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.clients import bounded, network_await, untimed
from jobaudit.fix.model import SET_KEYWORD, UNSAFE, Edit, Fix
from jobaudit.frameworks.retry_helpers import body_places, jobs_label
from jobaudit.model import Job, Location

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

ASYNC_FRAMEWORKS = frozenset({"arq", "taskiq"})


class BlockingCallWithoutTimeout(Rule):
    code = "JOB404"
    name = "blocking-call-without-timeout"
    level = "warning"
    gate = "timeouts"
    summary = "A job calls a network, database or subprocess client that has no timeout of its own."
    frameworks = (
        "celery",
        "rq",
        "dramatiq",
        "huey",
        "arq",
        "taskiq",
        "django_tasks",
        "temporal",
    )
    fixable = True

    def check_project(self, project: Project) -> Iterator[Finding]:
        for location, text, jobs in body_places(project, lambda j, f: _untimed(j, f, project)):
            fix = _timeout_fix(location, text, project.config.fix.request_timeout)
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0], fix=fix)


REQUESTS_MISSING = ("without a timeout", "with timeout=None")


def _timeout_fix(location: Location, text: str, seconds: int) -> Fix | None:
    """``timeout=<request-timeout>`` on a requests call (a function or a session method).

    Unsafe: it chooses the number of seconds, and a request that used to wait
    now raises ``requests.Timeout``.  Other clients spell their timeouts in
    ways (positional slots, ``socket_timeout``, subprocess durations) that a
    request timeout does not fit, so they get no fix.
    """
    if "requests." not in text or not text.endswith(REQUESTS_MISSING):
        return None
    edit = Edit(SET_KEYWORD, location.path, location.span, "timeout", str(seconds))
    return Fix(f"Pass timeout={seconds}", UNSAFE, (edit,))


def _untimed(job: Job, function: BodyFunction, project: Project) -> list[tuple[Location, str]]:
    """The calls of one function of a job's body that block with no timeout of their own."""
    facts = function.facts
    out: list[tuple[Location, str]] = []
    for site in facts.calls:
        if bounded(site, facts, project):
            continue
        found = untimed(site, facts, project)
        verb = "calls"
        if found is not None:
            what, missing = found.name, found.missing
        elif job.framework in ASYNC_FRAMEWORKS and network_await(site, project):
            verb, what = "awaits", f"{network_await(site, project)}()"
            missing = "without asyncio.wait_for() or asyncio.timeout()"
        else:
            continue
        line = site.call.span[0]
        if function.depth == 0:
            text = f"{verb} {what} {missing}"
        else:
            text = f"reaches {what} in {function.path}:{line} {missing}"
        out.append((Location(function.path, site.call.span), text))
    return out
