"""How a project sees its jobs fail and measures them: the facts behind JOB5xx.

Error tracking and metrics are project properties: one ``sentry_sdk.init`` in
a settings module covers every Celery task, one middleware added to a
Dramatiq broker sees every actor.  This module looks for them once per
project, over the facts every file already has (calls, decorators, class
bases and methods, imports) and the deployment files' command lines, and
records each piece of evidence with the frameworks it covers and where it is.
The rules and the readiness report read the result instead of scanning again.

Evidence is collected generously: a hook that *might* report (a Sentry
``init`` given ``**options``, an APM agent imported anywhere) counts, because
these rules report an absence, and claiming that a project has no error
tracking when it has some is the worst mistake they can make.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobaudit.discovery import iter_call_sites
from jobaudit.facts import ClassFacts, FileFacts, FunctionFacts, all_functions
from jobaudit.frameworks.arq import Arq
from jobaudit.frameworks.celery import TASK_CLASSES, Celery
from jobaudit.model import Location
from jobaudit.per_project import per_project
from jobaudit.project import is_test_path
from jobaudit.symbols import Assigned, External, InstanceAttr, ProjectClass
from jobaudit.values import Attr, Call, Local, Ref, Seq, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

TRACKING, METRICS = "error tracking", "metrics"

FRAMEWORKS = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks")
"""The frameworks these rules judge (Temporal and custom systems have their own tooling)."""

SENTRY_AUTO = frozenset({"celery", "rq", "huey", "arq"})
"""Frameworks whose sentry-sdk integration is enabled by ``sentry_sdk.init`` on its own."""
SENTRY_INTEGRATIONS = {
    "CeleryIntegration": "celery",
    "RqIntegration": "rq",
    "DramatiqIntegration": "dramatiq",
    "HueyIntegration": "huey",
    "ArqIntegration": "arq",
}
DDTRACE = frozenset({"celery", "rq", "dramatiq"})
"""Frameworks ddtrace instruments (frameworks.md §1.10)."""
OTEL_AUTO = frozenset({"celery", "rq", "dramatiq", "arq", "taskiq"})
"""Frameworks with an OpenTelemetry instrumentation ``opentelemetry-instrument`` can load."""
INSTRUMENTORS = {
    "CeleryInstrumentor": "celery",
    "RQInstrumentor": "rq",
    "RqInstrumentor": "rq",
    "DramatiqInstrumentor": "dramatiq",
    "ArqInstrumentor": "arq",
    "TaskiqInstrumentor": "taskiq",
}
APM_AGENTS: tuple[str, ...] = (
    *("raven", "rollbar", "bugsnag", "honeybadger", "airbrake", "newrelic", "elasticapm"),
    *("scout_apm", "logfire", "appsignal", "ddtrace.auto"),
)
"""Error-tracking and APM agents other than Sentry: importing one is taken as error tracking."""
METRIC_LIBRARIES: tuple[str, ...] = (
    *("prometheus_client", "statsd", "datadog", "opentelemetry.metrics"),
    *("aioprometheus", "prometheus_async", "arq_prometheus", "huey.contrib.stats"),
)
METRIC_WORDS = frozenset({"metrics", "prometheus", "statsd", "telemetry", "opentelemetry"})
"""Parts of a library's module path that say it records metrics (``safir.metrics.arq``)."""
CELERY_FAILURE_SIGNALS = frozenset({"task_failure"})
CELERY_EVENT_SETTINGS = frozenset(
    {"CELERY_WORKER_SEND_TASK_EVENTS", "worker_send_task_events", "CELERYD_SEND_EVENTS"}
)
"""Task events in a settings or config module the Celery app may not read through ``app.conf``."""
DJANGO_TASK_SIGNALS = frozenset({"django.tasks.signals", "django_tasks.signals"})
DRAMATIQ_MIDDLEWARE = frozenset({"dramatiq.Middleware", "dramatiq.middleware.Middleware"})
DRAMATIQ_FAILURE_HOOKS = ("after_process_message", "after_skip_message")
TASKIQ_MIDDLEWARE = frozenset({"taskiq.TaskiqMiddleware", "taskiq.abc.middleware.TaskiqMiddleware"})
ARQ_HOOKS = ("on_job_end", "after_job_end")
HUEY_WORDS = frozenset({"huey", "django_huey", "djhuey"})
HUEY_ALL = "*"
"""``@huey.signal()`` with no argument: the handler receives every signal."""
EXHAUSTION_WORDS = {
    "rq": frozenset({"retries_left", "FailedJobRegistry", "failed_job_registry"}),
    "dramatiq": frozenset({"dead_letter", "dead_letters", "get_dead_letters", "DeadLetter"}),
}
"""Words of a function body that watch exhausted jobs: RQ's remaining retries and failed
registry, Dramatiq's dead-letter queue."""
_HUEY_SIGNAL = re.compile(r"SIGNAL_([A-Z_]+)$")


