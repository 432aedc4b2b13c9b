"""taskiq (0.13; ``shared/reference/frameworks.md`` §1.6).

Any decorator keyword becomes a label, so typos are silent.  Nothing is retried
unless a retry middleware is installed *and* the task opts in
(``retry_on_error=True``, or the middleware's ``default_retry_label=True``);
``max_retries`` then counts attempts.  There is no default timeout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from jobaudit.discovery import iter_call_sites
from jobaudit.frameworks.base import DEFAULT, Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Resolved
from jobaudit.symbols import Assigned, seconds
from jobaudit.values import Attr, Call, Ref, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

SIMPLE = "SimpleRetryMiddleware"
SMART = "SmartRetryMiddleware"
LABELS = frozenset(
    {
        "task_name",
        "timeout",
        "retry_on_error",
        "max_retries",
        "delay",
        "priority",
        "ack_type",
        "schedule",
        "types_of_exceptions",
        "execution_timeout",
    }
)


class Middleware:
    """A retry middleware found on a broker: its class name and keyword arguments."""

    def __init__(self, kind: str, call: Call, path: str) -> None:
        self.kind = kind
        self.call = call
        self.location = Location(path, call.span)

    def kwarg(self, project: Project, name: str, default: object) -> object:
        value = self.call.kwarg(name)
        return default if value is None else project.resolver.evaluate(value)


class Taskiq(Framework):
    name = "taskiq"
    title = "taskiq"
    positional_options: ClassVar[dict[str, tuple[str, ...]]] = {"task": ("task_name",)}
    control_flow = frozenset({"TaskRejectedError"})
    enqueue_methods = frozenset({"kiq"})

    def __init__(self) -> None:
        self.middlewares: dict[str, Middleware | None] = {}

    def is_instance_decorator(self, cls: str, attrs: tuple[str, ...]) -> bool:
        return cls.split(".")[0].startswith("taskiq") and attrs == ("task",)

    def prepare(self, project: Project) -> None:
        resolver = project.resolver
        for facts in resolver.modules.values():
            for name, value, _ in facts.assigns:
                if resolver.instance_class(value) is None or not isinstance(value, Call):
                    continue
                cls = resolver.instance_class(value) or ""
                if cls.split(".")[0].startswith("taskiq"):
                    self.middlewares[f"{facts.module}.{name}"] = _chain_middleware(
                        project, value, facts.path
                    )
            for site, _ in iter_call_sites(facts):
                func = site.call.func
                if not isinstance(func, Ref) or not func.name.endswith(
                    ("add_middlewares", "with_middlewares")
                ):
                    continue
                symbol = resolver.lookup(func.name.rpartition(".")[0])
                if isinstance(symbol, Assigned):
                    key = f"{symbol.module}.{symbol.name}"
                    found = _middleware_in(project, site.call, facts.path)
                    if found is not None:
                        self.middlewares[key] = found

    def policy(self, job: Job, project: Project) -> JobPolicy:
        middleware = self.middlewares.get(job.app or "")
        retry_label = job.options.get("retry_on_error")
        opted_in: object = retry_label.value if retry_label is not None else None
        if middleware is not None and opted_in is None:
            opted_in = middleware.kwarg(project, "default_retry_label", False)
        max_attempts: Resolved
        if middleware is None or opted_in is not True:
            if isinstance(opted_in, Unknown):
                max_attempts = Resolved(opted_in, "retry_on_error")
            else:
                reason = (
                    "no retry middleware" if middleware is None else "retry_on_error is not set"
                )
                max_attempts = Resolved(1, reason)
            backoff = Resolved(Backoff("none"), max_attempts.source)
            retry_on = Resolved("none", max_attempts.source)
        else:
            label = job.options.get("max_retries")
            if label is not None:
                max_attempts = Resolved(label.value, label.source, label.location)
            else:
                max_attempts = Resolved(
                    middleware.kwarg(project, "default_retry_count", 3),
                    f"{middleware.kind}(default_retry_count)",
                    middleware.location,
                )
            types = middleware.call.kwarg("types_of_exceptions") or (
                job.options["types_of_exceptions"].value
                if "types_of_exceptions" in job.options
                else None
            )
            retry_on = Resolved(
                "all" if types is None else Unknown("types_of_exceptions"), middleware.kind
            )
            if middleware.kind == SIMPLE:
                backoff = Resolved(Backoff("immediate"), SIMPLE, middleware.location)
            else:
                delay = seconds(middleware.kwarg(project, "default_delay", 5))  # type: ignore[arg-type]
                jitter = middleware.kwarg(project, "use_jitter", False)
                exponent = middleware.kwarg(project, "use_delay_exponent", False)
                cap = seconds(middleware.kwarg(project, "max_delay_exponent", 60))  # type: ignore[arg-type]
                if not isinstance(delay, float):
                    backoff = Resolved(Unknown("default_delay is not a constant"), SMART)
                elif exponent is True:
                    backoff = Resolved(
                        Backoff(
                            "exponential",
                            delay,
                            cap if isinstance(cap, float) else None,
                            jitter is True,
                        ),
                        SMART,
                        middleware.location,
                    )
                else:
                    backoff = Resolved(
                        Backoff("fixed", delay, None, jitter is True), SMART, middleware.location
                    )
        timeout = job.options.get("timeout")
        time_limit = (
            Resolved(seconds(timeout.value), timeout.source, timeout.location)
            if timeout is not None
            else Resolved(None, DEFAULT)
        )
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            retry_on=retry_on,
            permanent=Resolved((), DEFAULT),
            time_limit=time_limit,
            soft_time_limit=Resolved(None, "taskiq has no soft limit"),
            delivery=Resolved(
                "at-least-once", "acknowledged when the result is saved (ack_type when_saved)"
            ),
            idempotency_guard=idempotency_guard(job, project),
        )


def _middleware_in(project: Project, call: Call, path: str) -> Middleware | None:
    for arg in call.args:
        if isinstance(arg, Call):
            name = project.external_name(arg.func) or ""
            kind = name.rpartition(".")[2]
            if kind in {SIMPLE, SMART}:
                return Middleware(kind, arg, path)
    return None


def _chain_middleware(project: Project, value: Value, path: str) -> Middleware | None:
    """The retry middleware of ``Broker(...).with_result_backend(...).with_middlewares(...)``."""
    while isinstance(value, Call):
        func = value.func
        if isinstance(func, Attr) and func.name in {"with_middlewares", "add_middlewares"}:
            found = _middleware_in(project, value, path)
            if found is not None:
                return found
        value = func.base if isinstance(func, Attr) else None
    return None
