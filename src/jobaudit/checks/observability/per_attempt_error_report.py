"""JOB506 per-attempt-error-report: an error report sent on every attempt of a retried job.

``sentry_sdk.capture_exception(exc)`` (or an alert) in a job's ``except``
block, followed in that block by the retry (``raise self.retry(...)``, arq's
``raise Retry``, Huey's ``RetryTask``) or by a ``raise`` that the framework
retries, reports every failed attempt, including the ones the next attempt
recovers from.  The error tracker fills with noise and the final failure looks
like every other (openstate/open-raadsinformatie#506).  The Sentry
integrations for Celery, RQ, Huey and arq already report the final failure
and skip the retry exceptions, so the custom call adds nothing but the noise.

A ``raise`` counts when the job retries every exception and has more than one
attempt (RQ ``Retry``, Huey ``retries``, Celery ``autoretry_for=(Exception,)``,
taskiq ``retry_on_error``).  A report inside an ``if`` that reads the attempt
count (``self.request.retries``, ``job.retries_left``), or in an ``if`` that
returns before the retry, is deliberate.  Dramatiq
is left out: its Sentry integration itself captures every failed attempt, by
design, so a custom report changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from jobaudit.checks.base import Finding, Related, Rule
from jobaudit.checks.common import handler_at, raises_retry
from jobaudit.checks.observability.silent_failure import REPORT_CALLS, called_name, calls_in
from jobaudit.facts import CallSite, FunctionFacts, Handler
from jobaudit.frameworks.base import raised_name
from jobaudit.frameworks.retry_helpers import body_places, jobs_label
from jobaudit.model import UNBOUNDED, Job, Location
from jobaudit.side_effects import chain, spelled
from jobaudit.values import Span

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

ALERT_WORDS = re.compile(r"alert|slack|mail_admins|report_exc_info", re.IGNORECASE)
"""Project helpers and calls that page a person: ``send_slack_alert(exc)``."""
ATTEMPT_READS = re.compile(r"retries|attempt", re.IGNORECASE)
RETRY_RAISES = {"arq": frozenset({"Retry"}), "huey": frozenset({"RetryTask"})}
"""Exceptions a job raises to ask for another attempt."""
FRAMEWORKS = ("celery", "rq", "huey", "arq", "taskiq", "temporal")


class PerAttemptErrorReport(Rule):
    code = "JOB506"
    name = "per-attempt-error-report"
    level = "note"
    preview = True
    gate = "observability"
    summary = (
        "An error report in a job's except block is sent on every attempt, "
        "because the block goes on to retry."
    )
    frameworks = FRAMEWORKS

    def check_project(self, project: Project) -> Iterator[Finding]:
        places: dict[Location, Location] = {}
        for location, text, jobs in body_places(
            project, lambda job, function: _reports(job, function, project, places)
        ):
            yield self.finding(
                location,
                f"{jobs_label(jobs)}: {text}",
                jobs[0],
                (Related(places[location], "the retry"),),
            )


def _reports(
    job: Job, function: BodyFunction, project: Project, places: dict[Location, Location]
) -> list[tuple[Location, str]]:
    if job.framework not in FRAMEWORKS:
        return []
    facts = function.facts
    out: list[tuple[Location, str]] = []
    for handler in facts.handlers:
        sites = calls_in(facts, handler)
        for site in sites:
            if not _is_report(site) or _reads_attempts(facts, site):
                continue
            retry = _retry_after(job, facts, handler, site, sites)
            if retry is None:
                continue
            span, how = retry
            if _branch_exits(facts, site, span[0]):
                continue
            line = span[0]
            where = Location(function.path, site.call.span)
            places[where] = Location(function.path, span)
            out.append(
                (
                    where,
                    f"{spelled(site.call.func)} in the except block at line {handler.span[0]} "
                    f"runs before {how} (line {line}), so every failed attempt is reported, "
                    "including those a later attempt recovers from; report only the last "
                    "attempt, or leave the final failure to the error tracker's integration",
                )
            )
            break
    return out


def _is_report(site: CallSite) -> bool:
    name = called_name(site.call.func)
    return name in REPORT_CALLS or bool(ALERT_WORDS.search(name))


def _reads_attempts(facts: FunctionFacts, site: CallSite) -> bool:
    """The report sits under an ``if`` that reads the attempt count."""
    for index in site.checks:
        for value in facts.checks[index].reads:
            if ATTEMPT_READS.search(".".join(chain(value))):
                return True
    return False


def _branch_exits(facts: FunctionFacts, site: CallSite, retry_line: int) -> bool:
    """The report sits in an ``if`` that leaves before the retry (the last attempt's branch)."""
    for index in site.checks:
        check = facts.checks[index]
        if check.exits and not check.span[0] <= retry_line <= check.span[2]:
            return True
    return False


def _retry_after(
    job: Job, facts: FunctionFacts, handler: Handler, report: CallSite, sites: list[CallSite]
) -> tuple[Span, str] | None:
    """Where, after the report and in the same block, the job goes on to another attempt."""
    line = report.call.span[0]
    if job.framework == "celery":
        for site in sites:
            if site.call.span[0] > line and raises_retry(job, facts, site):
                return site.call.span, "the task's retry()"
    retried = RETRY_RAISES.get(job.framework, frozenset())
    for raise_ in facts.raises:
        where = raise_.span[0]
        if where <= line or handler_at(facts, where) is not handler:
            continue
        name = raised_name(raise_.value)
        if name in retried:
            return raise_.span, f"raise {name}"
        if _retries_everything(job):
            return raise_.span, "a raise the framework retries"
    return None


def _retries_everything(job: Job) -> bool:
    assert job.policy is not None
    attempts = job.policy.max_attempts.value
    many = attempts == UNBOUNDED or (
        isinstance(attempts, int) and not isinstance(attempts, bool) and attempts > 1
    )
    return many and job.policy.retry_on.value == "all"


__all__ = ["PerAttemptErrorReport"]
