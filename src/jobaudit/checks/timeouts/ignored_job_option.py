"""JOB402 ignored-job-option: a misspelled or misplaced option that changes nothing.

Celery keeps any decorator keyword as a task attribute and Huey as a task
setting, taskiq turns any keyword into a label, RQ's ``enqueue()`` hands the
keywords it does not know (``timeout=`` among them) to the job function, and a
Django setting under Celery's namespace that Celery does not define is never
read.  The option looks set, the job runs without it, and nothing complains.

What a project reads itself is not a typo: options defined on its own base
class, read by its signal handlers, hooks or middleware, and settings its code
reads.  A base class from another package may define any attribute, so a task
built on one is left alone.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.facts import FunctionFacts, all_functions
from jobaudit.fix.build import framework_decorator
from jobaudit.fix.model import RENAME_KEYWORD, RENAME_TARGET, UNSAFE, Edit, Fix
from jobaudit.frameworks import celery_names
from jobaudit.frameworks.celery import UNREAD_DOCUMENTED, AppConfig, Celery
from jobaudit.frameworks.huey import Huey
from jobaudit.frameworks.rq import called_on_job
from jobaudit.frameworks.taskiq import LABELS
from jobaudit.model import Job, Location, Option
from jobaudit.symbols import Assigned, External, InstanceAttr, ProjectClass, ProjectFunction
from jobaudit.values import Attr, Call, Local, Ref, Value, dotted

if TYPE_CHECKING:
    from jobaudit.discovery import EnqueueSite
    from jobaudit.project import Project

TASK_OPTION = "task option"
CELERY_OPTIONS = frozenset(
    {
        "acks_late",
        "acks_on_failure_or_timeout",
        "autoretry_for",
        "base",
        "bind",
        "default_retry_delay",
        "dont_autoretry_for",
        "expires",
        "ignore_result",
        "max_retries",
        "name",
        "priority",
        "queue",
        "rate_limit",
        "reject_on_worker_lost",
        "retry_backoff",
        "retry_backoff_max",
        "retry_jitter",
        "retry_kwargs",
        "retry_on_worker_lost",
        "serializer",
        "soft_time_limit",
        "store_errors_even_if_ignored",
        "throws",
        "time_limit",
        "track_started",
    }
)
"""The decorator options people mean; suggestions are drawn from these, not from Task's methods."""
CELERY_INTENDED = {
    "task_time_limit": "time_limit",
    "task_soft_time_limit": "soft_time_limit",
    "timeout": "time_limit",
    "hard_time_limit": "time_limit",
    "soft_timeout": "soft_time_limit",
    "max_retry": "max_retries",
    "retry_limit": "max_retries",
    "retries": "max_retries",
    "max_attempts": "max_retries",
    "autoretry_on": "autoretry_for",
    "retry_for": "autoretry_for",
    "retry_on": "autoretry_for",
    "task_acks_late": "acks_late",
    "ack_late": "acks_late",
    "countdown": "default_retry_delay",
    "retry_delay": "default_retry_delay",
    "ignore_results": "ignore_result",
}
PERIODIC_OPTIONS = frozenset({"run_every", "relative", "options"})
"""What the pre-4.0 ``periodic_task`` decorator reads besides the task options."""
HUEY_INTENDED = {
    "time_limit": "timeout",
    "soft_time_limit": "timeout",
    "max_retries": "retries",
    "retry": "retries",
    "retry_backoff_factor": "retry_backoff",
    "countdown": "retry_delay",
}
TASKIQ_LOOKALIKES = ("timeout", "retry_on_error", "max_retries")
SETTING_INTENDED = {
    "timeout": "task_time_limit",
    "task_timeout": "task_time_limit",
    "hard_time_limit": "task_time_limit",
    "task_hard_time_limit": "task_time_limit",
    "worker_time_limit": "task_time_limit",
    "soft_timeout": "task_soft_time_limit",
    "task_soft_timeout": "task_soft_time_limit",
    "worker_soft_time_limit": "task_soft_time_limit",
    "visibility_timeout": "broker_transport_options",
    "broker_visibility_timeout": "broker_transport_options",
}
SETTING_GROUPS = ("task_", "worker_", "broker_", "result_", "beat_", "event_", "control_")
"""Prefixes of Celery's own setting names: an unknown key under one is a typo, not a
third-party package's setting (``CELERY_EMAIL_BACKEND``, ``CELERY_ONCE``...)."""
THIRD_PARTY_SETTINGS = frozenset({"beat_dburi", "beat_schema", "beat_engine_options"})
"""Keys other packages read from Celery's configuration (sqlalchemy-celery-beat)."""
RQ_PACKAGES = ("rq.", "django_rq.")
RQ_PASSES_ON = frozenset({"enqueue", "enqueue_in", "enqueue_at"})
"""``Queue`` methods whose unknown keywords become the job function's keywords."""
HOOK_DECORATORS = ("connect", "pre_execute", "post_execute", "signal")