@dataclass(frozen=True)
class Evidence:
    """One thing that reports failures or measures jobs, and which frameworks it covers."""

    kind: str
    """``error tracking`` or ``metrics``."""
    what: str
    """For people: ``sentry_sdk.init``, ``task_failure handler notify``..."""
    location: Location
    frameworks: frozenset[str]


@dataclass
class Observability:
    evidence: list[Evidence] = field(default_factory=list)
    huey_signals: dict[str, Location] = field(default_factory=dict)
    """Huey signals some handler receives (``error``, ``interrupted``; ``*`` for all)."""
    sentry: list[Location] = field(default_factory=list)
    """Every ``sentry_sdk.init`` outside the tests."""
    exhaustion: dict[str, list[Location]] = field(default_factory=dict)
    """Per framework, code that watches jobs whose retries ran out: a Dramatiq middleware
    reading retries or dead letters, an RQ handler reading ``retries_left``..."""
    unknown: str | None = None
    """Why what the project sets up cannot be known (the rules then stay silent)."""

    def found(self, kind: str, framework: str) -> list[Evidence]:
        return [e for e in self.evidence if e.kind == kind and framework in e.frameworks]

    def huey_handles(self, *signals: str) -> bool:
        return HUEY_ALL in self.huey_signals or any(s in self.huey_signals for s in signals)


@per_project
def observability(project: Project) -> Observability:
    """The project's error tracking and metrics, computed once per project."""
    return _Collector(project).run()


def used_frameworks(project: Project) -> list[str]:
    """The judged frameworks that have jobs, in a fixed order."""
    present = {job.framework for job in project.jobs}
    return [name for name in FRAMEWORKS if name in present]


@dataclass(frozen=True)
class Gap:
    """A framework in use with no evidence of one kind (error tracking or metrics)."""

    framework: str
    where: Location
    """Its app or broker definition (:func:`anchor`)."""
    jobs: int
    noun: str
    """``tasks``, ``actors``, ``job``...: what the framework calls its jobs, with the count."""


def gaps(project: Project, kind: str) -> Iterator[Gap]:
    """The frameworks with jobs and no evidence of ``kind``; none while the project's settings
    cannot be read whole (``Observability.unknown``), as an init may hide there."""
    found = observability(project)
    if found.unknown is not None:
        return
    for framework in used_frameworks(project):
        if found.found(kind, framework):
            continue
        where = anchor(project, framework)
        if where is None:
            continue
        jobs = project.jobs_of(framework)
        noun = jobs[0].noun.lower() + ("s" if len(jobs) > 1 else "")
        yield Gap(framework, where, len(jobs), noun)


