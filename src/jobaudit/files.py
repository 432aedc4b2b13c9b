"""Finding the Python files to analyse: explicit paths, directory walks, excludes, ``.gitignore``.

Discovery must be fast on large trees and must never fail as a whole: a
missing path, an unreadable directory or a dangling symlink becomes a
:class:`Notice` and the walk goes on.  The result is sorted and free of
duplicates, whatever order the filesystem lists entries in, so output is
reproducible.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pathspec

from jobaudit.config import Config
from jobaudit.notices import Notice

__all__ = ["RealPaths", "SourceFile", "discover"]


@dataclass(frozen=True, order=True)
class SourceFile:
    """One file to analyse.

    ``relpath`` is what users see: POSIX, relative to ``Config.root`` (or the
    path as given when outside it), with undecodable bytes of the file name
    shown as ``\\xNN``.  ``path`` is the absolute path that opens the file.
    """

    relpath: str
    path: Path


class _Patterns:
    """Gitignore-style patterns, with a quick test that most paths match none of them.

    pathspec tries every pattern on every path; a walk asks about every entry
    of the tree, and almost all of them match nothing.  The quick test answers
    that at once: a plain name (``node_modules``, ``build/``) can only match a
    path that has it as a component, a set look-up; the other patterns are
    tried together, as one regular expression made of their own.  Only a path
    the quick test cannot rule out goes through pathspec, which decides
    (negations, the last match wins).
    """

    def __init__(self, spec: pathspec.GitIgnoreSpec) -> None:
        self.spec = spec
        self.names, self.others = _quick_test(spec)

    def verdict(self, path: str) -> bool | None:
        """``True`` ignored, ``False`` re-included by a negation, ``None`` no pattern matches."""
        if (
            self.others is not None
            and self.others.search(path) is None
            and self.names.isdisjoint(path.split("/"))
        ):
            return None
        included: bool | None = self.spec.check_file(path).include
        return included


def _quick_test(spec: pathspec.GitIgnoreSpec) -> tuple[frozenset[str], re.Pattern[str] | None]:
    """The plain names among the patterns of ``spec``, and one expression matching what any
    other pattern matches; ``None`` for the expression when unsure (no quick test).

    Named groups (pathspec marks a directory match with one) become plain
    groups, since an alternation cannot name a group twice.
    """
    names: set[str] = set()
    sources: list[str] = []
    flags: set[int] = set()
    for pattern in spec.patterns:
        regex = getattr(pattern, "regex", None)
        if pattern.include is None:
            continue
        if not isinstance(regex, re.Pattern) or not isinstance(regex.pattern, str):
            return frozenset(), None
        line = getattr(pattern, "pattern", None)
        if (
            isinstance(line, str)
            and _PLAIN_NAME.fullmatch(line)
            and pattern.include
            and not regex.flags & re.IGNORECASE
        ):
            names.add(line.rstrip("/"))
            continue
        sources.append(_GROUP_NAME.sub("(?:", regex.pattern))
        flags.add(regex.flags)
    if len(flags) > 1:
        return frozenset(), None
    try:
        union = re.compile("|".join(f"(?:{source})" for source in sources) or "(?!)", *flags)
    except re.error:
        return frozenset(), None
    return frozenset(names), union


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*/?")
"""A pattern that is one file or directory name: it matches exactly the paths with that name
as a component (followed by ``/`` with the trailing slash)."""
_GROUP_NAME = re.compile(r"\(\?P<\w+>")


@dataclass(frozen=True)
class _IgnoreFile:
    """One ``.gitignore`` (or ``.git/info/exclude``): its patterns and their base directory.

    ``prefix`` is the base directory with a trailing separator, ready for
    ``startswith`` tests.
    """

    prefix: str
    patterns: _Patterns


@dataclass(frozen=True)
class _Dir:
    """A directory waiting to be scanned.

    ``rel`` names it in the output, ``match`` is the path exclude patterns are
    matched against (relative to the root, or to the walk's start when that is
    outside the root), ``real`` is its resolved path (for de-duplication).
    """

    path: str
    rel: str
    match: str
    real: str
    ignores: tuple[_IgnoreFile, ...]


class RealPaths:
    """Which of many paths are the same files as a few given ones, by real path.

    ``os.path.realpath`` looks at every component of a path, and a pre-commit
    run names a few files among thousands.  A path can only be one of the given
    files when its name is one of theirs, unless its own last component is a
    symlink (a symlinked folder keeps the name), so only those are resolved.
    """

    def __init__(self, given: Iterable[str | Path]) -> None:
        self.real = frozenset(os.path.realpath(path) for path in given)
        self._names = frozenset(os.path.basename(path) for path in self.real)

    def of(self, path: Path) -> str | None:
        """The real path of ``path`` when it is one of the given files, else None."""
        if path.name not in self._names and not os.path.islink(path):
            return None
        real = os.path.realpath(path)
        return real if real in self.real else None


def discover(paths: Sequence[Path], config: Config) -> tuple[list[SourceFile], list[Notice]]:
    """Expand ``paths`` (files and directories; none means ``.``) into the files to analyse.

    Explicitly named ``.py`` files are always included, even when excluded,
    as in ruff: naming a file is a request to check it.  Directories are
    walked without following symlinked directories; ``.py`` files (and
    symlinks to files) that neither ``config.effective_excludes`` nor, with
    ``respect_gitignore``, a ``.gitignore`` exclude are kept.  A file reached
    twice (through a symlink or an overlapping argument) is listed once.
    """
    walker = _Walker(config)
    for given in paths or [Path(".")]:
        walker.add(given)
    return walker.result()


class _Walker:
    """The state of one discovery: files found (keyed by real path), notices, ignore files read."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.root = os.path.abspath(config.root)
        self.real_root = os.path.realpath(self.root)
        self.found: dict[str, tuple[bool, str, str]] = {}
        self.notices: set[Notice] = set()
        self.ignore_cache: dict[str, _IgnoreFile | None] = {}

    def result(self) -> tuple[list[SourceFile], list[Notice]]:
        files = sorted(
            SourceFile(_printable(rel), Path(path)) for _, rel, path in self.found.values()
        )
        return files, sorted(self.notices)

    def add(self, given: Path) -> None:
        absolute = os.path.abspath(given)
        rel_to_root = self._rel_to_root(absolute)
        rel = _given_rel(given) if rel_to_root is None else rel_to_root
        try:
            mode = os.stat(absolute).st_mode
        except OSError as exc:
            self._notice(rel or ".", _stat_failure(absolute, exc))
            return
        if stat.S_ISDIR(mode):
            self._walk(absolute, rel, rel_to_root)
        elif not stat.S_ISREG(mode):
            self._notice(rel, "not a regular file, skipped")
        elif _is_python_file(absolute):
            self._keep(os.path.realpath(absolute), rel, absolute, is_link=False)
        else:
            self._notice(rel, "not a Python source file (expected .py), skipped")

    def _walk(self, start: str, rel: str, match: str | None) -> None:
        excludes = self._excludes_for(match)
        ignores = self._parent_ignores(start) if self.config.respect_gitignore else ()
        if _gitignored(ignores, start, is_dir=True):
            # The user named an ignored directory: what is inside it is wanted.
            ignores = ()
        stack = [_Dir(start, rel, match or "", os.path.realpath(start), ignores)]
        while stack:
            stack.extend(self._scan(stack.pop(), excludes))

    def _scan(self, directory: _Dir, excludes: _Patterns) -> list[_Dir]:
        try:
            with os.scandir(directory.path) as iterator:
                entries = list(iterator)
        except OSError as exc:
            self._notice(directory.rel or ".", f"cannot read directory: {_os_reason(exc)}")
            return []
        ignores = directory.ignores
        if self.config.respect_gitignore and any(e.name == ".gitignore" for e in entries):
            own = self._ignore_file(directory.path, ".gitignore")
            if own is not None:
                ignores = (*ignores, own)
        subdirs: list[_Dir] = []
        for entry in entries:
            rel = _join(directory.rel, entry.name)
            match = _join(directory.match, entry.name)
            try:
                if entry.is_symlink():
                    if entry.name.endswith(".py") and not _excluded(
                        excludes, ignores, match, entry.path, is_dir=False
                    ):
                        self._symlink(entry.path, rel)
                elif entry.is_dir(follow_symlinks=False):
                    if not _excluded(excludes, ignores, match, entry.path, is_dir=True):
                        real = os.path.join(directory.real, entry.name)
                        subdirs.append(_Dir(entry.path, rel, match, real, ignores))
                elif (
                    entry.name.endswith(".py")
                    and entry.is_file(follow_symlinks=False)
                    and not _excluded(excludes, ignores, match, entry.path, is_dir=False)
                ):
                    real = os.path.join(directory.real, entry.name)
                    self._keep(real, rel, entry.path, is_link=False)
            except OSError as exc:
                self._notice(rel, f"cannot read: {_os_reason(exc)}")
        return subdirs

    def _symlink(self, path: str, rel: str) -> None:
        """Keep a symlink to a file (symlinked directories are never followed: no loops)."""
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            self._notice(rel, _stat_failure(path, exc))
            return
        if stat.S_ISREG(mode):
            self._keep(os.path.realpath(path), rel, path, is_link=True)

    def _keep(self, key: str, rel: str, path: str, *, is_link: bool) -> None:
        """Record a file once per real path, preferring its own name over a symlink's."""
        candidate = (is_link, rel, path)
        current = self.found.get(key)
        if current is None or candidate[:2] < current[:2]:
            self.found[key] = candidate

    def _notice(self, rel: str, reason: str) -> None:
        self.notices.add(Notice(_printable(rel), reason))

    def _rel_to_root(self, absolute: str) -> str | None:
        """``absolute`` relative to the root (POSIX, ``""`` for the root itself), or ``None``."""
        for path, root in ((absolute, self.root), (os.path.realpath(absolute), self.real_root)):
            if path == root:
                return ""
            prefix = root if root.endswith(os.sep) else root + os.sep
            if path.startswith(prefix):
                return path[len(prefix) :].replace(os.sep, "/")
        return None

    def _excludes_for(self, start_match: str | None) -> _Patterns:
        """The exclude patterns for one walk, minus any that exclude the named directory itself."""
        patterns: Iterable[str] = self.config.effective_excludes
        if start_match:
            probe = start_match + "/"
            patterns = [p for p in patterns if not _compile([p]).match_file(probe)]
        return _Patterns(_compile(patterns))

    def _parent_ignores(self, start: str) -> tuple[_IgnoreFile, ...]:
        """The ignore files that apply to ``start`` from above it, outermost first.

        They are read from the git top-level down (``.git/info/exclude`` first,
        as the weakest); outside a git work tree, from the root down when
        ``start`` is inside the root.
        """
        top = _git_toplevel(start)
        if top is None:
            if self._rel_to_root(start) is None:
                return ()
            top = self.root
        ignores: list[_IgnoreFile | None] = []
        if os.path.isdir(os.path.join(top, ".git")):
            ignores.append(self._ignore_file(os.path.join(top, ".git"), "info/exclude", base=top))
        directories: list[str] = []
        directory = start
        while directory != top:
            parent = os.path.dirname(directory)
            if parent == directory:
                # ``start`` is inside the root only once symlinks are resolved.
                directories = []
                break
            directories.append(parent)
            directory = parent
        ignores.extend(self._ignore_file(d, ".gitignore") for d in reversed(directories))
        return tuple(i for i in ignores if i is not None)

    def _ignore_file(
        self, directory: str, name: str, base: str | None = None
    ) -> _IgnoreFile | None:
        path = os.path.join(directory, name)
        if path not in self.ignore_cache:
            self.ignore_cache[path] = self._read_ignore_file(path, base or directory)
        return self.ignore_cache[path]

    def _read_ignore_file(self, path: str, base: str) -> _IgnoreFile | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            rel = self._rel_to_root(path)
            shown = Path(path).as_posix() if rel is None else rel
            self._notice(shown, f"cannot read ignore file: {_os_reason(exc)}")
            return None
        lines = data.decode("utf-8", "surrogateescape").splitlines()
        prefix = base if base.endswith(os.sep) else base + os.sep
        return _IgnoreFile(prefix, _Patterns(_compile(lines)))


