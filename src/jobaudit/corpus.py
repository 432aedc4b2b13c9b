"""The files of one run: read once, prefiltered, parsed up front or on demand.

This is the map step of ``docs/architecture.md``.  Every discovered file is
read; with the prefilter on (the default) only the files
:mod:`jobaudit.prefilter` selects are parsed before the project model is
built, and the resolver parses any other module the first time it is asked
for by name (:meth:`Corpus.load`).  Parsed facts come from the cache when
their file has not changed, and the up-front parsing can run in a process
pool (``-j``).  Whatever the path, each file's facts and notice are the same,
so the output is too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from jobaudit.facts import FileFacts
from jobaudit.files import SourceFile
from jobaudit.notices import Notice
from jobaudit.parallel import Workers, analyse_many, scan_many
from jobaudit.prefilter import Closure, Registry, Scan
from jobaudit.project import is_test_path
from jobaudit.source import read_bytes
from jobaudit.stamps import content_digest

_PARALLEL_SCAN = 512
"""Below this many files, starting worker processes costs more than scanning in this one."""

if TYPE_CHECKING:
    from jobaudit.cache import Cache
    from jobaudit.config import Config
    from jobaudit.model import Job


class Corpus:
    def __init__(
        self,
        files: Sequence[SourceFile],
        names: dict[str, tuple[str, bool]],
        config: Config,
        *,
        prefilter: bool = True,
        cache: Cache | None = None,
        jobs: int = 1,
        named: frozenset[str] | set[str] = frozenset(),
        overlay: Mapping[str, bytes] | None = None,
    ) -> None:
        """``named``: files given by name on the command line, always parsed (as ruff
        reports a syntax error in a file it is given).  ``overlay``: contents to use
        instead of what is on disk, by relative path (``fix`` between its rounds)."""
        self.overlay = overlay or {}
        self.files = sorted(files)
        self.names = names
        self.cache = cache
        self.workers = Workers(jobs) if jobs > 1 else None
        self.prefilter = prefilter
        self.facts: dict[str, FileFacts] = {}
        self.notices: dict[str, Notice] = {}
        self.selected: set[str] = set()
        self._file = {file.relpath: file for file in self.files}
        self._by_module = {names[file.relpath][0]: file.relpath for file in self.files}
        self._scans: dict[str, Scan] = {}
        custom = config.custom
        self.registry = Registry(
            (*custom.decorators, *custom.base_classes, *custom.enqueue_functions)
        )
        self.closure = Closure(self.registry)
        if prefilter:
            self._scan_all(named)
        else:
            self._parse([file.relpath for file in self.files])
            self.selected = set(self.facts) | set(self.notices)
        if cache is not None:
            cache.flush()

    def _scan_all(self, named: frozenset[str] | set[str]) -> None:
        """The prefilter's scan of every file (from the cache when unchanged), then the
        selection: the files it picks, the files given by name, and their closure."""
        if self.workers and len(self.files) >= _PARALLEL_SCAN and not self.overlay:
            # Without a cache every file is read anyway; with one, mostly no file is.
            unknown = [file for file in self.files if self._cached_scan(file.relpath) is None]
            if len(unknown) >= _PARALLEL_SCAN:
                work = [(file, *self.names[file.relpath]) for file in unknown]
                scanned = scan_many(work, self.registry, self.workers)
                for file, found in zip(unknown, scanned, strict=True):
                    self._store_scan(file.relpath, found)
        for file in self.files:
            if file.relpath not in self._scans:
                self._scan(file.relpath)
        self._select([rel for rel, scan in self._scans.items() if scan.static or rel in named])
        self._grow()

    def _scan(self, relpath: str) -> None:
        data = None
        if self.cache is not None and relpath not in self.overlay:
            _, data = self.cache.stamps.read(self._file[relpath])  # the bytes, if read for it
        if self._cached_scan(relpath) is None:
            if data is None:
                data = self._read(relpath)  # not kept: read again if parsed (memory)
            self._store_scan(relpath, self.registry.scan(data, *self.names[relpath]))

    def _cached_scan(self, relpath: str) -> Scan | None:
        if relpath in self._scans:
            return self._scans[relpath]
        content = self._content(relpath)
        if self.cache is None or content is None:
            return None
        found = self.cache.scan(self._file[relpath], content, *self.names[relpath])
        if found is not None:
            self._scans[relpath] = found
        return found

    def _store_scan(self, relpath: str, found: Scan) -> None:
        self._scans[relpath] = found
        content = self._content(relpath)
        if self.cache is not None and content is not None:
            self.cache.store_scan(self._file[relpath], content, *self.names[relpath], found)

    # -- selection -----------------------------------------------------------------------

    def _select(self, relpaths: list[str]) -> None:
        new = [rel for rel in relpaths if rel not in self.selected]
        self.selected.update(new)
        self._parse([rel for rel in new if rel not in self.facts and rel not in self.notices])

    def _grow(self) -> None:
        """Select files importing a relevant name until no new file is selected."""
        while True:
            self.closure.grow(self.facts[rel] for rel in sorted(self.selected) if rel in self.facts)
            new = [
                rel
                for rel, scan in self._scans.items()
                if rel not in self.selected and any(map(self.closure.refers, scan.imports))
            ]
            if not new:
                return
            self._select(new)

    def widen(self, jobs: Sequence[Job]) -> bool:
        """After the project model is built: select the files importing one of its jobs.

        A job declared by registration (an RQ enqueue target, arq's
        ``WorkerSettings.functions``) may live in a module the prefilter did
        not select; the files that import it are enqueue sites.  True when the
        model must be built again with them.
        """
        if not self.prefilter:
            return False
        before = set(self.selected)
        grown = False
        for job in jobs:
            top = job.qualname[len(job.module) + 1 :].partition(".")[0]
            grown |= self.closure.add_job(f"{job.module}.{top}")
        if grown:
            self._grow()
        return self.selected != before

    def relevant_name(self, dotted: str) -> bool:
        """Whether a dotted name may reach a framework object (always, without the prefilter)."""
        return not self.prefilter or self.closure.refers(dotted)

    def relevant(self, relpath: str, data: bytes) -> bool:
        """Whether a skipped file would be selected with ``data`` as its content (an editor's
        unsaved buffer in the flake8 plugin)."""
        if not self.prefilter or relpath not in self.names:
            return True
        module, is_package = self.names[relpath]
        scan = self.registry.scan(data, module, is_package)
        return scan.static or any(map(self.closure.refers, scan.imports))

    def unchanged(self, relpath: str, data: bytes) -> bool:
        """Whether ``data`` is the file's content as this run read it; False when unsure
        (no cache to remember its digest)."""
        content = self._content(relpath)
        return content is not None and content == content_digest(data)

    # -- test files ----------------------------------------------------------------------

    def test_paths(self, patterns: Sequence[str]) -> list[str]:
        """Every discovered test file, parsed or not (what JOB7xx say they looked in)."""
        return [file.relpath for file in self.files if is_test_path(file.relpath, patterns)]

    def test_files(
        self, patterns: Sequence[str], mentions: Callable[[str], bool]
    ) -> list[FileFacts]:
        """The facts of the test files that may matter to JOB7xx, parsed on demand: those
        whose text ``mentions`` a job (a test may name it only in a string,
        ``patch("proj.tasks.x.delay")``), every ``conftest.py`` (fixtures), and the test
        modules those import (helpers)."""
        paths = self.test_paths(patterns)
        wanted = {
            rel
            for rel in paths
            if rel in self.facts
            or rel.rpartition("/")[2] == "conftest.py"
            or (self.prefilter and mentions(self._text(rel)))
        }
        tests = set(paths)
        todo = sorted(wanted)
        while todo:
            self._parse([rel for rel in todo if rel not in self.facts and rel not in self.notices])
            todo = sorted(
                {
                    found
                    for rel in todo
                    if rel in self.facts
                    for _, target in self.facts[rel].imports
                    for found in self._modules_of(target)
                    if found in tests and found not in wanted
                }
            )
            wanted.update(todo)
        return [self.facts[rel] for rel in paths if rel in wanted and rel in self.facts]

    def _modules_of(self, dotted: str) -> list[str]:
        """The files of a dotted import target and of the packages above it."""
        parts = dotted.split(".")
        found = (self._by_module.get(".".join(parts[:end])) for end in range(1, len(parts) + 1))
        return [rel for rel in found if rel is not None]

    def _text(self, relpath: str) -> str:
        return (self._read(relpath) or b"").decode("utf-8", "replace")

    # -- parsing -------------------------------------------------------------------------

    def load(self, module: str) -> FileFacts | None:
        """The resolver's loader: parse a module the prefilter skipped."""
        relpath = self._by_module.get(module)
        if relpath is None:
            return None
        if relpath not in self.facts and relpath not in self.notices:
            self._parse([relpath])
        return self.facts.get(relpath)

    def _parse(self, relpaths: list[str]) -> None:
        todo: dict[str, bytes | None] = {}
        for rel in relpaths:
            content = self._content(rel)
            cached = (
                self.cache.facts(self._file[rel], content, *self.names[rel])
                if self.cache and content
                else None
            )
            if cached is not None:
                self.facts[rel] = cached
            elif rel in self.overlay or self.cache:
                todo[rel] = self._read(rel)  # stored under the digest of what was parsed
            else:
                todo[rel] = None  # the worker reads the file itself
        work = [(self._file[rel], data, self.names[rel]) for rel, data in todo.items()]
        for (rel, data), result in zip(todo.items(), analyse_many(work, self.workers), strict=True):
            if isinstance(result, Notice):
                self.notices[rel] = result
                continue
            self.facts[rel] = result
            if self.cache is not None and data is not None:
                digest = content_digest(data)
                self.cache.store_facts(self._file[rel], digest, *self.names[rel], result)

    def close(self) -> None:
        """Stop the workers (``-j``); the rules are the last to parse."""
        if self.workers is not None:
            self.workers.close()

    def _read(self, relpath: str) -> bytes | None:
        found = self.overlay.get(relpath)
        return found if found is not None else read_bytes(self._file[relpath])

    def _content(self, relpath: str) -> bytes | None:
        """The digest of the file's bytes as this run sees them; None without a cache."""
        found = self.overlay.get(relpath)
        if found is not None:
            return content_digest(found)
        return self.cache.stamps.digest(self._file[relpath]) if self.cache else None

    def loaded(self) -> list[FileFacts]:
        return [self.facts[rel] for rel in sorted(self.selected) if rel in self.facts]

    def all_notices(self) -> list[Notice]:
        return [self.notices[rel] for rel in sorted(self.notices)]