def anchor(project: Project, framework: str) -> Location | None:
    """Where a project finding about ``framework`` points: its app or broker definition.

    Celery: the first ``Celery(...)`` app; without one (tasks made with
    ``shared_task`` whose app is outside the scanned files) there is nothing
    to point at, so None.  Others: the broker, instance, ``WorkerSettings``,
    ``TASKS`` setting or RQ worker when the project has one, else the first job.
    """
    jobs = sorted(project.jobs_of(framework), key=lambda job: (job.path, job.location.span))
    if framework == "celery":
        celery = project.framework("celery")
        apps = (
            sorted(celery.apps.values(), key=lambda app: app.location)
            if isinstance(celery, Celery)
            else []
        )
        return apps[0].location if apps else None
    if not jobs:
        return None
    for job in jobs:
        symbol = project.resolver.lookup(job.app) if job.app is not None else None
        if isinstance(symbol, Assigned):
            return Location(symbol.path, symbol.span)
    arq = project.framework("arq")
    if framework == "arq" and isinstance(arq, Arq):
        for job in jobs:
            cls = arq.settings_of.get(job.qualname)
            if cls is not None:
                return Location(arq.settings_path[job.qualname], cls.span)
    if framework == "django_tasks":
        for module in project.django_settings_modules():
            setting = project.settings(module).get("TASKS")
            if setting is not None:
                return setting.location
    built = _constructed(project, framework)
    if built is not None:
        return built
    first = jobs[0]
    return first.decorator_location or first.location


def anchors(project: Project) -> dict[Location, str]:
    """Each used framework's anchor, for the readiness report to share a finding out."""
    out: dict[Location, str] = {}
    for framework in used_frameworks(project):
        where = anchor(project, framework)
        if where is not None:
            out.setdefault(where, framework)
    return out


_BUILT = {
    "dramatiq": ("dramatiq.brokers.", "dramatiq.broker"),
    "huey": ("huey.",),
    "rq": ("rq.Worker", "rq.worker.", "rq.SimpleWorker"),
    "taskiq": ("taskiq",),
}


def _constructed(project: Project, framework: str) -> Location | None:
    """The first broker / instance / queue the project builds outside its tests."""
    prefixes = _BUILT.get(framework)
    if prefixes is None:
        return None
    resolver = project.resolver
    for facts in _production(project):
        for _, value, span in facts.assigns:
            cls = resolver.instance_class(value) or ""
            if cls.startswith(prefixes) and not cls.endswith(("Middleware", "Integration")):
                return Location(facts.path, span)
        for site, _ in iter_call_sites(facts):
            name = _name_of(project, site.call.func)
            if name in {"dramatiq.set_broker", "dramatiq.broker.set_broker"} or (
                framework == "rq" and name.startswith(prefixes)
            ):
                return Location(facts.path, site.call.span)
    return None


def _production(project: Project) -> Iterator[FileFacts]:
    for facts in sorted(project.resolver.modules.values(), key=lambda f: f.path):
        if not is_test_path(facts.path, project.config.test_paths):
            yield facts


def _name_of(project: Project, value: Value) -> str:
    """The dotted name a called or decorating value denotes, through imports and instances."""
    symbol = project.resolver.symbol_of(value)
    if isinstance(symbol, External):
        return symbol.name
    if isinstance(symbol, InstanceAttr):
        return ".".join((symbol.cls, *symbol.attrs))
    if isinstance(value, Attr) and isinstance(value.base, Call):
        base = _name_of(project, value.base.func)
        return f"{base}().{value.name}" if base else ""
    if isinstance(value, Ref):
        return value.name
    return ""


def _line_of(facts: FileFacts, word: str) -> Location:
    """The first line mentioning ``word`` (imports keep no position in the facts)."""
    for number, line in enumerate(facts.lines, start=1):
        if word in line and "import" in line:
            return Location(facts.path, (number, 0, number, len(line.encode("utf-8"))))
    return Location(facts.path, (1, 0, 1, 0))


