"""Content digests of files, remembered by their ``stat`` so unchanged files are not read.

A warm run needs a digest of every discovered file (:mod:`jobaudit.reuse`, the
prefilter's scan cache); reading and hashing a large tree costs more than the
rest of such a run.  A file whose size, modification and change times, inode
and device are what they were when it was hashed has the same bytes: git
decides which files to look at the same way.  The change time cannot be set
by a user, so a ``touch -d`` or an ``rsync -t`` cannot hide an edit.  Windows
has no change time (``st_ctime`` is the creation time there), so nothing is
remembered on Windows: every file is read and hashed, as before.

Timestamps have a granularity (a few milliseconds on Linux, two seconds on
FAT), so an edit right after a hash could keep the same stamp.  A digest is
remembered only for a file last changed at least :data:`SETTLED` before it was
stamped; a file edited more recently is read and hashed on every run until
it settles.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from jobaudit.files import SourceFile

SETTLED = 2_000_000_000
"""Nanoseconds a file must have been left alone before its stamp is trusted."""
TRUSTED = os.name == "posix"
"""Whether ``st_ctime`` is the time of the last change (not the creation time, as on Windows)."""

Stamp = tuple[int, int, int, int, int]
"""Size, modification time, change time (nanoseconds), inode, device."""


def content_digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=20).digest()


class Stamps:
    """The digests of one tree's files; ``index`` is what an earlier run stored."""

    def __init__(
        self, index: dict[str, tuple[Stamp, bytes]] | None = None, now: int | None = None
    ) -> None:
        """``now``: the time stamps are compared with to tell a settled file (nanoseconds)."""
        self.index = index if index is not None else {}
        self.changed = False
        self._now = time.time_ns() if now is None else now
        self._seen: dict[str, bytes | None] = {}

    def digest(self, file: SourceFile) -> bytes | None:
        """The digest of the bytes :func:`read_bytes` gives, or None when it gives none.

        Worked out once per run and file, from the stored index when the
        file's stamp is unchanged.
        """
        return self.read(file)[0]

    def read(self, file: SourceFile) -> tuple[bytes | None, bytes | None]:
        """:meth:`digest` and, when the file had to be read for it, its bytes."""
        key = str(file.path)
        if key in self._seen:
            return self._seen[key], None
        stamp = _stamp(file.path)
        stored = self.index.get(key)
        data = None
        if stamp is not None and stored is not None and stored[0] == stamp:
            found: bytes | None = stored[1]
        else:
            from jobaudit.source import read_bytes  # with the parser: a warm run reads nothing

            data = read_bytes(file)
            found = None if data is None else content_digest(data)
            self._remember(key, stamp, found)
        self._seen[key] = found
        return found, data

    def _remember(self, key: str, stamp: Stamp | None, found: bytes | None) -> None:
        settled = TRUSTED and stamp is not None and max(stamp[1], stamp[2]) <= self._now - SETTLED
        if found is not None and stamp is not None and settled:
            self.index[key] = (stamp, found)
            self.changed = True
        elif self.index.pop(key, None) is not None:
            self.changed = True


def _stamp(path: Path) -> Stamp | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino, found.st_dev)