def _excluded(
    excludes: _Patterns,
    ignores: tuple[_IgnoreFile, ...],
    match: str,
    path: str,
    *,
    is_dir: bool,
) -> bool:
    if excludes.verdict(match + "/" if is_dir else match):
        return True
    return _gitignored(ignores, path, is_dir=is_dir)


def _gitignored(ignores: tuple[_IgnoreFile, ...], path: str, *, is_dir: bool) -> bool:
    """Git's precedence: the deepest ignore file with a matching pattern decides."""
    for ignore in reversed(ignores):
        if not path.startswith(ignore.prefix):
            continue
        rel = path[len(ignore.prefix) :].replace(os.sep, "/")
        verdict = ignore.patterns.verdict(rel + "/" if is_dir else rel)
        if verdict is not None:
            return verdict
    return False


def _compile(lines: Iterable[str]) -> pathspec.GitIgnoreSpec:
    """Compile gitignore-style lines, dropping invalid ones as git itself does."""
    lines = list(lines)
    try:
        return pathspec.GitIgnoreSpec.from_lines(lines)
    except ValueError:
        valid = []
        for line in lines:
            try:
                pathspec.GitIgnoreSpec.from_lines([line])
            except ValueError:
                continue
            valid.append(line)
        return pathspec.GitIgnoreSpec.from_lines(valid)


def _git_toplevel(start: str) -> str | None:
    directory = start
    while True:
        if os.path.lexists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def _is_python_file(path: str) -> bool:
    """``.py``, or an extension-less script whose shebang runs Python (pre-commit passes those)."""
    if path.endswith(".py"):
        return True
    if os.path.splitext(path)[1]:
        return False
    try:
        with open(path, "rb") as handle:
            first = handle.readline(256)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def _stat_failure(path: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return "dangling symlink" if os.path.islink(path) else "no such file or directory"
    return _os_reason(exc)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or str(exc)).lower()


def _given_rel(given: Path) -> str:
    """A path outside the root as the user wrote it (POSIX), ``""`` for ``.``."""
    rel = Path(given).as_posix()
    return "" if rel == "." else rel


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _printable(rel: str) -> str:
    """Show undecodable file-name bytes as ``\\xNN`` instead of crashing on output."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")
