"""JOB602 job-waits-on-job: a job that blocks until another job has finished.

A job that enqueues a sub-job and waits for its result holds its worker slot
while the sub-job sits in the queue.  With enough such jobs at once every slot
waits and nothing is left to run the jobs they wait for: the pool deadlocks.
Celery refuses outright (``result.get()`` in a task raises ``RuntimeError``
unless ``allow_join_result()`` or ``disable_sync_subtasks=False`` lifts the
guard, which brings the deadlock back).

A wait is a blocking call on the handle an enqueue returned, in the job's body
(the job and the project functions it calls, two deep): Celery ``.get()``,
``.wait()``, ``.join()`` on an ``AsyncResult`` (from ``delay``/``apply_async``,
``send_task``, ``AsyncResult(id)``, a ``group``/``chord``); RQ
``latest_result(timeout=...)`` and polling a job's status in a loop; arq
``await job.result()``; Huey ``result.get(blocking=True)``; taskiq
``await task.wait_result()``; Dramatiq ``message.get_result(block=True)``.
``.get()`` on anything else (a dict, a cache) is not a wait.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.enqueue.calls import published, spelled
from jobaudit.discovery import method_name
from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.frameworks.retry_helpers import body_places, jobs_label
from jobaudit.model import Job, Location
from jobaudit.symbols import InstanceAttr
from jobaudit.values import Attr, Call, Local, Ref, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

FRAMEWORKS = frozenset({"celery", "rq", "arq", "huey", "taskiq", "dramatiq"})
ASYNC_RESULT = frozenset(
    {"celery.result.AsyncResult", "celery.result.GroupResult", "celery.result.GroupResult.restore"}
)
CANVAS = frozenset(
    {
        "celery.group",
        "celery.chord",
        "celery.chain",
        "celery.canvas.group",
        "celery.canvas.chord",
        "celery.canvas.chain",
    }
)
ALLOW_JOIN = frozenset({"celery.result.allow_join_result"})
RQ_FETCH = frozenset({"rq.job.Job.fetch", "rq.Job.fetch"})
ARQ_JOB = frozenset({"arq.jobs.Job", "arq.Job"})
DRAMATIQ_COMPOSITION = frozenset(
    {"dramatiq.group", "dramatiq.pipeline", "dramatiq.composition.group"}
)
WAITS = {
    "celery": frozenset({"get", "wait", "join", "join_native"}),
    "rq": frozenset({"latest_result"}),
    "arq": frozenset({"result"}),
    "huey": frozenset({"get", "__call__"}),
    "taskiq": frozenset({"wait_result"}),
    "dramatiq": frozenset({"get_result", "get_results", "wait"}),
}
"""Blocking methods of each framework's result handle."""
NO_HANDLE = frozenset(
    {"s", "si", "signature", "delay_on_commit", "apply_async_on_commit", "call_local"}
)
"""Calls that return no result handle (a signature, None, or the function's own value)."""
POLLS = frozenset({"get_status", "return_value", "latest_result", "refresh", "get"})
"""Methods that, called in a loop, poll a handle until the other job is done."""


class JobWaitsOnJob(Rule):
    code = "JOB602"
    name = "job-waits-on-job"
    level = "error"
    scope = "job"
    gate = "enqueue safety"
    summary = "A job blocks on another job's result, holding its worker slot (or raising)."
    frameworks = ("celery", "rq", "arq", "huey", "taskiq", "dramatiq")

    def check_project(self, project: Project) -> Iterator[Finding]:
        def problems(job: Job, function: BodyFunction) -> list[tuple[Location, str]]:
            if job.framework not in FRAMEWORKS:
                return []
            return list(_waits(function, project))

        for location, text, jobs in body_places(project, problems):
            yield self.finding(location, f"{jobs_label(jobs)} {text}", jobs[0])


def _waits(function: BodyFunction, project: Project) -> Iterator[tuple[Location, str]]:
    facts = function.facts
    reported = False
    for site in facts.calls:
        found = _wait(site, facts, project)
        if found is None:
            continue
        reported = True
        yield Location(function.path, site.call.span), _said(function, found)
    if reported:
        return
    for site in facts.calls:
        if project.external_name(site.call.func) in ALLOW_JOIN:
            yield (
                Location(function.path, site.call.span),
                _said(
                    function,
                    "opens allow_join_result() to wait for other tasks' results: the worker "
                    "process blocks until they finish, and when every process waits the pool "
                    "deadlocks",
                ),
            )


def _said(function: BodyFunction, what: str) -> str:
    if function.depth == 0:
        return what
    return f"calls '{function.facts.name}', which {what}"