class IgnoredJobOption(Rule):
    code = "JOB402"
    name = "ignored-job-option"
    level = "error"
    scope = "job / call site"
    gate = "timeouts"
    summary = "A misspelled or misplaced option that the framework silently ignores."
    frameworks = ("celery", "rq", "huey", "taskiq")
    fixable = True

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework in {"celery", "huey"}:
            yield from self._decorator(job, project)
        elif job.framework == "taskiq":
            yield from self._taskiq(job, project)
        elif job.framework == "rq":
            yield from self._rq(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        """Options fixed inside a project wrapper (once for all its jobs) and Celery settings."""
        shared: dict[Location, tuple[Option, list[Job]]] = {}
        for job in project.jobs:
            if job.framework in {"celery", "huey"}:
                for option in self._unknown(job, project, own=False):
                    assert option.location is not None
                    shared.setdefault(option.location, (option, []))[1].append(job)
        for location, (option, jobs) in sorted(shared.items()):
            names = ", ".join(sorted(job.name for job in jobs))
            title = _title(jobs[0])
            yield self.finding(
                location,
                f"{option.source}: {option.name}= is not a {title} task option, so the tasks it "
                f"declares ({names}) run without it{_hint(jobs[0].framework, option.name)}",
            )
        celery = project.framework("celery")
        if isinstance(celery, Celery):
            yield from self._celery_settings(celery, project)

    # -- decorator options (Celery, Huey) ------------------------------------------------

    def _decorator(self, job: Job, project: Project) -> Iterator[Finding]:
        """Unknown options written at the job's own decorator."""
        title = _title(job)
        keeps = "a task attribute" if job.framework == "celery" else "a task setting"
        for option in self._unknown(job, project, own=True):
            assert option.location is not None
            yield self.finding(
                option.location,
                f"{job.label()}: {option.name}= is not a {title} task option; {title} keeps it "
                f"as {keeps} and never reads it{_hint(job.framework, option.name)}",
                job,
                fix=_rename_option(job, option.name),
            )

    def _unknown(self, job: Job, project: Project, own: bool) -> Iterator[Option]:
        """Options the framework ignores, written at the decorator (``own``) or in a wrapper."""
        known = self._known(job, project)
        if known is None:
            return
        for option in job.options.values():
            if (
                option.location is not None
                and (option.source == TASK_OPTION) == own
                and option.name not in known
                and not option.name.startswith("_")
                and option.name not in {"**", "__cron__"}
                and not _read_by_project(option.name, job, project, wrappers=own)
            ):
                yield option

    def _known(self, job: Job, project: Project) -> frozenset[str] | None:
        """The options a job's decorator reads, or None when a foreign class may read any."""
        if job.framework == "huey":
            if "task_base" in job.options:
                return None
            known_huey = Huey.known_options or frozenset()
            if _uses_django_huey(project):
                known_huey = known_huey | {"queue"}
            return known_huey
        celery = project.framework("celery")
        if not isinstance(celery, Celery) or not celery.classes_known(job, project):
            return None
        known = set(celery_names.TASK_OPTIONS)
        classes = []
        base = celery.task_base(job, project)
        if isinstance(base, ProjectClass):
            classes.append(base)
        if job.cls is not None:
            classes.append(ProjectClass(job.cls, job.path))
        for klass in classes:
            for facts, _ in project.resolver.mro(klass):
                known.update(name for name, _, _ in facts.attrs)
                known.update(method.name for method in facts.methods)
        if _is_periodic(job, project):
            known.update(PERIODIC_OPTIONS)
        return frozenset(known)

    # -- Celery settings -------------------------------------------------------------------

    def _celery_settings(self, celery: Celery, project: Project) -> Iterator[Finding]:
        seen: set[tuple[str, int]] = set()
        for app in celery.apps.values():
            for key, (_, source, location) in sorted(app.values.items()):
                if (
                    key in celery_names.SETTINGS
                    or key in celery_names.OLD_SETTINGS
                    or key.startswith("_")
                    or source.startswith("Celery(")
                    or (location.path, location.span[0]) in seen
                ):
                    continue
                written = (
                    key
                    if source == "app.conf.update"
                    else source.removeprefix("settings.").removeprefix("app.conf.")
                )
                message = self._setting_message(app, key, written, source)
                if message is None or _read_elsewhere(project, (written, key), location):
                    continue
                seen.add((location.path, location.span[0]))
                yield self.finding(
                    location,
                    f"Celery app '{app.name.rpartition('.')[2]}': {message}",
                    fix=_rename_setting(app, key, source, location),
                )

    def _setting_message(self, app: AppConfig, key: str, written: str, source: str) -> str | None:
        """What to say about an unknown key, or None when it may be another package's."""
        namespaced = source.startswith("settings.") and app.namespace is not None
        if key in UNREAD_DOCUMENTED:
            target = _spell(UNREAD_DOCUMENTED[key], app, namespaced)
            return (
                f"{written} appears in Celery's configuration table, but Celery 5 does not "
                f"read it, so this limit is never applied; use {target}"
            )
        if key in THIRD_PARTY_SETTINGS:
            return None
        hint = _setting_hint(key, app, namespaced)
        explicit = source.startswith("app.conf")
        if hint is None and not explicit and not key.startswith(SETTING_GROUPS):
            return None
        what = f"{written} (namespace '{app.namespace}')" if namespaced else f"'{written}'"
        return f"{what} is not a Celery setting, so Celery ignores it{hint or ''}"

    # -- taskiq --------------------------------------------------------------------------

    def _taskiq(self, job: Job, project: Project) -> Iterator[Finding]:
        for option in job.options.values():
            if (
                option.name in LABELS
                or option.location is None
                or option.source != TASK_OPTION
                or _label_read(option.name, project)
            ):
                continue
            target = difflib.get_close_matches(option.name, TASKIQ_LOOKALIKES, n=1, cutoff=0.6)
            if not target and not _looks_like(option.name):
                continue
            hint = f"; did you mean {target[0]}=?" if target else ""
            yield self.finding(
                option.location,
                f"{job.label()}: label {option.name}= is read neither by taskiq nor by the "
                f"project's middleware, so it changes nothing{hint}",
                job,
            )

    # -- RQ ------------------------------------------------------------------------------

    def _rq(self, job: Job, project: Project) -> Iterator[Finding]:
        function = job.function
        for site in project.sites_of(job, tests=False):
            call = site.site.call
            if called_on_job(call, job, project):
                if site.method not in {"enqueue", "delay"}:
                    continue
                for key in ("timeout", "job_timeout"):
                    if call.kwarg(key) is None or _takes(function, key):
                        continue
                    yield self.finding(
                        Location(site.path, call.kwarg_span(key) or call.span),
                        f"{job.label()}: {site.method}(..., {key}=...) on an @job function is "
                        f"passed to the function, which takes no {key} (a TypeError when the job "
                        "runs), and does not change the job's timeout; set timeout= on @job",
                        job,
                    )
                continue
            if site.method not in RQ_PASSES_ON or call.kwarg("timeout") is None:
                continue
            if not _on_rq_queue(site, project):
                continue
            explicit = call.kwarg("args") is not None or call.kwarg("kwargs") is not None
            if not explicit and _takes(function, "timeout"):
                continue
            fate = (
                "drops it because args=/kwargs= are given"
                if explicit
                else "passes it to the job function, which takes no timeout (a TypeError when "
                "the job runs)"
            )
            rename = None
            if call.kwarg("job_timeout") is None:
                edit = Edit(RENAME_KEYWORD, site.path, call.span, "timeout", "job_timeout")
                rename = Fix("Rename timeout= to job_timeout=", UNSAFE, (edit,))
            yield self.finding(
                Location(site.path, call.kwarg_span("timeout") or call.span),
                f"{job.label()}: {site.method}(..., timeout=...) is not RQ's job timeout: RQ "
                f"{fate}, and the job keeps its queue's default (180 s unless the queue sets "
                "one); use job_timeout=",
                job,
                fix=rename,
            )


# -- helpers -----------------------------------------------------------------------------


def _title(job: Job) -> str:
    return "Celery" if job.framework == "celery" else "Huey"


def _hint(framework: str, name: str) -> str:
    target = _suggest(framework, name)
    return f"; did you mean {target}=?" if target else ""


def _suggest(framework: str, name: str) -> str | None:
    intended = CELERY_INTENDED if framework == "celery" else HUEY_INTENDED
    if name in intended:
        return intended[name]
    choices: Iterable[str] = (
        CELERY_OPTIONS if framework == "celery" else (Huey.known_options or frozenset())
    )
    close = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.8)
    return close[0] if close else None


