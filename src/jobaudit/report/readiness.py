"""The readiness model behind ``jobaudit report`` (docs/readiness.md).

The report is not a second rule engine: a gate's state comes only from the
findings of the rules that ran (``Result.findings``) and from whether the
policy values those rules need could be resolved.  A gate whose family has no
rule in this run is ``not checked`` — never ``pass`` — so a version of
jobaudit with few rules cannot make a job look ready for reasons it did not
examine.  The renderers (text, markdown, json, html) only format this model.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from jobaudit.findings import Finding
from jobaudit.job_tests import JobTests, coverage_index
from jobaudit.model import Job, Resolved
from jobaudit.notices import Notice
from jobaudit.observability import METRICS, TRACKING, anchors, observability
from jobaudit.result import Result

PASS, WARN, FAIL, UNKNOWN, NOT_CHECKED = "pass", "warn", "fail", "unknown", "not checked"
STATES = (FAIL, UNKNOWN, WARN, PASS, NOT_CHECKED)
"""Every gate state, worst first (the order of counts, legends and sorting)."""

SCHEMA_VERSION = 1
"""Version of the JSON report and of ``runs[0].properties.readiness`` in SARIF."""


@dataclass(frozen=True)
class Gate:
    id: str
    title: str
    family: str
    """The rule-code prefix of the gate's family (``JOB3``)."""
    deciding: tuple[str, ...]
    """``JobPolicy`` fields the family's rules need; when one is unknown they stay silent."""
    about: str
    """What the gate asks, for legends and the HTML report."""


GATES: tuple[Gate, ...] = (
    Gate(
        "idempotency",
        "Idempotency",
        "JOB1",
        ("delivery", "idempotency_guard"),
        "a second run of the job does no harm",
    ),
    Gate(
        "error_handling",
        "Error handling",
        "JOB2",
        ("retry_on", "permanent"),
        "transient errors retry, permanent ones fail, nothing is swallowed",
    ),
    Gate(
        "retries",
        "Retries",
        "JOB3",
        ("max_attempts", "backoff"),
        "retries are capped and spaced out",
    ),
    Gate(
        "timeouts",
        "Timeouts",
        "JOB4",
        ("time_limit", "soft_time_limit"),
        "a hung job is stopped",
    ),
    Gate("observability", "Observability", "JOB5", (), "failures are reported and measured"),
    Gate("enqueue_safety", "Enqueue safety", "JOB6", (), "every call site enqueues it safely"),
    Gate("tests", "Tests", "JOB7", (), "its failure scenarios are tested"),
)
MONITORING_SHOWN = 3
"""Pieces of evidence of each kind a job's Monitoring section lists."""
GATE_EXCEPTIONS = {"JOB502": "error_handling"}
"""Codes counted outside their family (readiness.md: a silent failure is an error-handling gap)."""

POLICY_LABELS = {
    "max_attempts": "max attempts",
    "time_limit": "hard time limit",
    "soft_time_limit": "soft time limit",
    "backoff": "backoff",
    "retry_on": "retried exceptions",
    "permanent": "permanent exceptions",
    "delivery": "delivery",
    "idempotency_guard": "idempotency guard",
    "monitoring": "error tracking and metrics",
    "test_files": "test files",
}


def gate_of(code: str) -> Gate | None:
    """The gate a rule code counts towards."""
    wanted = GATE_EXCEPTIONS.get(code)
    for gate in GATES:
        if gate.id == wanted or (wanted is None and code.startswith(gate.family)):
            return gate
    return None


@dataclass(frozen=True)
class Unresolved:
    """A deciding policy value that could not be resolved statically, and why."""

    key: str
    source: str
    reason: str

    @property
    def label(self) -> str:
        return POLICY_LABELS.get(self.key, self.key)


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    state: str
    findings: tuple[Finding, ...] = ()
    unresolved: tuple[Unresolved, ...] = ()


@dataclass(frozen=True)
class JobEntry:
    job: Job
    gates: tuple[GateResult, ...]
    monitoring: tuple[tuple[str, str, str], ...] = ()
    """What reports or measures the job's failures, as (kind, what, ``path:line``)."""
    tests: JobTests | None = None
    """What the project's tests do with the job, when the Tests gate was checked."""

    @property
    def ready(self) -> bool:
        """Ready means no gate fails (readiness.md); unknown and not checked do not fail."""
        return all(gate.state != FAIL for gate in self.gates)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(sorted({f for gate in self.gates for f in gate.findings}))

    def gate(self, gate_id: str) -> GateResult:
        return next(result for result in self.gates if result.gate.id == gate_id)

    def sort_key(self) -> tuple[int, int, int, int, int, str, int, str]:
        states = Counter(gate.state for gate in self.gates)
        levels = Counter(finding.level for finding in self.findings)
        return (
            -states[FAIL],
            -levels["error"],
            -levels["warning"],
            -states[UNKNOWN],
            -states[WARN],
            self.job.path,
            self.job.location.span[0],
            self.job.qualname,
        )


@dataclass(frozen=True)
class Readiness:
    entries: tuple[JobEntry, ...]
    """One per job, worst first."""
    gate_rules: dict[str, tuple[str, ...]]
    """Per gate id, the codes of the rules that ran for it (empty: not checked)."""
    project_findings: tuple[Finding, ...]
    """Findings that target no job (a misspelled setting...), listed beside the jobs."""
    result: Result
    """The run it was built from (files, notices, source lines for columns)."""

    @property
    def files(self) -> int:
        return self.result.files

    @property
    def notices(self) -> list[Notice]:
        return self.result.notices

    @property
    def ready(self) -> int:
        return sum(entry.ready for entry in self.entries)

    def counts(self, gate_id: str) -> Counter[str]:
        return Counter(entry.gate(gate_id).state for entry in self.entries)


