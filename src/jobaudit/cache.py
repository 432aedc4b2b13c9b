"""The per-file cache in ``.jobaudit_cache/``: facts and prefilter scans of unchanged files.

An entry is keyed by a hash of everything the cached value is a function of:
the digest of the file's bytes, its relative path and module name, the
jobaudit version and the configuration that changes what is extracted (the
custom job system).  The digests of files whose ``stat`` has not changed are
remembered too (:mod:`jobaudit.stamps`), so a warm run reads none of them.  A
changed file gets a new key, so nothing is ever invalidated in place; stale
entries are only wasted space, removed by ``jobaudit clean``.

Entries are written to a temporary file and renamed into place, so a
concurrent run sees a whole entry or none; an entry that cannot be read
(truncated, corrupt, from another Python) is ignored and written again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from jobaudit import __version__
from jobaudit.config import Config
from jobaudit.files import SourceFile
from jobaudit.prefilter import REGISTRY, Scan
from jobaudit.stamps import Stamps

if TYPE_CHECKING:
    from jobaudit.facts import FileFacts

CACHE_DIR = ".jobaudit_cache"
KEPT_RESULTS = 8
"""Whole results kept (:meth:`Cache.store_result`); the oldest go first."""
_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by jobaudit.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)


@functools.cache
def code_version() -> str:
    """The jobaudit version and a fingerprint of its installed modules (size and time of each).

    The version alone would let an editable install or a source checkout
    reuse what older code computed under the same version number.
    """
    package = Path(__file__).resolve().parent
    stamps = []
    for path in sorted(package.rglob("*.py")):
        try:
            stat = path.stat()
        except OSError:
            continue
        stamps.append((path.relative_to(package).as_posix(), stat.st_size, stat.st_mtime_ns))
    digest = hashlib.blake2b(repr(stamps).encode(), digest_size=8).hexdigest()
    return f"{__version__}+{digest}"


class Cache:
    def __init__(self, directory: Path, config: Config) -> None:
        self.directory = directory
        salt = repr((code_version(), config.custom, sorted(REGISTRY.items())))
        self._salt = hashlib.blake2b(salt.encode(), digest_size=16).digest()
        self._ready = False
        self._scan_index: dict[str, tuple[str, Scan]] | None = None
        self._dirty = False
        self._stamps: Stamps | None = None

    @property
    def stamps(self) -> Stamps:
        """The remembered digests of this tree's files, read on first use."""
        if self._stamps is None:
            found = self._get(self.directory / "stamps")
            self._stamps = Stamps(found if isinstance(found, dict) else None)
        return self._stamps

    def _key(self, kind: str, file: SourceFile, content: bytes, module: str, package: bool) -> Path:
        """``content``: the digest of the file's bytes (:func:`jobaudit.stamps.content_digest`)."""
        digest = hashlib.blake2b(self._salt, digest_size=20)
        digest.update(f"{kind}\0{file.relpath}\0{module}\0{package}\0".encode(errors="replace"))
        digest.update(content)
        name = digest.hexdigest()
        return self.directory / kind / name[:2] / name[2:]

    def _get(self, path: Path) -> object:
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except Exception:  # missing, truncated or foreign: treated as absent, rewritten
            return None

    def _put(self, path: Path, value: object) -> None:
        try:
            self._prepare()
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(handle, "wb") as out:
                pickle.dump(value, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, path)
        except OSError:
            pass  # a read-only tree or a full disk costs speed, never the run

    def _prepare(self) -> None:
        if self._ready:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, text in ((".gitignore", "*\n"), ("CACHEDIR.TAG", _TAG)):
            target = self.directory / name
            if not target.exists():
                target.write_text(text, encoding="utf-8")
        self._ready = True

    def _scans(self) -> dict[str, tuple[str, Scan]]:
        """The scan index: per file, the key of the content it was scanned with and the scan.

        One entry per file, so edits do not pile up stale scans, and one index per
        salt (jobaudit's code and the extraction settings): what another version
        wrote is removed when this one writes its own (:meth:`flush`).
        """
        if self._scan_index is None:
            found = self._get(self._scan_file())
            self._scan_index = found if isinstance(found, dict) else {}
        return self._scan_index

    def _scan_file(self) -> Path:
        return self.directory / f"scans-{self._salt.hex()[:16]}"

    def scan(self, file: SourceFile, content: bytes, module: str, package: bool) -> Scan | None:
        """The prefilter's scan of an unchanged file (all scans live in one index file)."""
        found = self._scans().get(file.relpath)
        key = self._key("scan", file, content, module, package).name
        if isinstance(found, tuple) and len(found) == 2 and found[0] == key:
            return found[1] if isinstance(found[1], Scan) else None  # else damaged on disk
        return None

    def store_scan(
        self, file: SourceFile, content: bytes, module: str, package: bool, scan: Scan
    ) -> None:
        self._scans()[file.relpath] = (self._key("scan", file, content, module, package).name, scan)
        self._dirty = True

    def flush(self) -> None:
        """Write the scan index and the file stamps if this run added to them."""
        if self._dirty and self._scan_index is not None:
            target = self._scan_file()
            self._put(target, self._scan_index)
            self._dirty = False
            try:
                for other in self.directory.glob("scans*"):
                    if other != target:
                        other.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only tree, or another run removing it first
        if self._stamps is not None and self._stamps.changed:
            self._put(self.directory / "stamps", self._stamps.index)
            self._stamps.changed = False

    def facts(
        self, file: SourceFile, content: bytes, module: str, package: bool
    ) -> FileFacts | None:
        from jobaudit.facts import FileFacts  # not on the warm path, which reads no facts

        found = self._get(self._key("facts", file, content, module, package))
        return found if isinstance(found, FileFacts) else None

    def store_facts(
        self, file: SourceFile, content: bytes, module: str, package: bool, facts: FileFacts
    ) -> None:
        self._put(self._key("facts", file, content, module, package), facts)

    def result(self, digest: str) -> object:
        """A whole run's result by the digest of its inputs (:mod:`jobaudit.reuse`)."""
        return self._get(self.directory / "results" / digest)

    def store_result(self, digest: str, value: object) -> None:
        """Store a run's result, keeping only the newest few: each commit of a tree has its
        own digest, and only the last ones can come back (a branch switched to and from)."""
        folder = self.directory / "results"
        self._put(folder / digest, value)
        try:
            others = [entry for entry in folder.iterdir() if entry.name != digest]
            entries = sorted(others, key=lambda entry: entry.stat().st_mtime_ns)
            for old in entries[: max(0, len(entries) - (KEPT_RESULTS - 1))]:
                old.unlink()
        except OSError:
            pass  # another run pruned first, or a read-only tree


def clean(directory: Path) -> bool:
    """Remove a cache directory; True if there was one.

    Only a directory this module made (it holds the ``CACHEDIR.TAG``) is
    removed, so a mistyped ``--cache-dir`` cannot delete anything else.
    """
    if not (directory / "CACHEDIR.TAG").is_file():
        return False
    shutil.rmtree(directory, ignore_errors=True)
    return True
