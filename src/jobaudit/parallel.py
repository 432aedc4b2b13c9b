"""The per-file map step, in this process or across a pool of processes (``-j N``).

Each file is analysed independently (bytes → text → ``ast`` → facts) and the
facts are picklable, so the work shards cleanly.  Results come back in the
order the work was given, whatever order the workers finish in, so the output
does not depend on ``-j``.  One pool of workers serves a whole run
(:class:`Workers`): the scan, the up-front parse and each later batch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from jobaudit.facts import FileFacts, extract
from jobaudit.files import SourceFile
from jobaudit.lines import Lines
from jobaudit.notices import Notice
from jobaudit.prefilter import Registry, Scan
from jobaudit.source import ParsedSource, load_source, read_bytes

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing.context import BaseContext

T = TypeVar("T")
R = TypeVar("R")

Work = tuple[SourceFile, bytes | None, tuple[str, bool]]
"""A file, its bytes when already read, and its ``(module name, is a package)``."""

_CHUNK = 16
_SCAN_CHUNK = 128
"""Files per task sent to a worker: large enough to amortise pickling, small enough to balance."""


def facts_for(file: SourceFile, parsed: ParsedSource, name: tuple[str, bool]) -> FileFacts:
    module, is_package = name
    return extract(
        parsed.tree,
        file.relpath,
        module,
        is_package,
        lines=Lines(parsed.lines),
        noqa=parsed.noqa,
        pragmas=parsed.pragmas,
    )


def analyse(work: Work) -> FileFacts | Notice:
    """One file's facts, or the notice saying why it has none; never raises."""
    file, data, name = work
    parsed = load_source(file, data)
    if isinstance(parsed, Notice):
        return parsed
    try:
        return facts_for(file, parsed, name)
    except RecursionError:
        return Notice(file.relpath, "too deeply nested to analyse (RecursionError)")
    except Exception as exc:  # a bug on one file must not lose the others' findings
        return Notice(file.relpath, f"internal error while analysing: {type(exc).__name__}: {exc}")


def analyse_many(work: Sequence[Work], workers: Workers | None = None) -> list[FileFacts | Notice]:
    """:func:`analyse` over ``work``, in order; in ``workers``' processes when there are
    enough files to be worth sending."""
    if workers is None or len(work) < 2 * _CHUNK:
        return [analyse(item) for item in work]
    return workers.map(analyse, work, _CHUNK)


def scan_many(
    work: Sequence[tuple[SourceFile, str, bool]], registry: Registry, workers: Workers
) -> list[Scan]:
    """The prefilter's byte scan of every file, in ``workers``' processes, in order.

    Workers read the files themselves and send back only the scans: the bytes
    of the few files parsed later are read again rather than shipped back.
    """
    return workers.map(partial(_scan, registry), work, _SCAN_CHUNK)


class Workers:
    """The process pool of one run (``-j N``), started when first given work.

    Starting a pool means forking (or spawning) every worker, and a run sends
    work several times: the scan, the up-front parse, each batch the project
    model and the test rules parse.  One pool for all of them saved 0.15 s of
    saleor's ``-j 2`` against a pool per batch.

    A worker that dies (killed for memory, say) breaks the pool: the batch is
    then done in this process, and so is the rest of the run's work, which is
    what ``-j 1`` does and gives the same output.  Not when it dies halfway
    through sending its results: Python's pool then waits for the rest of the
    message for ever (its documentation warns that a process killed while
    using a queue may corrupt it).
    """

    def __init__(self, count: int) -> None:
        self._count = count
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False

    def map(self, function: Callable[[T], R], items: Sequence[T], chunksize: int) -> list[R]:
        if not self._broken:
            from concurrent.futures.process import BrokenProcessPool

            try:
                return list(self._started().map(function, items, chunksize=chunksize))
            except BrokenProcessPool:
                self._broken = True
                self.close()
        return [function(item) for item in items]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            from concurrent.futures import ProcessPoolExecutor  # here: most runs start no pool

            self._pool = ProcessPoolExecutor(max_workers=self._count, mp_context=_context())
        return self._pool


def _context() -> BaseContext:
    """The platform's way of starting workers, unless that is forking a process that runs
    threads.

    The libcst reader (:mod:`jobaudit.downlevel`) is a thread: a fork while it
    holds a lock leaves the lock held in the child for ever, and Python 3.12
    warns of it.  Such a run, which read code written for a newer Python,
    starts its workers from a fork server instead; the others fork, which is
    0.15 s faster on saleor's ``-j 2``.  Where the workers come from a fork
    server (also Python 3.14's default on Linux), the server imports this
    module once, before it forks them: otherwise each worker imports it
    again.  Forcing a fork server on Python 3.12, ``-j 2`` on saleor
    took 4.8 s without that and 4.4 s with it, as long as forking this process
    took.
    """
    import multiprocessing
    import threading

    context: BaseContext = multiprocessing.get_context()
    if context.get_start_method() == "fork" and threading.active_count() > 1:
        context = multiprocessing.get_context("forkserver")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])
    return context


def _scan(registry: Registry, item: tuple[SourceFile, str, bool]) -> Scan:
    file, module, is_package = item
    return registry.scan(read_bytes(file), module, is_package)


def worker_count(jobs: int) -> int:
    """``-j 0`` means one process per CPU."""
    return jobs if jobs > 0 else (os.cpu_count() or 1)
