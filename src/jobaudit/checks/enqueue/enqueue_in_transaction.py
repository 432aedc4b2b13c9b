"""JOB601 enqueue-in-transaction: a job published while the caller's transaction is open.

The broker does not take part in the database transaction.  A job enqueued
inside ``transaction.atomic()`` can be picked up before the rows it needs are
committed (the worker finds the old state, or ``DoesNotExist``), and it still
runs when the transaction rolls back.  Where the transaction is open comes
from ``jobaudit.transactions``.

What already waits for the commit is left alone: Celery's ``delay_on_commit``
/ ``apply_async_on_commit``, anything passed to ``transaction.on_commit`` (a
``partial``, a lambda or a nested function is not an enqueue call here),
django-rq queues (``COMMIT_MODE`` defaults to ``on_db_commit`` since 4.0; only
``auto`` publishes at once), Huey's ``on_commit_task``, and ``django.tasks``
backends with ``ENQUEUE_ON_COMMIT``.  An ``ImmediateBackend`` runs the task
inline inside the transaction, which is JOB605's concern, not a race.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.enqueue.calls import (
    Enqueue,
    enqueue_calls,
    on_job_itself,
    queue_receiver,
    spelled,
)
from jobaudit.fix.model import ON_COMMIT, RENAME_METHOD, UNSAFE, Edit, Fix, Import
from jobaudit.frameworks.celery import Celery
from jobaudit.frameworks.rq import GET_QUEUE, QUEUE_CLASSES
from jobaudit.model import Job
from jobaudit.symbols import Assigned, External, ProjectClass
from jobaudit.transactions import Transaction, Transactions, non_production
from jobaudit.values import Attr, Call, Mapping, Ref, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

DJANGO_RQ_ENQUEUE = frozenset({"django_rq.enqueue", "django_rq.queues.enqueue"})
DJANGO_RQ_CLASSES = frozenset({"django_rq.queues.DjangoRQ", "django_rq.DjangoRQ"})
INLINE_BACKENDS = ("ImmediateBackend", "DummyBackend")
PUBLISH_METHODS = ("apply_async", "delay", "enqueue", "enqueue_call")


class EnqueueInTransaction(Rule):
    code = "JOB601"
    name = "enqueue-in-transaction"
    level = "error"
    scope = "call site"
    gate = "enqueue safety"
    summary = "A job is enqueued inside an open database transaction and can run before it commits."
    frameworks = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks")
    fixable = True

    def check_project(self, project: Project) -> Iterator[Finding]:
        transactions = Transactions(project)
        modes = _Modes(project)
        for enqueue in enqueue_calls(project):
            if enqueue.timing != "now" or not modes.publishes_now(enqueue):
                continue
            transaction = transactions.around(enqueue.site, enqueue.function, enqueue.path)
            if transaction is None:
                continue
            yield self.finding(
                enqueue.location,
                f"{enqueue.subject()} is enqueued with {enqueue.spelling()} "
                f"{transaction.description}: a worker can run it before the transaction "
                f"commits, or after it rolls back; {_fix(enqueue, transaction)}",
                enqueue.job,
                (Related(transaction.location, transaction.related),),
                _on_commit_fix(enqueue, transaction, project),
            )


DJANGO_TASK = "celery.contrib.django.task.DjangoTask"


def _on_commit_fix(enqueue: Enqueue, transaction: Transaction, project: Project) -> Fix | None:
    """Enqueue on commit: ``delay_on_commit`` on Celery's DjangoTask, else ``on_commit(partial)``.

    Only for Django transactions and a call whose result is not used (both
    forms return None).  Unsafe: the job is enqueued later, and not at all
    when the transaction rolls back.
    """
    if not transaction.django or not enqueue.site.statement or enqueue.site.awaited:
        return None
    path, span = enqueue.path, enqueue.call.span
    celery = project.framework("celery")
    if (
        enqueue.framework == "celery"
        and enqueue.method in {"delay", "apply_async"}
        and enqueue.job is not None
        and isinstance(celery, Celery)
        and celery.task_base(enqueue.job, project) == External(DJANGO_TASK)
    ):
        method = f"{enqueue.method}_on_commit"
        edit = Edit(RENAME_METHOD, path, span, enqueue.method, method)
        return Fix(f"Call {method}()", UNSAFE, (edit,))
    imports = [Import("django.db", "transaction")]
    call = enqueue.call
    if call.args or call.kwargs or call.star_args or call.star_kwargs:
        imports.append(Import("functools", "partial"))
    edit = Edit(ON_COMMIT, path, span, value="transaction.on_commit")
    return Fix("Enqueue from transaction.on_commit()", UNSAFE, (edit,), tuple(imports))


def _fix(enqueue: Enqueue, transaction: Transaction) -> str:
    if not transaction.django:
        return "enqueue after the commit"
    name = enqueue.job.name if enqueue.job is not None else "the task"
    if enqueue.framework == "celery" and enqueue.method in {"delay", "apply_async"}:
        return (
            f"use {name}.{enqueue.method}_on_commit(...) (Celery 5.4+) or "
            f"transaction.on_commit(partial({name}.{enqueue.method}, ...))"
        )
    if enqueue.framework == "huey":
        return "declare it with @on_commit_task, or call it from transaction.on_commit(...)"
    if enqueue.framework == "rq":
        return "use a django-rq queue (it enqueues on commit) or transaction.on_commit(...)"
    return f"enqueue it from transaction.on_commit(partial({spelled(enqueue.call.func)}, ...))"


class _Modes:
    """Whether an enqueue call publishes at once or waits for the commit by itself."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.resolver = project.resolver
        self.production = [
            module for module in project.django_settings_modules() if not non_production(module)
        ]
        self.imports_django_rq = any(
            target.startswith("django_rq")
            for facts in self.resolver.modules.values()
            for _, target in facts.imports
        )

    def publishes_now(self, enqueue: Enqueue) -> bool:
        if enqueue.framework == "rq":
            return self._rq(enqueue)
        if enqueue.framework == "django_tasks":
            return self._django_tasks(enqueue)
        if enqueue.framework == "celery" and enqueue.job is not None:
            return not self._custom_publish(enqueue.job)
        if enqueue.framework == "huey" and enqueue.job is not None:
            return not any(
                (self.project.external_name(d.func if isinstance(d, Call) else d) or "").endswith(
                    ".on_commit_task"
                )
                for d in enqueue.job.function.decorators
            )
        return True

    def _custom_publish(self, job: Job) -> bool:
        """A project Task class that overrides ``apply_async``/``delay`` (often to defer them
        to ``transaction.on_commit``): what the call does is up to that code."""
        celery = self.project.framework("celery")
        classes: list[ProjectClass] = []
        if isinstance(celery, Celery):
            base = celery.task_base(job, self.project)
            if isinstance(base, ProjectClass):
                classes.append(base)
        if job.cls is not None:
            classes.append(ProjectClass(job.cls, job.path))
        return any(
            klass.method(name) is not None
            for cls in classes
            for klass, _ in self.resolver.mro(cls)
            for name in PUBLISH_METHODS
        )

    # -- RQ and django-rq -------------------------------------------------------------------

    def _rq(self, enqueue: Enqueue) -> bool:
        """Plain ``rq.Queue`` publishes at once; a django-rq queue unless COMMIT_MODE is auto."""
        job = enqueue.job
        if job is not None and on_job_itself(enqueue, self.project):
            for decorator in job.function.decorators:
                target = decorator.func if isinstance(decorator, Call) else decorator
                name = self.project.external_name(target) or ""
                if name.startswith("django_rq"):
                    return self._django_rq_auto(None)
                if name.startswith("rq."):
                    queue = job.options.get("queue")
                    if queue is None or isinstance(queue.value, str):
                        return True
                    return self._queue_now(queue.written)
            return False
        if self.project.external_name(enqueue.call.func) in DJANGO_RQ_ENQUEUE:
            return self._django_rq_auto(None)
        receiver = queue_receiver(enqueue)
        return receiver is not None and self._queue_now(receiver)

    def _queue_now(self, queue: Value, depth: int = 0) -> bool:
        if isinstance(queue, Ref) and depth < 4:
            symbol = self.resolver.lookup(queue.name)
            if isinstance(symbol, Assigned):
                return self._queue_now(symbol.value, depth + 1)
        if isinstance(queue, Call):
            built = self.resolver.symbol_of(queue.func)
            if isinstance(built, ProjectClass) and any(
                klass.method(name) is not None
                for klass, _ in self.resolver.mro(built)
                for name in PUBLISH_METHODS
            ):
                return False  # a project Queue class that decides itself when to publish
            name = self.project.external_name(queue.func) or ""
            cls = self.resolver.instance_class(queue) or ""
            if name in GET_QUEUE or cls in DJANGO_RQ_CLASSES:
                return self._django_rq_auto(queue)
            if cls in QUEUE_CLASSES or cls.startswith("rq."):
                return True
        return not self.imports_django_rq

    def _django_rq_auto(self, queue: Call | None) -> bool:
        """django-rq's commit mode: the queue's ``commit_mode``/``autocommit``, else settings."""
        if queue is not None:
            mode = self.resolver.evaluate(queue.kwarg("commit_mode"))
            if mode is not None:
                return mode == "auto"
            autocommit = self.resolver.evaluate(queue.kwarg("autocommit"))
            if autocommit is not None:
                return autocommit is True
        for module in self.production:
            setting = self.project.settings(module).get("RQ")
            if setting is None or not isinstance(setting.value, Mapping):
                continue
            mode = self.resolver.evaluate(setting.value.get("COMMIT_MODE"))
            if mode == "auto":
                return True
            if mode is None and self.resolver.evaluate(setting.value.get("AUTOCOMMIT")) is True:
                return True
        return False

    # -- django.tasks ------------------------------------------------------------------------

    def _django_tasks(self, enqueue: Enqueue) -> bool:
        """A real backend (not Immediate/Dummy) without ``ENQUEUE_ON_COMMIT``.

        Core ``django.tasks`` has no on-commit option; some backends do, and the
        ``django_tasks`` backport enqueued on commit by default until 0.11, so it
        counts only when ``ENQUEUE_ON_COMMIT`` is explicitly false.
        """
        job = enqueue.job
        if job is None:
            return False
        alias: Value = "default"
        option = job.options.get("backend")
        if option is not None:
            alias = option.value
        func = enqueue.call.func
        if isinstance(func, Attr) and isinstance(func.base, Call):
            alias = self.resolver.evaluate(func.base.kwarg("backend")) or alias
        if not isinstance(alias, str):
            return False
        backport = any(
            (self.project.external_name(d.func if isinstance(d, Call) else d) or "").startswith(
                "django_tasks."
            )
            for d in job.function.decorators
        )
        for module in self.production:
            setting = self.project.settings(module).get("TASKS")
            if setting is None or not isinstance(setting.value, Mapping):
                continue
            entry = self.resolver.evaluate(setting.value.get(alias))
            if not isinstance(entry, Mapping):
                continue
            backend = self.resolver.evaluate(entry.get("BACKEND"))
            if not isinstance(backend, str) or backend.endswith(INLINE_BACKENDS):
                continue
            on_commit = self.resolver.evaluate(entry.get("ENQUEUE_ON_COMMIT"))
            if on_commit is False or (on_commit is None and not backport):
                return True
        return False


__all__ = ["EnqueueInTransaction"]
