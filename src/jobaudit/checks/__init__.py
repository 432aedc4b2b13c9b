"""The rule registry: every rule class, in code order, in one explicit tuple."""

from __future__ import annotations

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.errors.control_flow_swallowed import ControlFlowExceptionSwallowed
from jobaudit.checks.errors.retry_on_any_exception import RetryOnAnyException
from jobaudit.checks.retries.retry_without_backoff import RetryWithoutBackoff
from jobaudit.checks.retries.unbounded_retries import UnboundedRetries
from jobaudit.checks.timeouts.ignored_job_option import IgnoredJobOption
from jobaudit.checks.timeouts.no_time_limit import NoTimeLimit

ALL_RULES: tuple[type[Rule], ...] = (
    ControlFlowExceptionSwallowed,
    RetryOnAnyException,
    UnboundedRetries,
    RetryWithoutBackoff,
    NoTimeLimit,
    IgnoredJobOption,
)

__all__ = ["ALL_RULES", "Finding", "Rule", "rule_by_key"]


def rule_by_key(key: str) -> type[Rule] | None:
    """A rule by code (``JOB301``, any case) or name (``unbounded-retries``)."""
    wanted = key.strip()
    for rule in ALL_RULES:
        if rule.code.lower() == wanted.lower() or rule.name == wanted.lower():
            return rule
    return None
