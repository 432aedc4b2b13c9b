"""``jobaudit jobs``: the inventory of jobs with their effective policies and sources.

The JSON form is a documented, stable interface (docs/usage.md): tools and
tests read discovery through it.
"""

from __future__ import annotations

import json
from typing import Any

from jobaudit import __version__
from jobaudit.frameworks import FRAMEWORK_TITLES
from jobaudit.model import Backoff, Job, JobPolicy, Resolved
from jobaudit.report.common import SCHEMA_VERSION
from jobaudit.values import Unknown

POLICY_KEYS = (
    "max_attempts",
    "time_limit",
    "soft_time_limit",
    "backoff",
    "retry_on",
    "permanent",
    "delivery",
    "idempotency_guard",
)


def json_value(key: str, resolved: Resolved) -> Any:
    value = resolved.value
    if isinstance(value, Unknown):
        return "unknown"
    if isinstance(value, Backoff):
        return value.describe()
    if isinstance(value, tuple):
        return [str(item).removeprefix("builtins.") for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value) if key not in {"time_limit", "soft_time_limit"} else value
    return value


def policy_document(policy: JobPolicy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in POLICY_KEYS:
        resolved: Resolved = getattr(policy, key)
        out[key] = json_value(key, resolved)
        out[f"{key}_source"] = resolved.source
        if not resolved.known:
            out[f"{key}_reason"] = resolved.reason
    return out


def job_document(job: Job) -> dict[str, Any]:
    assert job.policy is not None
    return {
        "name": job.name,
        "qualname": job.qualname,
        "framework": job.framework,
        "path": job.path,
        "line": job.location.span[0],
        "declaration": job.declaration,
        "policy": policy_document(job.policy),
    }


def render_json(jobs: list[Job]) -> str:
    document = {
        "schema_version": SCHEMA_VERSION,
        "version": __version__,
        "jobs": [job_document(job) for job in jobs],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def text_value(key: str, resolved: Resolved) -> str:
    value = json_value(key, resolved)
    if value is None:
        return "none"
    if isinstance(value, list):
        return ", ".join(value) if value else "none"
    if isinstance(value, float) and key in {"time_limit", "soft_time_limit"}:
        return f"{value:g} s"
    return str(value)


LABELS = {
    "max_attempts": "max attempts",
    "time_limit": "time limit",
    "soft_time_limit": "soft limit",
    "backoff": "backoff",
    "retry_on": "retries on",
    "permanent": "permanent",
    "delivery": "delivery",
    "idempotency_guard": "idempotency",
}


VALUE_WIDTH = 32
"""Longer values get a line of their own, so the source column stays aligned."""


def render_text(jobs: list[Job]) -> str:
    lines: list[str] = []
    for job in jobs:
        assert job.policy is not None
        title = FRAMEWORK_TITLES.get(job.framework, job.framework)
        lines.append(
            f"{job.path}:{job.location.span[0]}: {job.label()} ({title}, {job.declaration})"
        )
        rows = []
        for key in POLICY_KEYS:
            resolved: Resolved = getattr(job.policy, key)
            source = (
                resolved.source if resolved.known else f"{resolved.source}: {resolved.reason}"
            )
            rows.append((LABELS[key], text_value(key, resolved), source))
        width = min(max(len(value) for _, value, _ in rows), VALUE_WIDTH)
        for label, value, source in rows:
            if len(value) > width:
                lines.append(f"    {label:<13} {value}")
                lines.append(f"    {'':<13} {'':<{width}}  {source}")
            else:
                lines.append(f"    {label:<13} {value:<{width}}  {source}")
        lines.append("")
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.framework] = counts.get(job.framework, 0) + 1
    breakdown = ", ".join(f"{FRAMEWORK_TITLES.get(k, k)} {v}" for k, v in sorted(counts.items()))
    lines.append(
        f"{len(jobs)} job{'s' if len(jobs) != 1 else ''}" + (f" ({breakdown})" if breakdown else "")
    )
    return "\n".join(lines) + "\n"
