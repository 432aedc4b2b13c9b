"""The rule registry: every rule class, in code order, in one explicit tuple."""

from __future__ import annotations

from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.enqueue.countdown_exceeds_visibility_timeout import (
    CountdownExceedsVisibilityTimeout,
)
from jobaudit.checks.enqueue.enqueue_failure_swallowed import EnqueueFailureSwallowed
from jobaudit.checks.enqueue.enqueue_in_transaction import EnqueueInTransaction
from jobaudit.checks.enqueue.enqueue_without_expiry import EnqueueWithoutExpiry
from jobaudit.checks.enqueue.inline_execution_configured import InlineExecutionConfigured
from jobaudit.checks.enqueue.job_called_inline import JobCalledInline
from jobaudit.checks.enqueue.job_waits_on_job import JobWaitsOnJob
from jobaudit.checks.enqueue.orm_object_argument import OrmObjectArgument
from jobaudit.checks.enqueue.pickle_serializer import PickleSerializer
from jobaudit.checks.errors.control_flow_swallowed import ControlFlowExceptionSwallowed
from jobaudit.checks.errors.permanent_error_retried import PermanentErrorRetried
from jobaudit.checks.errors.requeue_loop import RequeueLoop
from jobaudit.checks.errors.retry_call_misuse import RetryCallMisuse
from jobaudit.checks.errors.retry_on_any_exception import RetryOnAnyException
from jobaudit.checks.errors.transient_error_not_retried import TransientErrorNotRetried
from jobaudit.checks.idempotency.acks_late_without_idempotency import AcksLateWithoutIdempotency
from jobaudit.checks.idempotency.job_id_not_deduplicating import JobIdNotDeduplicating
from jobaudit.checks.idempotency.periodic_job_overlap import PeriodicJobOverlap
from jobaudit.checks.idempotency.unbounded_redelivery import UnboundedRedelivery
from jobaudit.checks.idempotency.unguarded_side_effect import UnguardedSideEffect
from jobaudit.checks.idempotency.unstable_idempotency_key import UnstableIdempotencyKey
from jobaudit.checks.meta.unused_noqa import UnusedNoqa
from jobaudit.checks.observability.failure_callback_on_every_attempt import (
    FailureCallbackOnEveryAttempt,
)
from jobaudit.checks.observability.no_error_tracking import NoErrorTracking
from jobaudit.checks.observability.no_worker_metrics import NoWorkerMetrics
from jobaudit.checks.observability.per_attempt_error_report import PerAttemptErrorReport
from jobaudit.checks.observability.retry_exhaustion_unobserved import RetryExhaustionUnobserved
from jobaudit.checks.observability.silent_failure import SilentFailure
from jobaudit.checks.retries.backoff_without_jitter import BackoffWithoutJitter
from jobaudit.checks.retries.excessive_retry_horizon import ExcessiveRetryHorizon
from jobaudit.checks.retries.misleading_retry_setting import MisleadingRetrySetting
from jobaudit.checks.retries.nested_retry_layers import NestedRetryLayers
from jobaudit.checks.retries.retry_delay_exceeds_visibility_timeout import (
    RetryDelayExceedsVisibilityTimeout,
)
from jobaudit.checks.retries.retry_without_backoff import RetryWithoutBackoff
from jobaudit.checks.retries.unbounded_retries import UnboundedRetries
from jobaudit.checks.tests.failure_path_untested import FailurePathUntested
from jobaudit.checks.tests.job_without_tests import JobWithoutTests
from jobaudit.checks.timeouts.activity_without_heartbeat import ActivityWithoutHeartbeat
from jobaudit.checks.timeouts.blocking_call_without_timeout import BlockingCallWithoutTimeout
from jobaudit.checks.timeouts.ignored_job_option import IgnoredJobOption
from jobaudit.checks.timeouts.no_time_limit import NoTimeLimit
from jobaudit.checks.timeouts.runtime_exceeds_visibility_timeout import (
    RuntimeExceedsVisibilityTimeout,
)
from jobaudit.checks.timeouts.soft_limit_cannot_fire import SoftLimitCannotFire
from jobaudit.checks.timeouts.timeout_exception_swallowed import TimeoutExceptionSwallowed
from jobaudit.checks.timeouts.unenforced_time_limit import UnenforcedTimeLimit

ALL_RULES: tuple[type[Rule], ...] = (
    UnguardedSideEffect,
    AcksLateWithoutIdempotency,
    UnboundedRedelivery,
    UnstableIdempotencyKey,
    JobIdNotDeduplicating,
    PeriodicJobOverlap,
    ControlFlowExceptionSwallowed,
    RetryOnAnyException,
    PermanentErrorRetried,
    RetryCallMisuse,
    RequeueLoop,
    TransientErrorNotRetried,
    UnboundedRetries,
    RetryWithoutBackoff,
    BackoffWithoutJitter,
    ExcessiveRetryHorizon,
    NestedRetryLayers,
    RetryDelayExceedsVisibilityTimeout,
    MisleadingRetrySetting,
    NoTimeLimit,
    IgnoredJobOption,
    SoftLimitCannotFire,
    BlockingCallWithoutTimeout,
    UnenforcedTimeLimit,
    TimeoutExceptionSwallowed,
    ActivityWithoutHeartbeat,
    RuntimeExceedsVisibilityTimeout,
    NoErrorTracking,
    SilentFailure,
    FailureCallbackOnEveryAttempt,
    NoWorkerMetrics,
    RetryExhaustionUnobserved,
    PerAttemptErrorReport,
    EnqueueInTransaction,
    JobWaitsOnJob,
    OrmObjectArgument,
    CountdownExceedsVisibilityTimeout,
    InlineExecutionConfigured,
    JobCalledInline,
    EnqueueWithoutExpiry,
    EnqueueFailureSwallowed,
    PickleSerializer,
    JobWithoutTests,
    FailurePathUntested,
    UnusedNoqa,
)

__all__ = ["ALL_RULES", "Finding", "Rule", "rule_by_key"]


def rule_by_key(key: str) -> type[Rule] | None:
    """A rule by code (``JOB301``, any case) or name (``unbounded-retries``)."""
    wanted = key.strip()
    for rule in ALL_RULES:
        if rule.code.lower() == wanted.lower() or rule.name == wanted.lower():
            return rule
    return None
