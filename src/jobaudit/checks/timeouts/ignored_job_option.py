"""JOB402 ignored-job-option: an option the framework silently ignores.

Celery and Huey keep any decorator keyword, taskiq turns any keyword into a
label, RQ's ``enqueue()`` hands unknown keywords to the job function, and a
Django settings key under the ``CELERY_`` namespace that Celery does not know
is never read.  The option looks set; it is not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.frameworks import celery_names
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.huey import Huey
from jobaudit.frameworks.taskiq import LABELS
from jobaudit.model import Job, Location
from jobaudit.symbols import External, InstanceAttr, ProjectClass

if TYPE_CHECKING:
    from jobaudit.project import Project

INTENDED = {
    "task_time_limit": "time_limit",
    "task_soft_time_limit": "soft_time_limit",
    "timeout": "time_limit",
    "soft_timeout": "soft_time_limit",
    "max_retry": "max_retries",
    "retry_limit": "max_retries",
    "retries": "max_retries",
    "autoretry_on": "autoretry_for",
    "retry_for": "autoretry_for",
    "task_acks_late": "acks_late",
}
TASKIQ_LOOKALIKES = ("timeout", "retry_on_error", "max_retries")


def suggest(
    name: str, choices: Iterable[str], intended: dict[str, str] | None = None
) -> str | None:
    if intended and name in intended:
        return intended[name]
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.75)
    return close[0] if close else None


class IgnoredJobOption(Rule):
    code = "JOB402"
    name = "ignored-job-option"
    level = "error"
    scope = "job / call site"
    gate = "timeouts"
    summary = "A misspelled or misplaced option that the framework silently ignores."
    frameworks = ("celery", "rq", "huey", "taskiq")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework == "celery":
            yield from self._celery(job, project)
        elif job.framework == "huey":
            yield from self._decorator(
                job,
                Huey.known_options or frozenset(),
                {"time_limit": "timeout", "max_retries": "retries", "retry": "retries"},
                "Huey keeps it as a task setting and never reads it",
            )
        elif job.framework == "taskiq":
            yield from self._taskiq(job, project)
        elif job.framework == "rq":
            yield from self._rq_enqueue(job, project)

    def check_project(self, project: Project) -> Iterator[Finding]:
        celery = project.framework("celery")
        if isinstance(celery, Celery):
            yield from self._celery_settings(celery, project)

    # -- Celery --------------------------------------------------------------------------

    def _celery(self, job: Job, project: Project) -> Iterator[Finding]:
        allowed = set(celery_names.TASK_OPTIONS)
        base = job.options.get("base")
        if base is not None:
            symbol = project.resolver.symbol_of(base.written)
            if not isinstance(symbol, ProjectClass):
                if not (
                    isinstance(symbol, External)
                    and symbol.name in {"celery.Task", "celery.app.task.Task"}
                ):
                    return
            else:
                bases = project.resolver.external_bases(symbol)
                if any(not b.startswith("celery.") for b in bases):
                    return
                for klass, _ in project.resolver.mro(symbol):
                    allowed.update(name for name, _, _ in klass.attrs)
                    allowed.update(method.name for method in klass.methods)
        yield from self._decorator(
            job,
            frozenset(allowed),
            INTENDED,
            "Celery keeps it as a task attribute and never reads it",
        )

    def _decorator(
        self, job: Job, known: frozenset[str], intended: dict[str, str], consequence: str
    ) -> Iterator[Finding]:
        for option in job.options.values():
            if (
                option.name in known
                or option.name.startswith("_")
                or option.name in {"**", "__cron__"}
            ):
                continue
            if option.location is None:
                continue
            target = suggest(option.name, known, intended)
            hint = f"; did you mean {target}=?" if target else ""
            yield self.finding(
                option.location,
                f"{job.label()}: option {option.name}= is not one {_title(job)} knows; "
                f"{consequence}{hint}",
                job,
            )

    def _celery_settings(self, celery: Celery, project: Project) -> Iterator[Finding]:
        seen: set[tuple[str, int]] = set()
        for app in celery.apps.values():
            for key, (_, source, location) in sorted(app.values.items()):
                if key in celery_names.SETTINGS or key in celery_names.OLD_SETTINGS:
                    continue
                written = source.removeprefix("settings.").removeprefix("app.conf.")
                if source.startswith("settings.") and project.reads_setting(written):
                    continue
                if source.startswith("Celery("):
                    continue
                if (location.path, location.span[0]) in seen:
                    continue
                seen.add((location.path, location.span[0]))
                target = suggest(key, celery_names.SETTINGS)
                if source.startswith("settings.") and app.namespace:
                    hint = f"; did you mean {app.namespace}_{target.upper()}?" if target else ""
                    what = f"setting {written} (namespace '{app.namespace}')"
                else:
                    hint = f"; did you mean {target}?" if target else ""
                    what = f"configuration key '{key}'"
                yield self.finding(
                    location,
                    f"Celery app '{app.name.rpartition('.')[2]}': {what} is not a Celery "
                    f"setting, so Celery ignores it{hint}",
                )

    # -- taskiq --------------------------------------------------------------------------

    def _taskiq(self, job: Job, project: Project) -> Iterator[Finding]:
        mentioned = _mentioned_names(project)
        for option in job.options.values():
            if option.name in LABELS or option.location is None or option.name in mentioned:
                continue
            target = difflib.get_close_matches(option.name, TASKIQ_LOOKALIKES, n=1, cutoff=0.6)
            if not target and not _looks_like(option.name):
                continue
            hint = f"; did you mean {target[0]}=?" if target else ""
            yield self.finding(
                option.location,
                f"{job.label()}: label {option.name}= is not read by taskiq or by the project's "
                f"middleware, so it changes nothing{hint}",
                job,
            )

    # -- RQ ------------------------------------------------------------------------------

    def _rq_enqueue(self, job: Job, project: Project) -> Iterator[Finding]:
        function = job.function
        if "timeout" in function.params or function.kwarg is not None:
            return
        assert job.policy is not None
        limit = job.policy.time_limit.value
        keeps = (
            f"keeps its {limit:g} s timeout" if isinstance(limit, float) else "keeps its timeout"
        )
        for site in project.sites_of(job):
            call = site.site.call
            if site.method not in {"enqueue", "enqueue_in", "enqueue_at"}:
                continue
            if call.kwarg("timeout") is None:
                continue
            symbol = project.resolver.symbol_of(call.func)
            if isinstance(symbol, InstanceAttr) and not symbol.cls.startswith("rq"):
                continue
            yield self.finding(
                Location(site.path, call.kwarg_span("timeout") or call.span),
                f"{job.label()}: enqueue(..., timeout=...) passes timeout to the job function "
                f"as an argument, and the job {keeps}; use job_timeout=",
                job,
            )


def _title(job: Job) -> str:
    return {"celery": "Celery", "huey": "Huey"}.get(job.framework, job.framework)


def _looks_like(name: str) -> bool:
    return any(part in name for part in ("retry", "retries", "timeout"))


def _mentioned_names(project: Project) -> frozenset[str]:
    names: set[str] = set()
    for facts in project.resolver.modules.values():
        stack = list(facts.functions) + [m for c in facts.classes for m in c.methods]
        for function in stack:
            names.update(function.identifiers)
    return frozenset(names)
