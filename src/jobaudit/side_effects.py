"""External writes: the calls whose effect a second run of a job repeats.

A job that runs twice is harmless when all it does is read and overwrite; what
hurts is a write that adds something each time: an HTTP POST, a mail, a
payment, a queue message, a new row.  This module recognises those calls in
a job's body (the job and the project functions it calls, two calls deep) by
what they resolve to, not by how they are spelled: ``requests.post`` through
imports and aliases, ``session.post`` on a local ``requests.Session()``,
``Order.objects.create`` on a model manager but not any ``.create()``.

Some writes are harmless to repeat by nature (an HTTP PUT or DELETE,
``bulk_create(ignore_conflicts=True)``) or carry their own key (Stripe's
``idempotency_key=``, an ``Idempotency-Key`` header, SQS's
``MessageDeduplicationId``); they are still found, with the reason in
``Write.idempotent``, so the readiness report can show them as guards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.model import Job, Location
from jobaudit.symbols import Assigned, External, InstanceAttr, ProjectFunction
from jobaudit.values import Attr, BinOp, Call, Local, Mapping, Ref, Value, render

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

HTTP_VERBS = frozenset({"post", "put", "patch", "delete"})
IDEMPOTENT_VERBS = frozenset({"put", "delete"})
"""RFC 9110 §9.2.2: PUT and DELETE are idempotent; POST and PATCH are not."""
HTTP_MODULES = frozenset({"requests", "requests.api", "httpx"})
HTTP_CLIENTS = frozenset(
    {
        "requests.Session",
        "requests.session",
        "requests.sessions.Session",
        "requests.sessions.session",
        "httpx.Client",
        "httpx.AsyncClient",
        "aiohttp.ClientSession",
        "aiohttp.client.ClientSession",
    }
)
MAIL_FUNCTIONS = frozenset(
    {
        "django.core.mail.send_mail",
        "django.core.mail.send_mass_mail",
        "django.core.mail.mail_admins",
        "django.core.mail.mail_managers",
    }
)
MAIL_MESSAGES = frozenset(
    {
        "django.core.mail.EmailMessage",
        "django.core.mail.EmailMultiAlternatives",
        "django.core.mail.message.EmailMessage",
        "django.core.mail.message.EmailMultiAlternatives",
    }
)
MAIL_CONNECTIONS = frozenset({"django.core.mail.get_connection"})
SMTP_CLIENTS = frozenset({"smtplib.SMTP", "smtplib.SMTP_SSL", "smtplib.LMTP"})
SMTP_SENDS = frozenset({"sendmail", "send_message"})
AWS_SENDS = frozenset(
    {
        "send_message",
        "send_message_batch",
        "publish",
        "publish_batch",
        "send_email",
        "send_raw_email",
        "send_templated_email",
        "send_bulk_templated_email",
    }
)
AWS_ROOTS = ("boto3.", "aioboto3.")
AWS_DEDUP = ("MessageDeduplicationId",)
"""SQS FIFO queues and SNS FIFO topics drop a message whose deduplication id they saw."""
STRIPE_CREATES = frozenset({"create", "create_async"})
MANAGERS = frozenset({"objects", "_default_manager", "_base_manager"})
INSERTS = frozenset({"create", "bulk_create", "acreate", "abulk_create"})
F_EXPRESSIONS = frozenset({"django.db.models.F", "django.db.models.expressions.F"})
UPSERT_KWARGS = ("update_conflicts", "ignore_conflicts")
IDEMPOTENCY_WORD = "idempoten"
"""Found in ``idempotency_key``, ``Idempotency-Key`` and the project's own spellings."""
_MAX_DEPTH = 6


@dataclass(frozen=True)
class Step:
    """A call in one function of a job's body that leads on to the next function."""

    facts: FunctionFacts
    site: CallSite


@dataclass(frozen=True)
class Reached:
    """A function of a job's body with the calls that lead to it from the job."""

    function: BodyFunction
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Write:
    """One external write in a job's body."""

    action: str
    """What it does, for messages: ``sends mail with send_mail()``."""
    site: CallSite
    function: BodyFunction
    library: str
    """Whose exceptions it raises when it fails (``requests``, ``smtplib``); ``""`` for the ORM."""
    idempotent: str | None = None
    """Why repeating it does no harm (``HTTP PUT``, ``idempotency_key=``), or None."""
    steps: tuple[Step, ...] = ()
    """The calls from the job down to the function that writes (empty in the job itself)."""

    @property
    def call(self) -> Call:
        return self.site.call

    @property
    def location(self) -> Location:
        return Location(self.function.path, self.site.call.span)


def writes_in(function: BodyFunction, project: Project) -> Iterator[Write]:
    """The external writes one function of a job's body makes, in source order."""
    for site in function.facts.calls:
        found = classify(site, function, project)
        if found is not None:
            yield found


def job_writes(job: Job, project: Project) -> list[Write]:
    """Every external write of a job's body, with the calls that reach it."""
    return [
        replace(write, steps=reached.steps)
        for reached in job_body(job, project)
        for write in writes_in(reached.function, project)
    ]


