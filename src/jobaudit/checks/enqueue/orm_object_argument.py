"""JOB603 orm-object-argument: an ORM instance (or queryset) passed to a job.

A job runs later, in another process.  A model instance passed to it is a
snapshot: serialised with pickle (RQ, Huey, arq, Celery with the pickle
serializer) it is stale by the time the job reads it and overwrites newer
data when saved; with a JSON serializer (Celery's default, Dramatiq, taskiq,
``django.tasks``) it does not encode at all.  Pass the primary key and load
the row in the job.

Only arguments whose origin is certain are reported: a local assigned from
``Model.objects.get/create/first/last/latest/earliest(...)``,
``get_or_create(...)[0]`` (or unpacked), ``filter(...)[i]``, a loop over a
queryset, ``get_object_or_404(Model, ...)``; a parameter annotated with a
model class; ``self`` in a model method; ``instance`` in a
``@receiver(..., sender=Model)`` signal handler; ``request.user`` in a view.
A model is a project class deriving from ``django.db.models.Model`` (or an
ORM base such as ``MPTTModel``, peewee's ``Model``, an SQLAlchemy declarative
base).  ``values()``/``values_list()`` rows, ids and attributes (``order.pk``)
are fine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.enqueue.calls import Enqueue, enqueue_calls
from jobaudit.facts import FunctionFacts
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Location
from jobaudit.symbols import Assigned, External, ProjectClass
from jobaudit.values import Attr, Call, Element, Local, Ref, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

MODEL_BASES = frozenset(
    {
        "django.db.models.Model",
        "django.db.models.base.Model",
        "django.contrib.auth.models.AbstractUser",
        "django.contrib.auth.models.AbstractBaseUser",
        "django.contrib.auth.base_user.AbstractBaseUser",
        "django.contrib.auth.models.User",
        "peewee.Model",
        "sqlalchemy.orm.DeclarativeBase",
        "sqlalchemy.orm.DeclarativeBaseNoMeta",
        "sqlalchemy.orm.decl_api.DeclarativeBase",
    }
)
DECLARATIVE_BASE = frozenset(
    {
        "sqlalchemy.orm.declarative_base",
        "sqlalchemy.ext.declarative.declarative_base",
        "sqlalchemy.orm.decl_api.declarative_base",
    }
)
INSTANCE = frozenset(
    {
        "get",
        "create",
        "first",
        "last",
        "latest",
        "earliest",
        "aget",
        "acreate",
        "afirst",
        "alast",
        "alatest",
        "aearliest",
        "get_by_id",
        "get_or_none",
    }
)
PAIR = frozenset({"get_or_create", "update_or_create", "aget_or_create", "aupdate_or_create"})
"""Return ``(instance, created)``."""
QUERYSET = frozenset(
    {
        "all",
        "filter",
        "exclude",
        "order_by",
        "select_related",
        "prefetch_related",
        "only",
        "defer",
        "distinct",
        "annotate",
        "alias",
        "using",
        "select_for_update",
        "reverse",
        "none",
        "select",
        "where",
    }
)
CLASS_METHODS = INSTANCE | PAIR | {"select", "get_by_id", "get_or_none"}
"""Query methods called on the model class itself (peewee) rather than on a manager."""
NOT_MODELS = frozenset({"values", "values_list", "in_bulk", "aggregate", "count", "exists"})
GET_OBJECT = frozenset(
    {"django.shortcuts.get_object_or_404", "django.shortcuts.aget_object_or_404"}
)
RECEIVER = frozenset({"django.dispatch.receiver", "django.dispatch.dispatcher.receiver"})
PICKLED = "pickles it, so the job works on a copy that is stale by the time it runs"
SERIALISATION = {
    "celery": "Celery's default JSON serializer cannot encode it (and with pickle the task "
    "would work on a stale copy)",
    "dramatiq": "Dramatiq's JSON encoder cannot encode it",
    "django_tasks": "django.tasks arguments must survive a JSON round trip, and it cannot",
    "taskiq": "taskiq's JSON serializer cannot encode it",
    "rq": f"RQ {PICKLED}",
    "huey": f"Huey {PICKLED}",
    "arq": f"arq {PICKLED}",
}


class OrmObjectArgument(Rule):
    code = "JOB603"
    name = "orm-object-argument"
    level = "warning"
    scope = "call site"
    gate = "enqueue safety"
    summary = "A model instance or queryset is passed to a job instead of its primary key."
    frameworks = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks")

    def check_project(self, project: Project) -> Iterator[Finding]:
        origins = _Origins(project)
        seen: set[tuple[str, tuple[int, int, int, int]]] = set()
        for enqueue in enqueue_calls(project):
            key = (enqueue.path, enqueue.carrier.span)
            if enqueue.timing == "inline" or enqueue.function is None or key in seen:
                continue
            seen.add(key)  # ``task.s(order).delay()``: one call carries the arguments of both
            found: list[tuple[str, str | None]] = []
            for value, keyword in enqueue.arguments(project):
                origin = origins.of(value, enqueue.function, enqueue.call.span[0])
                if origin is not None:
                    found.append((origin, keyword))
            if found:
                yield self.finding(
                    _where(enqueue, found), _message(enqueue, found, project), enqueue.job
                )


def _where(enqueue: Enqueue, found: list[tuple[str, str | None]]) -> Location:
    """The keyword when a single keyword argument is the problem, else the call."""
    if len(found) == 1 and found[0][1] is not None:
        span = enqueue.carrier.kwarg_span(found[0][1])
        if span is not None:
            return Location(enqueue.path, span)
    return enqueue.location


def _message(enqueue: Enqueue, found: list[tuple[str, str | None]], project: Project) -> str:
    what = "; ".join(
        f"{keyword}={origin}" if keyword is not None else origin for origin, keyword in found
    )
    consequence = SERIALISATION.get(enqueue.framework, "it is serialised into the message")
    serializer = _celery_serializer(enqueue, project) if enqueue.framework == "celery" else None
    if serializer is not None and "pickle" in serializer[0]:
        consequence = f"Celery pickles it ({serializer[1]}), so the task works on a stale copy"
    return (
        f"{enqueue.subject()} is given {what}: {consequence}; pass the primary key and load "
        "the row in the job"
    )


def _celery_serializer(enqueue: Enqueue, project: Project) -> tuple[str, str] | None:
    """The task serializer an enqueue uses (call, task option, app setting), when it is known."""
    given = project.resolver.evaluate(enqueue.call.kwarg("serializer"))
    if isinstance(given, str):
        return given, f"serializer={given!r}"
    job = enqueue.job
    if job is None:
        return None
    option = job.options.get("serializer")
    if option is not None:
        return (
            (option.value, f"serializer={option.value!r}")
            if isinstance(option.value, str)
            else None
        )
    celery = project.framework("celery")
    if not isinstance(celery, Celery):
        return None
    found = {
        (value, source)
        for app in celery.app_for(job)
        if (entry := app.values.get("task_serializer")) is not None
        for value, source in [(project.resolver.evaluate(entry[0]), entry[1])]
        if isinstance(value, str)
    }
    if len(found) != 1:
        return None
    value, source = found.pop()
    return value, f"{source} = {value!r}"


def _bound(function: FunctionFacts, name: str, line: int) -> Value | None:
    """The value last assigned to local ``name`` on a line above ``line``."""
    if len(function.local_spans) != len(function.locals):
        return function.local(name)
    found: Value | None = None
    for (key, value), (_, span) in zip(function.locals, function.local_spans, strict=True):
        if key == name and span[0] <= line:
            found = value
    return found


def _a(name: str) -> str:
    return f"an {name}" if name[:1].upper() in "AEIOU" else f"a {name}"


class _Origins:
    """Where an argument value comes from, when it is certainly a model object."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.resolver = project.resolver
        self._models: dict[str, str | None] = {}

    def of(self, value: Value, function: FunctionFacts, line: int, depth: int = 0) -> str | None:
        """``order, an Order instance from Order.objects.get(...)``, or None.

        ``line`` is where the value is used: a local is followed to its last
        assignment above that line.
        """
        if depth > 3:
            return None
        if isinstance(value, Local):
            return self._local(value.name, function, line, depth)
        return self._expression(value, function, line, depth)

    def _local(self, name: str, function: FunctionFacts, line: int, depth: int) -> str | None:
        if name == "request.user" and "request" in function.params:
            return "request.user (a User instance)"
        if "." in name:
            return None
        bound = _bound(function, name, line)
        if bound is None:
            return self._parameter(name, function) if name in function.params else None
        found = self._expression(bound, function, line, depth + 1)
        return f"{name}, {found}" if found is not None else None

    def _parameter(self, name: str, function: FunctionFacts) -> str | None:
        annotation = dict(function.annotations).get(name)
        if annotation is not None:
            model = self._annotated_model(annotation, function.module)
            if model is not None:
                return f"{name} (annotated {model})"
            return None
        if function.class_name is not None and function.params[:1] == (name,):
            model = self._class_model(function.module, function.class_name)
            if model is not None:
                return f"self ({_a(model)} instance)"
        if name == "instance":
            for decorator in function.decorators:
                if not isinstance(decorator, Call):
                    continue
                if self.project.external_name(decorator.func) not in RECEIVER:
                    continue
                sender = decorator.kwarg("sender")
                model = self.model_of(sender) if sender is not None else None
                if model is not None:
                    return f"instance (the {model} the signal is sent for)"
        return None

    def _expression(
        self, value: Value, function: FunctionFacts, line: int, depth: int
    ) -> str | None:
        if isinstance(value, Element):
            return self._element(value, function, line, depth)
        if not isinstance(value, Call):
            return None
        if self.project.external_name(value.func) in GET_OBJECT and value.args:
            model = self.model_of(value.args[0]) or self._chain(value.args[0])[0]
            if model is not None:
                return f"{_a(model)} instance from get_object_or_404()"
            return None
        built = self.model_of(value.func)
        if built is not None:
            return f"{_a(built)} instance built with {built}(...)"
        model, methods, reads = self._chain(value)
        if model is None or not methods or NOT_MODELS.intersection(methods):
            return None
        last = methods[-1]
        if last in INSTANCE:
            return f"{_a(model)} instance from {reads}"
        if last in QUERYSET:
            return f"{_a(model)} QuerySet from {reads}"
        return None

    def _element(
        self, value: Element, function: FunctionFacts, line: int, depth: int
    ) -> str | None:
        container = value.container
        if isinstance(container, Local) and "." not in container.name and depth < 3:
            bound = _bound(function, container.name, line)
            if bound is not None:
                container = bound
        if not isinstance(container, Call):
            return None
        model, methods, reads = self._chain(container)
        if model is None or not methods or NOT_MODELS.intersection(methods):
            return None
        last = methods[-1]
        if last in PAIR and value.key == 0:
            return f"{_a(model)} instance from {reads}[0]"
        if last in QUERYSET and (isinstance(value.key, int) or value.reason == "loop variable"):
            how = "a loop over" if value.reason == "loop variable" else "an item of"
            return f"{_a(model)} instance from {how} {reads}"
        return None

    def _chain(self, value: Value) -> tuple[str | None, list[str], str]:
        """``Order.objects.filter(...).first()`` → (``Order``, [filter, first], how it reads)."""
        methods: list[str] = []
        current = value
        for _ in range(12):
            if isinstance(current, Call):
                current = current.func
                continue
            if isinstance(current, Attr):
                methods.insert(0, current.name)
                current = current.base
                continue
            break
        if not isinstance(current, Ref):
            return None, [], ""
        parts = current.name.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            model = self.model_of(Ref(".".join(parts[:cut])))
            if model is None:
                continue
            rest = parts[cut:] + methods
            if rest[0] in CLASS_METHODS:  # peewee: ``Order.get(...)``, ``Order.select()``
                return model, rest, _reads(model, [], rest)
            if len(rest) > 1:
                return model, rest[1:], _reads(model, rest[:1], rest[1:])
            break
        return None, [], ""

    def _annotated_model(self, annotation: Value, module: str) -> str | None:
        if isinstance(annotation, str):
            annotation = self._string_annotation(annotation, module)
        if isinstance(annotation, Element) and dotted(annotation.container) in {
            "typing.Optional",
            "typing_extensions.Optional",
        }:
            annotation = annotation.key
        return self.model_of(annotation) if annotation is not None else None

    def _string_annotation(self, text: str, module: str) -> Value:
        """``"Order"`` → the name as the module would resolve it."""
        facts = self.resolver.modules.get(module)
        head, _, rest = text.strip().partition(".")
        if facts is None or not head.isidentifier():
            return None
        imported = dict(facts.imports).get(head)
        base = imported if imported is not None else f"{module}.{head}"
        return Ref(f"{base}.{rest}" if rest else base)

    def _class_model(self, module: str, class_name: str) -> str | None:
        return self.model_of(Ref(f"{module}.{class_name}"))

    def model_of(self, value: Value) -> str | None:
        """The model class name a value denotes (a project ORM model), else None."""
        if not isinstance(value, Ref):
            return None
        if value.name not in self._models:
            symbol = self.resolver.lookup(value.name)
            self._models[value.name] = (
                symbol.facts.name
                if isinstance(symbol, ProjectClass) and self._is_model(symbol)
                else None
            )
        return self._models[value.name]

    def _is_model(self, cls: ProjectClass) -> bool:
        for klass, _ in self.resolver.mro(cls):
            for base in klass.bases:
                symbol = self.resolver.symbol_of(base)
                if isinstance(symbol, External) and _model_base(symbol.name):
                    return True
                if (
                    isinstance(symbol, Assigned)
                    and isinstance(symbol.value, Call)
                    and self.project.external_name(symbol.value.func) in DECLARATIVE_BASE
                ):
                    return True
        return False


def _reads(model: str, manager: list[str], methods: list[str]) -> str:
    """``Order.objects.filter(...).first()``."""
    return ".".join([model, *manager, *(f"{m}(...)" for m in methods)])


def _model_base(name: str) -> bool:
    """Django's and peewee's ``Model``, SQLAlchemy bases, and ORM add-ons' abstract models
    (``mptt.models.MPTTModel``, ``model_utils.models.TimeStampedModel``)."""
    if name in MODEL_BASES:
        return True
    module, _, cls = name.rpartition(".")
    return (module.endswith(".models") or module == "models") and cls.endswith("Model")


__all__ = ["OrmObjectArgument"]