def _wait(site: CallSite, facts: FunctionFacts, project: Project) -> str | None:
    """What a call waits for, or None when it is not a wait on a job's result handle."""
    call = site.call
    func = call.func
    method = method_name(func)
    receiver: Value | None = None
    if isinstance(func, Attr):
        receiver = func.base
    elif isinstance(func, (Ref, Local)) and "." in func.name:
        head = func.name.rpartition(".")[0]
        receiver = Local(head) if isinstance(func, Local) else Ref(head)
    elif isinstance(func, Local):
        receiver, method = func, "__call__"
    if receiver is None:
        return None
    handle = _handle(receiver, facts, project)
    if handle is None:
        if method == "get" and _disables_guard(call, project) == "disable_sync_subtasks=False":
            return (
                f"waits for another task's result with {spelled(func)}(disable_sync_subtasks="
                "False): the worker process blocks until it finishes, and when every process "
                "waits the pool deadlocks"
            )
        return None
    framework, what = handle
    if method not in WAITS[framework] and not (site.in_loop and method in POLLS):
        return None
    if not _blocks(framework, method, call, site, project):
        return None
    shown = f"{spelled(func)}()"
    if framework == "celery":
        allowed = _disables_guard(call, project) or (
            "inside allow_join_result()"
            if any(project.external_name(_target(w)) in ALLOW_JOIN for w in site.withs)
            else None
        )
        if allowed is None:
            return (
                f"waits for {what} with {shown}: Celery raises RuntimeError('Never call "
                "result.get() within a task!'), so the task fails every time it gets here"
            )
        return (
            f"waits for {what} with {shown} ({allowed}): the worker process blocks until it "
            "finishes, and when every process waits the pool deadlocks"
        )
    verb = "polls" if method not in WAITS[framework] else "waits for"
    return (
        f"{verb} {what} with {shown}: the worker slot stays busy until it finishes, and when "
        "every slot waits nothing is left to run the jobs they wait for"
    )


def _target(value: Value) -> Value:
    return value.func if isinstance(value, Call) else value


def _disables_guard(call: Call, project: Project) -> str | None:
    if project.resolver.evaluate(call.kwarg("disable_sync_subtasks")) is False:
        return "disable_sync_subtasks=False"
    return None


def _blocks(framework: str, method: str, call: Call, site: CallSite, project: Project) -> bool:
    """Whether the call blocks (or, in a loop, polls) rather than peeks."""
    evaluate = project.resolver.evaluate
    if site.in_loop and method in POLLS:
        return True
    if framework == "rq":
        timeout = evaluate(call.kwarg("timeout"))
        return isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0
    if framework == "huey":
        blocking = call.kwarg("blocking")
        if blocking is None and call.args:
            blocking = call.args[0]
        return evaluate(blocking) is True
    if framework == "dramatiq" and method in {"get_result", "get_results"}:
        return evaluate(call.kwarg("block")) is True
    return True


def _handle(
    value: Value, facts: FunctionFacts, project: Project, depth: int = 0
) -> tuple[str, str] | None:
    """``(framework, description)`` when a value is the result handle of an enqueued job."""
    if isinstance(value, Local) and "." not in value.name and depth < 3:
        bound = facts.local(value.name)
        return _handle(bound, facts, project, depth + 1) if bound is not None else None
    if not isinstance(value, Call):
        return None
    func = value.func
    external = project.external_name(func) or ""
    if external in ASYNC_RESULT:
        return "celery", "another task's result"
    if external in RQ_FETCH:
        return "rq", "a job fetched with Job.fetch()"
    if external in ARQ_JOB:
        return "arq", "another job's result"
    symbol = project.resolver.symbol_of(func) if isinstance(func, (Ref, Attr)) else None
    if isinstance(symbol, InstanceAttr) and symbol.attrs[-1:] == ("AsyncResult",):
        return "celery", "another task's result"
    name = dotted(func) or ""
    if name.endswith(".AsyncResult"):
        return "celery", "another task's result"
    if isinstance(func, Attr) and isinstance(func.base, Call):
        inner = project.external_name(func.base.func) or ""
        if inner in CANVAS and func.name in {"delay", "apply_async"}:
            return "celery", f"a {inner.rpartition('.')[2]} of tasks"
        if inner in DRAMATIQ_COMPOSITION and func.name == "run":
            return "dramatiq", f"a {inner.rpartition('.')[2]} of actors"
    if isinstance(func, Call) and (project.external_name(func.func) or "") in CANVAS:
        return "celery", "a chord of tasks"
    found = published(project, value)
    if found is None or found.framework not in FRAMEWORKS or found.method in NO_HANDLE:
        return None
    subject = found.job.label() if found.job is not None else f"'{found.name}'"
    return found.framework, f"the result of {subject}"


__all__ = ["JobWaitsOnJob"]