def job_body(job: Job, project: Project) -> list[Reached]:
    """``Project.body`` with, for each function, the calls that lead to it from the job.

    Guards and retry points on the way to a write live in those calls.
    """
    from jobaudit.project import BODY_DEPTH, BodyFunction  # project imports this module

    root = Reached(BodyFunction(job.function, job.path, 0, (job.function.name,)), ())
    out = [root]
    seen = {(job.module, job.function.qualname)}
    frontier = [root]
    for level in range(1, BODY_DEPTH + 1):
        following: list[Reached] = []
        for current in frontier:
            caller = current.function
            for site in caller.facts.calls:
                callee = project.callee(site.call, caller.facts, job)
                if callee is None:
                    continue
                key = (callee.facts.module, callee.facts.qualname)
                if key in seen:
                    continue
                seen.add(key)
                function = BodyFunction(
                    callee.facts, callee.path, level, (*caller.via, callee.facts.name)
                )
                step = Step(caller.facts, site)
                found = Reached(function, (*current.steps, step))
                out.append(found)
                following.append(found)
        frontier = following
    return out


def classify(site: CallSite, function: BodyFunction, project: Project) -> Write | None:
    """The write a call makes, or None when it is not one jobaudit knows."""
    call = site.call
    facts = function.facts
    func = call.func
    name = project.external_name(func) if isinstance(func, Ref) else None
    method = _last(func)
    if name is not None:
        module, _, short = name.rpartition(".")
        if module in HTTP_MODULES:
            return _http(site, function, project, module.split(".")[0], name, short)
        if name in MAIL_FUNCTIONS:
            return Write(f"sends mail with {short}()", site, function, "smtplib")
        if name.startswith("stripe.") and short in STRIPE_CREATES:
            return _stripe(site, function, project, name)
    origin = receiver_origin(func, facts, project)
    if origin is None:
        return _database(site, function, project)
    shown = spelled(func)
    if origin in HTTP_CLIENTS:
        library = origin.split(".")[0]
        return _http(site, function, project, library, shown, method)
    if origin in MAIL_MESSAGES and method == "send":
        return Write(f"sends mail with {shown}", site, function, "smtplib")
    if origin in MAIL_CONNECTIONS and method == "send_messages":
        return Write(f"sends mail with {shown}", site, function, "smtplib")
    if origin in SMTP_CLIENTS and method in SMTP_SENDS:
        return Write(f"sends mail with {shown}", site, function, "smtplib")
    if origin.startswith(AWS_ROOTS) and method in AWS_SENDS:
        keyed = next((key for key in AWS_DEDUP if call.kwarg(key) is not None), None)
        return Write(
            f"sends a message with {shown}",
            site,
            function,
            "boto3",
            f"{keyed}=" if keyed else None,
        )
    if origin.startswith("stripe.") and method in STRIPE_CREATES:
        return _stripe(site, function, project, shown)
    return _database(site, function, project)


def _http(
    site: CallSite,
    function: BodyFunction,
    project: Project,
    library: str,
    shown: str,
    verb: str,
) -> Write | None:
    call = site.call
    if verb == "request":
        method = project.resolver.evaluate(call.args[0] if call.args else call.kwarg("method"))
        if not isinstance(method, str):
            return None
        verb = method.lower()
    if verb not in HTTP_VERBS:
        return None
    shown = shown if shown.endswith("()") else f"{shown}()"
    action = f"sends an HTTP {verb.upper()} with {shown}"
    idempotent = f"HTTP {verb.upper()} is idempotent" if verb in IDEMPOTENT_VERBS else None
    if idempotent is None and _keyed(call, function.facts, project):
        idempotent = "an Idempotency-Key header"
    return Write(action, site, function, library, idempotent)


def _stripe(site: CallSite, function: BodyFunction, project: Project, name: str) -> Write:
    shown = name if name.endswith("()") else f"{name}()"
    keyed = "idempotency_key=" if _keyed(site.call, function.facts, project) else None
    action = f"creates a Stripe object with {shown}"
    return Write(action, site, function, "stripe", keyed)


def _database(site: CallSite, function: BodyFunction, project: Project) -> Write | None:
    """``Model.objects.create()``, ``bulk_create()`` and ``update(n=F("n") + 1)``."""
    call = site.call
    segments = chain(call.func)
    if len(segments) < 2:
        return None
    method = segments[-1]
    shown = spelled(call.func)
    if method in INSERTS and MANAGERS.intersection(segments[:-1]):
        model = _model_name(segments)
        what = f"{model} rows" if model else "rows"
        upsert = next(
            (key for key in UPSERT_KWARGS if project.resolver.evaluate(call.kwarg(key)) is True),
            None,
        )
        idempotent = f"{method}({upsert}=True)" if "bulk" in method and upsert else None
        return Write(f"inserts {what} with {shown}", site, function, "", idempotent)
    if method in {"update", "aupdate"}:
        for key, value in call.kwargs:
            if _increments(value, project):
                return Write(f"increments {key} with {shown} and F()", site, function, "")
    return None


