"""Dramatiq (2.2.1; ``shared/reference/frameworks.md`` §1.3).

Every exception is retried, 20 times by default (21 executions), with
exponential backoff from 15 s to 7 days; the time limit is 10 minutes, in
milliseconds.  Middleware built by the project can change the defaults for
every actor, so a custom middleware that writes ``max_retries`` makes the
default unknown rather than 20.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.discovery import Discovery, Match, iter_call_sites
from jobaudit.facts import ClassFacts, FileFacts
from jobaudit.frameworks.base import DEFAULT, Framework, exception_names
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Option, Resolved
from jobaudit.symbols import External, InstanceAttr, ProjectClass
from jobaudit.values import Call, Lambda, Seq, Span, Unknown, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

DEFAULTS: dict[str, object] = {
    "max_retries": 20,
    "min_backoff": 15_000,
    "max_backoff": 604_800_000,
    "time_limit": 600_000,
}
MIDDLEWARE_DEFAULTS = {
    "dramatiq.middleware.Retries": ("max_retries", "min_backoff", "max_backoff"),
    "dramatiq.middleware.retries.Retries": ("max_retries", "min_backoff", "max_backoff"),
    "dramatiq.middleware.TimeLimit": ("time_limit",),
    "dramatiq.middleware.time_limit.TimeLimit": ("time_limit",),
}
MIDDLEWARE_BASES = frozenset({"dramatiq.Middleware", "dramatiq.middleware.Middleware"})
ACTOR_CLASSES = frozenset(
    {"dramatiq.GenericActor", "dramatiq.actor.GenericActor", "dramatiq.generic.GenericActor"}
)


class Dramatiq(Framework):
    name = "dramatiq"
    title = "Dramatiq"
    decorators = frozenset({"dramatiq.actor", "dramatiq.actor.actor"})
    control_flow = frozenset({"Retry"})
    enqueue_methods = frozenset({"send", "send_with_options"})

    def __init__(self) -> None:
        self.project_defaults: dict[str, Resolved] = {}
        self.without_retries: Resolved | None = None
        """Set when some broker runs a middleware list that leaves Retries out."""

    def class_job(
        self,
        project: Project,
        discovery: Discovery,
        facts: FileFacts,
        cls: ClassFacts,
        bases: list[str],
    ) -> Job | None:
        if not ACTOR_CLASSES.intersection(bases) or cls.method("perform") is None:
            return None
        # Dramatiq reads ``Meta`` with getattr, so a subclass without its own Meta
        # inherits its base's (``abstract = True`` included), but only the Meta's
        # own attributes become options.
        meta = project.resolver.class_member(ProjectClass(cls, facts.path), "Meta")
        options: list[Option] = []
        if isinstance(meta, ProjectClass):
            abstract = meta.facts.attr("abstract")
            if abstract is not None and abstract[0] is True:
                return None
            for name, value, span in meta.facts.attrs:
                options.append(
                    Option(
                        name,
                        project.resolver.evaluate(value),
                        value,
                        "class Meta",
                        Location(meta.path, span),
                    )
                )
        perform = cls.method("perform")
        assert perform is not None
        return discovery.make_job(
            facts, perform, Match(self, tuple(options), "GenericActor subclass"), None, cls
        )

    def prepare(self, project: Project) -> None:
        resolver = project.resolver
        for facts in resolver.modules.values():
            for site, _ in iter_call_sites(facts):
                if not resolver.may_be_framework(site.call.func):
                    continue
                symbol = resolver.symbol_of(site.call.func)
                if (
                    isinstance(symbol, External)
                    and symbol.name.startswith("dramatiq.brokers.")
                    and site.call.kwarg("middleware") is not None
                ):
                    where = site.call.kwarg_span("middleware") or site.call.span
                    self._middleware_list(project, site.call.kwarg("middleware"), facts, where)
                if not isinstance(symbol, External) or symbol.name not in MIDDLEWARE_DEFAULTS:
                    continue
                for key in MIDDLEWARE_DEFAULTS[symbol.name]:
                    value = site.call.kwarg(key)
                    if key in dict(site.call.kwargs):  # max_retries=None is a value too
                        self.project_defaults[key] = Resolved(
                            resolver.evaluate(value),
                            f"{symbol.name.rpartition('.')[2]} middleware",
                            Location(facts.path, site.call.kwarg_span(key) or site.call.span),
                        )
            for assign in facts.attr_assigns:
                target = resolver.symbol_of(assign.target)
                if (
                    isinstance(target, InstanceAttr)
                    and target.cls.startswith("dramatiq.brokers.")
                    and target.attrs == ("middleware",)
                ):
                    self._middleware_list(project, assign.value, facts, assign.span)
            for cls in facts.classes:
                bases = set(resolver.external_bases(ProjectClass(cls, facts.path)))
                if not bases & MIDDLEWARE_BASES:
                    continue
                for method in cls.methods:
                    for key in ("max_retries", "time_limit", "min_backoff", "max_backoff"):
                        if key in method.identifiers:
                            self.project_defaults[key] = Resolved(
                                Unknown(f"set at run time by middleware {cls.name}"),
                                f"middleware {cls.name}",
                                Location(facts.path, cls.span),
                            )

    def _middleware_list(
        self, project: Project, value: Value, facts: FileFacts, span: Span
    ) -> None:
        """A broker given its own middleware list runs only those: without ``Retries`` in
        it, nothing retries, so the default ``max_retries`` of 20 no longer holds."""
        listed = project.resolver.evaluate(value)
        names = [
            dotted(item.func if isinstance(item, Call) else item) or ""
            for item in (listed.items if isinstance(listed, Seq) else ())
        ]
        if isinstance(listed, Seq) and any(name.endswith("Retries") for name in names):
            return
        self.without_retries = Resolved(
            Unknown("a broker is given a middleware list without Retries"),
            "broker middleware",
            Location(facts.path, span),
        )

    def get(self, job: Job, key: str) -> Resolved:
        option = job.options.get(key)
        if option is not None:
            return Resolved(option.value, option.source, option.location)
        if key == "max_retries" and self.without_retries is not None:
            return self.without_retries
        if key in self.project_defaults:
            return self.project_defaults[key]
        return Resolved(DEFAULTS.get(key), DEFAULT)

    def policy(self, job: Job, project: Project) -> JobPolicy:
        max_retries = self.get(job, "max_retries")
        retry_when = job.options.get("retry_when")
        max_attempts: Resolved
        if retry_when is not None:
            if isinstance(retry_when.value, Lambda) and retry_when.value.constant is True:
                max_attempts = Resolved(
                    "unbounded", "retry_when always returns True", retry_when.location
                )
            elif isinstance(retry_when.value, Lambda) and retry_when.value.constant is False:
                max_attempts = Resolved(1, "retry_when always returns False", retry_when.location)
            else:
                max_attempts = Resolved(
                    Unknown("decided by retry_when at run time"), "retry_when", retry_when.location
                )
        elif max_retries.value is None:
            max_attempts = Resolved(
                "unbounded", f"max_retries=None ({max_retries.source})", max_retries.location
            )
        elif isinstance(max_retries.value, int) and not isinstance(max_retries.value, bool):
            max_attempts = Resolved(max_retries.value + 1, max_retries.source, max_retries.location)
        else:
            max_attempts = (
                max_retries
                if isinstance(max_retries.value, Unknown)
                else Resolved(
                    Unknown("max_retries is not an integer"),
                    max_retries.source,
                    max_retries.location,
                )
            )
        throws = job.options.get("throws")
        permanent_names = exception_names(throws.value, project) if throws is not None else ()
        permanent = Resolved(
            permanent_names,
            "throws" if throws is not None else DEFAULT,
            throws.location if throws is not None else None,
        )
        if max_attempts.value == 1:
            retry_on = Resolved("none", max_attempts.source)
            backoff = Resolved(Backoff("none"), max_attempts.source)
        else:
            retry_on = Resolved(
                "all" if retry_when is None else Unknown("decided by retry_when"),
                "Dramatiq retries every exception not in throws",
            )
            low, high = self.get(job, "min_backoff"), self.get(job, "max_backoff")
            if isinstance(low.value, (int, float)) and isinstance(high.value, (int, float)):
                backoff = Resolved(
                    Backoff("exponential", low.value / 1000, high.value / 1000, True),
                    low.source,
                    low.location,
                )
            else:
                backoff = Resolved(Unknown("min_backoff/max_backoff are not constants"), low.source)
        limit = self.get(job, "time_limit")
        if isinstance(limit.value, (int, float)) and not isinstance(limit.value, bool):
            time_limit = Resolved(limit.value / 1000, limit.source, limit.location)
        else:
            time_limit = limit
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            retry_on=retry_on,
            permanent=permanent,
            time_limit=time_limit,
            soft_time_limit=Resolved(None, "Dramatiq has no soft limit"),
            delivery=Resolved("at-least-once", "messages are acknowledged after processing"),
            idempotency_guard=idempotency_guard(job, project),
        )
