"""The prefilter, on-demand parsing, the facts cache and ``-j``: same output, less work.

Soundness is the contract: with the prefilter the findings, the jobs inventory
and the notices of every fixture are exactly those of a run that parses every
file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cache import CACHE_DIR, Cache
from jobaudit.checks import ALL_RULES
from jobaudit.cli import main
from jobaudit.config import Config
from jobaudit.engine import module_names, run
from jobaudit.facts import FileFacts
from jobaudit.files import SourceFile
from jobaudit.parallel import Workers, analyse_many
from jobaudit.prefilter import Registry
from jobaudit.report.jobs import render_json
from jobaudit.result import Result
from jobaudit.symbols import Modules
from jobaudit.testing import _config, fixture_entries

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _entries() -> list[Path]:
    found = [p for p in sorted((FIXTURES / "projects").iterdir()) if p.is_dir()]
    for rule in sorted((FIXTURES / "rules").iterdir()):
        found.extend(fixture_entries(rule))
    return found


def _outcome(result: Result) -> tuple[object, ...]:
    return (result.findings, render_json(result.jobs), result.notices, result.suppressed)


@pytest.mark.parametrize("entry", _entries(), ids=lambda p: str(p.relative_to(FIXTURES)))
def test_findings_and_jobs_are_the_same_without_the_prefilter(entry: Path) -> None:
    config = _config(entry).with_overrides(preview=True)
    rules = [rule() for rule in ALL_RULES]
    filtered = run([entry], config, rules)
    everything = run([entry], config, [rule() for rule in ALL_RULES], prefilter=False)
    assert _outcome(filtered) == _outcome(everything)


def _scan(source: str, module: str = "shop.orders", package: bool = False) -> tuple[str, ...]:
    return Registry().scan(source.encode(), module, package).imports


def test_imports_are_read_from_bytes_with_relative_and_multi_line_forms() -> None:
    source = (
        "import os, celery.app as capp\n"
        "from . import tasks\n"
        "from ..core import (\n    app,\n    wrapper as w,\n)\n"
        "x = 1; from .util import *\n"
        "def f():\n    from shop.jobs import send  # local\n"
        'text = "importance"\n'
    )
    assert _scan(source) == (
        "os",
        "celery.app",
        "shop.tasks",
        "core.app",
        "core.wrapper",
        "shop.util.*",
        "shop.jobs.send",
    )
    assert _scan("from .. import app\n", "shop.orders.tasks") == ("shop.app",)
    assert _scan("from . import app\n", "shop", package=True) == ("shop.app",)


def test_a_file_is_selected_by_a_framework_import_or_token_or_bytes_it_cannot_judge() -> None:
    registry = Registry()
    assert registry.scan(b"from celery import shared_task\n", "m", False).static
    assert registry.scan(b"CELERY_TASK_TIME_LIMIT = 30\n", "m", False).static
    assert registry.scan(b"x = 1  # noqa: JOB301\n", "m", False).static
    assert registry.scan(b"x = 1  # noqa: E501, job301\n", "m", False).static
    assert not registry.scan(b"x = 1  # noqa: E501\n", "m", False).static
    assert not registry.scan(b"import json\n", "m", False).static
    assert registry.scan(b"# -*- coding: latin-1 -*-\nx = 1\n", "m", False).static
    assert registry.scan(b"x = '\xff'\n", "m", False).static
    assert registry.scan(None, "m", False).static


def test_a_module_not_parsed_yet_is_loaded_when_asked_for_by_name() -> None:
    def facts(module: str) -> FileFacts:
        return FileFacts(
            module.replace(".", "/") + ".py", module, False, (), (), (), (), (), (), (), frozenset()
        )

    asked: list[str] = []

    def load(module: str) -> FileFacts | None:
        asked.append(module)
        return facts(module) if module == "shop.util" else None

    modules = Modules([facts("shop.tasks")], load)
    assert [f.module for f in modules.values()] == ["shop.tasks"]
    assert "shop.util" in modules and "shop.nothing" not in modules
    assert "shop.nothing" not in modules  # a failed load is remembered
    assert asked == ["shop.util", "shop.nothing"]
    assert [f.module for f in modules.values()] == ["shop.tasks"]  # scans see the model's own
    assert modules.by_path["shop/util.py"].module == "shop.util"


def test_a_syntax_error_in_a_file_that_cannot_matter_is_not_reported(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text("from celery import shared_task\n", encoding="utf-8")
    (tmp_path / "broken.py").write_text("def f(:\n", encoding="utf-8")
    (tmp_path / "broken_job.py").write_text("import celery\ndef f(:\n", encoding="utf-8")
    config = Config(root=tmp_path, source=None)
    filtered = run([tmp_path], config, [])
    assert [n.path for n in filtered.notices] == ["broken_job.py"]
    assert filtered.parsed == 2
    assert [n.path for n in run([tmp_path], config, [], prefilter=False).notices] == [
        "broken.py",
        "broken_job.py",
    ]
    named = run([tmp_path, tmp_path / "broken.py"], config, [])
    assert [n.path for n in named.notices] == ["broken.py", "broken_job.py"]


def test_parallel_parsing_returns_the_same_facts_in_the_same_order(workers: Workers) -> None:
    root = FIXTURES / "projects"
    paths = sorted(root.rglob("*.py"))
    files = [SourceFile(p.relative_to(root).as_posix(), p) for p in paths]
    names = module_names(files)
    work = [(file, None, names[file.relpath]) for file in files]
    assert len(work) > 40
    assert analyse_many(work, workers) == analyse_many(work)


@pytest.fixture
def workers() -> Iterator[Workers]:
    """A pool of two workers, stopped after the test."""
    pool = Workers(2)
    try:
        yield pool
    finally:
        pool.close()


def test_one_pool_of_workers_serves_every_batch_of_a_run(workers: Workers) -> None:
    """Each batch used to start a pool of its own: a fork of every worker each time."""
    first = set(workers.map(_worker_pid, range(8), 1))
    second = set(workers.map(_worker_pid, range(8), 1))
    assert os.getpid() not in first
    assert 1 <= len(first) <= 2 and second <= first


def test_a_parallel_run_stops_its_workers() -> None:
    root = FIXTURES / "projects"
    config = Config(root=root, source=None)
    result = run([root], config, [rule() for rule in ALL_RULES], jobs=2, prefilter=False)
    assert result.parsed > 2 * 16  # enough files to be sent to the workers
    assert multiprocessing.active_children() == []


def test_a_batch_whose_worker_dies_is_done_in_this_process(workers: Workers) -> None:
    found = workers.map(partial(_exit_in_worker, os.getpid()), list(range(6)), 1)
    after = workers.map(_worker_pid, list(range(4)), 1)
    assert found == list(range(6))
    assert after == [os.getpid()] * 4  # a broken pool is not started again
    assert multiprocessing.active_children() == []


def _worker_pid(_: int) -> int:
    return os.getpid()


def _exit_in_worker(parent: int, value: int) -> int:
    if os.getpid() != parent:
        os._exit(1)
    return value


_FIXTURE_WORK = f"""
import multiprocessing
from pathlib import Path
from jobaudit.engine import module_names
from jobaudit.files import SourceFile
from jobaudit.parallel import Workers, _context, analyse_many
root = Path({str(FIXTURES / "projects")!r})
files = [SourceFile(p.relative_to(root).as_posix(), p) for p in sorted(root.rglob("*.py"))]
names = module_names(files)
work = [(file, None, names[file.relpath]) for file in files]
"""
"""The start of a script that parses the fixture projects in a fresh process: a pool's
start method belongs to the process, so the tests that choose it run their own."""


def test_parallel_parsing_works_with_workers_from_a_fork_server() -> None:
    """Python 3.14 starts pool workers from a fork server by default (3.12 here, forced)."""
    script = (
        _FIXTURE_WORK
        + """