def _model_name(segments: list[str]) -> str | None:
    for index, segment in enumerate(segments):
        if segment in MANAGERS and index > 0 and segments[index - 1][:1].isupper():
            return segments[index - 1]
    return None


def _increments(value: Value, project: Project) -> bool:
    """``F("n") + 1`` (or ``- 1``): a relative update, which a second run applies again."""
    if not isinstance(value, BinOp) or value.op not in {"+", "-"}:
        return False
    return any(
        isinstance(side, Call) and project.external_name(side.func) in F_EXPRESSIONS
        for side in (value.left, value.right)
    )


def _keyed(call: Call, facts: FunctionFacts, project: Project) -> bool:
    """The call carries an idempotency key: ``idempotency_key=``, or an Idempotency-Key header.

    Headers are often built in a local dict or by a project helper; a mention
    of "idempotency" in the function that makes the call, or in the helper
    that builds its headers, counts.
    """
    if any(IDEMPOTENCY_WORD in key.lower() for key, value in call.kwargs if value is not None):
        return True
    if any(IDEMPOTENCY_WORD in word.lower() for word in facts.identifiers):
        return True
    headers = call.kwarg("headers")
    if isinstance(headers, Local) and "." not in headers.name:
        headers = facts.local(headers.name)
    if isinstance(headers, Mapping):
        return any(isinstance(k, str) and IDEMPOTENCY_WORD in k.lower() for k, _ in headers.items)
    if isinstance(headers, Call) and isinstance(headers.func, Ref):
        helper = project.resolver.lookup(headers.func.name)
        if isinstance(helper, ProjectFunction):
            return any(IDEMPOTENCY_WORD in word.lower() for word in helper.facts.identifiers)
    return False


def spelled(func: Value) -> str:
    """A called name as the user wrote it, near enough: ``Order.objects.create()``.

    Names imported from a module keep their class onwards (``OrderEvent.objects
    .create``) or their last part; calls on other values keep the whole chain.
    """
    return f"{_spell(func)}()"


def _spell(value: Value) -> str:
    if isinstance(value, Ref):
        segments = value.name.split(".")
        start = next((i for i, part in enumerate(segments) if part[:1].isupper()), None)
        return ".".join(segments[start:] if start is not None else segments[-1:])
    if isinstance(value, Local):
        return value.name
    if isinstance(value, Attr):
        return f"{_spell(value.base)}.{value.name}"
    if isinstance(value, Call):
        return f"{_spell(value.func)}(...)"
    return render(value)


def chain(value: Value) -> list[str]:
    """The names along an attribute and call chain: ``Order.objects.filter(...).update``."""
    if isinstance(value, (Ref, Local)):
        return value.name.split(".")
    if isinstance(value, Attr):
        return [*chain(value.base), value.name]
    if isinstance(value, Call):
        return chain(value.func)
    return []


def _last(func: Value) -> str:
    segments = chain(func)
    return segments[-1] if segments else ""


def receiver_origin(
    func: Value, facts: FunctionFacts, project: Project, depth: int = 0
) -> str | None:
    """The external constructor a called method's receiver comes from.

    ``session.post`` with ``session = requests.Session()`` (or ``with
    requests.Session() as session``) gives ``requests.Session``; a module-level
    ``client = httpx.Client()`` gives ``httpx.Client``; ``boto3.client("sqs")``
    gives ``boto3.client``.  None when the receiver is a parameter, an
    attribute of ``self`` or anything else that cannot be followed.
    """
    if isinstance(func, Attr):
        return origin(func.base, facts, project, depth)
    if isinstance(func, Local):
        head, _, _ = func.name.rpartition(".")
        return origin(Local(head), facts, project, depth) if head else None
    if isinstance(func, Ref):
        symbol = project.resolver.lookup(func.name)
        if isinstance(symbol, InstanceAttr) and len(symbol.attrs) == 1:
            return symbol.cls
    return None


def origin(value: Value, facts: FunctionFacts, project: Project, depth: int = 0) -> str | None:
    """The external class or factory an object was built by (see ``receiver_origin``)."""
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, Call):
        built = project.resolver.instance_class(value)
        if built is not None:
            return built
        if isinstance(value.func, (Attr, Local)):
            parent = receiver_origin(value.func, facts, project, depth + 1)
            return f"{parent}.{_last(value.func)}" if parent else None
        return None
    if isinstance(value, Local):
        head, _, rest = value.name.partition(".")
        if head == "self":
            return None
        assigned = facts.local(head)
        if assigned is None:
            return None
        found = origin(assigned, facts, project, depth + 1)
        return f"{found}.{rest}" if found and rest else found
    if isinstance(value, Ref):
        symbol = project.resolver.lookup(value.name)
        if isinstance(symbol, Assigned):
            return origin(symbol.value, facts, project, depth + 1)
        if isinstance(symbol, External):
            return symbol.name
    if isinstance(value, Attr):
        parent = origin(value.base, facts, project, depth + 1)
        return f"{parent}.{value.name}" if parent else None
    return None


__all__ = [
    "Reached",
    "Step",
    "Write",
    "chain",
    "classify",
    "job_body",
    "job_writes",
    "origin",
    "receiver_origin",
    "writes_in",
]
