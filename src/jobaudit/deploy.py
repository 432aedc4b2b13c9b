"""Worker command lines in deployment files (Procfile, compose, systemd units, scripts).

``celery worker --time-limit=300`` in a Procfile sets a limit for every task
the worker runs, so JOB401 must see it: missing it would report every task of
a project whose limit lives in its deployment.  These files are not Python, so
they are read as text: a file that mentions Celery is split into shell-like
words, which finds ``--time-limit=300``, ``--time-limit 300``, a compose list
``["--time-limit", "300"]``, a YAML list item and ``CELERYD_OPTS="--time-limit=300"``
alike.  A value that is not a number (``${TIME_LIMIT}``) means a limit is set
whose value is known only at deploy time, which is Unknown, not absent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from fnmatch import translate
from pathlib import Path

from jobaudit.model import Location
from jobaudit.values import Unknown

NAMES = ("Procfile*", "Dockerfile*", "Makefile", "*.env", ".env*", "*.dockerfile")
SUFFIXES = frozenset(
    {
        "",
        ".yml",
        ".yaml",
        ".service",
        ".conf",
        ".ini",
        ".cfg",
        ".sh",
        ".bash",
        ".toml",
        ".json",
        ".j2",
        ".tpl",
        ".tmpl",
    }
)
"""Where command lines live: Procfiles, compose and Kubernetes YAML, systemd units,
supervisor and ``/etc/default/celeryd``-style files, s6 ``run`` scripts, shell scripts."""
_NAME_PATTERN = re.compile("|".join(translate(os.path.normcase(name)) for name in NAMES))
""":data:`NAMES` as one expression (what ``fnmatch`` does with each, in one match)."""
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".tox",
        ".nox",
        "site-packages",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".jobaudit_cache",
    }
)
MAX_DEPTH = 5
MAX_BYTES = 1 << 20
OPTIONS = {
    "--time-limit": "task_time_limit",
    "--soft-time-limit": "task_soft_time_limit",
}
_WORD = re.compile(r"""[^\s,"'\[\]\\]+""")
_LIST_MARK = frozenset({"-", "|", ">", "&&", ";"})
_POOL = re.compile(r"(?:-P\s*|--pool[= ]+)[\"']?([A-Za-z_]\w*)")
_CELERY_WORKER = re.compile(r"\bcelery\b.*[\s\"',\[]worker\b")
_RQ_WORKER = re.compile(r"\brq\W{1,4}worker\b|\brqworker\b")
_RQ_FILE = re.compile(rb"\brq\W{1,4}worker\b|\brqworker\b")
_RQ_SCHEDULER = re.compile(r"--with-scheduler|(?<![\w-])-s(?![\w-])")
"""RQ moves ``enqueue_in``/``enqueue_at`` jobs to their queue only in a worker run with this."""
_HUEY_WORKER = re.compile(r"(?:-k\s*|--worker-type[= ]+)[\"']?(thread|process|greenlet)\b")
_HUEY_WORKERS = re.compile(r"(?:\s-w\s*|--workers[= ]+)[\"']?(\d+)\b")
_EVENTS = re.compile(r"(?<![\w-])(?:-E|--task-events|--events)(?![\w-])")
"""Celery workers send task events (what Flower and event exporters read) only with this."""
_CELERY_MONITOR = re.compile(r"\bflower\b|\bcelery[-_]exporter\b", re.IGNORECASE)
"""Flower turns task events on in the workers by itself (its ``enable_events`` defaults to
True) and, like celery-exporter, serves worker metrics."""
_AGENT_FILE = re.compile(rb"ddtrace-run|opentelemetry-instrument|rq[-_]exporter")
AGENTS = {"ddtrace-run": "ddtrace_run", "opentelemetry-instrument": "otel_instrument"}
"""Wrappers that instrument the command they start; recorded under the framework ``any``."""
DEFAULT = "default"
"""A worker line that does not choose: the pool or worker type comes from the app's settings."""

WorkerOptions = dict[str, dict[str, tuple[object, Location]]]


def worker_options(root: Path, paths: Sequence[Path] = ()) -> WorkerOptions:
    """Options of Celery worker command lines in the analysed directories.

    Keys are the settings the options stand for (``task_time_limit``...).
    Directories given in ``paths`` are searched recursively, and the files at
    the top of ``root`` too (a Procfile next to ``pyproject.toml`` while only
    ``src/`` is checked); nothing else under ``root``, so a fixture or an
    unrelated project in a sub-folder never lends its command line.  Command
    lines that disagree make the value Unknown: a limit is set, but which one a
    task gets depends on the worker that runs it.
    """
    found: dict[tuple[str, str], list[tuple[object, Location]]] = {}
    for path in deploy_files(root, paths):
        try:
            data = path.read_bytes()
        except OSError:
            continue
        lowered = data.lower()
        if b"\0" in data or (
            b"celery" not in lowered
            and b"huey" not in lowered
            and not _RQ_FILE.search(lowered)
            and not _AGENT_FILE.search(lowered)
        ):
            continue
        text = data.decode("utf-8", errors="replace")
        rel = Path(os.path.relpath(path, root.resolve())).as_posix()
        for framework, key, value, location in _scan(text, rel, b"celery" in lowered):
            found.setdefault((framework, key), []).append((value, location))
    options: WorkerOptions = {"celery": {}}
    for (framework, key), values in found.items():
        first_value, first_location = values[0]
        if any(value != first_value for value, _ in values):
            options.setdefault(framework, {})[key] = (
                Unknown(f"worker command lines give different values for {_flag(key)}"),
                first_location,
            )
        else:
            options.setdefault(framework, {})[key] = (first_value, first_location)
    return options


