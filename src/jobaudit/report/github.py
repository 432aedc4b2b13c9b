"""``--format github``: GitHub Actions workflow commands that annotate the pull request.

Each finding becomes ``::error file=...,line=...,col=...,title=JOB301::message``
(notes become ``::notice``).  Paths are relative to the repository root, like
SARIF URIs, because the runner resolves them against the checkout; columns are
1-based characters.  Values are escaped as the runner expects: ``%``, CR and
LF everywhere, and ``:`` and ``,`` inside properties, or a message containing
them would be cut short.
"""

from __future__ import annotations

from jobaudit.report.common import place
from jobaudit.report.sarif import RepoPaths
from jobaudit.result import Result

COMMANDS = {"error": "error", "warning": "warning", "note": "notice"}


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str, **properties: object) -> str:
    fields = ",".join(f"{key}={escape_property(str(value))}" for key, value in properties.items())
    return f"::{name} {fields}::{escape_data(message)}"


def render(result: Result) -> str:
    paths = RepoPaths.find(result.root)
    lines = []
    for finding in result.findings:
        placed = place(result, finding)
        lines.append(
            command(
                COMMANDS[finding.level],
                finding.message,
                file=paths.relative(finding.path),
                line=placed.line,
                endLine=placed.end_line,
                col=placed.column,
                endColumn=placed.end_column,
                title=finding.code,
            )
        )
    for notice in result.notices:
        where: dict[str, object] = {"file": paths.relative(notice.path)} if notice.path else {}
        if notice.path and notice.line:
            where["line"] = notice.line
        failed = notice in result.internal_errors
        title = "jobaudit: internal error" if failed else "jobaudit: not analysed"
        lines.append(command("error" if failed else "warning", notice.reason, **where, title=title))
    return "".join(line + "\n" for line in lines)