def _rename_option(job: Job, name: str) -> Fix | None:
    """Rename a decorator keyword to the option the framework reads.

    Unsafe: the option starts to apply (a time limit kills tasks that ran
    long), and a close spelling is only a guess at what was meant.
    """
    target = _suggest(job.framework, name)
    decorator = framework_decorator(job)
    if target is None or target in job.options or decorator is None:
        return None
    edit = Edit(RENAME_KEYWORD, decorator.path, decorator.span, name, target)
    return Fix(f"Rename {name}= to {target}=", UNSAFE, (edit,))


def _rename_setting(app: AppConfig, key: str, source: str, location: Location) -> Fix | None:
    """Rename an assigned setting (``settings.X = ...``, ``app.conf.X = ...``) as suggested.

    Keys of ``app.conf.update({...})`` and of dicts are left alone; the
    suggestion is used only when it names a real setting.  Unsafe, as for options.
    """
    if not source.startswith(("settings.", "app.conf.")) or source == "app.conf.update":
        return None
    target = UNREAD_DOCUMENTED.get(key) or _intended_setting(key)
    if target is None or target == "broker_transport_options":
        return None
    namespaced = source.startswith("settings.") and app.namespace is not None
    old = source.removeprefix("settings.").removeprefix("app.conf.").rpartition(".")[2]
    new = _spell(target, app, namespaced)
    edit = Edit(RENAME_TARGET, location.path, location.span, old, new)
    return Fix(f"Rename {old} to {new}", UNSAFE, (edit,))


