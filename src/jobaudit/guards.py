"""Idempotency guards: what makes a second run of a job harmless.

The readiness report shows the guard found for each job, and the idempotency
rules stay silent where one exists.  A declaration (``# jobaudit: idempotent --
reason``) beats any guess.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.model import Job, Location, Resolved
from jobaudit.values import dotted

if TYPE_CHECKING:
    from jobaudit.project import Project

GUARD_METHODS = {
    "get_or_create": "get_or_create()",
    "update_or_create": "update_or_create()",
    "select_for_update": "select_for_update()",
    "on_conflict_do_nothing": "INSERT ... ON CONFLICT DO NOTHING",
    "on_conflict_do_update": "upsert (ON CONFLICT DO UPDATE)",
    "lock_task": "lock_task()",
}
GUARD_BASES = {
    "celery_once.QueueOnce": "celery_once.QueueOnce",
    "celery_singleton.Singleton": "celery_singleton.Singleton",
}


def idempotency_guard(job: Job, project: Project) -> Resolved:
    """The guard protecting a job from a second run, or ``None`` when none is found."""
    if job.idempotent_pragma is not None:
        reason = job.idempotent_pragma
        text = f"declared idempotent: {reason}" if reason else "declared idempotent"
        return Resolved(text, "# jobaudit: idempotent", job.location)
    base = job.options.get("base")
    if base is not None:
        name = project.external_name(base.written)
        if name in GUARD_BASES:
            return Resolved(GUARD_BASES[name], "base class", base.location)
    own = set(project.config.idempotency_guards)
    for function in project.body(job):
        for decorator in function.facts.decorators:
            name = dotted(decorator.func if hasattr(decorator, "func") else decorator)  # type: ignore[union-attr]
            if name and name in own:
                return Resolved(
                    name, "idempotency-guards", Location(function.path, function.facts.span)
                )
        for site in function.facts.calls:
            name = dotted(site.call.func) or ""
            method = name.rpartition(".")[2]
            if method in GUARD_METHODS:
                return Resolved(
                    GUARD_METHODS[method], "job body", Location(function.path, site.call.span)
                )
            if name in own or (own and project.external_name(site.call.func) in own):
                return Resolved(name, "idempotency-guards", Location(function.path, site.call.span))
    return Resolved(None, "none found")
