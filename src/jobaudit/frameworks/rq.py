"""RQ and django-rq (rq 3.0.0, django-rq 4.2.0; ``shared/reference/frameworks.md`` §1.2).

RQ retries nothing unless ``retry=Retry(max=N)`` is given, every job has a 180 s
timeout unless told otherwise (``-1`` means none), and ``enqueue()`` passes any
keyword it does not know, ``timeout=`` included, to the job function.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from jobaudit.frameworks.base import DEFAULT, Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Resolved
from jobaudit.symbols import External, seconds
from jobaudit.values import Call, Mapping, Seq, Unknown, Value

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
    positional_options = {
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
        self.queue_default: Resolved | None = None

    def prepare(self, project: Project) -> None:
        """Queue-level default timeouts: ``Queue(default_timeout=...)`` and django-rq ``RQ_QUEUES``."""
        values: list[Resolved] = []
        from jobaudit.discovery import iter_call_sites
        from jobaudit.model import Location

        for facts in project.resolver.modules.values():
            for site, _ in iter_call_sites(facts):
                call = site.call
                symbol = project.resolver.symbol_of(call.func)
                if isinstance(symbol, External) and symbol.name in {"rq.Queue", "rq.queue.Queue"}:
                    timeout = call.kwarg("default_timeout")
                    if timeout is not None:
                        values.append(
                            Resolved(
                                parse_timeout(project.resolver.evaluate(timeout)),
                                "Queue(default_timeout=...)",
                                Location(
                                    facts.path, call.kwarg_span("default_timeout") or call.span
                                ),
                            )
                        )
        for module in project.django_settings_modules():
            setting = project.settings(module).get("RQ_QUEUES")
            if setting is None:
                continue
            if not isinstance(setting.value, Mapping):
                values.append(
                    Resolved(Unknown("RQ_QUEUES is computed at run time"), "settings.RQ_QUEUES")
                )
                continue
            for _, queue in setting.value.items:
                timeout = queue.get("DEFAULT_TIMEOUT") if isinstance(queue, Mapping) else None
                if timeout is not None:
                    values.append(
                        Resolved(
                            parse_timeout(project.resolver.evaluate(timeout)),
                            "settings.RQ_QUEUES DEFAULT_TIMEOUT",
                            setting.location,
                        )
                    )
        if values:
            first = values[0]
            if all(v.value == first.value for v in values):
                self.queue_default = first
            else:
                self.queue_default = Resolved(
                    Unknown(
                        "queues have different default timeouts; the queue is chosen at run time"
                    ),
                    "queue configuration",
                )

    def retry_of(self, job: Job, project: Project) -> Resolved:
        """The ``Retry(...)`` object a job runs with: on the decorator or at every enqueue call."""
        option = job.options.get("retry")
        if option is not None:
            return Resolved(option.value, option.source, option.location)
        site_values: list[Value] = []
        for site in project.sites_of(job):
            if site.method in {"enqueue", "enqueue_call", "enqueue_in", "enqueue_at"}:
                site_values.append(project.resolver.evaluate(site.site.call.kwarg("retry")))
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
                _interval(project.resolver.evaluate(interval)), retry.source, retry.location
            )
            retry_on = Resolved("all", "RQ retries every exception")
        else:
            max_attempts = Resolved(
                Unknown("retry= is computed at run time"), retry.source, retry.location
            )
            backoff = max_attempts
            retry_on = Resolved("all", "RQ retries every exception")
        timeout = job.options.get("timeout")
        if timeout is not None:
            time_limit = Resolved(parse_timeout(timeout.value), timeout.source, timeout.location)
        elif self.queue_default is not None:
            time_limit = self.queue_default
        else:
            time_limit = Resolved(DEFAULT_TIMEOUT, DEFAULT)
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


def _interval(value: Value) -> object:
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
