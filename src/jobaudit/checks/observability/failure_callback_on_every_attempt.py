"""JOB503 failure-callback-on-every-attempt: a failure callback that takes each failed try as final.

RQ's ``on_failure`` callback (and its exception handlers) and Dramatiq's
``on_failure`` callback actor run after **every** failed attempt, including
attempts that will be retried (RQ verified on 2.12 and 3.0 with
``Retry(max=2)``: three runs, three callbacks; Dramatiq's Callbacks middleware,
Bogdanp/dramatiq#425).  A callback that alerts someone or marks a record
failed therefore does so while the job is still going to succeed.

The rule resolves the callback to the project function it names (a function,
an ``rq.Callback(func)``, a dotted path, or for Dramatiq an actor or actor
name), and reports it when

* the job can retry: the effective number of attempts is more than one (RQ
  with no ``Retry`` never retries; Dramatiq retries 20 times by default), read
  from the enqueue call's own ``retry=``/``max_retries=`` when it has one;
* the callback, or a project function it calls, acts: an external write that
  jobaudit knows (mail, HTTP, ORM writes), a save/update/commit, an error report, an
  enqueue, or a call whose name says it alerts or marks failure
  (``notify_*``, ``*_failed``, ``slack``...);
* its source never mentions ``retries`` (RQ ``job.retries_left``, Dramatiq
  ``message_data["options"]["retries"]``): a callback that looks at the
  attempt count is taken to know what it is doing.

A callback jobaudit cannot resolve, or whose retries are unknown, is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.observability.silent_failure import called_name
from jobaudit.facts import FunctionFacts
from jobaudit.model import UNBOUNDED, Job, Location
from jobaudit.side_effects import classify, spelled
from jobaudit.symbols import ProjectFunction
from jobaudit.values import Call, Ref, Value, render

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

RQ_ENQUEUE = frozenset({"enqueue", "enqueue_call", "enqueue_in", "enqueue_at"})
RQ_RETRY = frozenset({"rq.Retry", "rq.retry.Retry", "rq.job.Retry"})
ACTION_NAMES = frozenset(
    {
        "save",
        "commit",
        "update",
        "update_or_create",
        "send",
        "send_mail",
        "send_message",
        "mail_admins",
        "capture_exception",
        "capture_message",
        "captureException",
        "delay",
        "apply_async",
        "enqueue",
        "send_with_options",
        "post",
        "publish",
    }
)
"""Calls that tell someone or change stored state."""
ACTION_WORDS = re.compile(r"fail|notif|alert|slack|mail|incident", re.IGNORECASE)
"""Words in a called name that say it alerts someone or marks something failed."""
READERS = ("get_", "is_", "has_", "find_", "load_")
"""Prefixes of calls that only read (``get_email()``), whatever words follow."""
ATTEMPTS = re.compile(r"\bretries\w*|\w*retries\b")
"""``job.retries_left``, ``message_data["options"]["retries"]``, ``max_retries``..."""
TERMINAL = {
    "rq": "check `job.retries_left` first (0 on the last attempt), or use a `failed` webhook, "
    "which RQ sends only for terminal failures",
    "dramatiq": "use `on_retry_exhausted=` (runs once, when retries are exhausted) instead",
}
RETRY_OPTION = {"rq": "retry", "dramatiq": "max_retries"}
DEPTH = 2


@dataclass(frozen=True)
class Hook:
    """One ``on_failure=`` a job runs with, and how many attempts it gets there."""

    job: Job
    value: Value
    location: Location
    attempts: object
    attempts_source: str


class FailureCallbackOnEveryAttempt(Rule):
    code = "JOB503"
    name = "failure-callback-on-every-attempt"
    level = "warning"
    gate = "observability"
    summary = (
        "An on_failure callback alerts or marks a record failed on every failed attempt, "
        "including those that will be retried."
    )
    frameworks = ("rq", "dramatiq")

    def check_project(self, project: Project) -> Iterator[Finding]:
        for hook in _hooks(project):
            if not _retries(hook.attempts):
                continue
            callback = _callback(hook.value, project)
            if callback is None:
                continue
            action = _action(hook.job, callback, project)
            if action is None or _checks_attempts(callback, project):
                continue
            text, where = action
            shown = (
                "without limit" if hook.attempts == UNBOUNDED else f"up to {hook.attempts} times"
            )
            yield self.finding(
                hook.location,
                f"{hook.job.label()} runs {shown} ({hook.attempts_source}) and its on_failure "
                f"callback '{callback.facts.name}' runs after every failed attempt, not only the "
                f"last: it {text} without looking at the attempt count; "
                f"{TERMINAL[hook.job.framework]}",
                hook.job,
                (Related(where, "what the callback does"),),
            )


def _retries(attempts: object) -> bool:
    if attempts == UNBOUNDED:
        return True
    return isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 1


def _hooks(project: Project) -> Iterator[Hook]:
    """Every ``on_failure=`` of an RQ or Dramatiq job: on the declaration and at enqueue calls."""
    for job in project.jobs:
        if job.framework not in TERMINAL:
            continue
        assert job.policy is not None
        attempts, source = _job_attempts(job)
        option = job.options.get("on_failure")
        if option is not None and option.location is not None:
            yield Hook(job, option.value, option.location, attempts, source)
        for site in project.sites_of(job, tests=False):
            call = site.site.call
            span = call.kwarg_span("on_failure")
            value = call.kwarg("on_failure")
            if span is None or value is None:
                continue
            if job.framework == "rq" and site.method not in RQ_ENQUEUE:
                continue
            attempts, source = _site_attempts(job, call, project)
            yield Hook(
                job, project.resolver.evaluate(value), Location(site.path, span), attempts, source
            )


def _job_attempts(job: Job) -> tuple[object, str]:
    """The job's effective attempts, with the option that sets them as written."""
    assert job.policy is not None
    resolved = job.policy.max_attempts
    option = job.options.get(RETRY_OPTION[job.framework])
    if option is not None:
        return resolved.value, f"{option.name}={_spell(option.written)}"
    if resolved.source == "framework default" and job.framework == "dramatiq":
        return resolved.value, "Dramatiq's default max_retries=20"
    return resolved.value, resolved.source


