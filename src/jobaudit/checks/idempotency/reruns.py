"""Whether a job can run twice, why, and which of its writes a second run repeats.

Shared by the idempotency rules.  The answer comes from the resolved policy
and the framework's delivery guarantee (``shared/reference/frameworks.md``
§1.12), per framework:

- Celery: retries (``autoretry_for``, ``self.retry()``), or ``acks_late`` /
  ``retry_on_worker_lost``, which run a task again after its worker dies;
- RQ: ``Retry`` (it also re-runs jobs abandoned by a dead worker);
- Dramatiq, arq, Temporal: always (ack after processing, pessimistic execution,
  activities retried by default), unless arq's ``max_tries`` or Temporal's
  ``maximum_attempts`` is 1;
- Huey: ``retries`` or ``RetryTask``, or a ``SIGNAL_INTERRUPTED`` handler that
  re-enqueues; otherwise at most once;
- taskiq: a retry middleware the task opts into, or a broker that delivers a
  message again when the worker dies before acknowledging it;
- django.tasks: up to the backend, so a note.

A job that runs again only because it is *retried* repeats a write only when
a retry can start after the write: when the retried exceptions include the
write's own failures (a POST that timed out after the server took it), or an
exception raised, or a retry requested, later in the run.  A write at the end
of a task that only retries on an error raised before it is not repeated.
Redelivery after a crash can repeat any write.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.facts import CallSite, FunctionFacts, all_functions
from jobaudit.frameworks.base import raised_name
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.huey import counts_attempts
from jobaudit.model import UNBOUNDED, Job, Location
from jobaudit.side_effects import Write, chain, receiver_origin
from jobaudit.symbols import ProjectFunction
from jobaudit.values import Call, Ref, Seq, Unknown, render

if TYPE_CHECKING:
    from jobaudit.project import Project

EXPLICIT = "explicit"
"""Retries only where the body asks for one (``self.retry()``, ``raise RetryTask``)."""
RETRY_RAISES = frozenset({"Retry", "RetryTask"})
OS_ERRORS = frozenset(
    {
        "builtins.OSError",
        "builtins.IOError",
        "builtins.EnvironmentError",
        "builtins.ConnectionError",
        "builtins.TimeoutError",
        "socket.error",
        "socket.timeout",
    }
)
LIBRARY_ERRORS: dict[str, tuple[str, ...]] = {
    "requests": ("requests.", *OS_ERRORS),
    "httpx": ("httpx.",),
    "aiohttp": ("aiohttp.",),
    "smtplib": ("smtplib.", *OS_ERRORS),
    "stripe": ("stripe.",),
    "boto3": ("botocore.", "boto3."),
}
"""What each client raises when a call fails (requests' and smtplib's errors are OSErrors)."""
LIBRARY_OF = {
    "requests.": "requests",
    "httpx.": "httpx",
    "aiohttp.": "aiohttp",
    "smtplib.": "smtplib",
    "django.core.mail.": "smtplib",
    "stripe.": "stripe",
    "boto3.": "boto3",
    "botocore.": "boto3",
}
TASKIQ_REDELIVERING = (
    "AioPikaBroker",
    "RedisStreamBroker",
    "RedisStreamClusterBroker",
    "RedisStreamSentinelBroker",
    "PullBasedJetStreamBroker",
    "PushBasedJetStreamBroker",
    "SQSBroker",
)
"""taskiq brokers that deliver an unacknowledged message again (RabbitMQ, Redis streams,
NATS JetStream, SQS); list queues and pub/sub lose it."""
_SCAN_DEPTH = 2


@dataclass(frozen=True)
class Rerun:
    """How a job can run again."""

    times: str
    """``up to 4 times``, ``more than once``, ``any number of times``."""
    reason: str
    """The setting or guarantee behind it, for messages."""
    redelivered: bool
    """A crash or shutdown can run it again after any write."""
    retry_on: object = "all"
    """For retries: ``"all"``, a tuple of exception names, ``EXPLICIT``, or Unknown."""
    level: str | None = None
    """A level other than the rule's (``note`` when the backend decides)."""


def rerun(job: Job, project: Project) -> Rerun | None:
    """How the job can run more than once, or None when it cannot (or that is unknown)."""
    handler = {
        "celery": _celery,
        "rq": _retries,
        "huey": _huey,
        "taskiq": _taskiq,
        "custom": _retries,
        "dramatiq": _always,
        "arq": _always,
        "temporal": _always,
        "django_tasks": _backend,
    }.get(job.framework)
    return handler(job, project) if handler is not None else None


def times(attempts: object) -> str | None:
    if attempts == UNBOUNDED:
        return "any number of times"
    if isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 1:
        return f"up to {attempts} times"
    return None


