"""``--format json``: the documented, stable machine interface of ``check`` (docs/usage.md)."""

from __future__ import annotations

import json
from typing import Any

from jobaudit import __version__
from jobaudit.fix.model import Fix
from jobaudit.report.common import SCHEMA_VERSION, level_counts, place
from jobaudit.result import Result


def findings_document(result: Result) -> dict[str, Any]:
    findings = []
    for finding in result.findings:
        placed = place(result, finding)
        findings.append(
            {
                "code": finding.code,
                "name": finding.name,
                "level": finding.level,
                "message": finding.message,
                "path": finding.path,
                "line": placed.line,
                "column": placed.column,
                "end_line": placed.end_line,
                "end_column": placed.end_column,
                "job": finding.job,
                "related": [
                    {
                        "path": related.location.path,
                        "line": related.location.span[0],
                        "message": related.message,
                    }
                    for related in finding.related
                ],
                "fix": _fix(finding.fix),
            }
        )
    counts = level_counts(result.findings)
    return {
        "schema_version": SCHEMA_VERSION,
        "version": __version__,
        "findings": findings,
        "notices": [
            {"path": notice.path, "line": notice.line or None, "reason": notice.reason}
            for notice in result.notices
        ],
        "summary": {
            "files": result.files,
            "jobs": result.job_count,
            "findings": len(result.findings),
            "errors": counts["error"],
            "warnings": counts["warning"],
            "notes": counts["note"],
            "suppressed": result.suppressed,
        },
    }


def _fix(fix: Fix | None) -> dict[str, Any] | None:
    """What ``jobaudit fix`` would do: its safety, a message, and the edits as data."""
    if fix is None:
        return None
    return {
        "applicability": fix.safety,
        "message": fix.message,
        "edits": [
            {
                "kind": edit.kind,
                "path": edit.path,
                "line": edit.span[0],
                "end_line": edit.span[2],
                "name": edit.name or None,
                "value": edit.value or None,
            }
            for edit in fix.edits
        ],
        "imports": [
            f"from {item.module} import {item.name}" if item.name else f"import {item.module}"
            for item in fix.imports
        ],
    }


def render(result: Result) -> str:
    return json.dumps(findings_document(result), indent=2, ensure_ascii=False) + "\n"
