"""Idempotency guards: what makes a second run of a job harmless.

The readiness report shows the guard found for each job, and the idempotency
rules stay silent where one exists.  A declaration (``# jobaudit: idempotent --
reason``) beats any guess.

Guards come at two scopes.  A *job* guard protects the whole run: a lock
(``QueueOnce``, Huey's ``lock_task``, Dramatiq's ``ConcurrentRateLimiter``, a
redis ``lock()``), a ``get_or_create`` / ``update_or_create`` / upsert claim,
``select_for_update()`` with a check of the row, or one of the project's own
guards (option ``idempotency-guards``).  A *write* guard protects one write: a
key it carries (``idempotency_key=``), a nature that makes repeating it
harmless (HTTP PUT, ``bulk_create(ignore_conflicts=True)``), an ``except
IntegrityError`` around it, or a check of stored state on the way to it.

A state check is an ``if`` whose test reads what an earlier run would have
left behind, and that either encloses the write or leaves early (``return``,
``raise``, ``continue``, ``break``) before it, in the function that writes or
in a caller before the call that leads there.  Its test must read one of:

- a field of an object with a completion or status word in its name
  (``order.receipt_sent_at``, ``invoice.status``, ``payment.is_captured``);
- a local with such a word (``if not created: return``, ``if already_sent:``);
- a query or store probe: ``.exists()``, ``cache.get/add/has_key``, redis
  ``get/exists/setnx/sismember/sadd``;
- a local assigned from such a probe or from a conditional ``update()``
  (``claimed = Order.objects.filter(pk=pk, sent=False).update(sent=True)``);
- a call of a function whose name says so (``already_notified(order)``).

Only the names matter, not the direction of the test: ``if not
order.is_paid: return`` counts too.  That makes the check generous, which
costs missed findings, never false ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.facts import Check, FunctionFacts
from jobaudit.model import Job, Location, Resolved
from jobaudit.side_effects import Write, chain, job_writes, receiver_origin
from jobaudit.symbols import External, ProjectClass
from jobaudit.values import Call, Element, Local, Ref, Value, dotted, render

if TYPE_CHECKING:
    from jobaudit.project import Project

GUARD_METHODS = {
    "get_or_create": "get_or_create()",
    "aget_or_create": "get_or_create()",
    "update_or_create": "update_or_create()",
    "aupdate_or_create": "update_or_create()",
    "on_conflict_do_nothing": "INSERT ... ON CONFLICT DO NOTHING",
    "on_conflict_do_update": "upsert (ON CONFLICT DO UPDATE)",
    "on_duplicate_key_update": "upsert (ON DUPLICATE KEY UPDATE)",
    "lock_task": "lock_task()",
    "lock": "a lock",
}
LOCKS = frozenset({"a lock", "lock_task()"})
"""Guards that keep two runs from overlapping (``GUARD_BASES`` are locks too)."""
GUARD_BASES = {
    "celery_once.QueueOnce": "celery_once.QueueOnce",
    "celery_once.tasks.QueueOnce": "celery_once.QueueOnce",
    "celery_singleton.Singleton": "celery_singleton.Singleton",
}
LOCK_CLASSES = ("ConcurrentRateLimiter", "redis.lock.Lock", "redis.asyncio.lock.Lock")
INTEGRITY_ERRORS = ("IntegrityError", "UniqueViolation")
INSERT_CALLS = (["create"], ["acreate"], ["save"], ["asave"], ["bulk_create"], ["execute"])
UPSERT_SQL = ("on conflict", "on duplicate key", "insert ignore")
STATE_WORDS = frozenset(
    {
        "status",
        "state",
        "sent",
        "processed",
        "done",
        "complete",
        "completed",
        "finished",
        "paid",
        "charged",
        "captured",
        "refunded",
        "delivered",
        "notified",
        "handled",
        "synced",
        "published",
        "imported",
        "exported",
        "executed",
        "applied",
        "confirmed",
        "fulfilled",
        "acknowledged",
        "succeeded",
        "submitted",
        "uploaded",
        "emailed",
        "invoiced",
        "billed",
        "posted",
        "pushed",
        "dispatched",
        "issued",
        "created",
        "already",
        "exists",
        "seen",
        "duplicate",
        "claimed",
        "locked",
        "last",
        "reminded",
        "alerted",
        "invited",
        "welcomed",
        "shipped",
        "settled",
        "cancelled",
        "canceled",
        "archived",
        "recorded",
        "reported",
        "enqueued",
    }
)
"""Words (``_``-separated parts of a name) that say a field records what a run did."""
NOT_STATE = frozenset({"status_code", "http_status"})
PROBES = frozenset(
    {"exists", "aexists", "has_key", "setnx", "sismember", "hexists", "hsetnx", "sadd", "add"}
)
"""Calls that ask a store whether something was done (``cache.add`` claims a key)."""
STORES = ("cache", "redis")
RECORD_MODELS = ("Log", "Logs", "Event", "Events", "History", "Attempt", "Attempts", "Audit")
"""Endings of model names whose rows record what each run did (``WebhookLog``, ``OrderEvent``)."""
ATTEMPT_WORDS = frozenset({"retry", "retries", "attempt", "attempts", "try", "tries"})
"""Words of an argument name that passes the attempt number (``retry_count=``)."""
ATTEMPT_VALUES = frozenset({"retries", "job_try", "attempt", "attempts", "attempt_number"})
"""Values that are the attempt number (``self.request.retries``, ``ctx.job_try``)."""
CLAIMS = frozenset({"update", "aupdate", *PROBES})


def idempotency_guard(job: Job, project: Project) -> Resolved:
    """The guard protecting a job from a second run, or ``None`` when none is found.

    A job guard comes first; otherwise, when every write of the body is
    guarded on its own, the first of those guards.
    """
    found = job_guard(job, project)
    if found is not None:
        return found
    writes = job_writes(job, project)
    guarded = [(write, write_guard(write, project)) for write in writes]
    if writes and all(guard is not None for _, guard in guarded):
        write, guard = guarded[0]
        return Resolved(f"{guard} ({write.action})", "write guard", write.location)
    return Resolved(None, "none found")


def job_guard(job: Job, project: Project) -> Resolved | None:
    """A guard that covers the whole job: a declaration, a base class, a lock or a claim."""
    if job.idempotent_pragma is not None:
        reason = job.idempotent_pragma
        text = f"declared idempotent: {reason}" if reason else "declared idempotent"
        return Resolved(text, "# jobaudit: idempotent", job.location)
    base = job.options.get("base")
    if base is not None:
        name = _guard_base(base.written, project)
        if name is not None:
            return Resolved(name, "base class", base.location)
    if job.cls is not None:  # a Task subclass registered with app.register_task
        for external in project.resolver.external_bases(ProjectClass(job.cls, job.path)):
            if external in GUARD_BASES:
                return Resolved(GUARD_BASES[external], "base class", job.location)
    own = set(project.config.idempotency_guards)
    for function in project.body(job):
        facts = function.facts
        for decorator, span in zip(facts.decorators, facts.decorator_spans, strict=True):
            target = decorator.func if isinstance(decorator, Call) else decorator
            if _is_own(target, own, project):
                return Resolved(dotted(target), "idempotency-guards", Location(function.path, span))
            if chain(target)[-1:] == ["lock_task"]:
                return Resolved("lock_task()", "decorator", Location(function.path, span))
        claim = _unique_claim(facts)
        if claim is not None:
            return Resolved(claim, "job body", Location(function.path, facts.span))
        for site in facts.calls:
            where = Location(function.path, site.call.span)
            if _is_own(site.call.func, own, project):
                return Resolved(dotted(site.call.func), "idempotency-guards", where)
            guard = _guard_call(site.call, facts, project)
            if guard is not None:
                return Resolved(guard, "job body", where)
    return None


def _unique_claim(facts: FunctionFacts) -> str | None:
    """``try: Receipt.objects.create(...)`` / ``except IntegrityError: return``.

    The insert of a unique row claims the work: a second run fails on it and
    leaves, so what follows runs once.
    """
    for handler in facts.handlers:
        if not handler.exits:
            continue
        names = [dotted(caught) or "" for caught in handler.types]
        caught = next((n for n in names if n.endswith(INTEGRITY_ERRORS)), None)
        if caught is None:
            continue
        inserts = [
            site
            for site in facts.calls
            if handler.try_index in site.trys and chain(site.call.func)[-1:] in INSERT_CALLS
        ]
        if inserts:
            return f"a unique insert with except {caught.rpartition('.')[2]}"
    return None


def _guard_base(value: Value, project: Project) -> str | None:
    """``base=QueueOnce``, or a project class derived from one."""
    symbol = project.resolver.symbol_of(value)
    if isinstance(symbol, External):
        return GUARD_BASES.get(symbol.name)
    if isinstance(symbol, ProjectClass):
        for name in project.resolver.external_bases(symbol):
            if name in GUARD_BASES:
                return GUARD_BASES[name]
    return None


def _is_own(target: Value, own: set[str], project: Project) -> bool:
    if not own:
        return False
    name = dotted(target)
    if name is None:
        return False
    if name in own or name.rpartition(".")[2] in own:
        return True
    return project.external_name(target) in own


def _guard_call(call: Call, facts: FunctionFacts, project: Project) -> str | None:
    segments = chain(call.func)
    method = segments[-1] if segments else ""
    if method in GUARD_METHODS:
        return GUARD_METHODS[method]
    if method == "select_for_update":
        reads = (state_read(check, facts, project) for check in facts.checks)
        read = next((found for found in reads if found is not None), None)
        return f"select_for_update() and a check of {read}" if read else None
    origin = receiver_origin(call.func, facts, project) if method == "acquire" else None
    name = project.external_name(call.func) or ""
    if (origin or "").endswith(LOCK_CLASSES) or name.endswith(LOCK_CLASSES):
        return "a lock"
    for arg in call.args:
        if isinstance(arg, str) and any(sql in arg.lower() for sql in UPSERT_SQL):
            return "an SQL upsert"
    return None


# -- write guards -------------------------------------------------------------------------


def write_guard(write: Write, project: Project) -> str | None:
    """What protects one write from a second run, or None."""
    if write.idempotent is not None:
        return write.idempotent
    per_attempt = _per_attempt(write)
    if per_attempt is not None:
        return per_attempt
    frames = [(step.facts, step.site) for step in write.steps]
    frames.append((write.function.facts, write.site))
    for facts, site in frames:
        for index in site.trys:
            for handler_index in facts.trys[index].handlers:
                handler = facts.handlers[handler_index]
                for caught in handler.types:
                    name = dotted(caught) or ""
                    if name.endswith(INTEGRITY_ERRORS):
                        return f"except {name.rpartition('.')[2]}"
        for index in site.checks:
            read = state_read(facts.checks[index], facts, project)
            if read is not None:
                return f"a check of {read}"
        line = site.call.span[0]
        for check in facts.checks:
            if check.exits and check.span[2] < line:
                read = state_read(check, facts, project)
                if read is not None:
                    return f"an early return on {read}"
    return None


def _per_attempt(write: Write) -> str | None:
    """A write that records the run itself: a log or event row, ``retry_count=...``.

    One row per attempt is what such a write is for (delivery logs, attempt
    tables, timelines of events), so a second attempt adding a second row
    records a second attempt; it does not repeat an effect.
    """
    model = next((s for s in chain(write.call.func) if s.endswith(RECORD_MODELS)), None)
    if model is not None:
        return f"a record of each run ({model} rows)"
    calls = [step.site.call for step in write.steps] + [write.call]
    for call in calls:
        for name, value in call.kwargs:
            if ATTEMPT_WORDS.intersection(name.lower().split("_")):
                return f"a record of each attempt ({name}=)"
            if _counts_attempts(value):
                return f"a record of each attempt ({name}={render(value)})"
        if any(_counts_attempts(value) for value in call.args):
            return "a record of each attempt"
    return None


def _counts_attempts(value: Value) -> bool:
    if isinstance(value, Element):  # ctx["job_try"]
        return value.key in ATTEMPT_VALUES
    segments = chain(value) if isinstance(value, (Local, Ref)) else []
    return bool(segments) and segments[-1] in ATTEMPT_VALUES


def state_read(check: Check, facts: FunctionFacts, project: Project) -> str | None:
    """What an ``if`` test reads that records an earlier run (see the module docstring)."""
    for read in check.reads:
        if isinstance(read, Local):
            found = _state_local(read.name, facts)
            if found is not None:
                return found
            continue
        segments = chain(read)
        if not segments:
            continue
        if isinstance(read, Ref) and len(segments) > 1:
            # a project function (``already_sent(order)``), or an attribute of a module object
            if _stateful(segments[-1]) or _probe(segments):
                return render(read)
            continue
        if _probe(segments):
            return f"{'.'.join(segments[-2:])}()"
    return None


def _state_local(name: str, facts: FunctionFacts) -> str | None:
    parts = name.split(".")
    if len(parts) > 1:
        if _probe(parts) or _stateful(parts[-1]):
            return name
        return None
    if _stateful(name):
        return name
    value = facts.local(name)
    if isinstance(value, Call):
        segments = chain(value.func)
        if segments and (segments[-1] in CLAIMS or _probe(segments)):
            return f"{name} = {'.'.join(segments[-2:])}()"
    return None


def _stateful(name: str) -> bool:
    lowered = name.lower()
    if lowered in NOT_STATE:
        return False
    return bool(STATE_WORDS.intersection(lowered.split("_")))


def _probe(segments: list[str]) -> bool:
    method = segments[-1]
    if method in PROBES:
        return True
    receiver = ".".join(segments[:-1]).lower()
    return method in {"get", "exists"} and any(store in receiver for store in STORES)


__all__ = ["LOCKS", "idempotency_guard", "job_guard", "state_read", "write_guard"]