def _celery(job: Job, project: Project) -> Rerun | None:
    assert job.policy is not None
    celery = project.framework("celery")
    assert isinstance(celery, Celery)
    policy = job.policy
    count = times(policy.max_attempts.value)
    if policy.delivery.value == "at-least-once":
        reason = policy.delivery.source
        if count is not None:
            reason = f"{_celery_retries(job, project)}; {reason}"
        return Rerun(count or "more than once", reason, True)
    if celery.lookup(job, project, "retry_on_worker_lost", False).value is True:
        return Rerun(count or "more than once", "retry_on_worker_lost=True", True)
    if count is None:
        return None
    retry_on = policy.retry_on.value
    autoretry = celery.lookup(job, project, "autoretry_for", None).value
    if not isinstance(retry_on, str) and not (isinstance(autoretry, Seq) and autoretry.items):
        retry_on = EXPLICIT  # self.retry() only: the calls are the retry points
    return Rerun(count, _celery_retries(job, project), False, retry_on)


def _celery_retries(job: Job, project: Project) -> str:
    """``autoretry_for=(SMTPException,)``, ``self.retry()``, or where autoretry_for comes from."""
    option = job.options.get("autoretry_for")
    if option is not None:
        return f"autoretry_for={render(option.written)}"
    celery = project.framework("celery")
    assert isinstance(celery, Celery)
    autoretry = celery.lookup(job, project, "autoretry_for", None)
    if isinstance(autoretry.value, Seq) and autoretry.value.items:
        return f"autoretry_for={render(autoretry.value)} ({autoretry.source})"
    return "self.retry()"


def _retries(job: Job, project: Project) -> Rerun | None:
    assert job.policy is not None
    count = times(job.policy.max_attempts.value)
    if count is None:
        return None
    source = job.policy.max_attempts.source
    if job.framework == "rq":
        attempts = job.policy.max_attempts.value
        assert isinstance(attempts, int)
        where = {"task option": "on @job", "enqueue call": "at the enqueue call"}.get(source)
        return Rerun(count, f"Retry(max={attempts - 1}) {where or f'({source})'}", True)
    return Rerun(count, source, False, job.policy.retry_on.value)


def _huey(job: Job, project: Project) -> Rerun | None:
    assert job.policy is not None
    attempts = job.policy.max_attempts
    count = times(attempts.value)
    if any(handler.every_task for handler in interrupt_handlers(project)):
        return Rerun(
            count or "more than once",
            "a SIGNAL_INTERRUPTED handler enqueues interrupted tasks again",
            True,
        )
    if count is None:
        return None
    if attempts.value == UNBOUNDED:
        return Rerun(count, attempts.source, False, EXPLICIT)
    retries = job.options.get("retries")
    reason = f"retries={render(retries.written)}" if retries is not None else attempts.source
    return Rerun(count, reason, False, "all")


def _taskiq(job: Job, project: Project) -> Rerun | None:
    assert job.policy is not None
    count = times(job.policy.max_attempts.value)
    ack = job.options.get("ack_type")
    broker = _taskiq_broker(job, project)
    acked_late = ack is None or (
        isinstance(ack.value, str) and ack.value in {"when_executed", "when_saved"}
    )
    if broker is not None and broker.endswith(TASKIQ_REDELIVERING) and acked_late:
        short = broker.rpartition(".")[2]
        acked = f"ack_type={render(ack.written)}" if ack is not None else "ack_type when_saved"
        reason = (
            f"{short} delivers a message again when its worker dies before acknowledging it, "
            f"and {acked} acknowledges it after the task"
        )
        return Rerun(count or "more than once", reason, True)
    if count is None:
        return None
    return Rerun(count, job.policy.max_attempts.source, False, job.policy.retry_on.value)


def _taskiq_broker(job: Job, project: Project) -> str | None:
    if job.app is None:
        return None
    return project.resolver.instance_class(Ref(job.app))


def _always(job: Job, project: Project) -> Rerun | None:
    assert job.policy is not None
    attempts = job.policy.max_attempts
    count = times(attempts.value)
    if job.framework != "dramatiq" and (attempts.value == 1 or not attempts.known):
        return None  # arq's max_tries and Temporal's maximum_attempts also bound re-runs
    if job.framework == "dramatiq":
        reason = "Dramatiq acknowledges a message only after the actor returns"
        if count is not None:
            option = job.options.get("max_retries")
            if option is not None:
                source = f"max_retries={render(option.written)}"
            elif attempts.source == "framework default":
                source = "max_retries=20, the default"
            else:
                source = attempts.source
            reason = f"{source}; {reason}"
    elif job.framework == "arq":
        reason = "arq runs a job again when it is cancelled at shutdown"
        if count is not None and job.policy.retry_on.value != "none":
            reason = f"max_tries from {attempts.source} with raise Retry; {reason}"
        else:
            count = None
    elif count is not None:
        reason = attempts.source
    else:
        reason = "Temporal retries a failed activity by default"
    return Rerun(count or "more than once", reason, True)


def _backend(job: Job, project: Project) -> Rerun:
    return Rerun(
        "more than once",
        "django.tasks leaves retries and redelivery to the tasks backend",
        True,
        level="note",
    )


# -- Huey's interrupted-task handlers --------------------------------------------------------


@dataclass(frozen=True)
class Reenqueue:
    """A ``SIGNAL_INTERRUPTED`` handler's ``huey.enqueue(task)`` call."""

    handler: FunctionFacts
    call: Call
    location: Location
    counted: bool
    """The handler looks at an attempt counter, so the loop ends."""

    @property
    def every_task(self) -> bool:
        """It enqueues every interrupted task again: no ``if`` picks some of them."""
        return not self.handler.checks


