"""Celery: decorators, options, configuration sources and defaults (celery 5.7.0).

Facts behind the defaults are in ``shared/reference/frameworks.md`` §1.1: any
decorator keyword becomes a Task attribute (so typos are silent), ``max_retries``
defaults to 3 (4 executions), autoretry without ``retry_backoff`` waits a fixed
``default_retry_delay`` of 180 s, and there is no time limit unless one is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from jobaudit.discovery import Discovery, Match, iter_call_sites
from jobaudit.facts import ClassFacts, FileFacts
from jobaudit.frameworks import celery_names
from jobaudit.frameworks.base import DEFAULT, Framework, exception_names
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Resolved
from jobaudit.symbols import (
    Assigned,
    External,
    InstanceAttr,
    Missing,
    ProjectClass,
    Symbol,
    seconds,
)
from jobaudit.values import BinOp, Call, Local, Mapping, Ref, Seq, Unknown, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

APP_CLASSES = frozenset({"celery.Celery", "celery.app.Celery", "celery.app.base.Celery"})
TASK_CLASSES = frozenset(
    {
        "celery.Task",
        "celery.app.task.Task",
        "celery.contrib.django.task.DjangoTask",
        *(f"{app}.Task" for app in APP_CLASSES),
    }
)
OLD_TO_NEW = celery_names.OLD_TO_NEW
"""Pre-4.0 names Celery still reads, with or without a namespace (checked on 5.7.0).

