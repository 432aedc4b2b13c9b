"""JOB105 job-id-not-deduplicating.

Giving a job an id built from the data (``job_id=f"sync-{order_id}"``) reads
like "one job per order", and most queues do not keep that promise:

- RQ overwrites the job hash of an existing id (and runs the job again)
  unless ``unique=True`` (RQ 2.8+) is passed, which raises ``DuplicateJobError``;
- Celery never deduplicates on ``task_id``: two calls run the task twice;
- taskiq's ``kicker().with_task_id(...)`` only names the message;
- arq does refuse a second ``_job_id``, but until the first job's result
  expires (``keep_result``, 3600 s by default), not only while it runs: a note.

The rule fires only for ids that look chosen to identify the work: a string
built from constants and data (an f-string, a format, a concatenation).  An id
from ``uuid4()`` is a handle, not a dedup key, and an id passed in from
elsewhere cannot be judged, so both stay silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.idempotency.unstable_idempotency_key import fresh
from jobaudit.discovery import iter_call_sites
from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Job, Location
from jobaudit.project import is_test_path
from jobaudit.side_effects import chain, receiver_origin
from jobaudit.symbols import InstanceAttr, ProjectFunction
from jobaudit.values import Attr, BinOp, Call, Local, Ref, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

RQ_METHODS = frozenset({"enqueue", "enqueue_call", "enqueue_in", "enqueue_at", "delay"})
_MAX_DEPTH = 4


class JobIdNotDeduplicating(Rule):
    code = "JOB105"
    name = "job-id-not-deduplicating"
    level = "warning"
    scope = "call site"
    gate = "idempotency"
    summary = "A job enqueued with an id built from its data, which the queue does not deduplicate."
    frameworks = ("rq", "celery", "taskiq", "arq")

    def check_project(self, project: Project) -> Iterator[Finding]:
        present = {job.framework for job in project.jobs}
        for facts in project.resolver.modules.values():
            if is_test_path(facts.path, project.config.test_paths):
                continue
            for site, function in iter_call_sites(facts):
                found = self._check(site, function, present, project)
                if found is None:
                    continue
                name, message, level = found
                span = site.call.kwarg_span(name) or site.call.span
                finding = self.finding(
                    Location(facts.path, span), message, self._job(site.call, project)
                )
                yield replace(finding, level=level) if level else finding

    def _check(
        self,
        site: CallSite,
        function: FunctionFacts | None,
        present: set[str],
        project: Project,
    ) -> tuple[str, str, str | None] | None:
        """The keyword, the message and a level override, for a call that relies on an id."""
        call = site.call
        segments = chain(call.func)
        method = segments[-1] if segments else ""

        def who() -> str:  # resolving the job loads modules: only for a call that is reported
            job = self._job(call, project)
            return f"{job.label()} is" if job is not None else "This job is"

        rq = method in RQ_METHODS and ("rq" in present or _on_rq_queue(call, function, project))
        if rq and _chosen(call, "job_id", function, project):
            if project.resolver.evaluate(call.kwarg("unique")) is True:
                return None
            return (
                "job_id",
                f"{who()} enqueued with a job_id built from its data but without unique=True: "
                "RQ replaces a job with the same id instead of refusing the duplicate "
                "(unique=True, RQ 2.8+, raises DuplicateJobError)",
                None,
            )
        celery = "celery" in present and method in {"apply_async", "send_task"}
        if celery and _chosen(call, "task_id", function, project):
            return (
                "task_id",
                f"{who()} sent with a task_id built from its data: Celery does not "
                "deduplicate on task ids, so a second call runs the task again",
                None,
            )
        kicked = "taskiq" in present and method == "with_task_id" and "kicker" in segments
        if kicked and _chosen(call, None, function, project):
            return (
                "",
                f"{who()} kicked with with_task_id() built from its data: taskiq does not "
                "deduplicate on task ids, so a second kick runs the task again",
                None,
            )
        if (
            "arq" in present
            and method == "enqueue_job"
            and _chosen(call, "_job_id", function, project)
        ):
            return (
                "_job_id",
                f"{who()} enqueued with a _job_id built from its data: arq refuses the same id "
                "until the first job's result expires (keep_result, 3600 s by default), so a "
                "later run with that id is dropped, not only a concurrent one",
                "note",
            )
        return None

    @staticmethod
    def _job(call: Call, project: Project) -> Job | None:
        """The job a call enqueues, when it names one (``task.apply_async``, ``enqueue(f)``).

        By reference, or by name: arq's ``enqueue_job("name")``, Celery's
        ``send_task("registered.name")``, RQ's ``enqueue("pkg.module.func")``.
        """
        first = call.args[0] if call.args else None
        if isinstance(first, str):
            for job in project.jobs:
                if first in {job.name, job.qualname} or _registered(job, project) == first:
                    return job
        targets: list[Value] = [call.func]
        targets.extend(value for value in (first, call.kwarg("func")) if value is not None)
        for target in targets:
            while isinstance(target, (Attr, Call)):
                target = target.base if isinstance(target, Attr) else target.func
            if not isinstance(target, Ref):
                continue
            for name in (target.name, target.name.rpartition(".")[0]):
                symbol = project.resolver.lookup(name) if name else None
                if isinstance(symbol, ProjectFunction):
                    return next((j for j in project.jobs if j.function is symbol.facts), None)
        return None


def _registered(job: Job, project: Project) -> str | None:
    celery = project.framework("celery")
    if job.framework != "celery" or not isinstance(celery, Celery):
        return None
    return celery.registered_name(job)


def _on_rq_queue(call: Call, function: FunctionFacts | None, project: Project) -> bool:
    """``queue.enqueue(...)`` on an ``rq.Queue`` (or django-rq's ``get_queue()``)."""
    if function is not None:
        origin = receiver_origin(call.func, function, project)
    else:
        origin = (
            project.resolver.instance_class(call.func.base) if isinstance(call.func, Attr) else None
        )
        if origin is None and isinstance(call.func, Ref):
            symbol = project.resolver.lookup(call.func.name)
            origin = symbol.cls if isinstance(symbol, InstanceAttr) else None
    return (origin or "").startswith(("rq.", "django_rq."))


def _chosen(
    call: Call, keyword: str | None, function: FunctionFacts | None, project: Project
) -> bool:
    """The id given (as ``keyword``, or the first argument) is built from constants and data."""
    value = call.kwarg(keyword) if keyword else (call.args[0] if call.args else None)
    if value is None:
        return False
    span = (call.kwarg_span(keyword) if keyword else None) or call.span
    if function is not None and fresh(value, function, project, span) is not None:
        return False
    return _built(value, function, 0)


def _built(value: Value, function: FunctionFacts | None, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return False
    if isinstance(value, str):
        return True
    if isinstance(value, Unknown):
        return value.reason == "f-string"
    if isinstance(value, BinOp):
        return _built(value.left, function, depth + 1) or _built(value.right, function, depth + 1)
    if isinstance(value, Call) and isinstance(value.func, Attr):
        return value.func.name == "format" and isinstance(value.func.base, str)
    if isinstance(value, Local) and "." not in value.name and function is not None:
        assigned = function.local(value.name)
        return assigned is not None and _built(assigned, function, depth + 1)
    return False
