"""JOB303 backoff-without-jitter.

Exponential backoff spreads one job's attempts out, but not many jobs': when
a dependency fails, every job that failed with it computes the same delays and
they all come back together, again and again.  Jitter (a random part of the
delay) breaks them up.  Celery jitters its autoretry backoff unless
``retry_jitter=False``; Huey's ``retry_backoff`` and taskiq's
``SmartRetryMiddleware`` never (by default) do; tenacity's ``wait_exponential``
has none while ``wait_random_exponential`` has; ``backoff`` jitters unless
``jitter=None``.  Dramatiq always jitters.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.retries.nested_retry_layers import helper_limit
from jobaudit.checks.retries.unbounded_retries import anchor
from jobaudit.fix.build import remove_from_decorator, set_on_decorator
from jobaudit.fix.model import SAFE, Fix
from jobaudit.frameworks.base import exception_names
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.retry_helpers import HelperUse, body_places, jobs_label, uses_in
from jobaudit.frameworks.taskiq import SMART, Middleware, Taskiq
from jobaudit.model import UNBOUNDED, Backoff, Job, Location, Resolved
from jobaudit.values import Call

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

WAIT_EXPONENTIAL = frozenset({"tenacity.wait_exponential", "tenacity.wait.wait_exponential"})
GROWING = frozenset(
    {"backoff.expo", "backoff._wait_gen.expo", "backoff.fibo", "backoff._wait_gen.fibo"}
)
MIN_ATTEMPTS = 3
"""Backoff needs two retries: a single retry has one delay, with nothing to grow to."""


def setting_anchor(
    job: Job, resolved: Resolved, project: Project
) -> tuple[Location, tuple[Related, ...]]:
    """Where to report a setting that the job's policy does not record (``retry_jitter``...).

    ``anchor`` knows which settings other jobs share from their policies; a
    setting read only by a rule is shared whenever it comes from anywhere but
    the job's own decorator (a base class, ``task_annotations``, the app's
    configuration), so the finding goes on the job, with the setting related.
    """
    own = {option.location for option in job.options.values() if option.location}
    if resolved.location is None or resolved.location in own:
        return anchor(job, resolved, project)
    where = job.decorator_location or job.location
    return where, (Related(resolved.location, f"set here: {resolved.source}"),)


def _jitter_fix(job: Job) -> Fix | None:
    """Drop ``retry_jitter=False`` from the decorator, or override an inherited one there.

    Safe: no value to choose (jitter on is Celery's default), and the delays
    stay within the same exponential bounds.
    """
    removed = remove_from_decorator(job, "retry_jitter")
    if removed is not None:
        return Fix("Remove retry_jitter=False", SAFE, (removed,))
    added = set_on_decorator(job, "retry_jitter", "True")
    if added is not None:
        return Fix("Add retry_jitter=True to the task", SAFE, (added,))
    return None


def _backs_off(attempts: object) -> bool:
    """Whether a job makes at least two retries (an unknown count stays silent)."""
    if attempts == UNBOUNDED:
        return True
    return isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= MIN_ATTEMPTS


def _unjittered(backoff: object) -> bool:
    return (
        isinstance(backoff, Backoff) and backoff.kind == "exponential" and backoff.jitter is False
    )


class BackoffWithoutJitter(Rule):
    code = "JOB303"
    name = "backoff-without-jitter"
    level = "note"
    gate = "retries"
    summary = "Exponential backoff without jitter brings jobs that failed together back together."
    frameworks = ("celery", "huey", "taskiq", "tenacity")
    fixable = True

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        policy = job.policy
        if not (_unjittered(policy.backoff.value) and _backs_off(policy.max_attempts.value)):
            return
        if job.framework == "celery":
            yield from self._celery(job, project)
        elif job.framework == "huey":
            yield from self._huey(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        yield from self._taskiq(project)
        for location, text, jobs in body_places(project, lambda j, f: self._body(f, project)):
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0])

    # -- Celery and Huey: the job's own backoff -------------------------------------------

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        """Autoretry with ``retry_backoff``: ``retry_jitter`` is True unless turned off."""
        celery = project.framework("celery")
        assert isinstance(celery, Celery)
        autoretry = celery.lookup(job, project, "autoretry_for", None)
        names = exception_names(autoretry.value, project)
        if not (isinstance(names, tuple) and names):
            return
        if "**" in job.options and "retry_jitter" not in job.options:
            return
        jitter = celery.lookup(job, project, "retry_jitter", True)
        backoff = celery.lookup(job, project, "retry_backoff", False)
        location, related = setting_anchor(job, jitter, project)
        yield self.finding(
            location,
            f"{job.label()} backs off exponentially (retry_backoff={backoff.value}) without "
            f"jitter: retry_jitter=False ({jitter.source})",
            job,
            related,
            None if "task_annotations" in jitter.source else _jitter_fix(job),
        )

    def _huey(self, job: Job, project: Project) -> Iterator[Finding]:
        """``retry_backoff`` multiplies ``retry_delay`` after each retry, with no random part."""
        option = job.options.get("retry_backoff")
        if option is None or "**" in job.options:
            return
        location, related = anchor(
            job, Resolved(option.value, option.source, option.location), project
        )
        assert job.policy is not None
        backoff = job.policy.backoff.value
        assert isinstance(backoff, Backoff)
        yield self.finding(
            location,
            f"{job.label()} backs off exponentially without jitter: Huey multiplies "
            f"retry_delay={backoff.delay:g} by retry_backoff={option.value} after each retry "
            "and never adds a random part",
            job,
            related,
        )

    # -- taskiq: the broker's SmartRetryMiddleware ------------------------------------------

    def _taskiq(self, project: Project) -> Iterator[Finding]:
        """One finding per middleware, where ``use_jitter`` is (or would be) written."""
        taskiq = project.framework("taskiq")
        if not isinstance(taskiq, Taskiq):
            return
        users: dict[int, tuple[Middleware, list[Job]]] = {}
        for job in project.jobs_of("taskiq"):
            assert job.policy is not None
            middleware = taskiq.middlewares.get(job.app or "")
            if middleware is None or middleware.kind != SMART:
                continue
            if _unjittered(job.policy.backoff.value) and _backs_off(job.policy.max_attempts.value):
                users.setdefault(id(middleware), (middleware, []))[1].append(job)
        for middleware, jobs in users.values():
            call = middleware.call
            if call.star_kwargs or middleware.kwarg(project, "use_jitter", False) is not False:
                continue
            span = call.kwarg_span("use_jitter")
            location = Location(middleware.location.path, span) if span else middleware.location
            given = "use_jitter=False" if span else "use_jitter is False by default"
            yield self.finding(
                location,
                f"{jobs_label(jobs)} backs off exponentially (use_delay_exponent=True) without "
                f"jitter: SmartRetryMiddleware's {given}",
                jobs[0],
            )

    # -- retry helpers in job bodies -------------------------------------------------------

    @staticmethod
    def _body(function: BodyFunction, project: Project) -> list[tuple[Location, str]]:
        found: list[tuple[Location, str]] = []
        for use in uses_in(function, project):
            if use.call.star_args or use.call.star_kwargs:
                continue
            limit = helper_limit(use, project)
            if limit is not None and limit.attempts is not None and limit.attempts < MIN_ATTEMPTS:
                continue
            problem = _helper_problem(use, project)
            if problem is not None:
                found.append((Location(use.location.path, problem[0]), problem[1]))
        return found


def _helper_problem(
    use: HelperUse, project: Project
) -> tuple[tuple[int, int, int, int], str] | None:
    """Where an unjittered exponential wait is written in a helper, and how to say it."""
    call = use.call
    if use.library == "tenacity":
        wait = project.resolver.evaluate(call.kwarg("wait"))
        if isinstance(wait, Call) and project.external_name(wait.func) in WAIT_EXPONENTIAL:
            return (
                call.kwarg_span("wait") or call.span,
                use.action("backs off")
                + ": wait_exponential() has no jitter (wait_random_exponential() has)",
            )
    elif use.library == "backoff" and "jitter" in dict(call.kwargs):
        wait_gen = call.kwarg("wait_gen") or (call.args[0] if call.args else None)
        jitter = project.resolver.evaluate(call.kwarg("jitter"))
        if jitter is None and project.external_name(wait_gen) in GROWING:
            return (
                call.kwarg_span("jitter") or call.span,
                use.action("backs off") + ": jitter=None turns off backoff's full jitter",
            )
    return None