multiprocessing.set_start_method("forkserver")
workers = Workers(2)
assert analyse_many(work, workers) == analyse_many(work)
workers.close()
print(multiprocessing.get_start_method(), len(work))
"""
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    method, count = done.stdout.split()
    assert method == "forkserver" and int(count) > 40


def test_a_process_running_threads_starts_workers_from_a_fork_server() -> None:
    """A fork copies a lock another thread holds, held for ever (the libcst reader is such a
    thread; Python 3.12 warns of it): then workers come from a fork server."""
    script = (
        _FIXTURE_WORK
        + """
import threading
serial = analyse_many(work)
stop = threading.Event()
thread = threading.Thread(target=stop.wait)
thread.start()
try:
    with_thread = _context().get_start_method()
    workers = Workers(2)
    assert analyse_many(work, workers) == serial
    workers.close()
finally:
    stop.set()
    thread.join()
print(multiprocessing.get_start_method(), with_thread, _context().get_start_method())
"""
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    default, with_thread, without = done.stdout.split()
    assert with_thread == ("forkserver" if default == "fork" else default)
    assert without == default


def _cli(*args: str) -> str:
    done = CliRunner().invoke(main, list(args))
    assert done.exit_code in (0, 1), done.output
    return done.output


def test_output_is_byte_identical_whatever_jobs_and_cache(tmp_path: Path) -> None:
    tree = tmp_path / "demo"
    shutil.copytree(FIXTURES / "projects" / "demo", tree)
    args = ["check", str(tree), "--preview", "--format", "json"]
    cold = _cli(*args, "--no-cache", "-j", "1")
    assert _cli(*args, "--no-cache", "-j", "2") == cold
    assert _cli(*args, "--no-cache", "-j", "0", "--no-prefilter") == cold
    assert not (tree / CACHE_DIR).exists()
    assert _cli(*args) == cold  # writes the cache
    assert (tree / CACHE_DIR / ".gitignore").read_text() == "*\n"
    assert (tree / CACHE_DIR / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f59")
    assert _cli(*args) == cold  # reads it
    jobs = _cli("jobs", str(tree), "--format", "json")
    assert json.loads(jobs) == json.loads(_cli("jobs", str(tree), "--format", "json", "--no-cache"))
    assert "Removed" in _cli("clean", str(tree))
    assert not (tree / CACHE_DIR).exists()
    assert "No cache" in _cli("clean", str(tree))


def test_a_corrupt_or_truncated_cache_entry_is_ignored_and_rewritten(tmp_path: Path) -> None:
    tree = tmp_path / "demo"
    shutil.copytree(FIXTURES / "projects" / "demo", tree)
    args = ["check", str(tree), "--preview", "--format", "json"]
    cold = _cli(*args, "--no-cache")
    _cli(*args)
    entries = [
        p for p in (tree / CACHE_DIR).rglob("*") if p.is_file() and p.parent.name != CACHE_DIR
    ]
    assert entries
    for index, entry in enumerate(entries):
        entry.write_bytes(b"" if index % 2 else b"\x80\x05garbage")
    assert _cli(*args) == cold
    assert all(entry.stat().st_size > 20 for entry in entries)


def test_the_cache_key_follows_content_and_configuration(tmp_path: Path) -> None:
    file = SourceFile("tasks.py", tmp_path / "tasks.py")
    config = Config(root=tmp_path, source=None)
    cache = Cache(tmp_path / CACHE_DIR, config)
    scan = Registry().scan(b"import celery\n", "tasks", False)
    cache.store_scan(file, b"import celery\n", "tasks", False, scan)
    cache.flush()
    again = Cache(tmp_path / CACHE_DIR, config)
    assert again.scan(file, b"import celery\n", "tasks", False) == scan
    assert again.scan(file, b"import celery  \n", "tasks", False) is None
    assert again.scan(file, b"import celery\n", "other", False) is None
    custom = config.custom.__class__(decorators=("shop.jobs.job",))
    other = Cache(tmp_path / CACHE_DIR, Config(root=tmp_path, source=None, custom=custom))
    assert other.scan(file, b"import celery\n", "tasks", False) is None
    assert os.listdir(tmp_path / CACHE_DIR)


def test_the_scan_index_keeps_one_scan_per_file_and_one_index(tmp_path: Path) -> None:
    file = SourceFile("tasks.py", tmp_path / "tasks.py")
    config = Config(root=tmp_path, source=None)
    for version in range(5):  # five edits of one file, one run each
        cache = Cache(tmp_path / CACHE_DIR, config)
        content = b"import celery\nVERSION = %d\n" % version
        cache.store_scan(file, content, "tasks", False, Registry().scan(content, "tasks", False))
        cache.flush()
    (index,) = (tmp_path / CACHE_DIR).glob("scans*")
    assert len(pickle.loads(index.read_bytes())) == 1
    assert Cache(tmp_path / CACHE_DIR, config).scan(file, content, "tasks", False) is not None
    custom = config.custom.__class__(decorators=("shop.jobs.job",))
    other = Cache(tmp_path / CACHE_DIR, Config(root=tmp_path, source=None, custom=custom))
    other.store_scan(file, content, "tasks", False, Registry().scan(content, "tasks", False))
    other.flush()
    (replaced,) = (tmp_path / CACHE_DIR).glob("scans*")
    assert replaced != index  # another salt (version, custom jobs) writes its own and drops ours


def test_a_wrapper_forwarding_from_a_nested_function_selects_the_files_using_it(
    tmp_path: Path,
) -> None:
    """polar's ``actor``: the framework call is nested twice; its users never name dramatiq."""
    (tmp_path / "worker.py").write_text(
        "import dramatiq\n\n\n"
        "def actor(actor_name=None, **options):\n"
        "    def decorator(fn):\n"
        "        def wrapped(*args):\n"
        "            return fn(*args)\n\n"
        "        dramatiq.actor(wrapped, actor_name=actor_name, **options)\n"
        "        return wrapped\n\n"
        "    return decorator\n",
        encoding="utf-8",
    )
    (tmp_path / "tasks.py").write_text(
        "from worker import actor\n\n\n@actor(max_retries=3)\ndef sync():\n    pass\n",
        encoding="utf-8",
    )
    (tmp_path / "views.py").write_text("from tasks import sync\n\nsync.send()\n", encoding="utf-8")
    (tmp_path / "plain.py").write_text("import json\n", encoding="utf-8")
    config = Config(root=tmp_path, source=None)
    rules = [rule() for rule in ALL_RULES]
    filtered = run([tmp_path], config, rules)
    assert [job.name for job in filtered.jobs] == ["sync"]
    assert [site.path for site in filtered.project.sites] == ["views.py"]
    assert filtered.parsed == 3
    assert _outcome(filtered) == _outcome(run([tmp_path], config, rules, prefilter=False))
