"""Where a project pins its dependencies: the files JOB404 reads client library versions from.

Its own module, not :mod:`jobaudit.clients`, because a warm ``check`` digests
these files too (:mod:`jobaudit.reuse`) and must not import the analysis.
"""

from __future__ import annotations

from pathlib import Path


def dependency_files(root: Path) -> tuple[list[Path], list[Path]]:
    """The lock files, then the requirement files, of the project at ``root``."""
    locks = [root / "uv.lock", root / "poetry.lock"]
    return locks, [*sorted(root.glob("requirements*.txt")), root / "pyproject.toml"]
