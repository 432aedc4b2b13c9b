"""JOB301 unbounded-retries.

A job that retries forever never fails: a permanent error (a deleted row, a
revoked API key) keeps it cycling through the queue, holding a worker and
hammering the failing service, and nobody is told.  Each framework spells
"forever" differently (``max_retries=None`` on a Celery task or Dramatiq actor,
a Huey ``RetryTask`` that does not consume retries, Temporal's default
``maximum_attempts=0``, a bare tenacity ``@retry``), so the rule reads the
effective policy rather than a spelling.  RQ, arq and taskiq require an integer
and cannot say "forever" at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import fields
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.fix.build import set_on_decorator, written
from jobaudit.fix.model import SET_KEYWORD, UNSAFE, Edit, Fix, Import
from jobaudit.frameworks.huey import unguarded_retry_tasks
from jobaudit.frameworks.retry_helpers import (
    HelperUse,
    body_places,
    jobs_label,
    said_of_job,
    uses_in,
)
from jobaudit.frameworks.temporal import CALLS
from jobaudit.model import UNBOUNDED, Job, Location, Resolved
from jobaudit.symbols import Assigned, External, InstanceAttr
from jobaudit.values import Call, Ref, Value, is_number

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

HELPER_DEFAULTS = {
    "tenacity": "tenacity without a stop condition (the default is stop_never)",
    "backoff": "backoff with neither max_tries nor max_time (both default to None)",
    "retrying": "retrying without a stop_* argument (it never stops by default)",
    "retry": "retry with tries=-1 (the default)",
}
RETRY_POLICY_ATTEMPTS = 3
"""Position of ``maximum_attempts`` in ``RetryPolicy(initial_interval, backoff_coefficient,
maximum_interval, maximum_attempts, ...)``."""


def anchor(job: Job, resolved: Resolved, project: Project) -> tuple[Location, tuple[Related, ...]]:
    """Where to report a job's setting: at the setting when only this job uses it.

    A value inherited from a base class, a wrapper, ``task_annotations`` or a
    middleware is shared by many jobs; reporting each of them on that one line
    would stack findings there, so the finding goes on the job's decorator and
    the setting becomes a related location.
    """
    own = job.decorator_location or job.location
    where = resolved.location
    if where is None:
        return own, ()
    if not any(other is not job and where in _places(other) for other in project.jobs):
        return where, ()
    return own, (Related(where, f"set here: {resolved.source}"),)


def _places(job: Job) -> set[Location]:
    places = {option.location for option in job.options.values() if option.location}
    if job.policy is not None:
        for item in fields(job.policy):
            resolved = getattr(job.policy, item.name)
            if resolved.location is not None:
                places.add(resolved.location)
    return places


HELPER_CAPS = {"backoff": "max_tries", "retrying": "stop_max_attempt_number", "retry": "tries"}
"""The keyword that caps attempts, for the helpers whose cap is a plain number."""


def _cap_helper(use: HelperUse, project: Project) -> Fix | None:
    """``stop=stop_after_attempt(n)`` for tenacity, the attempts keyword for the others.

    Unsafe: it chooses the number of attempts (``[tool.jobaudit.fix] max-attempts``).
    """
    call = use.call
    attempts = project.config.fix.max_attempts
    imports: tuple[Import, ...] = ()
    if use.library == "tenacity":
        spelled = written(project, use.location.path, call.span) or ""
        module = spelled.partition("(")[0].strip().rpartition(".")[0]
        if module:
            value = f"{module}.stop_after_attempt({attempts})"
        else:
            value = f"stop_after_attempt({attempts})"
            imports = (Import("tenacity", "stop_after_attempt"),)
        edit = Edit(SET_KEYWORD, use.location.path, call.span, "stop", value)
        return Fix(f"Stop after {attempts} attempts", UNSAFE, (edit,), imports)
    keyword = HELPER_CAPS.get(use.library)
    if keyword is None or (use.library == "retry" and len(call.args) > 1):
        return None
    edit = Edit(SET_KEYWORD, use.location.path, call.span, keyword, str(attempts))
    return Fix(f"Set {keyword}={attempts}", UNSAFE, (edit,))


def _short(names: Iterable[str]) -> str:
    return ", ".join(name.rpartition(".")[2] for name in names)


class UnboundedRetries(Rule):
    code = "JOB301"
    name = "unbounded-retries"
    level = "error"
    gate = "retries"
    summary = "A job, or a retry helper inside it, retries forever."
    frameworks = ("celery", "dramatiq", "huey", "temporal", "tenacity")
    fixable = True

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework in {"celery", "dramatiq"}:
            yield from self._policy(job, project)
        elif job.framework == "huey":
            yield from self._huey_rate_limits(job, project)
        elif job.framework == "temporal":
            yield from self._temporal(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        self._fixes: dict[Location, Fix | None] = {}
        for location, text, jobs in body_places(project, lambda j, f: self._body(j, f, project)):
            fix = self._fixes.get(location)
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0], fix=fix)

    # -- Celery and Dramatiq: the effective max_retries ---------------------------------

    def _policy(self, job: Job, project: Project) -> Iterator[Finding]:
        assert job.policy is not None
        attempts = job.policy.max_attempts
        if attempts.value != UNBOUNDED:
            return
        if "**" in job.options and not {"max_retries", "retry_when"} & job.options.keys():
            return  # ``**options`` on the decorator may set a limit
        if job.framework == "celery" and not job.policy.retry_on.known:
            # No autoretry_for and no retry() in an except block: the task's retry()
            # calls poll, loop or wait out a rate limit, and a failure still fails it.
            return
        location, related = anchor(job, attempts, project)
        retry_on = job.policy.retry_on.value
        on = ""
        if retry_on == "all":
            on = " on any exception"
        elif isinstance(retry_on, tuple) and retry_on:
            on = f" on {_short(retry_on)}"
        retries = project.config.fix.max_attempts - 1
        # Dramatiq ignores max_retries when retry_when is given; Celery's task_annotations
        # override what the decorator says.
        overridden = "retry_when" in job.options or "task_annotations" in attempts.source
        edit = None if overridden else set_on_decorator(job, "max_retries", str(retries))
        fix = Fix(f"Set max_retries={retries}", UNSAFE, (edit,)) if edit else None
        yield self.finding(
            location,
            f"{job.label()} retries forever{on}: {attempts.source}",
            job,
            related,
            fix,
        )

    # -- Huey: RetryTask and rate limits ----------------------------------------------

    def _body(
        self, job: Job, function: BodyFunction, project: Project
    ) -> list[tuple[Location, str]]:
        """Unbounded retries written in a job's body: helpers, and Huey's RetryTask."""
        found: list[tuple[Location, str]] = []
        fixes = self._fixes
        for use in uses_in(function, project):
            if use.unbounded(project):
                what = HELPER_DEFAULTS[use.library]
                if use.library == "tenacity" and use.given("stop"):
                    what = "tenacity with stop=stop_never"
                found.append((use.location, f"{use.action('retries forever')}: {what}"))
                fixes[use.location] = _cap_helper(use, project)
        if job.framework == "huey":
            for raised in unguarded_retry_tasks(function.facts, project):
                found.append(
                    (
                        Location(function.path, raised.span),
                        said_of_job(function, "raises RetryTask")
                        + " without counting attempts: RetryTask neither needs nor uses up "
                        "retries, so the task can be requeued forever",
                    )
                )
        return found

    def _huey_rate_limits(self, job: Job, project: Project) -> Iterator[Finding]:
        """``rate_limit(..., retry=True)`` (the default) requeues the task every window.

        A limit is applied as a decorator, as a ``with`` block or called in the
        task, and is usually kept in a module variable shared by several tasks.
        """
        message = (
            f"{job.label()} is rate-limited with retry=True (the default): each rate-limited run "
            "is requeued for the next window without using up retries, with no limit"
        )
        function = job.function
        for decorator, span in zip(function.decorators, function.decorator_spans, strict=True):
            named = self._named_limit(decorator, project)
            limit = named[0] if named is not None else decorator
            if isinstance(limit, Call) and self._retrying_limit(limit, project):
                yield self.finding(Location(job.path, span), message, job)
        for site in function.calls:
            if self._retrying_limit(site.call, project):
                yield self.finding(Location(job.path, site.call.span), message, job)
        contexts = {value for site in function.calls for value in site.withs}
        for value in sorted(contexts, key=str):
            named = self._named_limit(value, project)
            if named is not None and self._retrying_limit(named[0], project):
                related = (Related(named[1], "the rate limit"),)
                yield self.finding(job.decorator_location or job.location, message, job, related)

    @staticmethod
    def _named_limit(value: Value, project: Project) -> tuple[Call, Location] | None:
        """The call a module variable holds (``erp_limit = huey.rate_limit(...)``), and where."""
        if not isinstance(value, Ref):
            return None
        symbol = project.resolver.lookup(value.name)
        if isinstance(symbol, Assigned) and isinstance(symbol.value, Call):
            return symbol.value, Location(symbol.path, symbol.span)
        return None

    def _retrying_limit(self, call: Call, project: Project) -> bool:
        return self._is_rate_limit(call, project) and self._retries(call, project)

    @staticmethod
    def _is_rate_limit(call: Call, project: Project) -> bool:
        symbol = project.resolver.symbol_of(call.func)
        if isinstance(symbol, InstanceAttr):
            return symbol.cls.startswith("huey.") and symbol.attrs == ("rate_limit",)
        return (
            isinstance(symbol, External)
            and symbol.name.startswith("huey.")
            and symbol.name.endswith(".rate_limit")
        )

    @staticmethod
    def _retries(call: Call, project: Project) -> bool:
        """Whether ``rate_limit(name, limit, per, retry=True)`` requeues: unless retry=False."""
        if call.star_kwargs or call.star_args:
            return False
        value = call.kwarg("retry")
        if value is None and len(call.args) > 3:
            value = call.args[3]
        return value is None or project.resolver.evaluate(value) is True

    # -- Temporal: the retry policy at each workflow call -----------------------------

    def _temporal(self, job: Job, project: Project) -> Iterator[Finding]:
        for site in project.sites_of(job):
            call = site.site.call
            if site.method not in CALLS or call.star_kwargs:
                continue
            if call.kwarg("schedule_to_close_timeout") is not None:
                continue
            given = call.kwarg("retry_policy")
            if given is None:
                location = Location(site.path, call.span)
                reason = (
                    "no retry_policy (the default RetryPolicy has maximum_attempts=0, unlimited)"
                )
            else:
                policy = project.resolver.evaluate(given)
                if not self._unlimited_policy(policy, project):
                    continue
                location = Location(site.path, call.kwarg_span("retry_policy") or call.span)
                reason = "RetryPolicy without maximum_attempts (0, the default, means unlimited)"
            yield self.finding(
                location,
                f"{job.label()} is retried forever at this call: {reason} and no "
                "schedule_to_close_timeout",
                job,
            )

    @staticmethod
    def _unlimited_policy(policy: Value, project: Project) -> bool:
        if not isinstance(policy, Call) or policy.star_args or policy.star_kwargs:
            return False
        name = project.external_name(policy.func) or ""
        if not (name.startswith("temporalio.") and name.endswith(".RetryPolicy")):
            return False
        attempts = policy.kwarg("maximum_attempts")
        if attempts is None and len(policy.args) > RETRY_POLICY_ATTEMPTS:
            attempts = policy.args[RETRY_POLICY_ATTEMPTS]
        value = project.resolver.evaluate(attempts)
        return value is None or (is_number(value) and value == 0)
