"""JOB609 pickle-serializer (preview): Celery configured to send or accept pickle.

Unpickling runs code: a worker that accepts pickle executes whatever a message
tells it to, so anyone who can publish to the broker (a leaked broker URL, a
shared Redis) can run code on the workers.  Celery has defaulted to JSON and
``accept_content=['json']`` since 4.0; pickle has to be asked for, in
``task_serializer``/``result_serializer``, ``accept_content``/
``result_accept_content`` (as ``'pickle'`` or its content type
``application/x-python-serialize``), a task's ``serializer=`` or a call's
``apply_async(serializer=...)``.  Custom serializers registered under other
names (a signed pickle) are the project's own decision and are not reported,
nor is configuration for tests and development.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.enqueue.calls import enqueue_calls
from jobaudit.frameworks.celery import Celery
from jobaudit.model import Location
from jobaudit.project import is_test_path
from jobaudit.transactions import non_production
from jobaudit.values import Seq, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

PICKLE = frozenset({"pickle", "application/x-python-serialize"})
SERIALIZERS = ("task_serializer", "result_serializer")
ACCEPT = ("accept_content", "result_accept_content")


class PickleSerializer(Rule):
    code = "JOB609"
    name = "pickle-serializer"
    level = "note"
    preview = True
    scope = "config"
    gate = "enqueue safety"
    summary = "Celery is configured to serialise or accept pickle, which runs code on load."
    frameworks = ("celery",)

    def check_project(self, project: Project) -> Iterator[Finding]:
        celery = project.framework("celery")
        if not isinstance(celery, Celery):
            return
        seen: set[Location] = set()
        evaluate = project.resolver.evaluate
        for app in celery.apps.values():
            name = app.name.rpartition(".")[2]
            for key in (*SERIALIZERS, *ACCEPT):
                found = app.values.get(key)
                if found is None:
                    continue
                value, source, location = found
                if location in seen or not _production(project, location):
                    continue
                if _pickle(evaluate(value), key in ACCEPT, project):
                    seen.add(location)
                    yield self.finding(location, _message(f"Celery app '{name}'", key, source))
        for job in project.jobs_of("celery"):
            option = job.options.get("serializer")
            if option is None or option.location is None or option.location in seen:
                continue
            if _pickle(option.value, False, project):
                seen.add(option.location)
                yield self.finding(
                    option.location, _message(job.label(), "serializer", option.source), job
                )
        for enqueue in enqueue_calls(project):
            given = enqueue.call.kwarg("serializer")
            if enqueue.framework != "celery" or given is None:
                continue
            if _pickle(evaluate(given), False, project):
                span = enqueue.call.kwarg_span("serializer") or enqueue.call.span
                yield self.finding(
                    Location(enqueue.path, span),
                    _message(enqueue.subject(), "serializer", f"{enqueue.spelling()}"),
                    enqueue.job,
                )


def _pickle(value: Value, accepts: bool, project: Project) -> bool:
    if isinstance(value, str):
        return value in PICKLE
    if accepts and isinstance(value, Seq):
        return any(_pickle(project.resolver.evaluate(item), False, project) for item in value.items)
    return False


def _production(project: Project, location: Location) -> bool:
    if is_test_path(location.path, project.config.test_paths):
        return False
    facts = project.resolver.facts_by_path.get(location.path)
    return facts is None or not non_production(facts.module)


def _message(who: str, key: str, source: str) -> str:
    verb = "accepts" if key in ACCEPT else "uses"
    return (
        f"{who} {verb} pickle ({key}, {source}): unpickling a message runs code, so anyone "
        "who can publish to the broker can run code on the workers; use json (Celery's "
        "default) and pass ids instead of objects"
    )


__all__ = ["PickleSerializer"]
