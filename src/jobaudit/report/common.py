"""What every reporter needs: findings with 1-based character columns, sorted, counted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from jobaudit.findings import Finding
from jobaudit.positions import char_column
from jobaudit.result import Result

SCHEMA_VERSION = 1
"""Of the JSON findings and jobs documents: bumped when a key changes meaning or disappears
(additions keep it)."""


@dataclass(frozen=True)
class Placed:
    """A finding with 1-based line and 1-based *character* columns, ready to print."""

    finding: Finding
    line: int
    column: int
    end_line: int
    end_column: int


def place(result: Result, finding: Finding) -> Placed:
    lines = result.lines(finding.path)

    def column(line: int, byte_column: int) -> int:
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        return char_column(text, byte_column) + 1

    return Placed(
        finding,
        finding.line,
        column(finding.line, finding.column),
        finding.end_line,
        column(finding.end_line, finding.end_column),
    )


def level_counts(findings: list[Finding]) -> Counter[str]:
    return Counter(finding.level for finding in findings)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"