def _intended_setting(key: str) -> str | None:
    """The setting a misspelled or misplaced key most likely means (exact rules only)."""
    settings = celery_names.SETTINGS
    target = SETTING_INTENDED.get(key)
    if target is None:
        for stem in (key, key.removesuffix("s")):
            for group in ("task_", "worker_", "broker_"):
                if f"{group}{stem}" in settings:
                    return f"{group}{stem}"
    return target


def _setting_hint(key: str, app: AppConfig, namespaced: bool) -> str | None:
    """``; did you mean CELERY_TASK_TIME_LIMIT?`` or how to set a per-task option for all tasks."""
    settings = celery_names.SETTINGS
    target = _intended_setting(key)
    if target == "broker_transport_options":
        spelled = _spell(target, app, namespaced)
        return f"; the visibility timeout is the 'visibility_timeout' key of {spelled}"
    if target is None:
        attribute = key.removeprefix("task_").removeprefix("default_")
        attribute = {"retry_delay": "default_retry_delay"}.get(attribute, attribute)
        if attribute in CELERY_OPTIONS and f"task_{attribute}" not in settings:
            annotations = _spell("task_annotations", app, namespaced)
            return (
                f"; {attribute} is a task option, not a setting: set it on the tasks, or for "
                f"every task with {annotations} = {{'*': {{'{attribute}': ...}}}}"
            )
        close = difflib.get_close_matches(key, sorted(settings), n=1, cutoff=0.85)
        target = close[0] if close else None
    if target is None:
        return None
    return f"; did you mean {_spell(target, app, namespaced)}?"


def _spell(setting: str, app: AppConfig, namespaced: bool) -> str:
    return f"{app.namespace}_{setting.upper()}" if namespaced else setting


def _read_elsewhere(project: Project, names: tuple[str, ...], where: Location) -> bool:
    """Whether the project's code reads a key (``settings.KEY``, ``conf.key``, ``"key"``).

    Occurrences that define it (``KEY = ...``, ``key=...``, ``"key": ...``) do not count.
    """
    pattern = re.compile(
        r"(?<![\w])(?:" + "|".join(re.escape(n) for n in set(names)) + r")(?![\w])"
    )
    first, last = where.span[0], where.span[2]
    for facts in project.resolver.modules.values():
        if pattern.search(facts.lines.text) is None:
            continue  # most modules never name the key: no need to look line by line
        for number, line in enumerate(facts.lines, start=1):
            if facts.path == where.path and first <= number <= last:
                continue
            for match in pattern.finditer(line.split("#", 1)[0]):
                rest = line[match.end() :]
                if not (_ASSIGNED.match(rest) or _DICT_KEY.match(rest)):
                    return True
    return False


_ASSIGNED = re.compile(r"[\"']?\s*(?::[^=]*)?=(?!=)")
_DICT_KEY = re.compile(r"[\"']\s*:")


