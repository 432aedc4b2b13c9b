"""JOB104 unstable-idempotency-key.

An idempotency key works because the second attempt sends the same key as the
first: the provider recognises the request and returns the first result.  A
key computed inside the job from ``uuid.uuid4()``, ``time.time()`` or
``datetime.now()`` is new on every attempt, so a retry is a new request and
the key protects nothing, while the code looks protected (and JOB101 trusts
it).  Each framework gives a job an id that stays the same across its
attempts; the message names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.idempotency.reruns import rerun
from jobaudit.checks.idempotency.unguarded_side_effect import through
from jobaudit.facts import FunctionFacts
from jobaudit.model import Job, Location
from jobaudit.side_effects import IDEMPOTENCY_WORD, job_body
from jobaudit.values import Attr, BinOp, Call, Local, Mapping, Ref, Seq, Span, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

FRESH = {
    "uuid.uuid4": "uuid.uuid4()",
    "uuid.uuid1": "uuid.uuid1()",
    "time.time": "time.time()",
    "time.time_ns": "time.time_ns()",
    "datetime.datetime.now": "datetime.now()",
    "datetime.datetime.utcnow": "datetime.utcnow()",
    "django.utils.timezone.now": "timezone.now()",
    "secrets.token_hex": "secrets.token_hex()",
    "secrets.token_urlsafe": "secrets.token_urlsafe()",
}
"""Calls whose value is new each time they run."""
STABLE = {
    "celery": "self.request.id (bind=True), the same on every retry",
    "rq": "rq.get_current_job().id",
    "dramatiq": "CurrentMessage.get_current_message().message_id",
    "huey": "task.id (context=True)",
    "arq": "ctx['job_id']",
    "taskiq": "context.message.task_id",
    "django_tasks": "context.task_result.id (takes_context=True)",
    "temporal": "activity.info().workflow_id with activity_id",
}
DEDUP_KWARGS = frozenset({"MessageDeduplicationId"})
_MAX_DEPTH = 4


class UnstableIdempotencyKey(Rule):
    code = "JOB104"
    name = "unstable-idempotency-key"
    level = "error"
    gate = "idempotency"
    summary = (
        "An idempotency key built from uuid4(), time() or now() in the job changes every attempt."
    )
    frameworks = ("celery", "rq", "dramatiq", "huey", "arq", "taskiq", "django_tasks", "temporal")

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if rerun(job, project) is None:
            return
        stable = STABLE.get(job.framework, "an id the job is given when it is enqueued")
        for reached in job_body(job, project):
            facts = reached.function.facts
            for site in facts.calls:
                for key, value, span in _keys(site.call, facts):
                    found = fresh(value, facts, project, span)
                    if found is None:
                        continue
                    what, where = found
                    yield self.finding(
                        Location(reached.function.path, where),
                        f"{job.label()} {through(reached.function)}builds the idempotency key "
                        f"({key}) from {what}, which is new on every attempt, so a retry is a new "
                        f"request to the provider; derive it from {stable}",
                        job,
                    )


def _keys(call: Call, facts: FunctionFacts) -> Iterator[tuple[str, Value, Span]]:
    """Idempotency keys a call passes: ``idempotency_key=``, an Idempotency-Key header..."""
    for name, value in call.kwargs:
        span = call.kwarg_span(name) or call.span
        if IDEMPOTENCY_WORD in name.lower() or name in DEDUP_KWARGS:
            yield f"{name}=", value, span
        elif name == "headers":
            headers = value
            if isinstance(headers, Local) and "." not in headers.name:
                headers = facts.local(headers.name)
            if isinstance(headers, Mapping):
                for header, item in headers.items:
                    if isinstance(header, str) and IDEMPOTENCY_WORD in header.lower():
                        yield f"the {header} header", item, span


def fresh(
    value: Value, facts: FunctionFacts, project: Project, where: Span, depth: int = 0
) -> tuple[str, Span] | None:
    """The call that makes a value new each time (``uuid.uuid4()``), and where it is written.

    Follows ``str()``, ``.hex``, arithmetic, f-strings and local variables;
    ``where`` is the span of the expression, used to find calls inside an
    f-string, which facts keep only as calls.
    """
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, Call):
        name = project.external_name(value.func) if isinstance(value.func, Ref) else None
        if name in FRESH:
            return FRESH[name], value.span
        parts: list[Value] = [value.func, *value.args, *(v for _, v in value.kwargs)]
        return _first(parts, facts, project, where, depth)
    if isinstance(value, Attr):
        return fresh(value.base, facts, project, where, depth + 1)
    if isinstance(value, BinOp):
        return _first([value.left, value.right], facts, project, where, depth)
    if isinstance(value, Seq):
        return _first(list(value.items), facts, project, where, depth)
    if isinstance(value, Local) and "." not in value.name:
        assigned = facts.local(value.name)
        spans = [span for name, span in facts.local_spans if name == value.name]
        if assigned is None or not spans:
            return None
        return fresh(assigned, facts, project, spans[-1], depth + 1)
    if isinstance(value, Unknown):
        return _inside(where, facts, project)
    return None


def _first(
    parts: list[Value], facts: FunctionFacts, project: Project, where: Span, depth: int
) -> tuple[str, Span] | None:
    for part in parts:
        found = fresh(part, facts, project, where, depth + 1)
        if found is not None:
            return found
    return None


def _inside(where: Span, facts: FunctionFacts, project: Project) -> tuple[str, Span] | None:
    """A fresh call written inside ``where`` (an f-string keeps its calls only as calls)."""
    for site in facts.calls:
        span = site.call.span
        if (span[0], span[1]) < (where[0], where[1]) or (span[2], span[3]) > (where[2], where[3]):
            continue
        func = site.call.func
        name = project.external_name(func) if isinstance(func, Ref) else None
        if name in FRESH:
            return FRESH[name], span
    return None
