"""arq (0.28; ``shared/reference/frameworks.md`` §1.5).

Jobs are plain ``async def`` functions listed in ``WorkerSettings.functions``
(optionally through ``func(...)``) or ``cron_jobs``.  Only ``raise Retry`` (and
cancellation) retries; ``max_tries`` counts attempts (5, cron 1); the job
timeout is 300 s.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.discovery import Discovery, Match
from jobaudit.facts import ClassFacts
from jobaudit.frameworks.base import DEFAULT, Framework, as_int
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Option, Resolved
from jobaudit.symbols import External, ProjectFunction, seconds
from jobaudit.values import Call, Ref, Seq, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

FUNC = frozenset({"arq.func", "arq.worker.func"})
CRON = frozenset({"arq.cron", "arq.cron.cron"})
RETRY = frozenset({"arq.Retry", "arq.worker.Retry"})
DEFAULT_TIMEOUT = 300.0
DEFAULT_TRIES = 5


class Arq(Framework):
    name = "arq"
    title = "arq"
    control_flow = frozenset({"Retry"})
    enqueue_methods = frozenset({"enqueue_job"})

    def __init__(self) -> None:
        self.settings_of: dict[str, ClassFacts] = {}
        self.settings_path: dict[str, str] = {}

    def registered_jobs(self, project: Project, discovery: Discovery) -> Iterator[Job]:
        resolver = project.resolver
        for facts in resolver.modules.values():
            if not any(target.startswith("arq") for _, target in facts.imports):
                continue
            for cls in facts.classes:
                for attr, cron in (("functions", False), ("cron_jobs", True)):
                    found = cls.attr(attr)
                    listed = resolver.evaluate(found[0]) if found is not None else None
                    if found is None or not isinstance(listed, Seq):
                        continue
                    for item in listed.items:
                        job = self._job(project, discovery, item, cron, facts.path, found[1])
                        if job is not None:
                            self.settings_of[job.qualname] = cls
                            self.settings_path[job.qualname] = facts.path
                            yield job

    def _job(
        self,
        project: Project,
        discovery: Discovery,
        item: Value,
        cron: bool,
        path: str,
        span: tuple[int, int, int, int],
    ) -> Job | None:
        resolver = project.resolver
        options: list[Option] = []
        target: Value = item
        declaration = "WorkerSettings.cron_jobs" if cron else "WorkerSettings.functions"
        if isinstance(item, Call):
            symbol = resolver.symbol_of(item.func)
            if (
                not isinstance(symbol, External)
                or symbol.name not in (FUNC | CRON)
                or not item.args
            ):
                return None
            target = item.args[0]
            source = "cron()" if symbol.name in CRON else "func()"
            declaration = f"{declaration} ({source})"
            for key, value in item.kwargs:
                span_kw = item.kwarg_span(key)
                options.append(
                    Option(
                        key,
                        resolver.evaluate(value),
                        value,
                        source,
                        Location(path, span_kw) if span_kw else None,
                    )
                )
            cron = cron or symbol.name in CRON
        if isinstance(target, str):
            target_symbol = resolver.lookup(target)
        elif isinstance(target, Ref):
            target_symbol = resolver.lookup(target.name)
        else:
            return None
        if not isinstance(target_symbol, ProjectFunction):
            return None
        if cron:
            options.append(Option("__cron__", True, True, declaration))
        function = target_symbol.facts
        module_facts = resolver.modules[function.module]
        return discovery.make_job(
            module_facts, function, Match(self, tuple(options), declaration), None
        )

    def _setting(self, job: Job, name: str, default: object) -> Resolved:
        cls = self.settings_of.get(job.qualname)
        if cls is not None:
            found = cls.attr(name)
            if found is not None:
                path = self.settings_path[job.qualname]
                return Resolved(found[0], f"{cls.name}.{name}", Location(path, found[1]))
        return Resolved(default, DEFAULT)

    def policy(self, job: Job, project: Project) -> JobPolicy:
        resolver = project.resolver
        tries_option = job.options.get("max_tries")
        cron = "__cron__" in job.options
        if tries_option is not None:
            tries = Resolved(tries_option.value, tries_option.source, tries_option.location)
        elif cron:
            tries = Resolved(1, "cron() default")
        else:
            tries = self._setting(job, "max_tries", DEFAULT_TRIES)
            tries = Resolved(resolver.evaluate(tries.value), tries.source, tries.location)  # type: ignore[arg-type]
        retry_raises = [
            r
            for r in job.function.raises
            if isinstance(r.value, Call) and project.external_name(r.value.func) in RETRY
        ]
        if retry_raises:
            retry_on = Resolved(("arq.Retry",), "raise Retry")
            defers = [
                r.value.kwarg("defer") if isinstance(r.value, Call) else None for r in retry_raises
            ]
            if all(d is None for d in defers) and not any(
                isinstance(r.value, Call) and r.value.args for r in retry_raises
            ):
                backoff = Resolved(Backoff("immediate"), "Retry() without defer")
            else:
                backoff = Resolved(
                    Unknown("Retry(defer=...) is computed at run time"), "raise Retry"
                )
        else:
            retry_on = Resolved("none", "arq retries only on raise Retry")
            backoff = Resolved(Backoff("none"), "no raise Retry")
        timeout_option = job.options.get("timeout")
        if timeout_option is not None and timeout_option.value is not None:  # None: worker's
            timeout = Resolved(timeout_option.value, timeout_option.source, timeout_option.location)
        else:
            timeout = self._setting(job, "job_timeout", DEFAULT_TIMEOUT)
            timeout = Resolved(resolver.evaluate(timeout.value), timeout.source, timeout.location)  # type: ignore[arg-type]
        limit = seconds(timeout.value)  # type: ignore[arg-type]
        return JobPolicy(
            max_attempts=as_int(tries),
            backoff=backoff,
            retry_on=retry_on,
            permanent=Resolved((), "every exception but Retry fails the job"),
            time_limit=Resolved(limit, timeout.source, timeout.location),
            soft_time_limit=Resolved(None, "arq has no soft limit"),
            delivery=Resolved("at-least-once", "arq re-runs jobs cancelled at shutdown"),
            idempotency_guard=idempotency_guard(job, project),
        )