class _Collector:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.resolver = project.resolver
        self.out = Observability()
        self.hook_modules: dict[str, set[str]] = {}
        """Per module, the frameworks it hooks into (for metrics used in hooks)."""
        self.instantiated: set[str] = set()
        self.modules = list(_production(project))

    def run(self) -> Observability:
        for facts in self.modules:
            for site, function in iter_call_sites(facts):
                self.call(facts, site.call, function)
        for facts in self.modules:
            self.imports(facts)
            for function in all_functions(facts):
                self.decorators(facts, function)
                self.exhaustion(facts, function)
            stack = list(facts.classes)
            while stack:
                cls = stack.pop()
                stack.extend(cls.inner)
                self.klass(facts, cls)
            for name, value, span in facts.assigns:
                self.setting(facts, name, value, span)
        self.sentry_helpers()
        self.celery_bases()
        self.celery_events()
        self.deploy()
        self.metrics_in_hooks()
        self.settings_complete()
        return self.out

    def add(self, kind: str, what: str, location: Location, frameworks: frozenset[str]) -> None:
        if frameworks:
            self.out.evidence.append(Evidence(kind, what, location, frameworks))

    def hook(self, module: str, framework: str) -> None:
        self.hook_modules.setdefault(module, set()).add(framework)

    # -- calls ---------------------------------------------------------------------------------

    def call(self, facts: FileFacts, call: Call, function: FunctionFacts | None) -> None:
        name = _name_of(self.project, call.func)
        where = Location(facts.path, call.span)
        symbol = self.resolver.symbol_of(call.func)
        if isinstance(symbol, ProjectClass):
            self.instantiated.add(f"{symbol.facts.module}.{symbol.facts.qualname}")
        last = name.rpartition(".")[2]
        head = name.rpartition(".")[0]
        if name in {"sentry_sdk.init", "sentry_sdk.client.init"}:
            self.sentry(call, function, where)
        elif name in {"ddtrace.patch_all", "ddtrace._monkey.patch_all"}:
            self.add(TRACKING, "ddtrace.patch_all()", where, DDTRACE)
        elif name == "ddtrace.patch":
            chosen = {key for key, value in call.kwargs if value is not False} & DDTRACE
            self.add(TRACKING, "ddtrace.patch()", where, frozenset(chosen))
        elif last == "instrument" and head.rstrip("()").rpartition(".")[2] in INSTRUMENTORS:
            self.instrumentor(head.rstrip("()").rpartition(".")[2], where)
        elif last == "connect" and head.startswith("celery.signals."):
            self.hook(facts.module, "celery")
            if head.rpartition(".")[2] in CELERY_FAILURE_SIGNALS:
                self.add(TRACKING, "task_failure handler", where, frozenset({"celery"}))
        elif name.endswith(".connect") and head.rpartition(".")[0] in DJANGO_TASK_SIGNALS:
            self.hook(facts.module, "django_tasks")
            if head.endswith(".task_finished"):
                self.add(TRACKING, "task_finished handler", where, frozenset({"django_tasks"}))
        elif last == "push_exc_handler" or (
            call.kwarg("exception_handlers") is not None and "Worker" in name
        ):
            self.add(TRACKING, "RQ exception handler", where, frozenset({"rq"}))
        elif last == "connect_signal" and name.startswith("huey."):
            self.huey_signal(call.args[1:], where, facts.module, call)
        elif last == "signal" and name.startswith(("huey.", "django_huey.")):
            self.huey_signal(call.args, where, facts.module, call)
        elif (
            isinstance(call.func, Local)
            and call.func.name == "signal"
            and function is not None
            and function.identifiers.any_of(HUEY_WORDS)
        ):  # ``from django_huey import signal`` inside the function that registers handlers
            self.huey_signal(call.args, where, facts.module, call)
        elif name.startswith("arq.") and any(call.kwarg(hook) is not None for hook in ARQ_HOOKS):
            self.add(TRACKING, "arq job-end hook", where, frozenset({"arq"}))
        elif last == "Prometheus" and name.startswith("dramatiq.middleware"):
            self.add(METRICS, "Prometheus middleware", where, frozenset({"dramatiq"}))
        elif name.startswith("taskiq") and last == "PrometheusMiddleware":
            self.add(METRICS, "PrometheusMiddleware", where, frozenset({"taskiq"}))
        elif name.startswith("taskiq") and last == "OpenTelemetryMiddleware":
            self.add(TRACKING, "OpenTelemetryMiddleware", where, frozenset({"taskiq"}))
            self.add(METRICS, "OpenTelemetryMiddleware", where, frozenset({"taskiq"}))

    def instrumentor(self, cls: str, where: Location) -> None:
        framework = INSTRUMENTORS[cls]
        self.add(TRACKING, f"OpenTelemetry {cls}", where, frozenset({framework}))
        if framework in {"celery", "taskiq"}:
            self.add(METRICS, f"OpenTelemetry {cls}", where, frozenset({framework}))

    def sentry(self, call: Call, function: FunctionFacts | None, where: Location) -> None:
        """``sentry_sdk.init``: which frameworks its failures reach Sentry from.

        Celery, RQ, Huey and arq have integrations that init enables by itself.
        Every framework's worker also logs a failed job at ERROR with its
        traceback (Dramatiq's worker, taskiq's receiver, the ``django.tasks``
        logger), and Sentry's default LoggingIntegration turns such records into
        events.  ``default_integrations=False`` turns off both the defaults and
        the auto-enabled integrations (sentry_sdk ``setup_integrations``);
        ``LoggingIntegration(event_level=None)`` or ``disabled_integrations``
        close a route too; what is listed in ``integrations`` stays on.
        """
        self.out.sentry.append(where)
        integrations = self._integrations(call, function)
        if integrations is None:
            self.add(TRACKING, "sentry_sdk.init", where, frozenset(FRAMEWORKS))
            return
        disabled = self._disabled(call)
        listed = {
            SENTRY_INTEGRATIONS[name]
            for name in integrations
            if name in SENTRY_INTEGRATIONS and name not in disabled
        }
        defaults = self.resolver.evaluate(call.kwarg("default_integrations")) is not False
        auto = defaults and self._flag(call, "auto_enabling_integrations")
        covered = set(listed)
        if auto:
            covered |= {SENTRY_INTEGRATIONS[n] for n in SENTRY_INTEGRATIONS if n not in disabled}
            covered &= set(listed) | SENTRY_AUTO
        if "LoggingIntegration" not in disabled and self._logging_route(integrations, defaults):
            covered |= set(FRAMEWORKS)
        self.add(TRACKING, "sentry_sdk.init", where, frozenset(covered))

    def _flag(self, call: Call, name: str) -> bool:
        return self.resolver.evaluate(call.kwarg(name)) is not False

    def _disabled(self, call: Call) -> set[str]:
        """``disabled_integrations=[...]`` by class name (an unknown list disables nothing)."""
        value = self.resolver.evaluate(call.kwarg("disabled_integrations"))
        if not isinstance(value, Seq):
            return set()
        out = set()
        for item in value.items:
            func = item.func if isinstance(item, Call) else item
            out.add(_name_of(self.project, func).rpartition(".")[2])
        return out

    def _integrations(self, call: Call, function: FunctionFacts | None) -> dict[str, Call] | None:
        """The integrations listed by name, or None when the list is not known statically."""
        if call.star_args or call.star_kwargs:
            return None
        value = call.kwarg("integrations")
        if isinstance(value, Local) and function is not None:
            value = function.local(value.name)
        value = self.resolver.evaluate(value)
        if value is None:
            return {}
        if not isinstance(value, Seq):
            return None
        out: dict[str, Call] = {}
        for item in value.items:
            if not isinstance(item, Call):
                return None
            name = _name_of(self.project, item.func).rpartition(".")[2]
            if not name:
                return None
            out[name] = item
        return out

    def _logging_route(self, integrations: dict[str, Call], defaults: bool) -> bool:
        """Whether ERROR log records become Sentry events."""
        logging = integrations.get("LoggingIntegration")
        if logging is not None:
            return not (
                "event_level" in dict(logging.kwargs) and logging.kwarg("event_level") is None
            )
        return defaults

    def huey_signal(
        self, args: tuple[Value, ...], where: Location, module: str, call: Call | None = None
    ) -> None:
        self.hook(module, "huey")
        names: list[str] = []
        if not args and (call is None or not call.star_args):
            names.append(HUEY_ALL)
        for arg in args:
            value = self.resolver.evaluate(arg) if not isinstance(arg, Ref) else arg
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, Ref):
                match = _HUEY_SIGNAL.search(value.name.rpartition(".")[2])
                names.append(match.group(1).lower().replace("_", "-") if match else HUEY_ALL)
            else:
                names.append(HUEY_ALL)
        for name in names:
            self.out.huey_signals.setdefault(name, where)
        if HUEY_ALL in names or "error" in names:
            self.add(TRACKING, "Huey error signal handler", where, frozenset({"huey"}))

    # -- imports, decorators, classes, settings ------------------------------------------------

    def imports(self, facts: FileFacts) -> None:
        for _, target in facts.imports:
            for agent in APM_AGENTS:
                if target == agent or target.startswith(agent + "."):
                    frameworks = DDTRACE if agent == "ddtrace.auto" else frozenset(FRAMEWORKS)
                    if any(e.what == f"{agent} agent" for e in self.out.evidence):
                        continue  # one place is enough to show an agent is set up
                    where = _line_of(facts, agent.partition(".")[0])
                    self.add(TRACKING, f"{agent} agent", where, frozenset(frameworks))
            if target.startswith("huey.contrib.stats"):
                self.add(
                    METRICS, "huey.contrib.stats", _line_of(facts, "stats"), frozenset({"huey"})
                )

    def decorators(self, facts: FileFacts, function: FunctionFacts) -> None:
        for value, span in zip(function.decorators, function.decorator_spans, strict=False):
            where = Location(facts.path, span)
            func = value.func if isinstance(value, Call) else value
            name = _name_of(self.project, func)
            head, _, last = name.rpartition(".")
            if last == "connect" and head.startswith("celery.signals."):
                self.hook(facts.module, "celery")
                if head.rpartition(".")[2] in CELERY_FAILURE_SIGNALS:
                    self.add(
                        TRACKING,
                        f"task_failure handler {function.name}",
                        where,
                        frozenset({"celery"}),
                    )
            elif name in {"django.dispatch.receiver", "django.dispatch.dispatcher.receiver"}:
                args = value.args if isinstance(value, Call) else ()
                signals = [_name_of(self.project, arg) for arg in args]
                for signal in signals:
                    if signal.rpartition(".")[0] in DJANGO_TASK_SIGNALS:
                        self.hook(facts.module, "django_tasks")
                    if signal.rpartition(".")[0] in DJANGO_TASK_SIGNALS and signal.endswith(
                        ".task_finished"
                    ):
                        self.add(
                            TRACKING,
                            f"task_finished receiver {function.name}",
                            where,
                            frozenset({"django_tasks"}),
                        )
            elif last == "signal" and (name.startswith("huey.") or name.startswith("django_huey.")):
                self.huey_signal(
                    value.args if isinstance(value, Call) else (),
                    where,
                    facts.module,
                    value if isinstance(value, Call) else None,
                )

    def exhaustion(self, facts: FileFacts, function: FunctionFacts) -> None:
        """Code that reads what is left of a job's retries, or its dead letters."""
        words = function.identifiers
        where = Location(facts.path, function.span)
        if words.any_of(EXHAUSTION_WORDS["rq"]):
            self.out.exhaustion.setdefault("rq", []).append(where)
        if words.any_of(EXHAUSTION_WORDS["dramatiq"]):
            self.out.exhaustion.setdefault("dramatiq", []).append(where)

    def klass(self, facts: FileFacts, cls: ClassFacts) -> None:
        symbol = ProjectClass(cls, facts.path)
        bases = set(self.resolver.external_bases(symbol))
        methods = {
            m.name: (m, path) for klass, path in self.resolver.mro(symbol) for m in klass.methods
        }
        key = f"{facts.module}.{cls.qualname}"
        if bases & DRAMATIQ_MIDDLEWARE:
            self.hook(facts.module, "dramatiq")
            if "after_nack" in methods or any(
                m.identifiers.any_of(("retries", "max_retries")) for m, _ in methods.values()
            ):
                self.out.exhaustion.setdefault("dramatiq", []).append(
                    Location(facts.path, cls.span)
                )
            hooks = [methods[n] for n in DRAMATIQ_FAILURE_HOOKS if n in methods]
            if hooks and key in self.instantiated:
                method, path = hooks[0]
                self.add(
                    TRACKING,
                    f"middleware {cls.name}.{method.name}",
                    Location(path, method.span),
                    frozenset({"dramatiq"}),
                )
        elif bases & TASKIQ_MIDDLEWARE:
            self.hook(facts.module, "taskiq")
            if "on_error" in methods and key in self.instantiated:
                method, path = methods["on_error"]
                self.add(
                    TRACKING,
                    f"middleware {cls.name}.on_error",
                    Location(path, method.span),
                    frozenset({"taskiq"}),
                )
        elif any(base.startswith(("rq.", "django_rq.")) for base in bases):
            self.hook(facts.module, "rq")
            for name in ("handle_exception", "handle_job_failure"):
                if name in methods and cls.method(name) is not None:
                    method, path = methods[name]
                    self.add(
                        TRACKING,
                        f"{cls.name}.{name}",
                        Location(path, method.span),
                        frozenset({"rq"}),
                    )
        elif bases & TASK_CLASSES:
            self.hook(facts.module, "celery")
        elif cls.attr("functions") is not None and any(
            target.startswith("arq") for _, target in facts.imports
        ):
            if any(cls.attr(n) is not None or cls.method(n) for n in ("on_job_start", *ARQ_HOOKS)):
                self.hook(facts.module, "arq")
            for name in ARQ_HOOKS:
                found = cls.attr(name)
                hook = cls.method(name)
                span = found[1] if found is not None else hook.span if hook is not None else None
                if span is not None:
                    self.add(
                        TRACKING,
                        f"{cls.name}.{name}",
                        Location(facts.path, span),
                        frozenset({"arq"}),
                    )
                    break

    def setting(
        self, facts: FileFacts, name: str, value: Value, span: tuple[int, int, int, int]
    ) -> None:
        where = Location(facts.path, span)
        if name == "RQ_EXCEPTION_HANDLERS":
            self.add(TRACKING, "RQ_EXCEPTION_HANDLERS", where, frozenset({"rq"}))
        elif name in CELERY_EVENT_SETTINGS and self.resolver.evaluate(value) is not False:
            self.add(METRICS, f"{name} (task events)", where, frozenset({"celery"}))

    def sentry_helpers(self) -> None:
        """Sentry set up where no ``init`` call can be seen: a library's helper
        (``safir.sentry.initialize_sentry``) or an entry point outside the analysed files.

        Only when the project calls ``sentry_sdk.init`` nowhere: an ``init`` that is
        seen is judged on its own integrations.
        """
        if self.out.sentry:
            return
        for facts in self.modules:
            for _, target in facts.imports:
                if self._external(target) and any("sentry" in part for part in target.split(".")):
                    where = _line_of(facts, "sentry")
                    self.add(TRACKING, f"Sentry through {target}", where, frozenset(FRAMEWORKS))
                    return

    def _external(self, dotted: str) -> bool:
        return self.resolver.module_for(dotted) is None

    def celery_bases(self) -> None:
        """A Task class with ``on_failure`` that the project's tasks are built from."""
        celery = self.project.framework("celery")
        if not isinstance(celery, Celery):
            return
        for job in self.project.jobs_of("celery"):
            chain: list[ProjectClass] = []
            if job.cls is not None:
                chain.append(ProjectClass(job.cls, job.path))
            base = celery.task_base(job, self.project)
            if isinstance(base, ProjectClass):
                chain.append(base)
            for start in chain:
                for klass, path in self.resolver.mro(start):
                    method = klass.method("on_failure")
                    if method is not None:
                        self.add(
                            TRACKING,
                            f"{klass.name}.on_failure",
                            Location(path, method.span),
                            frozenset({"celery"}),
                        )
                        return

    def celery_events(self) -> None:
        celery = self.project.framework("celery")
        if not isinstance(celery, Celery):
            return
        for app in celery.apps.values():
            found = app.values.get("worker_send_task_events")
            if found is not None and self.resolver.evaluate(found[0]) is not False:
                self.add(
                    METRICS,
                    f"worker_send_task_events ({found[1]})",
                    found[2],
                    frozenset({"celery"}),
                )

    def deploy(self) -> None:
        options = self.project.worker_options
        for framework, keys in options.items():
            for key, (value, where) in keys.items():
                if key == "task_events" and value is not False:
                    self.add(METRICS, "celery worker -E", where, frozenset({"celery"}))
                elif key == "exception_handler":
                    self.add(TRACKING, "rq worker --exception-handler", where, frozenset({"rq"}))
                elif key == "ddtrace_run":
                    self.add(TRACKING, "ddtrace-run", where, DDTRACE)
                elif key == "otel_instrument":
                    self.add(TRACKING, "opentelemetry-instrument", where, OTEL_AUTO)
                    self.add(METRICS, "opentelemetry-instrument", where, frozenset({"celery"}))
                elif key == "metrics_exporter":
                    self.add(METRICS, str(value), where, frozenset({framework}))

    def metrics_in_hooks(self) -> None:
        """A metrics client imported by a module that hooks into a framework (or by a project
        module it imports): the closest to "metrics recorded in a hook" facts can tell."""
        metric_modules = {
            facts.module
            for facts in self.modules
            if any(_metric(target) for _, target in facts.imports)
        }
        for facts in self.modules:
            frameworks = self.hook_modules.get(facts.module)
            if not frameworks:
                continue
            direct = facts.module in metric_modules or any(
                self._external(t) and METRIC_WORDS.intersection(t.split("."))
                for _, t in facts.imports
            )
            via = next(
                (t for _, t in facts.imports if self._project_module(t) in metric_modules), None
            )
            if direct or via:
                library = next(
                    (
                        t
                        for _, t in facts.imports
                        if _metric(t)
                        or (self._external(t) and METRIC_WORDS.intersection(t.split(".")))
                    ),
                    f"metrics via {via}",
                )
                where = _line_of(facts, library.partition(".")[0].rpartition(".")[2] or "import")
                self.add(METRICS, f"{library} in a hook module", where, frozenset(frameworks))

    def _project_module(self, dotted: str) -> str | None:
        split = self.resolver.module_for(dotted)
        return split[0] if split is not None else None

    def settings_complete(self) -> None:
        for module in self.project.django_settings_modules():
            incomplete = self.project.settings(module).incomplete
            if incomplete:
                self.out.unknown = incomplete
                return


def _metric(target: str) -> bool:
    return any(target == lib or target.startswith(lib + ".") for lib in METRIC_LIBRARIES)


def describe(evidence: list[Evidence]) -> str:
    """``sentry_sdk.init (settings.py:12)`` for the first piece and how many more."""
    first = evidence[0]
    text = f"{first.what} ({first.location.path}:{first.location.span[0]})"
    return text if len(evidence) == 1 else f"{text} and {len(evidence) - 1} more"


__all__ = [
    "FRAMEWORKS",
    "METRICS",
    "TRACKING",
    "Evidence",
    "Observability",
    "anchor",
    "anchors",
    "describe",
    "observability",
    "used_frameworks",
]
