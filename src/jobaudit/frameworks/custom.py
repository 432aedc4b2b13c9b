"""Home-grown job systems declared in ``[tool.jobaudit.custom]``.

jobaudit knows nothing of their defaults, so values not written on the
decorator are ``unknown`` and the rules that need them stay silent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.discovery import Discovery, Match
from jobaudit.facts import ClassFacts, FileFacts
from jobaudit.frameworks.base import Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Resolved
from jobaudit.symbols import ProjectClass, seconds
from jobaudit.values import Unknown

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
        self.enqueue_methods = frozenset(
            name.rpartition(".")[2] for name in config.enqueue_functions
        )

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
        return discovery.make_job(
            facts, run, Match(self, (), "subclass of a custom base class"), None, cls
        )

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
