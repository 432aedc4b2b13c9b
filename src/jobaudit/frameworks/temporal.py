"""Temporal activities (temporalio 1.35; §1.9).

An activity's retry policy and timeouts are chosen where a workflow calls it
(``workflow.execute_activity(fn, start_to_close_timeout=..., retry_policy=...)``);
the default retry policy has no attempt limit and backs off exponentially from
1 s by a factor of 2, capped at 100 times the initial interval.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobaudit.frameworks.base import Framework
from jobaudit.guards import idempotency_guard
from jobaudit.model import Backoff, Job, JobPolicy, Location, Resolved
from jobaudit.symbols import seconds
from jobaudit.values import Call, Unknown, Value

if TYPE_CHECKING:
    from jobaudit.project import Project

CALLS = frozenset(
    f"{verb}_{kind}{suffix}"
    for verb in ("execute", "start")
    for kind in ("activity", "local_activity")
    for suffix in ("", "_method")
)
AT_CALL = "set where the activity is called"


class Temporal(Framework):
    name = "temporal"
    title = "Temporal"
    decorators = frozenset({"temporalio.activity.defn"})
    enqueue_methods = CALLS

    def policy(self, job: Job, project: Project) -> JobPolicy:
        sites = [site for site in project.sites_of(job, tests=False) if site.method in CALLS]
        resolver = project.resolver

        def agreed(name: str) -> tuple[Value, Location | None] | Unknown:
            if not sites:
                return Unknown(f"{AT_CALL}; no workflow call was found")
            values = [resolver.evaluate(site.site.call.kwarg(name)) for site in sites]
            if all(value == values[0] for value in values):
                first = sites[0]
                span = first.site.call.kwarg_span(name) or first.site.call.span
                return values[0], Location(first.path, span)
            return Unknown(f"workflow calls pass different {name}")

        policy = agreed("retry_policy")
        if isinstance(policy, Unknown):
            max_attempts = Resolved(policy, AT_CALL)
            backoff = Resolved(policy, AT_CALL)
        else:
            value, location = policy
            if value is None:
                max_attempts = Resolved(
                    "unbounded", "default RetryPolicy (maximum_attempts=0)", location
                )
                backoff = Resolved(
                    Backoff("exponential", 1.0, 100.0, False), "default RetryPolicy", location
                )
            elif isinstance(value, Call):
                attempts = resolver.evaluate(value.kwarg("maximum_attempts"))
                if attempts is None or attempts == 0:
                    max_attempts = Resolved(
                        "unbounded", "RetryPolicy without maximum_attempts", location
                    )
                elif isinstance(attempts, int) and not isinstance(attempts, bool):
                    max_attempts = Resolved(attempts, "RetryPolicy(maximum_attempts)", location)
                else:
                    max_attempts = Resolved(
                        Unknown("maximum_attempts is not a constant"), "RetryPolicy", location
                    )
                backoff = Resolved(_backoff(value, project), "RetryPolicy", location)
            else:
                max_attempts = Resolved(
                    Unknown("retry_policy is computed at run time"), AT_CALL, location
                )
                backoff = max_attempts

        def limit(name: str) -> Resolved:
            found = agreed(name)
            if isinstance(found, Unknown):
                return Resolved(found, AT_CALL)
            value, location = found
            return Resolved(seconds(value), f"{name} at the workflow call", location)

        time_limit = limit("start_to_close_timeout")
        if time_limit.value is None:
            time_limit = limit("schedule_to_close_timeout")
        return JobPolicy(
            max_attempts=max_attempts,
            backoff=backoff,
            retry_on=Resolved("all", "Temporal retries every error not marked non-retryable"),
            permanent=Resolved((), "RetryPolicy(non_retryable_error_types)"),
            time_limit=time_limit,
            soft_time_limit=Resolved(None, "Temporal has no soft limit"),
            delivery=Resolved("at-least-once", "activities are retried by default"),
            idempotency_guard=idempotency_guard(job, project),
        )


def _backoff(policy: Call, project: Project) -> Backoff | Unknown:
    """``RetryPolicy`` delays: from ``initial_interval`` (1 s), capped at ``maximum_interval``
    (100 times the initial interval), growing by ``backoff_coefficient`` (2.0)."""
    resolver = project.resolver
    initial = policy.kwarg("initial_interval")
    first = 1.0 if initial is None else seconds(resolver.evaluate(initial))
    maximum = policy.kwarg("maximum_interval")
    if not isinstance(first, float):
        return Unknown("initial_interval is not a constant")
    cap = 100 * first if maximum is None else seconds(resolver.evaluate(maximum))
    if not isinstance(cap, float):
        return Unknown("maximum_interval is not a constant")
    coefficient = resolver.evaluate(policy.kwarg("backoff_coefficient"))
    if coefficient is None:
        coefficient = 2.0
    if not isinstance(coefficient, (int, float)) or isinstance(coefficient, bool):
        return Unknown("backoff_coefficient is not a constant")
    if coefficient == 1:
        return Backoff("fixed", first)
    return Backoff("exponential", first, cap, False, float(coefficient))
