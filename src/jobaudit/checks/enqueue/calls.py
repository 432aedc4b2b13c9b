"""Every call of the project that hands a job to a queue, with what the call means.

Discovery's enqueue sites cover ``job.delay(...)`` and ``queue.enqueue(job)``;
the enqueue-safety rules also need the spellings that name no job object:
Huey's ``task(...)`` (calling a Huey task enqueues it), Celery's
``app.send_task("name")``, arq's ``redis.enqueue_job("name")``, and builder
chains (``task.s(...).apply_async()``, ``task.using(...).enqueue()``,
``task.kicker().with_labels(...).kiq()``).  Each call is classified by *when*
it publishes: now, when the surrounding transaction commits
(``delay_on_commit``), or later (a signature that something else sends).
Calls in test files are left out: tests enqueue on eager apps and stubs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.discovery import (
    ENQUEUE_METHODS,
    RQ_ENQUEUE,
    iter_call_sites,
    method_name,
    rq_enqueue_target,
)
from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.frameworks.celery import APP_CLASSES, Celery
from jobaudit.frameworks.rq import ENQUEUE_OPTIONS, called_on_job
from jobaudit.model import Job, Location
from jobaudit.per_project import per_project
from jobaudit.project import is_test_path
from jobaudit.symbols import External, InstanceAttr, ProjectFunction
from jobaudit.values import Attr, Call, Local, Mapping, Ref, Seq, Value, dotted, render

if TYPE_CHECKING:
    from jobaudit.project import Project

NOW = frozenset(
    {
        "delay",
        "apply_async",
        "send",
        "send_with_options",
        "kiq",
        "enqueue",
        "aenqueue",
        "enqueue_call",
        "enqueue_in",
        "enqueue_at",
        "schedule",
        "call",
        "send_task",
        "enqueue_job",
    }
)
"""Methods that publish when called (``call``: a Huey task called like a function)."""
ON_COMMIT = frozenset({"delay_on_commit", "apply_async_on_commit"})
LATER = frozenset({"s", "si", "signature"})
"""Celery signatures: the arguments are serialised when the signature is sent."""
BUILDERS = frozenset(
    {"s", "si", "signature", "set", "using", "kicker", "with_labels", "with_task_id"}
)
"""Methods that return a sendable object for the same job (signature, ``Task.using``...)."""
FRAMEWORKS = frozenset({"celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks"})
SEND_TASK = frozenset({"celery.current_app.send_task", "celery.app.current_app.send_task"})


@dataclass(frozen=True)
class Enqueue:
    """One call that enqueues a job (known, or only named by a string)."""

    job: Job | None
    framework: str
    method: str
    site: CallSite
    path: str
    function: FunctionFacts | None
    name: str
    """The job's name for messages when ``job`` is None (``send_task("billing.charge")``)."""
    carrier: Call
    """The call that holds the job's arguments (``task.s(order)`` of ``task.s(order).delay()``)."""

    @property
    def call(self) -> Call:
        return self.site.call

    @property
    def location(self) -> Location:
        return Location(self.path, self.call.span)

    @property
    def timing(self) -> str:
        """``now``, ``on commit``, ``later`` (a signature) or ``inline`` (``call_local``)."""
        if self.method in NOW:
            return "now"
        if self.method in ON_COMMIT:
            return "on commit"
        if self.method in LATER:
            return "later"
        return "inline"

    def subject(self) -> str:
        """``Task 'send_receipt'``, or the registered name when the job is not known."""
        if self.job is not None:
            return self.job.label()
        noun = {"celery": "Task", "arq": "Job"}.get(self.framework, "Job")
        return f"{noun} '{self.name}'"

    def spelling(self) -> str:
        """How the call is written, for messages: ``send_receipt.delay()``, ``send_receipt()``."""
        if self.method == "call":
            return f"{self.name}()"
        return f"{spelled(self.call.func)}()"

    def arguments(self, project: Project) -> list[tuple[Value, str | None]]:
        """The values passed to the job, each with its keyword (None when positional)."""
        call = self.carrier
        method = method_name(call.func) if call is not self.call else self.method
        if self.framework == "celery" and method in {"apply_async", "apply_async_on_commit"}:
            return _packed(call, 0, 1)
        if self.framework == "celery" and method == "signature":
            return _packed(call, 0, 1)
        if method == "send_task":
            return _packed(call, 1, 2)
        if method == "send_with_options":
            return _packed(call, None, None)
        if method == "schedule" and self.framework == "huey":
            return _packed(call, 0, 1)
        if method == "enqueue_job":
            return _plain(call, 1, lambda key: key.startswith("_"))
        if self.framework == "rq" and method in RQ_ENQUEUE and not on_job_itself(self, project):
            if method in {"enqueue_call", "prepare_data"}:
                return _packed(call, RQ_ENQUEUE[method] + 1, RQ_ENQUEUE[method] + 2)
            if call.kwarg("args") is not None or call.kwarg("kwargs") is not None:
                return _packed(call, None, None)
            return _plain(call, RQ_ENQUEUE[method] + 1, lambda key: key in ENQUEUE_OPTIONS)
        return _plain(call, 0, lambda key: False)