def _scan(text: str, path: str, celery: bool) -> list[tuple[str, str, object, Location]]:
    """Options of the command lines in one file, as (framework, setting, value, place).

    Every Celery worker line records its pool and every Huey consumer line its
    worker type (``default`` when the line leaves it to the settings), so
    workers that run differently make the value Unknown.
    """
    out: list[tuple[str, str, object, Location]] = []
    words = [match for match in _WORD.finditer(text) if match.group(0) not in _LIST_MARK]
    for index, match in enumerate(words if celery else []):
        word = match.group(0)
        flag, equals, value = word.partition("=")
        key = OPTIONS.get(flag)
        if key is None:
            continue
        if not equals:
            value = words[index + 1].group(0) if index + 1 < len(words) else ""
        out.append(("celery", key, _number(value, flag), _location(text, path, match.start())))
    for line_number, line in enumerate(text.splitlines(), start=1):
        where = Location(path, (line_number, 0, line_number, len(line.encode("utf-8"))))
        for agent, key in AGENTS.items():
            if agent in line:
                out.append(("any", key, True, where))
        if re.search(r"\brq[-_]exporter\b", line):
            out.append(("rq", "metrics_exporter", "rq-exporter", where))
        if celery and _CELERY_MONITOR.search(line):
            out.append(("celery", "metrics_exporter", "Flower or celery-exporter", where))
        if _CELERY_WORKER.search(line):
            pool = _POOL.search(line)
            out.append(("celery", "worker_pool", pool.group(1) if pool else DEFAULT, where))
            if _EVENTS.search(line):
                out.append(("celery", "task_events", True, where))
        elif _RQ_WORKER.search(line):  # the flag may sit on a later line of a YAML list
            out.append(("rq", "with_scheduler", bool(_RQ_SCHEDULER.search(text)), where))
            if "--exception-handler" in line:
                out.append(("rq", "exception_handler", True, where))
        elif "huey_consumer" in line or "run_huey" in line:
            kind = _HUEY_WORKER.search(line)
            out.append(("huey", "worker_type", kind.group(1) if kind else DEFAULT, where))
            count = _HUEY_WORKERS.search(line)
            out.append(("huey", "workers", int(count.group(1)) if count else DEFAULT, where))
    return out


def _number(value: str, flag: str) -> object:
    try:
        return float(value)
    except ValueError:
        return Unknown(f"{flag} is {value!r}, a value set at deploy time")


def _location(text: str, path: str, offset: int) -> Location:
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    end = len(text) if end == -1 else end
    return Location(path, (line, 0, line, len(text[start:end].encode("utf-8"))))


def _flag(key: str) -> str:
    return next((flag for flag, setting in OPTIONS.items() if setting == key), key)


def deploy_files(root: Path, paths: Sequence[Path]) -> list[Path]:
    """The files :func:`worker_options` reads command lines from."""
    root = root.resolve()
    found: dict[Path, None] = {}
    if root.is_dir():
        top_files = (p for p in sorted(root.iterdir()) if p.is_file() and _named(p.name))
        found.update(dict.fromkeys(p for p in top_files if _small(p)))
    for given in paths or [Path(".")]:
        directory = given.resolve()
        if not directory.is_dir():
            continue
        top = str(directory).rstrip(os.sep).count(os.sep)
        for dirpath, dirnames, filenames in os.walk(directory):
            depth = dirpath.rstrip(os.sep).count(os.sep) - top
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and depth < MAX_DEPTH)
            for name in sorted(filenames):
                if _named(name) and _small(path := Path(dirpath, name)):
                    found[path] = None
    return list(found)


def _named(name: str) -> bool:
    """A deployment file's name, told apart without building a path (trees are large)."""
    dot = name.rfind(".")
    suffix = name[dot:] if 0 < dot < len(name) - 1 else ""
    return suffix in SUFFIXES or _NAME_PATTERN.match(os.path.normcase(name)) is not None


def _small(path: Path) -> bool:
    """Not too large to be a deployment file worth reading."""
    try:
        return path.stat().st_size <= MAX_BYTES
    except OSError:
        return False
