"""RQ and django-rq (rq 3.0.0, django-rq 4.2.0; ``shared/reference/frameworks.md`` §1.2).

RQ retries nothing unless ``retry=Retry(max=N)`` is given, every job has a 180 s
timeout unless told otherwise (``-1`` means none), and ``enqueue()`` passes any
keyword it does not know, ``timeout=`` included, to the job function.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from jobaudit.facts import FunctionFacts
from jobaudit.frameworks.base import DEFAULT, Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Resolved
from jobaudit.symbols import Assigned, ProjectFunction, seconds
from jobaudit.values import Attr, Call, Local, Mapping, Ref, Seq, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

DEFAULT_TIMEOUT = 180.0
RETRY_CLASSES = frozenset({"rq.Retry", "rq.retry.Retry", "rq.job.Retry"})
ENQUEUE_OPTIONS = frozenset(
    {
        "job_timeout",
        "result_ttl",
        "ttl",
        "failure_ttl",
        "description",
        "depends_on",
        "job_id",
        "at_front",
        "meta",
        "retry",
        "repeat",
        "on_success",
        "on_failure",
        "on_stopped",
        "pipeline",
        "rate_limit",
        "unique",
        "webhooks",
        "args",
        "kwargs",
    }
)
QUEUE_CLASSES = frozenset({"rq.Queue", "rq.queue.Queue"})
GET_QUEUE = frozenset({"django_rq.get_queue", "django_rq.queues.get_queue"})
RQ_ENQUEUE_CALLS = frozenset({"enqueue", "enqueue_call", "enqueue_in", "enqueue_at"})
_DURATION = re.compile(r"^(\d+)([smhd]?)$")


def parse_timeout(value: object) -> object:
    """RQ timeouts: seconds, ``'1h'``-style strings, or -1 for none."""
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if not match:
            return Unknown(f"timeout {value!r} is not understood")
        number, unit = int(match.group(1)), match.group(2)
        return float(number * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value == -1 else float(value)
    converted = seconds(value)  # type: ignore[arg-type]
    return converted


class RQ(Framework):
    name = "rq"
    title = "RQ"
    decorators = frozenset({"rq.decorators.job", "django_rq.job", "django_rq.decorators.job"})
    positional_options: ClassVar[dict[str, tuple[str, ...]]] = {
        "job": (
            "queue",
            "connection",
            "timeout",
            "result_ttl",
            "ttl",
            "queue_class",
            "depends_on",
            "at_front",
            "meta",
            "description",
            "failure_ttl",
            "retry",
        )
    }
    control_flow = frozenset({"JobTimeoutException"})
    enqueue_methods = frozenset({"enqueue", "enqueue_call", "enqueue_in", "enqueue_at", "delay"})

    def __init__(self) -> None:
        self.named_defaults: dict[str, Resolved] = {}
        """django-rq ``RQ_QUEUES[name]['DEFAULT_TIMEOUT']``, by queue name."""

    def prepare(self, project: Project) -> None:
        """django-rq queue defaults: ``RQ_QUEUES`` in the Django settings."""
        for module in project.django_settings_modules():
            setting = project.settings(module).get("RQ_QUEUES")
            if setting is None:
                continue
            if not isinstance(setting.value, Mapping):
                self.named_defaults["*"] = Resolved(
                    Unknown("RQ_QUEUES is computed at run time"), "settings.RQ_QUEUES"
                )
                continue
            for name, queue in setting.value.items:
                timeout = queue.get("DEFAULT_TIMEOUT") if isinstance(queue, Mapping) else None
                if isinstance(name, str) and timeout is not None:
                    self.named_defaults[name] = Resolved(
                        parse_timeout(project.resolver.evaluate(timeout)),
                        f"settings.RQ_QUEUES['{name}']['DEFAULT_TIMEOUT']",
                        setting.location,
                    )

    def time_limit(self, job: Job, project: Project) -> Resolved:
        """``timeout=`` on the decorator, else the default of every queue the job is put on.

        A queue named by a string in ``rq.decorators.job`` is a fresh ``Queue`` with
        RQ's 180 s default; django-rq looks the name up in ``RQ_QUEUES``; a ``Queue``
        object carries its own ``default_timeout``; ``enqueue(job_timeout=...)`` wins
        at its call.
        """
        timeout = job.options.get("timeout")
        if timeout is not None:
            return Resolved(parse_timeout(timeout.value), timeout.source, timeout.location)
        found: list[Resolved] = []
        if job.decorator_location is not None:
            django = _is_django_rq(job, project)
            queue = job.options.get("queue")
            if queue is not None:
                found.append(self._queue_timeout(queue.value, None, project, django))
            elif django:
                found.append(self._named("default", True))
        for site in project.sites_of(job, tests=False):
            call = site.site.call
            if site.method not in RQ_ENQUEUE_CALLS or called_on_job(call, job, project):
                continue  # ``report.enqueue(...)`` of an @job: its keywords go to the function
            key = "timeout" if site.method == "enqueue_call" else "job_timeout"
            given = call.kwarg(key)
            if given is not None:
                span = call.kwarg_span(key) or call.span
                found.append(
                    Resolved(
                        parse_timeout(project.resolver.evaluate(given)),
                        f"{site.method}({key}=...)",
                        Location(site.path, span),
                    )
                )
            elif call.star_kwargs:
                found.append(
                    Resolved(Unknown(f"{key} may be passed with **"), f"{site.method}(**...)")
                )
            else:
                found.append(self._receiver_timeout(call, site.function, site.path, project))
        if not found:
            return Resolved(DEFAULT_TIMEOUT, DEFAULT)
        if all(item.value == found[0].value for item in found):
            return found[0]
        return Resolved(
            Unknown("the job is put on queues with different timeouts"), "queue configuration"
        )

    def _named(self, name: str, django: bool) -> Resolved:
        if django:
            if "*" in self.named_defaults:
                return self.named_defaults["*"]
            if name in self.named_defaults:
                return self.named_defaults[name]
        return Resolved(DEFAULT_TIMEOUT, DEFAULT)

    def _receiver_timeout(
        self, call: Call, function: FunctionFacts | None, path: str, project: Project
    ) -> Resolved:
        func = call.func
        if isinstance(func, Attr):
            return self._queue_timeout(func.base, function, project, False, path)
        if isinstance(func, (Ref, Local)):
            receiver, _, _ = func.name.rpartition(".")
            if isinstance(func, Ref):
                if project.external_name(func) in {"django_rq.enqueue", "django_rq.queues.enqueue"}:
                    return self._named("default", True)
                return self._queue_timeout(Ref(receiver), function, project, False, path)
            return self._queue_timeout(Local(receiver), function, project, False, path)
        return Resolved(Unknown("the queue is chosen at run time"), "queue configuration")

    def _queue_timeout(
        self,
        queue: Value,
        function: FunctionFacts | None,
        project: Project,
        django: bool,
        path: str = "",
        depth: int = 0,
    ) -> Resolved:
        """The default timeout of the queue a value denotes (a name, a variable, ``Queue(...)``)."""
        resolver = project.resolver
        if isinstance(queue, str):
            return self._named(queue, django)
        if depth < 4 and isinstance(queue, Local) and function is not None:
            local = function.local(queue.name)
            if local is not None:
                return self._queue_timeout(local, function, project, django, path, depth + 1)
        if depth < 4 and isinstance(queue, Ref):
            symbol = resolver.lookup(queue.name)
            if isinstance(symbol, Assigned):
                return self._queue_timeout(
                    symbol.value, None, project, django, symbol.path, depth + 1
                )
        if isinstance(queue, Call):
            name = project.external_name(queue.func) or resolver.instance_class(queue) or ""
            if name in GET_QUEUE:
                given = queue.kwarg("default_timeout")
                if given is None:
                    target = queue.args[0] if queue.args else queue.kwarg("name")
                    target = resolver.evaluate(target) if target is not None else "default"
                    if isinstance(target, str):
                        return self._named(target, True)
            elif name in QUEUE_CLASSES:
                given = queue.kwarg("default_timeout")
                if given is None:
                    return Resolved(DEFAULT_TIMEOUT, DEFAULT)
            else:
                given = None
            if given is not None:
                span = queue.kwarg_span("default_timeout") or queue.span
                return Resolved(
                    parse_timeout(resolver.evaluate(given)),
                    "Queue(default_timeout=...)",
                    Location(path, span) if path else None,
                )
        return Resolved(Unknown("the queue is chosen at run time"), "queue configuration")

    def retry_of(self, job: Job, project: Project) -> Resolved:
        """The ``Retry(...)`` object a job runs with: on the decorator or at every enqueue call."""
        option = job.options.get("retry")
        if option is not None:
            return Resolved(option.value, option.source, option.location)
        site_values: list[Value] = []
        for site in project.sites_of(job, tests=False):
            if site.method in {"enqueue", "enqueue_call", "enqueue_in", "enqueue_at"}:
                call = site.site.call
                if call.kwarg("retry") is None and call.star_kwargs:
                    return Resolved(Unknown("retry= may be passed with **"), "enqueue call")
                site_values.append(project.resolver.evaluate(call.kwarg("retry")))
        if not site_values:
            return Resolved(None, DEFAULT)
        if all(value == site_values[0] for value in site_values):
            return Resolved(site_values[0], "enqueue call")
        return Resolved(Unknown("enqueue calls pass different retry= values"), "enqueue call")

    def policy(self, job: Job, project: Project) -> JobPolicy:
        retry = self.retry_of(job, project)
        max_attempts: Resolved
        backoff: Resolved
        if retry.value is None:
            max_attempts = Resolved(1, "no retry configured")
            backoff = Resolved(Backoff("none"), "no retry configured")
            retry_on = Resolved("none", "no retry configured")
        elif isinstance(retry.value, Call):
            call = retry.value
            maximum = (
                call.kwarg("max")
                if call.kwarg("max") is not None
                else (call.args[0] if call.args else None)
            )
            maximum = (
                project.resolver.evaluate(maximum)
                if maximum is not None
                else Unknown("Retry() without max")
            )
            if isinstance(maximum, int) and not isinstance(maximum, bool):
                max_attempts = Resolved(maximum + 1, retry.source, retry.location)
            else:
                max_attempts = Resolved(
                    Unknown("Retry(max=...) is not a constant"), retry.source, retry.location
                )
            interval = call.kwarg("interval")
            if interval is None and len(call.args) > 1:
                interval = call.args[1]
            backoff = Resolved(
                interval_backoff(project.resolver.evaluate(interval)), retry.source, retry.location
            )
            retry_on = Resolved("all", "RQ retries every exception")
        else:
            max_attempts = Resolved(
                Unknown("retry= is computed at run time"), retry.source, retry.location
            )
            backoff = max_attempts
            retry_on = Resolved("all", "RQ retries every exception")
        time_limit = self.time_limit(job, project)
        delivery = (
            Resolved("at-least-once", "Retry re-runs failed and abandoned jobs")
            if max_attempts.value != 1
            else Resolved("at-most-once", "a job lost with its worker is not retried")
        )
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            retry_on=retry_on,
            permanent=Resolved((), "RQ has no exception classification"),
            time_limit=time_limit,
            soft_time_limit=Resolved(None, "RQ has no soft limit"),
            delivery=delivery,
            idempotency_guard=idempotency_guard(job, project),
        )


def interval_backoff(value: Value) -> object:
    """The Backoff of ``Retry(interval=...)``: 0 (the default) is immediate, a scalar fixed."""
    if value is None or value == 0:
        return Backoff("immediate")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Backoff("fixed", float(value))
    if isinstance(value, Seq):
        numbers = [
            v for v in value.items if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if len(numbers) != len(value.items) or not numbers:
            return Unknown("interval list is not constant")
        if len(set(numbers)) == 1:
            return Backoff("fixed", float(numbers[0]))
        return Backoff("schedule", float(numbers[0]), float(numbers[-1]))
    return Unknown("interval is computed at run time")


def _is_django_rq(job: Job, project: Project) -> bool:
    """Whether the job's decorator is django-rq's, which reads queue settings by name."""
    for decorator in job.function.decorators:
        target = decorator.func if isinstance(decorator, Call) else decorator
        name = project.external_name(target) or ""
        if name.startswith("django_rq"):
            return True
    return False


def called_on_job(call: Call, job: Job, project: Project) -> bool:
    """``report.enqueue(...)`` / ``report.delay(...)`` on the ``@job`` function itself.

    rq's decorator gives the function these methods; they pass every keyword
    to the function and use the decorator's own queue and timeout.
    """
    func = call.func
    if not isinstance(func, Ref):
        return False
    symbol = project.resolver.lookup(func.name.rpartition(".")[0])
    return isinstance(symbol, ProjectFunction) and symbol.facts is job.function