def _plain(call: Call, skip: int, ignore: Callable[[str], bool]) -> list[tuple[Value, str | None]]:
    """``f(a, b, key=c)``: positional arguments after ``skip``, and keywords not ignored."""
    out: list[tuple[Value, str | None]] = [(arg, None) for arg in call.args[skip:]]
    out.extend((value, key) for key, value in call.kwargs if not ignore(key))
    return out


def _packed(
    call: Call, args_at: int | None, kwargs_at: int | None
) -> list[tuple[Value, str | None]]:
    """``apply_async((a, b), {"key": c})`` / ``args=``/``kwargs=``: the packed arguments."""
    args = call.kwarg("args")
    if args is None and args_at is not None and len(call.args) > args_at:
        args = call.args[args_at]
    kwargs = call.kwarg("kwargs")
    if kwargs is None and kwargs_at is not None and len(call.args) > kwargs_at:
        kwargs = call.args[kwargs_at]
    out: list[tuple[Value, str | None]] = []
    if isinstance(args, Seq):
        out.extend((item, None) for item in args.items)
    if isinstance(kwargs, Mapping):
        out.extend((value, key) for key, value in kwargs.items if isinstance(key, str))
    return out


@dataclass(frozen=True)
class Published:
    """What one call enqueues: the job (when known), how, and which call holds the arguments."""

    job: Job | None
    framework: str
    method: str
    name: str
    carrier: Call


class _Index:
    """Per-project tables the classifier needs, built once."""

    def __init__(self, project: Project) -> None:
        self.jobs = {(job.module, job.function.qualname): job for job in project.jobs}
        self.arq_named = _arq_names(project)
        self.celery = project.framework("celery")


_index = per_project(_Index)


@per_project
def enqueue_calls(project: Project) -> list[Enqueue]:
    """Every enqueue call outside test files, in file and line order (computed once per run)."""
    return sorted(_find(project), key=lambda e: (e.path, e.call.span))


def published(project: Project, call: Call, arq: bool = True) -> Published | None:
    """What a call enqueues, or None when it enqueues nothing jobaudit knows.

    ``arq`` allows ``x.enqueue_job("name")`` for a name that is not a known job
    (in a module that imports arq).
    """
    index = _index(project)
    func = call.func
    name = dotted(func) or ""
    receiver, _, method = name.rpartition(".")
    if isinstance(func, Ref) and method in ENQUEUE_METHODS:
        symbol = project.resolver.lookup(receiver)
        if isinstance(symbol, ProjectFunction):
            job = index.jobs.get((symbol.facts.module, symbol.facts.qualname))
            if job is not None and job.framework in FRAMEWORKS:
                return Published(job, job.framework, method, job.name, call)
    target = rq_enqueue_target(call, method_name(func))
    if target is not None:
        symbol = (
            project.resolver.lookup(target)
            if isinstance(target, str)
            else project.resolver.symbol_of(target)
        )
        if isinstance(symbol, ProjectFunction):
            job = index.jobs.get((symbol.facts.module, symbol.facts.qualname))
            if job is not None and job.framework == "rq":
                return Published(job, "rq", method_name(func), job.name, call)
    return _classify(project, call, index, arq)


def _find(project: Project) -> Iterator[Enqueue]:
    tests = project.config.test_paths
    seen: set[tuple[str, tuple[int, int, int, int]]] = set()
    for known in project.sites:
        if is_test_path(known.path, tests) or known.job.framework not in FRAMEWORKS:
            continue
        seen.add((known.path, known.site.call.span))
        yield Enqueue(
            known.job,
            known.job.framework,
            known.method,
            known.site,
            known.path,
            known.function,
            known.job.name,
            known.site.call,
        )
    index = _index(project)
    for facts in project.resolver.modules.values():
        if is_test_path(facts.path, tests):
            continue
        imports_arq = any(target.startswith("arq") for _, target in facts.imports)
        for site, function in iter_call_sites(facts):
            if (facts.path, site.call.span) in seen:
                continue
            found = _classify(project, site.call, index, imports_arq)
            if found is not None:
                yield Enqueue(
                    found.job,
                    found.framework,
                    found.method,
                    site,
                    facts.path,
                    function,
                    found.name,
                    found.carrier,
                )


