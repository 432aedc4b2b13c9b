"""JOB606 job-called-inline: a job called like a plain function instead of enqueued.

Calling a Celery task, a Dramatiq actor, a taskiq task or an RQ ``@job``
function runs its body right there, in the caller: no worker, no retries, no
time limit, and a web request waits for it.  It reads like an enqueue, which
is why it slips through review.  A ``django.tasks`` ``Task`` is not callable
at all (``TypeError``; ``.call()`` runs it inline on purpose).  Calling a Huey
task is how Huey enqueues, so Huey is never reported; arq and Temporal jobs
are plain functions whose direct calls are ordinary code.

Only calls whose callee resolves to a registered job are reported, and not
where running it inline is the point: test files, job code (a job's body, two
calls deep: a job that runs another inline, or itself), Django management
commands and the helpers only they call, and a ``try`` that catches Celery's
``Retry`` (code that expects the task to run, and retry, right there).  The
explicit spellings ``task.run()``, ``task.apply()`` and ``task.call()`` are
never reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.discovery import iter_call_sites
from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.model import Job, Location
from jobaudit.project import is_test_path
from jobaudit.symbols import ProjectFunction
from jobaudit.values import Ref

if TYPE_CHECKING:
    from jobaudit.project import Project

CONSEQUENCE = {
    "celery": (
        "runs the task body here, synchronously, with no worker, retries or time limit",
        "{name}.delay(...) to enqueue it ({name}.apply(...) runs it inline on purpose)",
    ),
    "dramatiq": (
        "runs the actor here, synchronously, with no worker, retries or time limit",
        "{name}.send(...) to enqueue it",
    ),
    "taskiq": (
        "runs the task function here, not on a worker",
        "await {name}.kiq(...) to enqueue it",
    ),
    "rq": (
        "runs the @job function here, synchronously, not on a worker",
        "{name}.delay(...) to enqueue it",
    ),
    "django_tasks": (
        "raises TypeError: a django.tasks Task is not callable",
        "{name}.enqueue(...) to enqueue it, or {name}.call(...) to run it inline",
    ),
}


class JobCalledInline(Rule):
    code = "JOB606"
    name = "job-called-inline"
    level = "warning"
    scope = "call site"
    gate = "enqueue safety"
    summary = "A job is called like a function, so it runs inline instead of being enqueued."
    frameworks = ("celery", "dramatiq", "taskiq", "rq", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        by_function = {
            (job.module, job.function.qualname): job
            for job in project.jobs
            if job.framework in CONSEQUENCE and _declared(job)
        }
        if not by_function:
            return
        job_code = {
            (body.facts.module, body.facts.qualname)
            for job in project.jobs
            for body in project.body(job)
        }
        callers = _Callers(project)
        tests = project.config.test_paths
        for facts in project.resolver.modules.values():
            if is_test_path(facts.path, tests) or _command(facts.module):
                continue
            for site, function in iter_call_sites(facts):
                func = site.call.func
                if function is None or not isinstance(func, Ref):
                    continue
                symbol = project.resolver.lookup(func.name)
                if not isinstance(symbol, ProjectFunction):
                    continue
                job = by_function.get((symbol.facts.module, symbol.facts.qualname))
                if (
                    job is None
                    or _in_job(function, job_code, project)
                    or _handles_retry(site, function, project)
                    or callers.only_commands(function)
                ):
                    continue
                happens, instead = CONSEQUENCE[job.framework]
                name = func.name.rpartition(".")[2]
                yield self.finding(
                    Location(facts.path, site.call.span),
                    f"{job.label()} is called directly: {name}(...) {happens}; use "
                    f"{instead.format(name=name)}",
                    job,
                )


def _command(module: str) -> bool:
    """A Django management command: running a task in the foreground is its purpose."""
    return ".management.commands." in f".{module}."


def _handles_retry(site: CallSite, function: FunctionFacts, project: Project) -> bool:
    """The call is in a ``try`` that catches Celery's ``Retry``: the code knows the task runs
    inline (and raises its retry there)."""
    for index in site.trys:
        for handler in function.handlers:
            if handler.try_index != index:
                continue
            for caught in handler.types:
                name = project.external_name(caught) or ""
                if name.startswith("celery.") and name.endswith(".Retry"):
                    return True
    return False


class _Callers:
    """Which modules call a function, to leave alone helpers only management commands run."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._modules: dict[tuple[str, str], set[str]] | None = None

    def only_commands(self, function: FunctionFacts) -> bool:
        if self._modules is None:
            self._modules = {}
            resolver = self.project.resolver
            for facts in resolver.modules.values():
                if is_test_path(facts.path, self.project.config.test_paths):
                    continue  # tests call everything; they say nothing about who runs it
                for site, _ in iter_call_sites(facts):
                    if isinstance(site.call.func, Ref):
                        symbol = resolver.lookup(site.call.func.name)
                        if isinstance(symbol, ProjectFunction):
                            key = (symbol.facts.module, symbol.facts.qualname)
                            self._modules.setdefault(key, set()).add(facts.module)
        modules = self._modules.get((function.module, function.qualname), set())
        return bool(modules) and all(_command(module) for module in modules)


def _declared(job: Job) -> bool:
    """A job made by a decorator or wrapper; RQ jobs found only as enqueue targets are
    plain functions, and calling a plain function directly is ordinary code."""
    return job.framework != "rq" or job.decorator_location is not None


def _in_job(function: FunctionFacts, jobs: set[tuple[str, str]], project: Project) -> bool:
    """Inside a job function (or a function nested in one, or a method of a job class)."""
    qualname = function.qualname
    while True:
        if (function.module, qualname) in jobs:
            return True
        if "<locals>" not in qualname:
            break
        qualname = qualname.rsplit(".<locals>.", 1)[0]
    if function.class_name is None:
        return False
    return any(
        job.cls is not None
        and job.cls.name == function.class_name
        and job.module == function.module
        for job in project.jobs
    )


__all__ = ["JobCalledInline"]
