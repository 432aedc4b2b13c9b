"""Notices: files or settings jobaudit could not analyse, reported beside findings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Notice:
    """A file (or configuration key) that could not be analysed, and why.

    Notices never stop a run: the other files are still analysed and their
    findings reported.  ``path`` is relative to the scanned root (POSIX).
    """

    path: str
    reason: str
    line: int = 0
