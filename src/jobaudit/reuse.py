"""Reusing a whole run's result when none of its inputs changed: the warm path of ``check``.

A run is a function of the bytes of the Python files discovered, the
non-Python files rules read (worker command lines in deployment files, the
dependency pins of the project root), the configuration, the rules selected,
the files reported on, the jobaudit code (:func:`jobaudit.cache.code_version`)
and the Python that parses them.
All of those go into one digest; a run whose digest has a stored result
prints that result instead of building the project model again.  A file's
digest is of its bytes, read again whenever its ``stat`` changed
(:mod:`jobaudit.stamps`), so it is right after a ``git checkout`` or a CI
cache restore, where modification times alone would not be.

The stored result has no project model, only what ``check`` prints: the
findings, the notices, the counts and the source lines of the files with
findings.  Commands that read the model (``report``, ``jobs``, ``fix``,
``check --diff``) never reuse a result.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from jobaudit.cache import code_version
from jobaudit.deploy import deploy_files
from jobaudit.files import SourceFile
from jobaudit.notices import Notice
from jobaudit.pins import dependency_files
from jobaudit.stamps import Stamps

if TYPE_CHECKING:
    from jobaudit.config import Config
    from jobaudit.result import Result


def digest(
    files: Sequence[SourceFile],
    names: dict[str, tuple[str, bool]],
    notices: Sequence[Notice],
    config: Config,
    codes: Sequence[str],
    paths: Sequence[Path],
    report: Sequence[Path] | None,
    prefilter: bool,
    stamps: Stamps,
) -> str:
    """The digest of every input of a run over ``files`` (discovered, with their notices)
    with the rules of ``codes``; ``stamps`` give the digests of the files' bytes."""
    settings = (
        code_version(),
        sys.version_info[:2],
        config,
        sorted(codes),
        [str(path) for path in paths],
        None if report is None else [str(path) for path in report],
        prefilter,
        sorted(notices),
    )
    found = hashlib.blake2b(repr(settings).encode("utf-8", "backslashreplace"), digest_size=20)
    for file in sorted(files):
        module, package = names[file.relpath]
        content = stamps.digest(file)
        found.update(f"\0{file.relpath}\0{module}\0{package}\0".encode(errors="backslashreplace"))
        found.update(b"-" if content is None else content)
    locks, requirements = dependency_files(Path(config.root))
    for path in [*deploy_files(config.root, paths), *locks, *requirements]:
        found.update(f"\0{path}\0".encode(errors="backslashreplace"))
        found.update(_bytes(path))
    return found.hexdigest()


def _bytes(path: Path) -> bytes:
    try:
        return b"%d:" % path.stat().st_size + path.read_bytes()
    except OSError:
        return b"-"


def slim(result: Result) -> Result:
    """What is stored: the result without its model or file paths, with the lines reporters
    quote."""
    quoted = {f.path for f in result.findings} | {
        related.location.path for f in result.findings for related in f.related
    }
    sources = {path: result.lines(path) for path in sorted(quoted)}
    # The paths of the discovered files are not stored: a run that reuses the result
    # discovered the same files (they are part of the digest) and puts them back.
    return replace(result, jobs=[], project=None, rules=[], timings={}, sources=sources, paths={})