The docs' table prints ``CELERYD_TIME_LIMIT``, but Celery does not read that
name: only ``CELERYD_TASK_TIME_LIMIT`` maps to ``task_time_limit``."""
UNREAD_DOCUMENTED = {
    "CELERYD_TIME_LIMIT": "task_time_limit",
    "CELERYD_SOFT_TIME_LIMIT": "task_soft_time_limit",
}
"""Names the configuration docs' table prints that Celery 5 never reads; kept in
``AppConfig.values`` under their own spelling so JOB402 can point at them."""
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY = 180.0
DEFAULT_BACKOFF_MAX = 600.0
SETTING_OF = {
    "time_limit": "task_time_limit",
    "soft_time_limit": "task_soft_time_limit",
    "acks_late": "task_acks_late",
    "reject_on_worker_lost": "task_reject_on_worker_lost",
    "retry_on_worker_lost": "task_retry_on_worker_lost",
}


@dataclass
class AppConfig:
    """What the project tells a Celery app, key by key (new lowercase names)."""

    name: str
    location: Location
    values: dict[str, tuple[Value, str, Location]] = field(default_factory=dict)
    incomplete: str | None = None
    namespace_settings: list[str] = field(default_factory=list)
    """Django settings modules read with ``config_from_object(..., namespace=...)``."""
    namespace: str | None = None

    def get(self, key: str) -> Resolved | None:
        found = self.values.get(key)
        if found is None:
            if self.incomplete:
                return Resolved(Unknown(self.incomplete), "app configuration")
            return None
        value, source, location = found
        return Resolved(value, source, location)


class Celery(Framework):
    name = "celery"
    title = "Celery"
    decorators = frozenset(
        {
            "celery.shared_task",
            "celery.app.shared_task",
            "celery.current_app.task",
            "celery.task",
            "celery.decorators.task",
            "celery.decorators.periodic_task",
            "celery.task.task",
            "celery.task.periodic_task",
        }
    )
    known_options = celery_names.TASK_OPTIONS
    control_flow = frozenset({"Retry", "Reject", "Ignore", "SoftTimeLimitExceeded"})
    enqueue_methods = frozenset(
        {"delay", "apply_async", "delay_on_commit", "apply_async_on_commit", "s", "si", "signature"}
    )
    retry_raises: ClassVar[frozenset[str]] = frozenset({"Retry", "Reject", "Ignore"})

    def __init__(self) -> None:
        self.apps: dict[str, AppConfig] = {}
        self.worker_limits: dict[str, tuple[object, Location]] = {}
        self._registered: set[str] | None = None

    def is_instance_decorator(self, cls: str, attrs: tuple[str, ...]) -> bool:
        return cls in APP_CLASSES and attrs == ("task",)

    # -- class-based tasks ---------------------------------------------------------------

    def class_job(
        self,
        project: Project,
        discovery: Discovery,
        facts: FileFacts,
        cls: ClassFacts,
        bases: list[str],
    ) -> Job | None:
        if not TASK_CLASSES.intersection(bases) or cls.method("run") is None:
            return None
        if f"{facts.module}.{cls.qualname}" not in self._registered_classes(project):
            return None
        run = cls.method("run")
        assert run is not None
        job = discovery.make_job(
            facts,
            run,
            Match(self, (), "Task subclass registered with app.register_task"),
            None,
            cls,
        )
        name = cls.attr("name")
        if name is not None and isinstance(name[0], str):
            job.name = name[0]
        return job

    def _registered_classes(self, project: Project) -> set[str]:
        if self._registered is None:
            found: set[str] = set()
            resolver = project.resolver
            for facts in resolver.modules.values():
                for site, _ in iter_call_sites(facts):
                    name = dotted(site.call.func) or ""
                    if not name.endswith("register_task") or not site.call.args:
                        continue
                    arg = site.call.args[0]
                    if isinstance(arg, Ref):
                        symbol = resolver.lookup(arg.name)
                        if isinstance(symbol, Assigned) and isinstance(symbol.value, Call):
                            arg = symbol.value
                    if isinstance(arg, Call) and isinstance(arg.func, Ref):
                        symbol = resolver.lookup(arg.func.name)
                        if isinstance(symbol, ProjectClass):
                            found.add(f"{symbol.facts.module}.{symbol.facts.qualname}")
            self._registered = found
        return self._registered

    # -- configuration -------------------------------------------------------------------

    def prepare(self, project: Project) -> None:
        from jobaudit.project import is_test_path

        resolver = project.resolver
        for facts in resolver.modules.values():
            if is_test_path(facts.path, project.config.test_paths):
                continue  # an app built for the test suite does not run the project's tasks
            for name, value, span in facts.assigns:
                built = value.func if isinstance(value, Call) else value
                if (
                    resolver.may_be_framework(built)
                    and resolver.instance_class(value) in APP_CLASSES
                ):
                    app = AppConfig(f"{facts.module}.{name}", Location(facts.path, span))
                    if isinstance(value, Call):
                        self._constructor(project, app, value, facts.path)
                    self.apps[app.name] = app
        for facts in resolver.modules.values():
            for site, _ in iter_call_sites(facts):
                if not resolver.may_be_framework(site.call.func):
                    continue
                symbol = resolver.symbol_of(site.call.func)
                if isinstance(symbol, InstanceAttr) and symbol.cls in APP_CLASSES:
                    configured = self._app_of(symbol)
                    if configured is not None:
                        self._config_call(project, configured, symbol.attrs, site.call, facts.path)
            for assign in facts.attr_assigns:
                symbol = resolver.symbol_of(assign.target)
                if (
                    isinstance(symbol, InstanceAttr)
                    and symbol.cls in APP_CLASSES
                    and len(symbol.attrs) == 2
                    and symbol.attrs[0] == "conf"
                ):
                    configured = self._app_of(symbol)
                    if configured is not None:
                        key = symbol.attrs[1]
                        configured.values[key] = (
                            resolver.evaluate(assign.value),
                            f"app.conf.{key}",
                            Location(facts.path, assign.span),
                        )
        self.worker_limits = project.worker_options.get("celery", {})
        for app in self.apps.values():
            _normalise_keys(app)

    def _app_of(self, symbol: InstanceAttr) -> AppConfig | None:
        if symbol.instance is None:
            return None
        return self.apps.get(f"{symbol.instance.module}.{symbol.instance.name}")

    def _constructor(self, project: Project, app: AppConfig, call: Call, path: str) -> None:
        renames = {"broker": "broker_url", "backend": "result_backend"}
        for key, value in call.kwargs:
            if key == "config_source":
                self._from_object(project, app, value, None, path)
                continue
            span = call.kwarg_span(key) or call.span
            app.values[renames.get(key, key)] = (
                project.resolver.evaluate(value),
                f"Celery({key}=...)",
                Location(path, span),
            )
        if call.star_kwargs:
            app.incomplete = "Celery(...) is given options with **"

    def _config_call(
        self, project: Project, app: AppConfig, attrs: tuple[str, ...], call: Call, path: str
    ) -> None:
        resolver = project.resolver
        if attrs == ("conf", "update"):
            for arg in call.args:
                mapping = resolver.evaluate(arg)
                if isinstance(mapping, Mapping):
                    for key, value in mapping.items:
                        if isinstance(key, str):
                            app.values[key] = (value, "app.conf.update", Location(path, call.span))
                else:
                    app.incomplete = "app.conf.update() is given a value computed at run time"
            for key, value in call.kwargs:
                span = call.kwarg_span(key) or call.span
                app.values[key] = (
                    resolver.evaluate(value),
                    "app.conf.update",
                    Location(path, span),
                )
            if call.star_kwargs:
                app.incomplete = "app.conf.update() is given options with **"
        elif attrs == ("config_from_object",) and call.args:
            namespace = call.kwarg("namespace")
            self._from_object(
                project, app, call.args[0], namespace if isinstance(namespace, str) else None, path
            )
        elif attrs == ("config_from_envvar",):
            app.incomplete = "configuration is read from an environment variable"

    def _from_object(
        self, project: Project, app: AppConfig, target: Value, namespace: str | None, path: str
    ) -> None:
        resolver = project.resolver
        target = resolver.evaluate(target) if not isinstance(target, str) else target
        if isinstance(target, str) and target.startswith("django.conf:settings"):
            modules = project.django_settings_modules()
            if not modules:
                app.incomplete = (
                    "Django settings are read, but no settings module was found "
                    "(set 'settings-modules' in [tool.jobaudit])"
                )
                return
            app.namespace = namespace
            app.namespace_settings = modules
            for module in modules:
                self._read_settings(project, app, module, namespace)
            return
        if isinstance(target, str):
            module = target.replace(":", ".")
            self._read_settings(project, app, module, None)
            return
        if isinstance(target, Ref):
            symbol = resolver.lookup(target.name)
            if isinstance(symbol, ProjectClass):
                for name, value, span in symbol.facts.attrs:
                    app.values[name] = (
                        resolver.evaluate(value),
                        f"{symbol.facts.name}.{name}",
                        Location(symbol.path, span),
                    )
                return
            if symbol.__class__.__name__ == "ModuleSym":
                self._read_settings(project, app, target.name, None)
                return
        app.incomplete = "config_from_object() is given an object jobaudit cannot read"

    def _read_settings(
        self, project: Project, app: AppConfig, module: str, namespace: str | None
    ) -> None:
        settings = project.settings(module)
        if settings.incomplete:
            app.incomplete = settings.incomplete
        prefix = f"{namespace}_" if namespace else None
        for name, setting in settings.values.items():
            key = celery_key(name, prefix)
            if key is None and name in UNREAD_DOCUMENTED:
                key = name
            if key is not None:
                app.values[key] = (setting.value, f"settings.{name}", setting.location)

    def app_for(self, job: Job) -> list[AppConfig]:
        if job.app is not None and job.app in self.apps:
            return [self.apps[job.app]]
        return list(self.apps.values())

    # -- policy --------------------------------------------------------------------------

    def lookup(self, job: Job, project: Project, name: str, default: object) -> Resolved:
        """Option ``name`` as Celery resolves it: annotations > task option > base class > setting.

        ``task_annotations`` are applied to the task class after the decorator
        created it, so they override even explicit options, and a ``'*'`` entry
        is applied after the task's own entry (``Task.annotate``; checked on
        5.7.0).  For attributes backed by a setting (``time_limit``,
        ``acks_late``...), None on the task means "not set": Celery then uses
        the app's setting.
        """
        apps = self.app_for(job)
        annotated = self._annotation(job, project, apps, name)
        if annotated is not None:
            return annotated
        unset = name in SETTING_OF
        option = job.options.get(name)
        if option is not None and not (unset and option.value is None):
            return Resolved(option.value, option.source, option.location)
        for klass, path in self._base_chain(job, project) if option is None else ():
            attr = klass.attr(name)
            if attr is not None:
                value = project.resolver.evaluate(attr[0])
                if unset and value is None:
                    break
                return Resolved(value, f"base class {klass.name}", Location(path, attr[1]))
        setting = SETTING_OF.get(name)
        if setting is not None:
            return self.setting(job, setting, default)
        return Resolved(default, DEFAULT)

    def setting(self, job: Job, setting: str, default: object) -> Resolved:
        """App setting ``setting`` (``task_time_limit``...) for a job's app(s), then the worker
        command line, then ``default``: what the task gets when it does not set the option."""
        apps = self.app_for(job)
        if not apps:
            return Resolved(
                Unknown(
                    "no Celery app was found in the scanned files, so its settings are unknown"
                ),
                "app configuration",
            )
        found = [app.get(setting) for app in apps]
        values = [f for f in found if f is not None]
        if values:
            if len(values) == len(apps) and all(v.value == values[0].value for v in values):
                return values[0]
            return Resolved(Unknown("the project's Celery apps disagree"), "app configuration")
        worker = self.worker_limits.get(setting)
        if worker is not None:
            return Resolved(worker[0], "worker command line", worker[1])
        return Resolved(default, DEFAULT)

    def _base_chain(self, job: Job, project: Project) -> list[tuple[ClassFacts, str]]:
        chain: list[tuple[ClassFacts, str]] = []
        if job.cls is not None:
            chain.extend(project.resolver.mro(ProjectClass(job.cls, job.path)))
        symbol = self.task_base(job, project)
        if isinstance(symbol, ProjectClass):
            chain.extend(project.resolver.mro(symbol))
        return chain

    def classes_known(self, job: Job, project: Project) -> bool:
        """Whether every class the task is built from is Celery's or the project's own.

        A third-party base (``celery_once.QueueOnce``) or one that cannot be
        resolved may define any attribute, ``time_limit`` included.
        """
        base = self.task_base(job, project)
        if isinstance(base, Missing) or (
            isinstance(base, External) and not base.name.startswith("celery.")
        ):
            return False
        classes = [base] if isinstance(base, ProjectClass) else []
        if job.cls is not None:
            classes.append(ProjectClass(job.cls, job.path))
        return all(
            name.startswith("celery.")
            for klass in classes
            for name in project.resolver.external_bases(klass)
        )

    def task_base(self, job: Job, project: Project) -> Symbol | None:
        """The class a decorated task is built from: ``base=``, else its app's ``task_cls``.

        None means Celery's own Task.  ``task_cls`` may be a class or a
        ``'pkg.module:Class'`` string; apps that disagree make it ``Missing``.
        """
        if job.cls is not None:
            return None
        base = job.options.get("base")
        if base is not None:
            return _class_symbol(base.written, project)
        found: list[Symbol] = []
        for app in self.app_for(job):
            task_cls = app.values.get("task_cls")
            if task_cls is not None:
                found.append(_class_symbol(task_cls[0], project))
        if not found:
            return None
        if len(found) == len(self.app_for(job)) and all(f == found[0] for f in found):
            return found[0]
        return Missing("the project's Celery apps use different task classes")

    def _annotation(
        self, job: Job, project: Project, apps: list[AppConfig], name: str
    ) -> Resolved | None:
        """``task_annotations``: a dict, or a list of dicts, keyed by task name or ``'*'``."""
        resolver = project.resolver
        for app in apps:
            found = app.values.get("task_annotations")
            if found is None:
                continue
            annotations, source, location = found
            annotations = resolver.evaluate(annotations)
            if isinstance(annotations, Mapping):
                annotations = Seq((annotations,))
            if not isinstance(annotations, Seq) or not all(
                isinstance(item, Mapping) for item in annotations.items
            ):
                return Resolved(
                    Unknown("task_annotations is not a literal dict of dicts"), source, location
                )
            for key in ("*", self.registered_name(job)):
                for annotation in annotations.items:
                    assert isinstance(annotation, Mapping)
                    entry = resolver.evaluate(annotation.get(key))
                    if isinstance(entry, Mapping) and any(k == name for k, _ in entry.items):
                        value = resolver.evaluate(entry.get(name))
                        return Resolved(value, f"task_annotations['{key}']", location)
        return None

    def registered_name(self, job: Job) -> str:
        option = job.options.get("name")
        if option is not None and isinstance(option.value, str):
            return option.value
        return f"{job.module}.{job.function.name}"

    def retry_calls(self, job: Job, project: Project) -> list[Call]:
        """``self.retry(...)`` (bound tasks) and ``<task>.retry(...)`` calls in the job body."""
        names = {f"{job.function.name}.retry"}
        bind = job.options.get("bind")
        if job.cls is not None or (bind is not None and bind.value is True):
            names.add("self.retry")
        calls: list[Call] = []
        for site in job.function.calls:
            func = site.call.func
            own = isinstance(func, Ref) and func.name.endswith(f".{job.function.name}.retry")
            if (isinstance(func, Local) and func.name in names) or own:
                calls.append(site.call)
        return calls

    def policy(self, job: Job, project: Project) -> JobPolicy:
        resolver = project.resolver
        autoretry = self.lookup(job, project, "autoretry_for", None)
        autoretry_names = exception_names(autoretry.value, project)
        retry_calls = self.retry_calls(job, project)
        retry_kwargs = self.lookup(job, project, "retry_kwargs", None)
        retry_kwargs_map = retry_kwargs.value if isinstance(retry_kwargs.value, Mapping) else None
        autoretries = isinstance(autoretry_names, tuple) and bool(autoretry_names)
        retries = autoretries or bool(retry_calls)

        max_retries = self.lookup(job, project, "max_retries", DEFAULT_MAX_RETRIES)
        if (
            autoretries
            and retry_kwargs_map is not None
            and retry_kwargs_map.get("max_retries") is not None
        ):
            max_retries = Resolved(
                resolver.evaluate(retry_kwargs_map.get("max_retries")),
                "retry_kwargs",
                retry_kwargs.location,
            )
        # retry(max_retries=N) replaces the task's limit for that call; None means "the task's".
        overrides = [resolver.evaluate(call.kwarg("max_retries")) for call in retry_calls]
        limits = [v for v in overrides if isinstance(v, int) and not isinstance(v, bool)]
        if not autoretries and limits and len(limits) == len(overrides):
            max_retries = Resolved(max(limits), "retry(max_retries=...)")
        elif not autoretries and any(
            c.star_kwargs and c.kwarg("max_retries") is None for c in retry_calls
        ):
            max_retries = Resolved(Unknown("retry() is given options with **"), "self.retry()")
        max_attempts: Resolved
        if isinstance(autoretry_names, Unknown) and not retry_calls:
            max_attempts = Resolved(autoretry_names, autoretry.source, autoretry.location)
        elif not retries:
            max_attempts = Resolved(1, "no retry configured")
        else:
            max_attempts = _attempts(max_retries)

        retry_on: Resolved
        if isinstance(autoretry_names, Unknown):
            retry_on = Resolved(autoretry_names, autoretry.source, autoretry.location)
        elif autoretries:
            broad = {"builtins.Exception", "builtins.BaseException"}
            value = "all" if broad.intersection(autoretry_names) else autoretry_names
            retry_on = Resolved(value, autoretry.source, autoretry.location)
        elif retry_calls:
            retry_on = Resolved(_retry_handler_types(job, retry_calls), "self.retry() in except")
        else:
            retry_on = Resolved("none", "no retry configured")

        throws = self.lookup(job, project, "throws", None)
        dont = self.lookup(job, project, "dont_autoretry_for", None)
        permanent_names: list[str] = []
        sources: list[str] = []
        for label, resolved in (("throws", throws), ("dont_autoretry_for", dont)):
            names = exception_names(resolved.value, project)
            if isinstance(names, tuple) and names:
                permanent_names.extend(names)
                sources.append(f"{label} ({resolved.source})")
        permanent = Resolved(tuple(permanent_names), ", ".join(sources) or DEFAULT)

        backoff = self._backoff(job, project, autoretries, retry_calls, retry_kwargs_map)
        if retries and max_attempts.value == 1:  # max_retries=0: configured, but never retried
            backoff = Resolved(Backoff("none"), max_attempts.source, max_attempts.location)
            retry_on = Resolved("none", max_attempts.source, max_attempts.location)
        time_limit = _limit(self.lookup(job, project, "time_limit", None))
        soft = _limit(self.lookup(job, project, "soft_time_limit", None))
        acks_late = self.lookup(job, project, "acks_late", False)
        if acks_late.value is True:
            delivery = Resolved(
                "at-least-once", f"acks_late=True ({acks_late.source})", acks_late.location
            )
        elif isinstance(acks_late.value, Unknown):
            delivery = acks_late
        else:
            delivery = Resolved("at-most-once", "messages are acknowledged before the task runs")
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            retry_on=retry_on,
            permanent=permanent,
            time_limit=time_limit,
            soft_time_limit=soft,
            delivery=delivery,
            idempotency_guard=idempotency_guard(job, project),
        )

    def _backoff(
        self,
        job: Job,
        project: Project,
        autoretries: bool,
        retry_calls: list[Call],
        retry_kwargs: Mapping | None,
    ) -> Resolved:
        if autoretries:
            retry_backoff = self.lookup(job, project, "retry_backoff", False)
            if isinstance(retry_backoff.value, Unknown):
                return retry_backoff
            if retry_backoff.value:
                factor = retry_backoff.value
                cap = self.lookup(job, project, "retry_backoff_max", DEFAULT_BACKOFF_MAX)
                jitter = self.lookup(job, project, "retry_jitter", True)
                first = 1.0 if factor is True else seconds(factor)  # type: ignore[arg-type]
                cap_s = seconds(cap.value)  # type: ignore[arg-type]
                return Resolved(
                    Backoff(
                        "exponential",
                        first if isinstance(first, float) else None,
                        cap_s if isinstance(cap_s, float) else None,
                        jitter.value if isinstance(jitter.value, bool) else None,
                    ),
                    retry_backoff.source,
                    retry_backoff.location,
                )
            countdown = retry_kwargs.get("countdown") if retry_kwargs is not None else None
            if countdown is not None:
                value = seconds(project.resolver.evaluate(countdown))
                if isinstance(value, Unknown):
                    return Resolved(value, "retry_kwargs")
                return Resolved(Backoff("fixed", value), "retry_kwargs['countdown']")
            delay = self.lookup(job, project, "default_retry_delay", DEFAULT_RETRY_DELAY)
            delay_s = seconds(delay.value)  # type: ignore[arg-type]
            if isinstance(delay_s, Unknown) or delay_s is None:
                return Resolved(Unknown("default_retry_delay is not a constant"), delay.source)
            source = "autoretry_for without retry_backoff: default_retry_delay"
            return Resolved(Backoff("fixed", delay_s), f"{source} ({delay.source})", delay.location)
        if retry_calls:
            kinds: set[Backoff] = set()
            for call in retry_calls:
                countdown = call.kwarg("countdown")
                if countdown is None and call.kwarg("eta") is None:
                    delay = self.lookup(job, project, "default_retry_delay", DEFAULT_RETRY_DELAY)
                    delay_s = seconds(delay.value)  # type: ignore[arg-type]
                    if not isinstance(delay_s, float):
                        return Resolved(
                            Unknown("default_retry_delay is not a constant"), delay.source
                        )
                    kinds.add(Backoff("fixed", delay_s))
                    continue
                if isinstance(countdown, BinOp) and "**" in _ops(countdown):
                    kinds.add(Backoff("exponential"))
                    continue
                value = (
                    seconds(project.resolver.evaluate(countdown)) if countdown is not None else None
                )
                if isinstance(value, float):
                    kinds.add(Backoff("fixed", value))
                else:
                    return Resolved(
                        Unknown("retry countdown is computed at run time"), "self.retry()"
                    )
            if len(kinds) == 1:
                return Resolved(kinds.pop(), "self.retry()")
            return Resolved(Unknown("several retry() calls with different delays"), "self.retry()")
        return Resolved(Backoff("none"), "no retry configured")


def _class_symbol(value: Value, project: Project) -> Symbol:
    if isinstance(value, str):
        return project.resolver.lookup(value.replace(":", "."))
    return project.resolver.symbol_of(value)


def _normalise_keys(app: AppConfig) -> None:
    """Old and namespaced ``app.conf`` names (``CELERYD_TASK_TIME_LIMIT``) as Celery reads them."""
    prefix = f"{app.namespace}_" if app.namespace else None
    for key in [k for k in app.values if k not in celery_names.SETTINGS]:
        new = OLD_TO_NEW.get(key)
        if new is None and prefix is not None and key.startswith(prefix) and key.isupper():
            new = key[len(prefix) :].lower()
        if new is not None and new in celery_names.SETTINGS and new not in app.values:
            app.values[new] = app.values.pop(key)


def celery_key(name: str, prefix: str | None) -> str | None:
    """The Celery setting a settings-module name configures, or None when it configures none."""
    if name in OLD_TO_NEW:
        return OLD_TO_NEW[name]
    if prefix is not None:
        if not name.startswith(prefix):
            return None
        return name[len(prefix) :].lower()
    if name.islower():
        return name
    return None


def _ops(value: Value) -> set[str]:
    if isinstance(value, BinOp):
        return {value.op} | _ops(value.left) | _ops(value.right)
    return set()


def _attempts(max_retries: Resolved) -> Resolved:
    value = max_retries.value
    if value is None:
        return Resolved(
            "unbounded", f"max_retries=None ({max_retries.source})", max_retries.location
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return Resolved(value + 1, max_retries.source, max_retries.location)
    if isinstance(value, Unknown):
        return max_retries
    return Resolved(
        Unknown("max_retries is not an integer"), max_retries.source, max_retries.location
    )


def _limit(resolved: Resolved) -> Resolved:
    value = resolved.value
    if value is None or isinstance(value, Unknown):
        return resolved
    converted = seconds(value)  # type: ignore[arg-type]
    return Resolved(converted, resolved.source, resolved.location)


def _retry_handler_types(job: Job, retry_calls: list[Call]) -> object:
    """The exception types of the ``except`` clauses whose bodies call ``retry()``."""
    names: list[str] = []
    function = job.function
    for site in function.calls:
        if site.call not in retry_calls or not site.in_handler:
            continue
        preceding = [h for h in function.handlers if h.span[0] <= site.call.span[0]]
        if not preceding:
            continue
        candidate = max(preceding, key=lambda handler: handler.span[0])
        if not candidate.types:
            return "all"
        for value in candidate.types:
            name = dotted(value) or "?"
            if name in {"builtins.Exception", "builtins.BaseException"}:
                return "all"
            names.append(name)
    return tuple(dict.fromkeys(names)) if names else Unknown("retry() is called outside an except")
