"""JOB204 retry-call-misuse: Celery ``retry()`` calls that do not do what they look like.

``self.retry()`` publishes the retry message and then raises ``Retry`` to end
the run.  Four ways of calling it go wrong quietly:

* as a bare statement, the call still raises, but the code reads as if it
  went on, and the next reader adds code below it;
* with ``throw=False`` it does not raise: the retry is already queued and the
  run goes on, so whatever it does next happens again in the retry;
* in a task without ``bind=True``, ``self`` is the task's first argument, not
  the task, and the call fails with an ``AttributeError`` instead of retrying;
* without ``exc=`` inside an ``except`` clause, exhausting the retries fails
  the task with ``MaxRetriesExceededError`` and the error that caused them is
  gone from the result, the logs' summary and error trackers.

Each call is reported once, with every problem it has.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.common import handler_at, is_task_retry
from jobaudit.facts import CallSite, FunctionFacts
from jobaudit.fix.model import RAISE_CALL, SAFE, SET_KEYWORD, UNSAFE, Edit, Fix
from jobaudit.model import Job, Location
from jobaudit.side_effects import classify
from jobaudit.values import Local, dotted

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

EXHAUSTED = "MaxRetriesExceededError"
EXC_POSITION = 2
"""``retry(args=None, kwargs=None, exc=None, throw=True, ...)``: ``exc`` is the third."""


class RetryCallMisuse(Rule):
    code = "JOB204"
    name = "retry-call-misuse"
    level = "warning"
    gate = "error handling"
    summary = "A Celery retry() call that does not end the run, cannot work, or loses the error."
    frameworks = ("celery",)
    fixable = True

    def check_job(self, job: Job, project: Project) -> Iterator[Finding]:
        if job.framework != "celery":
            return
        for function in project.body(job):
            facts = function.facts
            for site in facts.calls:
                unbound = _unbound_self_retry(job, facts, site)
                if not unbound and not is_task_retry(job, facts, site.call.func):
                    continue
                problems = _problems(site, function, project, unbound)
                if problems:
                    spelled = f"{dotted(site.call.func)}()"
                    yield self.finding(
                        Location(function.path, site.call.span),
                        f"{job.label()} calls {spelled} {'; and '.join(problems)}",
                        job,
                        fix=None if unbound else _fix(site, function, problems),
                    )


def _fix(site: CallSite, function: BodyFunction, problems: list[str]) -> Fix | None:
    """``raise`` before a statement call, ``exc=<the except clause's name>`` when lost.

    Only when that is every problem of the call: ``throw=False`` and a missing
    ``bind=True`` need a person to decide.

    Raising is safe: the call raises anyway, ``raise`` only says so.  Passing
    ``exc=`` changes which exception fails the task when retries run out, so
    that part makes the fix unsafe.
    """
    path, span = function.path, site.call.span
    edits: list[Edit] = []
    messages: list[str] = []
    if any(problem.startswith("as a statement") for problem in problems):
        edits.append(Edit(RAISE_CALL, path, span))
        messages.append("write `raise` before the retry() call")
    handler = handler_at(function.facts, span[0])
    if _loses_cause(site, function.facts) and handler is not None and handler.name:
        edits.append(Edit(SET_KEYWORD, path, span, "exc", handler.name))
        messages.append(f"pass exc={handler.name}")
    if len(edits) != len(problems):
        return None  # a fix leaves no part of the finding behind
    safety = SAFE if len(edits) == 1 and edits[0].kind == RAISE_CALL else UNSAFE
    return Fix("; ".join(messages).capitalize(), safety, tuple(edits))


def _unbound_self_retry(job: Job, facts: FunctionFacts, site: CallSite) -> bool:
    """``self.retry()`` in a decorated task function that is not ``bind=True``."""
    if job.cls is not None or facts is not job.function or "**" in job.options:
        return False
    func = site.call.func
    if not isinstance(func, Local) or not facts.params or func.name != f"{facts.params[0]}.retry":
        return False
    bind = job.options.get("bind")
    return facts.params[0] == "self" and (bind is None or bind.value is False)


def _problems(site: CallSite, function: BodyFunction, project: Project, unbound: bool) -> list[str]:
    call = site.call
    problems: list[str] = []
    if unbound:
        problems.append(
            "without bind=True, so `self` is the task's first argument, not the task: "
            "the call fails with AttributeError instead of retrying"
        )
    written = call.kwarg("throw")
    throw = True if written is None else project.resolver.evaluate(written)
    if throw is False:
        following = _next_side_effect(site, function, project)
        if following is not None:
            action, line = following
            problems.append(
                f"with throw=False and then {action} (line {line}): the retry is already "
                "queued, so that happens again when it runs"
            )
    elif throw is True and site.statement and not call.star_kwargs:
        dead = next(_after(site, function.facts), None)
        unreached = f"; line {dead.call.span[0]} after it never runs" if dead else ""
        problems.append(
            "as a statement: write `raise self.retry(...)`, so that the run visibly ends "
            f"there{unreached}"
        )
    if _loses_cause(site, function.facts):
        problems.append(
            "without exc= inside an `except` clause: when the retries run out the task fails "
            f"with {EXHAUSTED} and the error that caused them is lost"
        )
    return problems


def _after(site: CallSite, facts: FunctionFacts) -> Iterator[CallSite]:
    """The calls that run after ``site`` in the same block, in order.

    Facts keep no statement tree, so "the same block" is read as the same
    enclosing ``if``, ``try`` and ``except`` clause; a call after an ``if`` that
    ends with ``return`` is not counted, nor one in another branch.
    """
    end = site.call.span[2]
    here = (site.checks, site.trys, site.in_handler, handler_at(facts, site.call.span[0]))
    for later in facts.calls:
        line = later.call.span[0]
        if (
            line > end
            and (
                later.checks,
                later.trys,
                later.in_handler,
                handler_at(facts, line),
            )
            == here
        ):
            yield later


def _next_side_effect(
    site: CallSite, function: BodyFunction, project: Project
) -> tuple[str, int] | None:
    """The first external write (or enqueue) that runs after ``site`` in the same block."""
    for later in _after(site, function.facts):
        write = classify(later, function, project)
        if write is not None:
            return write.action, later.call.span[0]
        enqueued = next(
            (s for s in project.sites if s.site == later and s.function is function.facts), None
        )
        if enqueued is not None:
            return f"enqueues {enqueued.job.label()}", later.call.span[0]
    return None


def _loses_cause(site: CallSite, facts: FunctionFacts) -> bool:
    """``retry()`` without ``exc=`` in an ``except`` clause, and nothing handles exhaustion."""
    call = site.call
    if not site.in_handler or call.star_args or call.star_kwargs:
        return False
    if call.kwarg("exc") is not None or len(call.args) > EXC_POSITION:
        return False
    if handler_at(facts, call.span[0]) is None:
        return False
    # ``try: raise self.retry() except MaxRetriesExceededError: ...`` deals with exhaustion.
    return not any(
        (dotted(value) or "").endswith(EXHAUSTED)
        for index in site.trys
        for handler in facts.trys[index].handlers
        for value in facts.handlers[handler].types
    )
