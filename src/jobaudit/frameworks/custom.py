"""Home-grown job systems declared in ``[tool.jobaudit.custom]``.

jobaudit knows nothing of their defaults, so values not written on the
decorator are ``unknown`` and the rules that need them stay silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.discovery import Discovery, Match, iter_call_sites
from jobaudit.facts import ClassFacts, FileFacts
from jobaudit.frameworks.base import Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Option, Resolved
from jobaudit.symbols import ProjectClass, ProjectFunction, seconds
from jobaudit.values import Ref, Unknown

if TYPE_CHECKING:
    from jobaudit.config import CustomConfig
    from jobaudit.project import Project

NOT_KNOWN = "custom job system: its default is not known"


class Custom(Framework):
    name = "custom"
    title = "custom"

    def __init__(self, config: CustomConfig) -> None:
        self.config = config
        self.decorator_names = frozenset(config.decorators)

    def registered_jobs(self, project: Project, discovery: Discovery) -> Iterator[Job]:
        """Plain functions handed to an ``enqueue-functions`` entry: ``dispatch(send_mail, ...)``.

        The first argument names the job, as a function or a dotted string.
        """
        wanted = set(self.config.enqueue_functions)
        if not wanted:
            return
        resolver = project.resolver
        for facts in resolver.modules.values():
            for site, _ in iter_call_sites(facts):
                call = site.call
                if not call.args or not isinstance(call.func, Ref):
                    continue
                called = resolver.lookup(call.func.name)
                name = (
                    f"{called.facts.module}.{called.facts.qualname}"
                    if isinstance(called, ProjectFunction)
                    else call.func.name
                )
                if name not in wanted:
                    continue
                target = call.args[0]
                symbol = (
                    resolver.lookup(target)
                    if isinstance(target, str)
                    else resolver.symbol_of(target)
                )
                if not isinstance(symbol, ProjectFunction):
                    continue
                match = Match(self, (), f"enqueued by {name}() in {facts.path}")
                module = resolver.modules[symbol.facts.module]
                yield discovery.make_job(module, symbol.facts, match, None)

    def class_job(
        self,
        project: Project,
        discovery: Discovery,
        facts: FileFacts,
        cls: ClassFacts,
        bases: list[str],
    ) -> Job | None:
        run = cls.method("run")
        if run is None:
            return None
        wanted = set(self.config.base_classes)
        own_bases = {
            f"{klass.module}.{klass.qualname}"
            for klass, _ in project.resolver.mro(ProjectClass(cls, facts.path))
        }
        if not (wanted & set(bases) or wanted & (own_bases - {f"{facts.module}.{cls.qualname}"})):
            return None
        options: dict[str, Option] = {}
        for klass, path in project.resolver.mro(ProjectClass(cls, facts.path)):
            for name in (*self.config.retry_options, *self.config.timeout_options):
                found = klass.attr(name)
                if found is not None and name not in options:
                    written, span = found
                    options[name] = Option(
                        name,
                        project.resolver.evaluate(written),
                        written,
                        f"class {klass.name}",
                        Location(path, span),
                    )
        match = Match(self, tuple(options.values()), "subclass of a custom base class")
        return discovery.make_job(facts, run, match, None, cls)

    def _first(self, job: Job, names: tuple[str, ...]) -> Resolved | None:
        for name in names:
            option = job.options.get(name)
            if option is not None:
                return Resolved(option.value, option.source, option.location)
        return None

    def policy(self, job: Job, project: Project) -> JobPolicy:
        retries = self._first(job, self.config.retry_options)
        if retries is None:
            max_attempts = Resolved(Unknown(NOT_KNOWN), "custom")
        elif isinstance(retries.value, int) and not isinstance(retries.value, bool):
            max_attempts = Resolved(retries.value + 1, retries.source, retries.location)
        elif retries.value is None:
            max_attempts = Resolved("unbounded", retries.source, retries.location)
        else:
            max_attempts = Resolved(
                Unknown("retry option is not a constant"), retries.source, retries.location
            )
        timeout = self._first(job, self.config.timeout_options)
        time_limit = (
            Resolved(Unknown(NOT_KNOWN), "custom")
            if timeout is None
            else Resolved(seconds(timeout.value), timeout.source, timeout.location)  # type: ignore[arg-type]
        )
        unknown = Resolved(Unknown(NOT_KNOWN), "custom")
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=unknown if max_attempts.value != 1 else Resolved(Backoff("none"), "custom"),
            retry_on=unknown,
            permanent=Resolved((), "custom"),
            time_limit=time_limit,
            soft_time_limit=unknown,
            delivery=unknown,
            idempotency_guard=idempotency_guard(job, project),
        )
