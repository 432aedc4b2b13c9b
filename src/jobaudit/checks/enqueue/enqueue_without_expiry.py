"""JOB607 enqueue-without-expiry (preview): a job that waits in the queue for ever.

When workers are down or far behind, a queued job runs whenever it is finally
consumed: the password-reset mail an hour late, the price check a day late.
For work that is pointless after a while, an expiry drops the stale message
instead.  By default nothing expires: Celery ``expires`` is None, RQ ``ttl``
is None (infinite queue wait), Dramatiq ``max_age`` is None (the ``AgeLimit``
middleware does nothing without it); arq drops a job a day after its expected
start unless ``_expires`` says otherwise.

Whether a job is time-sensitive cannot be read from code, so this rule is in
preview: it reports every call that enqueues without an expiry from the call,
the job's declaration (Celery ``expires=``, RQ ``@job(ttl=...)``, Dramatiq
``max_age=``) or the project's configuration (a Dramatiq ``AgeLimit`` built
with ``max_age``, a Celery ``task_annotations`` entry).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.enqueue.calls import Enqueue, enqueue_calls, on_job_itself
from jobaudit.discovery import iter_call_sites
from jobaudit.frameworks.celery import Celery

if TYPE_CHECKING:
    from jobaudit.project import Project

AGE_LIMIT = frozenset({"dramatiq.middleware.AgeLimit", "dramatiq.middleware.age_limit.AgeLimit"})
CELERY_METHODS = frozenset({"apply_async", "apply_async_on_commit"})
RQ_METHODS = frozenset({"enqueue", "enqueue_call", "delay"})
DRAMATIQ_METHODS = frozenset({"send", "send_with_options"})
OPTION = {"celery": "expires", "rq": "ttl", "dramatiq": "max_age", "arq": "_expires"}
DEFAULT = {
    "celery": "it never expires",
    "rq": "it waits in the queue for ever",
    "dramatiq": "it never expires",
    "arq": "arq keeps it until a day after its expected start",
}


class EnqueueWithoutExpiry(Rule):
    code = "JOB607"
    name = "enqueue-without-expiry"
    level = "note"
    preview = True
    scope = "call site"
    gate = "enqueue safety"
    summary = "A job is enqueued with no expiry, so it runs however late it is consumed."
    frameworks = ("celery", "rq", "dramatiq", "arq")

    def check_project(self, project: Project) -> Iterator[Finding]:
        age_limit = _age_limit(project)
        for enqueue in enqueue_calls(project):
            if enqueue.timing not in {"now", "on commit"}:
                continue
            if not self._applies(enqueue, project, age_limit):
                continue
            option = OPTION[enqueue.framework]
            yield self.finding(
                enqueue.location,
                f"{enqueue.subject()} is enqueued with {enqueue.spelling()} and no {option}=, "
                f"so {DEFAULT[enqueue.framework]}: when workers are down or behind it runs "
                f"however late it is consumed; set {option}= if the work is pointless after "
                "a while",
                enqueue.job,
            )

    def _applies(self, enqueue: Enqueue, project: Project, age_limit: bool) -> bool:
        call = enqueue.call
        option = OPTION.get(enqueue.framework)
        if option is None or call.star_kwargs or call.kwarg(option) is not None:
            return False
        job = enqueue.job
        if enqueue.framework == "celery":
            if enqueue.method not in CELERY_METHODS or job is None:
                return False
            celery = project.framework("celery")
            if not isinstance(celery, Celery):
                return False
            return celery.lookup(job, project, "expires", None).value is None
        if enqueue.framework == "rq":
            if enqueue.method not in RQ_METHODS:
                return False
            if job is not None and on_job_itself(enqueue, project):
                return "ttl" not in job.options
            return enqueue.method != "delay"
        if enqueue.framework == "dramatiq":
            if enqueue.method not in DRAMATIQ_METHODS or age_limit:
                return False
            return job is None or "max_age" not in job.options
        return enqueue.framework == "arq"


def _age_limit(project: Project) -> bool:
    """A Dramatiq ``AgeLimit(max_age=...)`` middleware configured somewhere in the project."""
    for facts in project.resolver.modules.values():
        for site, _ in iter_call_sites(facts):
            call = site.call
            if call.kwarg("max_age") is not None and project.external_name(call.func) in AGE_LIMIT:
                return True
    return False


__all__ = ["EnqueueWithoutExpiry"]
