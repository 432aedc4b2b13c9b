"""What one job's entry in the readiness report says, independent of the output format.

The sections follow the seed's "Background Job Report" (readiness.md): design,
retry configuration, timeouts, monitoring, failure scenarios tested.  Every
policy value carries its source, so a reader can see *why* jobaudit believes
it; the text, markdown and HTML renderers lay these rows out, the JSON one
uses the stable ``policy`` keys of ``jobaudit jobs`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobaudit.frameworks import FRAMEWORK_TITLES
from jobaudit.job_tests import FAILURE_KINDS
from jobaudit.model import Job, Resolved
from jobaudit.report.jobs import text_value
from jobaudit.report.readiness import NOT_CHECKED, JobEntry


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    source: str = ""
    """Where the value comes from (``task option``, ``framework default``) or why it is unknown."""


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]


def location(job: Job) -> str:
    return f"{job.path}:{job.location.span[0]}"


def framework_title(job: Job) -> str:
    return FRAMEWORK_TITLES.get(job.framework, job.framework)


def queue(job: Job) -> str:
    option = job.options.get("queue")
    if option is None:
        return "default"
    return option.value if isinstance(option.value, str) else "set, but not a literal"


def sections(entry: JobEntry) -> tuple[Section, ...]:
    job = entry.job
    design = (
        Row("job", job.label(), job.qualname),
        Row("framework", framework_title(job), job.declaration),
        Row("defined at", location(job)),
        Row("queue", queue(job)),
        Row("purpose", job.function.docstring or "no docstring"),
        _policy(job, "idempotency strategy", "idempotency_guard"),
        _policy(job, "delivery", "delivery"),
    )
    retries = (
        _policy(job, "retried exceptions", "retry_on"),
        _policy(job, "permanent exceptions", "permanent"),
        _policy(job, "max attempts (total runs)", "max_attempts"),
        _policy(job, "backoff", "backoff"),
    )
    timeouts = (
        _policy(job, "hard limit", "time_limit"),
        _policy(job, "soft limit", "soft_time_limit"),
    )
    return (
        Section("Design", design),
        Section("Retry configuration", retries),
        Section("Timeouts", timeouts),
        Section(
            "Monitoring",
            (
                _gate_row(entry, "observability", "error tracking and metrics"),
                *(Row(kind, what, where) for kind, what, where in entry.monitoring),
            ),
        ),
        Section(
            "Failure scenarios tested",
            (_gate_row(entry, "tests", "tests of the job"), *_tests(entry)),
        ),
    )


def _policy(job: Job, label: str, key: str) -> Row:
    if job.policy is None:
        return Row(label, "unknown", "no policy resolved")
    resolved: Resolved = getattr(job.policy, key)
    if key == "idempotency_guard" and resolved.known and resolved.value is None:
        return Row(label, "none", resolved.source)
    value = text_value(key, resolved)
    source = resolved.source if resolved.known else f"{resolved.source}: {resolved.reason}"
    return Row(label, value, source)


def _tests(entry: JobEntry) -> tuple[Row, ...]:
    """The test files that refer to the job and the failures their tests exercise."""
    if entry.gate("tests").state == NOT_CHECKED or entry.gate("tests").unresolved:
        return ()
    tests = entry.tests
    if tests is None:
        return (Row("test files", "none", "no test file refers to the job"),)
    files = sorted(tests.files)
    failing = tests.failure_units
    kinds = ", ".join(kind for kind in FAILURE_KINDS if kind in tests.failures)
    return (
        Row("test files", ", ".join(files), _refer(len(tests.units))),
        Row(
            "failures exercised",
            kinds or "none",
            ", ".join(unit.label for unit in failing[:3]) or "no test makes the job fail",
        ),
    )


def _refer(count: int) -> str:
    return "1 test refers to the job" if count == 1 else f"{count} tests refer to the job"


def _gate_row(entry: JobEntry, gate_id: str, label: str) -> Row:
    result = entry.gate(gate_id)
    if result.state == NOT_CHECKED:
        return Row(label, "not checked", f"no {result.gate.family}xx rule ran")
    return Row(label, result.state, f"{result.gate.title} gate")