def _site_attempts(job: Job, call: Call, project: Project) -> tuple[object, str]:
    """The attempts of one enqueue: its own ``retry=``/``max_retries=``, else the job's."""
    assert job.policy is not None
    if job.framework == "rq":
        retry = call.kwarg("retry")
        if retry is None:
            if job.options.get("retry") is None:
                return 1, "no retry configured"
            return _job_attempts(job)
        value = project.resolver.evaluate(retry)
        if not isinstance(value, Call) or project.external_name(value.func) not in RQ_RETRY:
            return None, ""
        maximum = value.kwarg("max")
        if maximum is None and value.args:
            maximum = value.args[0]
        maximum = project.resolver.evaluate(maximum)
        if isinstance(maximum, int) and not isinstance(maximum, bool):
            return maximum + 1, f"retry={_spell(retry)}"
        return None, ""
    retries = call.kwarg("max_retries")
    if retries is None:
        return _job_attempts(job)
    value = project.resolver.evaluate(retries)
    if value is None:
        return UNBOUNDED, "max_retries=None"
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 1, f"max_retries={value}"
    return None, ""


def _spell(value: Value) -> str:
    """An option as written, with ``Retry``'s ``max`` shown: ``Retry(max=3, ...)``."""
    if not isinstance(value, Call):
        return render(value)
    maximum = value.kwarg("max")
    if maximum is None and value.args:
        maximum = value.args[0]
    if maximum is None:
        return render(value)
    rest = ", ..." if len(value.args) + len(value.kwargs) > 1 else ""
    return f"{render(value.func)}(max={render(maximum)}{rest})"


def _callback(value: Value, project: Project) -> ProjectFunction | None:
    """The project function a callback value names; None when it cannot be resolved."""
    if isinstance(value, Call):
        name = project.external_name(value.func) or ""
        if not (name.startswith("rq.") and name.endswith(".Callback")):
            return None
        inner = value.kwarg("func")
        if inner is None and value.args:
            inner = value.args[0]
        return _callback(project.resolver.evaluate(inner), project) if inner is not None else None
    if isinstance(value, str):
        actor = next(
            (job for job in project.jobs_of("dramatiq") if _actor_name(job) == value), None
        )
        if actor is not None:
            return ProjectFunction(actor.function, actor.path)
        value = Ref(value)
    if isinstance(value, Ref):
        symbol = project.resolver.lookup(value.name)
        if isinstance(symbol, ProjectFunction):
            return symbol
    return None


def _actor_name(job: Job) -> str:
    option = job.options.get("actor_name")
    return option.value if option is not None and isinstance(option.value, str) else job.name


def _action(job: Job, callback: ProjectFunction, project: Project) -> tuple[str, Location] | None:
    """The first thing the callback (or a project function it calls) does that people see."""
    from jobaudit.project import BodyFunction  # project imports the rules' modules

    frontier = [BodyFunction(callback.facts, callback.path, 0, (callback.facts.name,))]
    seen = {(callback.facts.module, callback.facts.qualname)}
    for _ in range(DEPTH + 1):
        following: list[BodyFunction] = []
        for function in frontier:
            found = _acts(function, project)
            if found is not None:
                return found
            for site in function.facts.calls:
                callee = project.callee(site.call, function.facts, job)
                if callee is None or (callee.facts.module, callee.facts.qualname) in seen:
                    continue
                seen.add((callee.facts.module, callee.facts.qualname))
                following.append(
                    BodyFunction(
                        callee.facts,
                        callee.path,
                        function.depth + 1,
                        (*function.via, callee.facts.name),
                    )
                )
        frontier = following
    return None


def _acts(function: BodyFunction, project: Project) -> tuple[str, Location] | None:
    for site in function.facts.calls:
        where = Location(function.path, site.call.span)
        write = classify(site, function, project)
        if write is not None:
            return write.action, where
        name = called_name(site.call.func)
        if name in ACTION_NAMES or (ACTION_WORDS.search(name) and not name.startswith(READERS)):
            return f"calls {spelled(site.call.func)}", where
    return None


def _checks_attempts(callback: ProjectFunction, project: Project) -> bool:
    """The callback's source mentions retries (``job.retries_left``, ``["retries"]``)."""
    facts = project.resolver.modules.get(callback.facts.module)
    if facts is None:
        return False
    function: FunctionFacts = callback.facts
    first, last = function.span[0], function.end_line or function.span[2]
    text = facts.lines.block(first, last)
    return ATTEMPTS.search(text) is not None


__all__ = ["FailureCallbackOnEveryAttempt"]
