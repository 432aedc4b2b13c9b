"""``jobaudit report --format json``: the readiness report for tools and dashboards.

The keys are documented in docs/readiness.md and versioned by
``schema_version``: a consumer can rely on them across releases, and a change
of meaning raises the version.  Policy values reuse the keys of ``jobaudit
jobs --format json`` (value, ``_source``, ``_reason`` when unknown).
"""

from __future__ import annotations

import json
from typing import Any

from jobaudit import __version__
from jobaudit.findings import Finding
from jobaudit.report.common import place
from jobaudit.report.jobs import policy_document
from jobaudit.report.readiness import GATES, SCHEMA_VERSION, STATES, JobEntry, Readiness
from jobaudit.report.readiness_entry import queue


def document(readiness: Readiness) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "version": __version__,
        "summary": {
            "jobs": len(readiness.entries),
            "ready": readiness.ready,
            "files": readiness.files,
        },
        "gates": [
            {
                "id": gate.id,
                "title": gate.title,
                "family": f"{gate.family}xx",
                "rules": list(readiness.gate_rules[gate.id]),
                "checked": bool(readiness.gate_rules[gate.id]),
                "counts": {
                    state.replace(" ", "_"): readiness.counts(gate.id)[state] for state in STATES
                },
            }
            for gate in GATES
        ],
        "jobs": [_job(readiness, entry) for entry in readiness.entries],
        "project_findings": [_finding(readiness, f) for f in readiness.project_findings],
        "notices": [
            {"path": notice.path, "line": notice.line or None, "reason": notice.reason}
            for notice in readiness.notices
        ],
    }


def render(readiness: Readiness) -> str:
    return json.dumps(document(readiness), indent=2, ensure_ascii=False) + "\n"


def _job(readiness: Readiness, entry: JobEntry) -> dict[str, Any]:
    job = entry.job
    return {
        "name": job.name,
        "qualname": job.qualname,
        "framework": job.framework,
        "path": job.path,
        "line": job.location.span[0],
        "declaration": job.declaration,
        "queue": queue(job),
        "docstring": job.function.docstring,
        "ready": entry.ready,
        "policy": policy_document(job.policy) if job.policy is not None else None,
        "gates": {
            result.gate.id: {
                "state": result.state,
                "findings": [_finding(readiness, f) for f in result.findings],
                "unknown": [
                    {"value": item.key, "source": item.source, "reason": item.reason}
                    for item in result.unresolved
                ],
            }
            for result in entry.gates
        },
    }


def _finding(readiness: Readiness, finding: Finding) -> dict[str, Any]:
    placed = place(readiness.result, finding)
    return {
        "code": finding.code,
        "name": finding.name,
        "level": finding.level,
        "message": finding.message,
        "path": finding.path,
        "line": placed.line,
        "column": placed.column,
    }