def _read_by_project(name: str, job: Job, project: Project, wrappers: bool) -> bool:
    """Whether project code reads a custom option.

    Readers are the wrapper decorator an option is passed to (``wrappers``: not
    for the options the wrapper itself writes), hooks and signal handlers,
    methods of the project's Task classes, and ``getattr`` calls.
    """
    if wrappers and any(name in f.identifiers for f in _wrappers_of(job, project)):
        return True
    for facts in project.resolver.modules.values():
        hooks = [
            function
            for function in facts.functions
            if any(_hook_decorator(decorator) for decorator in function.decorators)
        ]
        for cls in facts.classes:
            bases = project.resolver.external_bases(ProjectClass(cls, facts.path))
            if any(base.startswith(("celery.", "huey.")) for base in bases):
                hooks.extend(cls.methods)
        if any(name in function.identifiers for function in hooks):
            return True
    return _getattr_reads(name, project)


def _getattr_reads(name: str, project: Project) -> bool:
    """``getattr(task, "name", ...)`` or Huey's ``task.settings.get("name")`` anywhere."""
    pattern = re.compile(
        r"(?:getattr\([^,()]*,\s*|\.settings(?:\.get\(|\[))[\"']" + re.escape(name) + r"[\"']"
    )
    return any(
        pattern.search(line)
        for facts in project.resolver.modules.values()
        if name in facts.lines.text
        for line in facts.lines
    )


def _uses_django_huey(project: Project) -> bool:
    """django-huey's decorators take ``queue=`` to choose one of several Huey instances."""
    return any(
        target.startswith("django_huey")
        for facts in project.resolver.modules.values()
        for _, target in facts.imports
    )


def _hook_decorator(decorator: Value) -> bool:
    target = decorator.func if isinstance(decorator, Call) else decorator
    name = dotted(target) or (target.name if isinstance(target, Attr) else "")
    return name.rpartition(".")[2] in HOOK_DECORATORS


def _wrappers_of(job: Job, project: Project) -> list[FunctionFacts]:
    """The project functions used as the job's decorator (wrappers that may read options)."""
    out: list[FunctionFacts] = []
    for decorator in job.function.decorators:
        target = decorator.func if isinstance(decorator, Call) else decorator
        symbol = project.resolver.symbol_of(target)
        if isinstance(symbol, ProjectFunction):
            out.append(symbol.facts)
    return out


def _is_periodic(job: Job, project: Project) -> bool:
    for decorator in job.function.decorators:
        target = decorator.func if isinstance(decorator, Call) else decorator
        name = project.external_name(target) or ""
        if name.endswith(".periodic_task"):
            return True
    return False


def _label_read(name: str, project: Project) -> bool:
    """Whether the project's code reads a taskiq label (``message.labels.get("name")``)."""
    for facts in project.resolver.modules.values():
        for function in all_functions(facts):
            if name in function.identifiers and "labels" in function.identifiers:
                return True
    return False


def _looks_like(name: str) -> bool:
    return any(part in name for part in ("retry", "retries", "timeout"))


def _takes(function: FunctionFacts, name: str) -> bool:
    return name in function.params or function.kwarg is not None


def _on_rq_queue(site: EnqueueSite, project: Project) -> bool:
    """Whether an ``enqueue`` call is RQ's (or django-rq's), not a project method of that name.

    A receiver that cannot be resolved (a parameter, ``self.queue``) counts when
    the module imports RQ.
    """
    resolver = project.resolver
    func = site.site.call.func
    symbol = resolver.symbol_of(func)
    if isinstance(symbol, External):
        return symbol.name.startswith(RQ_PACKAGES)
    if isinstance(symbol, InstanceAttr):
        return symbol.cls.startswith(RQ_PACKAGES)
    if isinstance(symbol, (ProjectFunction, ProjectClass)):
        return False
    receiver: Value | None = None
    name = dotted(func)
    if isinstance(func, Ref) and name is not None:
        found = resolver.lookup(name.rpartition(".")[0])
        receiver = found.value if isinstance(found, Assigned) else None
    elif isinstance(func, Local) and site.function is not None:
        receiver = site.function.local(func.name.rpartition(".")[0])
    if isinstance(receiver, Call):
        built = resolver.symbol_of(receiver.func)
        if isinstance(built, ProjectClass):
            return any(b.startswith(RQ_PACKAGES) for b in resolver.external_bases(built))
        if isinstance(built, External):
            return built.name.startswith(RQ_PACKAGES)
    facts = resolver.facts_by_path.get(site.path)
    return facts is not None and any(
        target.startswith(RQ_PACKAGES) or target in {"rq", "django_rq"}
        for _, target in facts.imports
    )