def _classify(project: Project, call: Call, index: _Index, arq: bool) -> Published | None:
    func = call.func
    if isinstance(func, Ref):
        symbol = project.resolver.lookup(func.name)
        if isinstance(symbol, ProjectFunction):
            job = index.jobs.get((symbol.facts.module, symbol.facts.qualname))
            if job is not None and job.framework == "huey":
                return Published(job, "huey", "call", job.name, call)
            return None  # a project function: not a framework's enqueue method
    method = method_name(func)
    if method == "send_task":
        return _send_task(project, call, index.celery)
    if method == "enqueue_job":
        return _enqueue_job(project, call, index.arq_named, arq)
    if method in NOW and isinstance(func, Attr):
        return _chained(project, func, call, index.jobs)
    return None


def _send_task(project: Project, call: Call, celery: object) -> Published | None:
    symbol = project.resolver.symbol_of(call.func)
    app = isinstance(symbol, InstanceAttr) and symbol.cls in APP_CLASSES
    current = isinstance(symbol, External) and symbol.name in SEND_TASK
    if not (app or current) or not call.args or not isinstance(call.args[0], str):
        return None
    name = call.args[0]
    job = None
    if isinstance(celery, Celery):
        job = next(
            (j for j in project.jobs_of("celery") if celery.registered_name(j) == name), None
        )
    return Published(job, "celery", "send_task", name, call)


def _arq_names(project: Project) -> dict[str, Job]:
    names: dict[str, Job] = {}
    for job in project.jobs_of("arq"):
        option = job.options.get("name")
        name = option.value if option is not None and isinstance(option.value, str) else job.name
        names[name] = job
    return names


def _enqueue_job(
    project: Project, call: Call, arq_named: dict[str, Job], imports_arq: bool
) -> Published | None:
    """``redis.enqueue_job("name", ...)`` on an ArqRedis pool, not a project function."""
    func = call.func
    if isinstance(func, Ref):
        symbol = project.resolver.lookup(func.name)
        if not (isinstance(symbol, InstanceAttr) and symbol.cls.startswith("arq.")):
            return None
    elif not (isinstance(func, Attr) or (isinstance(func, Local) and "." in func.name)):
        return None
    if not call.args or not isinstance(call.args[0], str):
        return None
    name = call.args[0]
    job = arq_named.get(name)
    if job is None and not imports_arq:
        return None
    return Published(job, "arq", "enqueue_job", name, call)


def _chained(
    project: Project, func: Attr, call: Call, jobs: dict[tuple[str, str], Job]
) -> Published | None:
    """``task.s(...).apply_async()``, ``task.using(...).enqueue()``, ``t.kicker()...kiq()``."""
    inner = func.base
    carrier: Call | None = None
    for _ in range(6):
        if not isinstance(inner, Call):
            return None
        target = inner.func
        if isinstance(target, Ref):
            receiver, _, builder = target.name.rpartition(".")
            if builder not in BUILDERS:
                return None
            if builder in LATER:
                carrier = inner
            symbol = project.resolver.lookup(receiver)
            if not isinstance(symbol, ProjectFunction):
                return None
            job = jobs.get((symbol.facts.module, symbol.facts.qualname))
            if job is None or job.framework not in FRAMEWORKS:
                return None
            return Published(job, job.framework, func.name, job.name, carrier or call)
        if isinstance(target, Attr) and target.name in BUILDERS:
            if target.name in LATER and carrier is None:
                carrier = inner
            inner = target.base
            continue
        return None
    return None


def queue_receiver(enqueue: Enqueue) -> Value | None:
    """The queue an RQ ``queue.enqueue(job)`` call is made on, followed through a local."""
    func = enqueue.call.func
    if isinstance(func, Attr):
        receiver: Value = func.base
    elif isinstance(func, (Ref, Local)) and "." in func.name:
        head = func.name.rpartition(".")[0]
        receiver = Ref(head) if isinstance(func, Ref) else Local(head)
    else:
        return None
    if isinstance(receiver, Local) and enqueue.function is not None:
        bound = enqueue.function.local(receiver.name)
        if bound is not None:
            return bound
    return receiver


def on_job_itself(enqueue: Enqueue, project: Project) -> bool:
    """``report.delay(...)`` / ``report.enqueue(...)`` on an RQ ``@job`` function."""
    return enqueue.job is not None and called_on_job(enqueue.call, enqueue.job, project)


def spelled(value: Value) -> str:
    """A called expression as written, short: ``send_receipt.delay``, ``task.s(...).delay``."""
    if isinstance(value, Ref):
        return ".".join(value.name.split(".")[-2:])
    if isinstance(value, Attr):
        return f"{spelled(value.base)}.{value.name}"
    if isinstance(value, Call):
        return f"{spelled(value.func)}(...)"
    return render(value)
