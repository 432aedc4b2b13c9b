"""JOB605 inline-execution-configured: production configuration that runs jobs in the caller.

Each framework has a switch for tests that makes "enqueue" mean "run it now,
here": Celery ``task_always_eager`` (which also swallows the task's exceptions
unless ``task_eager_propagates`` is set), RQ ``Queue(is_async=False)`` and
django-rq's ``ASYNC: False``, Huey ``immediate=True``, and ``django.tasks``'
``ImmediateBackend`` — which is what an unconfigured project gets, because
``TASKS`` defaults to it — or ``DummyBackend``, which never runs anything.
Left on in production, requests do the jobs' work (and wait for it), and a
failing job fails the request or vanishes.

Configuration meant for tests or development is not production: files under
the test paths, and settings modules named for tests, development, local or
CI (``settings/test.py``, ``settings_dev.py``).  Values computed at run time
(``DEBUG``, an environment variable) are unknown, so the rule stays silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.discovery import iter_call_sites
from jobaudit.frameworks.celery import Celery, celery_key
from jobaudit.frameworks.rq import GET_QUEUE
from jobaudit.model import Location
from jobaudit.project import is_test_path
from jobaudit.symbols import InstanceAttr
from jobaudit.transactions import non_production
from jobaudit.values import Call, Mapping, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

INLINE_BACKENDS = {
    "ImmediateBackend": "runs every task inline, in the process that enqueues it",
    "DummyBackend": "stores tasks and never runs them",
}


class InlineExecutionConfigured(Rule):
    code = "JOB605"
    name = "inline-execution-configured"
    level = "error"
    scope = "config"
    gate = "enqueue safety"
    summary = "Production configuration runs jobs inline in the caller (or never)."
    frameworks = ("celery", "rq", "huey", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        seen: set[Location] = set()
        for finding in (
            *self._celery(project),
            *self._calls(project),
            *self._django_settings(project),
            *self._django_tasks(project),
        ):
            if finding.location not in seen:
                seen.add(finding.location)
                yield finding

    def _production(self, project: Project, location: Location) -> bool:
        """A place outside tests and outside settings modules for tests or development."""
        if is_test_path(location.path, project.config.test_paths):
            return False
        facts = project.resolver.facts_by_path.get(location.path)
        return facts is None or not non_production(facts.module)

    # -- Celery ------------------------------------------------------------------------------

    def _celery(self, project: Project) -> Iterator[Finding]:
        """``task_always_eager`` from ``app.conf``/a config module, or from each production
        Django settings module the app reads (not the merged value: a test settings module
        read last would hide a production one)."""
        celery = project.framework("celery")
        if not isinstance(celery, Celery):
            return
        resolver = project.resolver
        for app in celery.apps.values():
            places: list[tuple[Value, str, Location]] = []
            found = app.values.get("task_always_eager")
            if found is not None and not found[1].startswith("settings."):
                places.append(found)
            prefix = f"{app.namespace}_" if app.namespace else None
            for module in app.namespace_settings:
                if non_production(module):
                    continue
                for name, setting in project.settings(module).values.items():
                    if celery_key(name, prefix) == "task_always_eager":
                        places.append((setting.value, f"settings.{name}", setting.location))
            propagates = app.values.get("task_eager_propagates")
            swallowed = propagates is None or resolver.evaluate(propagates[0]) is not True
            tail = (
                ", and without task_eager_propagates their exceptions are swallowed"
                if swallowed
                else ""
            )
            for value, source, location in places:
                if resolver.evaluate(value) is not True or not self._production(project, location):
                    continue
                yield self.finding(
                    location,
                    f"Celery app '{app.name.rpartition('.')[2]}': task_always_eager=True "
                    f"({source}) runs every task inline in the caller, so .delay() blocks and "
                    f"no worker limits or retries apply{tail}; set it only in test settings",
                )

    # -- RQ and Huey constructor calls -------------------------------------------------------

    def _calls(self, project: Project) -> Iterator[Finding]:
        resolver = project.resolver
        for facts in resolver.modules.values():
            for site, _ in iter_call_sites(facts):
                call = site.call
                location = Location(facts.path, call.span)
                if not self._production(project, location):
                    continue
                name = project.external_name(call.func) or resolver.instance_class(call) or ""
                if call.kwarg("is_async") is not None and (
                    name.startswith(("rq.", "django_rq.")) or name in GET_QUEUE
                ):
                    if resolver.evaluate(call.kwarg("is_async")) is False:
                        yield self.finding(
                            _keyword(facts.path, call, "is_async"),
                            "RQ queue built with is_async=False: enqueue() runs the job "
                            "inline in the caller instead of putting it on the queue; use it "
                            "only in tests",
                        )
                elif _huey(name) and resolver.evaluate(call.kwarg("immediate")) is True:
                    yield self.finding(
                        _keyword(facts.path, call, "immediate"),
                        f"{name.rpartition('.')[2]}(immediate=True): every task runs inline "
                        "in the caller (with in-memory storage) instead of on the consumer; "
                        "use it only in tests",
                    )
            for assign in facts.attr_assigns:
                symbol = resolver.symbol_of(assign.target)
                location = Location(facts.path, assign.span)
                if (
                    isinstance(symbol, InstanceAttr)
                    and _huey(symbol.cls)
                    and symbol.attrs == ("immediate",)
                    and resolver.evaluate(assign.value) is True
                    and self._production(project, location)
                ):
                    yield self.finding(
                        location,
                        "huey.immediate = True: every task runs inline in the caller instead "
                        "of on the consumer; use it only in tests",
                    )

    # -- Django settings: django-rq, djhuey --------------------------------------------------

    def _django_settings(self, project: Project) -> Iterator[Finding]:
        resolver = project.resolver
        for module in _production_settings(project):
            settings = project.settings(module)
            queues = settings.get("RQ_QUEUES")
            if queues is not None and isinstance(queues.value, Mapping):
                for name, queue in queues.value.items:
                    queue = resolver.evaluate(queue)
                    if (
                        isinstance(queue, Mapping)
                        and resolver.evaluate(queue.get("ASYNC")) is False
                    ):
                        yield self.finding(
                            queues.location,
                            f"RQ_QUEUES[{name!r}] sets ASYNC: False: django-rq runs every job "
                            "enqueued on it inline in the caller; use it only in test settings",
                        )
            huey = settings.get("HUEY")
            if (
                huey is not None
                and isinstance(huey.value, Mapping)
                and resolver.evaluate(huey.value.get("immediate")) is True
            ):
                yield self.finding(
                    huey.location,
                    "HUEY sets immediate: True: every task runs inline in the caller instead "
                    "of on the consumer; use it only in test settings",
                )

    # -- django.tasks ------------------------------------------------------------------------

    def _django_tasks(self, project: Project) -> Iterator[Finding]:
        jobs = project.jobs_of("django_tasks")
        if not jobs:
            return
        used: dict[str, list[str]] = {}
        for job in jobs:
            option = job.options.get("backend")
            alias = option.value if option is not None else "default"
            if isinstance(alias, str):
                used.setdefault(alias, []).append(job.name)
        resolver = project.resolver
        for module in _production_settings(project):
            settings = project.settings(module)
            tasks = settings.get("TASKS")
            if tasks is None:
                if settings.incomplete is None and "default" in used:
                    yield self.finding(
                        _settings_anchor(project, module),
                        f"TASKS is not set in {module}, so django.tasks uses its default "
                        f"ImmediateBackend, which runs every task inline, in the process that "
                        f"enqueues it ({_names(used['default'])}); configure a worker backend",
                    )
                continue
            if not isinstance(tasks.value, Mapping):
                continue
            for alias, names in used.items():
                entry = resolver.evaluate(tasks.value.get(alias))
                if not isinstance(entry, Mapping):
                    continue
                backend = resolver.evaluate(entry.get("BACKEND"))
                if not isinstance(backend, str):
                    continue
                short = backend.rpartition(".")[2]
                if short in INLINE_BACKENDS and backend.startswith(
                    ("django.tasks.", "django_tasks.")
                ):
                    yield self.finding(
                        tasks.location,
                        f"TASKS[{alias!r}] uses {short}, which {INLINE_BACKENDS[short]} "
                        f"({_names(names)}); Django ships it for development and tests",
                    )


def _huey(name: str) -> bool:
    return name.startswith("huey.") and name.rpartition(".")[2].endswith("Huey")


def _keyword(path: str, call: Call, keyword: str) -> Location:
    return Location(path, call.kwarg_span(keyword) or call.span)


def _production_settings(project: Project) -> list[str]:
    return [
        module
        for module in project.django_settings_modules()
        if not non_production(module)
        and module in project.resolver.modules
        and not is_test_path(project.resolver.modules[module].path, project.config.test_paths)
    ]


def _settings_anchor(project: Project, module: str) -> Location:
    """Where to say "TASKS is not set": at ``INSTALLED_APPS``, else the module's first setting."""
    facts = project.resolver.modules[module]
    for name, _, span in facts.assigns:
        if name == "INSTALLED_APPS":
            return Location(facts.path, span)
    if facts.assigns:
        return Location(facts.path, facts.assigns[0][2])
    return Location(facts.path, (1, 0, 1, 0))


def _names(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:3])
    more = len(names) - 3
    return f"tasks {shown} and {more} more" if more > 0 else f"tasks {shown}"


__all__ = ["InlineExecutionConfigured"]