def interrupt_handlers(project: Project) -> list[Reenqueue]:
    """Huey signal handlers for ``SIGNAL_INTERRUPTED`` that enqueue the task again."""
    found: list[Reenqueue] = []
    for facts in project.resolver.modules.values():
        for function in all_functions(facts):
            if not _on_interrupt(function, project):
                continue
            for site in function.calls:
                if chain(site.call.func)[-1:] == ["enqueue"]:
                    found.append(
                        Reenqueue(
                            function,
                            site.call,
                            Location(facts.path, site.call.span),
                            counts_attempts(function),
                        )
                    )
    return found


def _on_interrupt(function: FunctionFacts, project: Project) -> bool:
    for decorator in function.decorators:
        if not isinstance(decorator, Call) or chain(decorator.func)[-1:] != ["signal"]:
            continue
        for arg in decorator.args:
            name = project.external_name(arg) if isinstance(arg, Ref) else None
            value = project.resolver.evaluate(arg)
            if (name or "").endswith("SIGNAL_INTERRUPTED") or value == "interrupted":
                return True
    return False


# -- which writes a retry repeats -----------------------------------------------------------


def repeats(write: Write, again: Rerun, job: Job, project: Project) -> bool:
    """Whether running the job again can repeat this write (see the module docstring)."""
    if again.redelivered or again.retry_on == "all":
        return True
    if isinstance(again.retry_on, Unknown) or again.retry_on == "none":
        return False
    types: tuple[str, ...] = again.retry_on if isinstance(again.retry_on, tuple) else ()
    if write.library and _covers(types, write.library):
        return True
    frames = [(step.facts, step.site) for step in write.steps]
    frames.append((write.function.facts, write.site))
    for index, (facts, leading) in enumerate(frames):
        # every call of the same helper leads to the write, not only the first one
        sites = [leading]
        if index < len(frames) - 1:
            sites = [s for s in facts.calls if s.call.func == leading.call.func]
        for site in sites:
            if _retried_after(site, facts, types, job, project):
                return True
    return False


def _retried_after(
    site: CallSite, facts: FunctionFacts, types: tuple[str, ...], job: Job, project: Project
) -> bool:
    """A retry can start after ``site`` in the same function: a raise, a retry, a failing call."""
    line, last = site.call.span[2], _reach_end(facts, site)
    later = [s for s in facts.calls if site.in_loop or line < s.call.span[0] <= last]
    raises = [r for r in facts.raises if site.in_loop or line < r.span[0] <= last]
    if any(_triggers_raise(r.value, types) for r in raises):
        return True
    return any(_triggers_call(s, facts, types, job, project, _SCAN_DEPTH) for s in later)


def _reach_end(facts: FunctionFacts, site: CallSite) -> int:
    """The last line the run can reach after a call: the end of an ``if`` that returns."""
    ends = [facts.checks[index].span[2] for index in site.checks if facts.checks[index].exits]
    return min(ends, default=sys.maxsize)


def _covers(types: tuple[str, ...], library: str) -> bool:
    prefixes = LIBRARY_ERRORS.get(library, ())
    return any(name.startswith(prefixes) or name in prefixes for name in types)


def _triggers_raise(value: object, types: tuple[str, ...]) -> bool:
    name = raised_name(value)  # type: ignore[arg-type]
    if name is None:
        return False
    return name in RETRY_RAISES or any(t.rpartition(".")[2] == name for t in types)


def _triggers_call(
    site: CallSite,
    facts: FunctionFacts,
    types: tuple[str, ...],
    job: Job,
    project: Project,
    depth: int,
) -> bool:
    """A later call that retries, fails with a retried error, or reaches one that does."""
    segments = chain(site.call.func)
    if segments[-1:] == ["retry"] and len(segments) >= 2:
        own = segments[-2] == job.function.name  # send_receipt.retry()
        if own or (len(segments) == 2 and not isinstance(site.call.func, Ref)):
            return True  # self.retry(), or task.retry() in a helper given the task
    library = _library(site, facts, project)
    if library is not None and _covers(types, library):
        return True
    if depth <= 0:
        return False
    callee = project.callee(site.call, facts, job)
    if not isinstance(callee, ProjectFunction):
        return False
    body = callee.facts
    if any(_triggers_raise(r.value, types) for r in body.raises):
        return True
    return any(_triggers_call(s, body, types, job, project, depth - 1) for s in body.calls)


def _library(site: CallSite, facts: FunctionFacts, project: Project) -> str | None:
    func = site.call.func
    name = project.external_name(func) if isinstance(func, Ref) else None
    if name is None:
        name = receiver_origin(func, facts, project)
    if name is None:
        return None
    return next((lib for prefix, lib in LIBRARY_OF.items() if name.startswith(prefix)), None)


__all__ = ["EXPLICIT", "Reenqueue", "Rerun", "interrupt_handlers", "repeats", "rerun", "times"]