def build(result: Result) -> Readiness:
    gate_rules = {
        gate.id: tuple(code for code in result.codes if gate_of(code) == gate)
        for gate in GATES
    }
    by_job: dict[str, list[Finding]] = {}
    unassigned: list[Finding] = []
    qualnames = {job.qualname for job in result.jobs}
    for finding in result.findings:
        if finding.job in qualnames:
            by_job.setdefault(finding.job, []).append(finding)
        else:
            unassigned.append(finding)
    shared, project_findings = _project_wide(unassigned, result)
    watched = bool(gate_rules["observability"])
    unseen = _monitoring_unknown(result) if watched else ()
    index = coverage_index(result.model) if gate_rules["tests"] else None
    no_tests = _no_tests(index is not None and not index.files)
    entries = []
    for job in result.jobs:
        findings = by_job.get(job.qualname, []) + shared.get(job.qualname, [])
        gates = tuple(
            _gate(
                gate,
                job,
                findings,
                gate_rules[gate.id],
                _project_unresolved(gate, unseen, no_tests),
            )
            for gate in GATES
        )
        entries.append(
            JobEntry(
                job,
                gates,
                _monitoring(result, job) if watched else (),
                index.of(job) if index is not None else None,
            )
        )
    return Readiness(
        entries=tuple(sorted(entries, key=JobEntry.sort_key)),
        gate_rules=gate_rules,
        project_findings=tuple(project_findings),
        result=result,
    )


def _project_wide(
    findings: list[Finding], result: Result
) -> tuple[dict[str, list[Finding]], list[Finding]]:
    """Observability findings about the whole project count for its jobs (readiness.md).

    Such a finding sits at the framework's app definition, so it counts for the
    jobs of that framework (``observability.anchors``), else for the jobs of the
    app defined in that module; when no job names an app there, it counts for
    every job.  Other project findings are listed on their own.
    """
    shared: dict[str, list[Finding]] = {}
    rest: list[Finding] = []
    modules = {facts.path: facts.module for facts in result.model.resolver.facts_by_path.values()}
    anchored = anchors(result.model)
    for finding in findings:
        gate = gate_of(finding.code)
        if finding.job is not None or gate is None or gate.id != "observability":
            rest.append(finding)
            continue
        module = modules.get(finding.path)
        framework = anchored.get(finding.location)
        jobs = (
            [job for job in result.jobs if job.framework == framework]
            or [
                job
                for job in result.jobs
                if module is not None and (job.app or "").rpartition(".")[0] == module
            ]
            or result.jobs
        )
        for job in jobs:
            shared.setdefault(job.qualname, []).append(finding)
    return shared, rest


def _monitoring(result: Result, job: Job) -> tuple[tuple[str, str, str], ...]:
    """The error tracking and metrics the observability rules found for the job's framework."""
    found = observability(result.model)
    return tuple(
        (kind, evidence.what, f"{evidence.location.path}:{evidence.location.span[0]}")
        for kind in (TRACKING, METRICS)
        for evidence in found.found(kind, job.framework)[:MONITORING_SHOWN]
    )


def _monitoring_unknown(result: Result) -> tuple[Unresolved, ...]:
    """The observability rules stay silent when the project's settings cannot be read whole
    (a ``from .local_settings import *`` that was not scanned): the gate is then unknown."""
    reason = observability(result.model).unknown
    if reason is None:
        return ()
    return (Unresolved("monitoring", "project settings", reason),)


def _no_tests(missing: bool) -> tuple[Unresolved, ...]:
    """Why the Tests gate is unknown when no test file was scanned (JOB7xx are silent then)."""
    if not missing:
        return ()
    reason = "no scanned file matches test-paths, so the project's tests were not seen"
    return (Unresolved("test_files", "test-paths", reason),)


def _project_unresolved(
    gate: Gate, unseen: tuple[Unresolved, ...], no_tests: tuple[Unresolved, ...]
) -> tuple[Unresolved, ...]:
    """The project-wide reasons a gate cannot be decided, for the gates they concern."""
    if gate.id == "observability":
        return unseen
    if gate.id == "tests":
        return no_tests
    return ()


def _gate(
    gate: Gate,
    job: Job,
    findings: list[Finding],
    rules: tuple[str, ...],
    project_unresolved: tuple[Unresolved, ...] = (),
) -> GateResult:
    if not rules:
        return GateResult(gate, NOT_CHECKED)
    mine = tuple(sorted(f for f in findings if gate_of(f.code) == gate))
    unresolved = _unresolved(gate, job) + project_unresolved
    if any(finding.level in {"error", "warning"} for finding in mine):
        state = FAIL
    elif unresolved:
        state = UNKNOWN
    elif mine:
        state = WARN
    else:
        state = PASS
    return GateResult(gate, state, mine, unresolved)


def _unresolved(gate: Gate, job: Job) -> tuple[Unresolved, ...]:
    if job.policy is None:
        return ()
    out = []
    for key in gate.deciding:
        resolved: Resolved = getattr(job.policy, key)
        if not resolved.known:
            out.append(Unresolved(key, resolved.source, resolved.reason))
    return tuple(out)


def summary_document(readiness: Readiness) -> dict[str, object]:
    """The overall figures: what SARIF carries in ``runs[0].properties.readiness``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "jobs": len(readiness.entries),
        "ready": readiness.ready,
        "gates": {
            gate.id: {
                "rules": list(readiness.gate_rules[gate.id]),
                **{_key(state): readiness.counts(gate.id)[state] for state in STATES},
            }
            for gate in GATES
        },
    }


def _key(state: str) -> str:
    return state.replace(" ", "_")
