"""Worker command lines in deployment files (Procfile, compose, systemd units, scripts).

``celery worker --time-limit=300`` in a Procfile sets a limit for every task
the worker runs, so JOB401 must see it; these files are not Python, so they are
read here with a line scan rather than parsed.
"""

from __future__ import annotations

import os
import re
from fnmatch import fnmatch
from pathlib import Path

from jobaudit.model import Location

PATTERNS = (
    "Procfile",
    "Procfile.*",
    "*compose*.yml",
    "*compose*.yaml",
    "*.service",
    "supervisord*.conf",
    "*.supervisor.conf",
    "Makefile",
    "Dockerfile*",
    "*.sh",
    "fly.toml",
    "app.json",
    "heroku.yml",
    "render.yaml",
)
SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".tox", "site-packages"}
MAX_DEPTH = 3
MAX_BYTES = 1 << 20
_OPTIONS = {
    "task_time_limit": re.compile(r"--time-limit[= ]+(\d+(?:\.\d+)?)"),
    "task_soft_time_limit": re.compile(r"--soft-time-limit[= ]+(\d+(?:\.\d+)?)"),
}
_POOL = re.compile(r"(?:-P|--pool)[= ]*(gevent|eventlet)\b")

WorkerOptions = dict[str, dict[str, tuple[object, Location]]]


def worker_options(root: Path) -> WorkerOptions:
    """Options of ``celery worker`` command lines found under ``root``; conflicting values are dropped."""
    found: dict[str, tuple[object, Location]] = {}
    conflicts: set[str] = set()
    for path in _candidates(root):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        rel = path.relative_to(root).as_posix()
        for number, line in enumerate(text.splitlines(), start=1):
            if "celery" not in line or "worker" not in line:
                continue
            location = Location(rel, (number, 0, number, len(line)))
            values: dict[str, object] = {}
            for key, pattern in _OPTIONS.items():
                match = pattern.search(line)
                if match:
                    values[key] = float(match.group(1))
            pool = _POOL.search(line)
            if pool:
                values["worker_pool"] = pool.group(1)
            for key, value in values.items():
                if key in found and found[key][0] != value:
                    conflicts.add(key)
                found.setdefault(key, (value, location))
    return {"celery": {k: v for k, v in found.items() if k not in conflicts}}


def _candidates(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        depth = len(Path(dirpath).relative_to(root).parts)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and depth < MAX_DEPTH)
        for name in sorted(filenames):
            if any(fnmatch(name, pattern) for pattern in PATTERNS):
                path = Path(dirpath, name)
                try:
                    if path.stat().st_size <= MAX_BYTES:
                        out.append(path)
                except OSError:
                    continue
    return out
