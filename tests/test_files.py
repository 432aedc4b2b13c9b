"""File discovery: walking, excludes, .gitignore, symlinks and unreadable paths."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jobaudit.config import Config
from jobaudit.files import RealPaths, SourceFile, _compile, _Patterns, discover
from jobaudit.notices import Notice

needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges")
not_root = pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root bypasses permissions"
)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def _touch(root: Path, *relpaths: str, text: str = "x = 1\n") -> None:
    for relpath in relpaths:
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _relpaths(tmp_path: Path, *paths: Path | str, **settings: object) -> list[str]:
    found, notices = _discover(tmp_path, *paths, **settings)
    assert notices == []
    return [f.relpath for f in found]


def _discover(
    tmp_path: Path, *paths: Path | str, **settings: object
) -> tuple[list[SourceFile], list[Notice]]:
    config = Config(root=tmp_path, source=None).with_overrides(**settings)
    return discover([Path(p) for p in paths] or [tmp_path], config)


class TestWalk:
    def test_python_files_sorted(self, tmp_path: Path) -> None:
        _touch(tmp_path, "b.py", "a/z.py", "a/b/c.py", "README.md", "setup.cfg", "a/data.pyc")
        assert _relpaths(tmp_path) == ["a/b/c.py", "a/z.py", "b.py"]

    def test_paths_are_absolute(self, tmp_path: Path) -> None:
        _touch(tmp_path, "pkg/tasks.py")
        found, _ = _discover(tmp_path, "pkg")
        assert found == [SourceFile("pkg/tasks.py", tmp_path / "pkg" / "tasks.py")]
        assert found[0].path.is_absolute()

    def test_no_paths_means_cwd(self, tmp_path: Path) -> None:
        _touch(tmp_path, "a.py")
        found, _ = discover([], Config(root=tmp_path, source=None))
        assert [f.relpath for f in found] == ["a.py"]

    def test_relative_to_root_not_cwd(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _touch(tmp_path, "src/app/tasks.py")
        monkeypatch.chdir(tmp_path / "src")
        assert _relpaths(tmp_path, ".") == ["src/app/tasks.py"]

    def test_outside_root_keeps_given_path(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        root.mkdir()
        _touch(tmp_path, "other/jobs.py")
        found, _ = discover([Path("other")], Config(root=root, source=None))
        assert [f.relpath for f in found] == ["other/jobs.py"]

    def test_dot_outside_root(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        root = tmp_path / "root"
        root.mkdir()
        _touch(tmp_path, "other/jobs.py")
        monkeypatch.chdir(tmp_path / "other")
        found, _ = discover([Path(".")], Config(root=root, source=None))
        assert [f.relpath for f in found] == ["jobs.py"]

    def test_overlapping_arguments_are_deduplicated(self, tmp_path: Path) -> None:
        _touch(tmp_path, "pkg/a.py", "pkg/sub/b.py")
        assert _relpaths(tmp_path, "pkg", "pkg/sub", "pkg/a.py", tmp_path / "pkg" / "a.py") == [
            "pkg/a.py",
            "pkg/sub/b.py",
        ]

    def test_independent_of_directory_order(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _touch(tmp_path, *(f"d{i}/m{j}.py" for i in range(4) for j in range(4)))
        (tmp_path / "d1" / ".gitignore").write_text("m2.py\n")
        first = _discover(tmp_path)
        real_scandir = os.scandir

        class Reversed:
            def __init__(self, path: str) -> None:
                self.iterator = real_scandir(path)

            def __enter__(self) -> Iterator[os.DirEntry[str]]:
                return iter(sorted(self.iterator, key=lambda e: e.name, reverse=True))

            def __exit__(self, *exc: object) -> None:
                self.iterator.close()

        monkeypatch.setattr(os, "scandir", Reversed)
        assert _discover(tmp_path) == first
        assert "d1/m2.py" not in [f.relpath for f in first[0]]


class TestExcludes:
    def test_default_excludes(self, tmp_path: Path) -> None:
        _touch(
            tmp_path,
            "app/tasks.py",
            ".venv/lib/site.py",
            "venv/x.py",
            "app/__pycache__/tasks.py",
            "node_modules/pkg/x.py",
            "build/lib/app/tasks.py",
            "dist/x.py",
            "proj.egg-info/x.py",
            ".tox/py311/x.py",
            ".git/hooks/x.py",
            ".jobaudit_cache/x.py",
        )
        assert _relpaths(tmp_path) == ["app/tasks.py"]

    def test_migrations_are_not_excluded(self, tmp_path: Path) -> None:
        _touch(tmp_path, "shop/migrations/0002_backfill.py")
        assert _relpaths(tmp_path) == ["shop/migrations/0002_backfill.py"]

    def test_exclude_replaces_defaults(self, tmp_path: Path) -> None:
        _touch(tmp_path, "build/x.py", "legacy/y.py")
        assert _relpaths(tmp_path, exclude=("legacy",)) == ["build/x.py"]

    def test_extend_exclude_keeps_defaults(self, tmp_path: Path) -> None:
        _touch(tmp_path, "build/x.py", "legacy/y.py", "z.py")
        assert _relpaths(tmp_path, extend_exclude=("legacy",)) == ["z.py"]

    def test_anchored_pattern(self, tmp_path: Path) -> None:
        _touch(tmp_path, "src/legacy/a.py", "other/legacy/b.py")
        assert _relpaths(tmp_path, extend_exclude=("src/legacy",)) == ["other/legacy/b.py"]

    def test_component_pattern_at_any_depth(self, tmp_path: Path) -> None:
        _touch(tmp_path, "src/legacy/a.py", "other/legacy/b.py", "keep.py")
        assert _relpaths(tmp_path, extend_exclude=("legacy",)) == ["keep.py"]

    def test_file_glob(self, tmp_path: Path) -> None:
        _touch(tmp_path, "a/models_pb2.py", "a/models.py")
        assert _relpaths(tmp_path, extend_exclude=("*_pb2.py",)) == ["a/models.py"]

    def test_explicit_file_is_included_even_if_excluded(self, tmp_path: Path) -> None:
        _touch(tmp_path, "build/gen.py")
        assert _relpaths(tmp_path, "build/gen.py") == ["build/gen.py"]

    def test_explicit_excluded_directory_is_walked(self, tmp_path: Path) -> None:
        _touch(tmp_path, "build/gen.py", "build/.venv/x.py")
        assert _relpaths(tmp_path, "build") == ["build/gen.py"]

    def test_excluded_root_component_outside_root(self, tmp_path: Path) -> None:
        root = tmp_path / "root"
        root.mkdir()
        _touch(tmp_path, "vendor/pkg/a.py", "vendor/pkg/.venv/b.py")
        found, _ = discover([Path("vendor")], Config(root=root, source=None))
        assert [f.relpath for f in found] == ["vendor/pkg/a.py"]


class TestGitignore:
    def test_ignored_file_and_directory(self, tmp_path: Path) -> None:
        (tmp_path / ".git").mkdir()
        (tmp_path / ".gitignore").write_text("# generated\ngenerated/\nlocal_settings.py\n")
        _touch(tmp_path, "app/tasks.py", "generated/api.py", "app/local_settings.py")
        assert _relpaths(tmp_path) == ["app/tasks.py"]

    def test_respect_gitignore_off(self, tmp_path: Path) -> None:
        (tmp_path / ".gitignore").write_text("generated/\n")
        _touch(tmp_path, "generated/api.py")
        assert _relpaths(tmp_path, respect_gitignore=False) == ["generated/api.py"]

    def test_nested_gitignore_and_negation(self, tmp_path: Path) -> None:
        (tmp_path / ".git").mkdir()
        (tmp_path / ".gitignore").write_text("*_gen.py\n")
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / ".gitignore").write_text("!keep_gen.py\n/local.py\n")
        _touch(tmp_path, "a_gen.py", "pkg/b_gen.py", "pkg/keep_gen.py", "pkg/local.py")
        _touch(tmp_path, "pkg/sub/local.py")
        assert _relpaths(tmp_path) == ["pkg/keep_gen.py", "pkg/sub/local.py"]

    def test_parent_gitignore_applies_to_a_subdirectory_argument(self, tmp_path: Path) -> None:
        (tmp_path / ".git").mkdir()
        (tmp_path / ".gitignore").write_text("src/pkg/generated/\n")
        _touch(tmp_path, "src/pkg/generated/x.py", "src/pkg/y.py")
        assert _relpaths(tmp_path, "src/pkg") == ["src/pkg/y.py"]

    def test_gitignore_above_git_toplevel_is_not_read(self, tmp_path: Path) -> None:
        (tmp_path / ".gitignore").write_text("*.py\n")
        repo = tmp_path / "repo"
        (repo / ".git").mkdir(parents=True)
        _touch(repo, "a.py")
        found, _ = discover([repo], Config(root=repo, source=None))
        assert [f.relpath for f in found] == ["a.py"]

    def test_info_exclude(self, tmp_path: Path) -> None:
        (tmp_path / ".git" / "info").mkdir(parents=True)
        (tmp_path / ".git" / "info" / "exclude").write_text("scratch.py\n")
        _touch(tmp_path, "scratch.py", "a.py")
        assert _relpaths(tmp_path) == ["a.py"]

    def test_root_gitignore_without_git_applies_to_a_subdirectory(self, tmp_path: Path) -> None:
        (tmp_path / ".gitignore").write_text("generated/\n")
        _touch(tmp_path, "pkg/generated/x.py", "pkg/y.py")
        assert _relpaths(tmp_path, "pkg") == ["pkg/y.py"]

    def test_gitignore_inside_tree_without_git(self, tmp_path: Path) -> None:
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / ".gitignore").write_text("skip.py\n")
        _touch(tmp_path, "pkg/skip.py", "pkg/ok.py")
        assert _relpaths(tmp_path) == ["pkg/ok.py"]

    def test_explicit_ignored_directory_is_walked(self, tmp_path: Path) -> None:
        (tmp_path / ".git").mkdir()
        (tmp_path / ".gitignore").write_text("scripts/\n")
        _touch(tmp_path, "scripts/run.py")
        assert _relpaths(tmp_path, "scripts") == ["scripts/run.py"]

    def test_invalid_gitignore_lines_are_skipped(self, tmp_path: Path) -> None:
        (tmp_path / ".gitignore").write_text("!\nskip.py\n")
        _touch(tmp_path, "skip.py", "ok.py")
        assert _relpaths(tmp_path) == ["ok.py"]


class TestProblems:
    def test_missing_path(self, tmp_path: Path) -> None:
        found, notices = _discover(tmp_path, "nope.py", "nodir")
        assert found == []
        assert notices == [
            Notice("nodir", "no such file or directory"),
            Notice("nope.py", "no such file or directory"),
        ]

    def test_explicit_non_python_file(self, tmp_path: Path) -> None:
        _touch(tmp_path, "notes.txt")
        found, notices = _discover(tmp_path, "notes.txt")
        assert found == []
        assert notices == [Notice("notes.txt", "not a Python source file (expected .py), skipped")]

    def test_explicit_python_script_without_extension(self, tmp_path: Path) -> None:
        _touch(tmp_path, "bin/worker", text="#!/usr/bin/env python3\nx = 1\n")
        assert _relpaths(tmp_path, "bin/worker") == ["bin/worker"]

    @not_root
    def test_unreadable_directory(self, tmp_path: Path) -> None:
        _touch(tmp_path, "ok.py", "secret/x.py")
        (tmp_path / "secret").chmod(0)
        try:
            found, notices = _discover(tmp_path)
        finally:
            (tmp_path / "secret").chmod(0o755)
        assert [f.relpath for f in found] == ["ok.py"]
        assert notices == [Notice("secret", "cannot read directory: permission denied")]

    def test_unreadable_directory_simulated(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _touch(tmp_path, "ok.py", "secret/x.py", "zz/y.py")
        real_scandir = os.scandir

        def scandir(path: str) -> object:
            if os.path.basename(path) == "secret":
                raise PermissionError(13, "Permission denied", path)
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
        found, notices = _discover(tmp_path)
        assert [f.relpath for f in found] == ["ok.py", "zz/y.py"]
        assert notices == [Notice("secret", "cannot read directory: permission denied")]

    def test_unreadable_gitignore_simulated(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / ".gitignore").write_text("x.py\n")
        _touch(tmp_path, "x.py")
        real_open = open

        def guarded_open(file: str, *args: object, **kwargs: object) -> object:
            if os.fspath(file).endswith(".gitignore"):
                raise PermissionError(13, "Permission denied", file)
            return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

        monkeypatch.setattr("builtins.open", guarded_open)
        found, notices = _discover(tmp_path)
        assert [f.relpath for f in found] == ["x.py"]
        assert notices == [Notice(".gitignore", "cannot read ignore file: permission denied")]

    @pytest.mark.skipif(sys.platform != "linux", reason="needs a filesystem that accepts any bytes")
    def test_undecodable_file_name(self, tmp_path: Path) -> None:
        raw = os.path.join(os.fsencode(tmp_path), b"caf\xff.py")
        with open(raw, "wb") as handle:
            handle.write(b"x = 1\n")
        found, _ = _discover(tmp_path)
        assert [f.relpath for f in found] == ["caf\\xff.py"]
        assert found[0].path.read_bytes() == b"x = 1\n"


@needs_symlinks
class TestSymlinks:
    def test_symlinked_directory_loop_does_not_hang(self, tmp_path: Path) -> None:
        _touch(tmp_path, "pkg/a.py")
        (tmp_path / "pkg" / "loop").symlink_to(tmp_path, target_is_directory=True)
        (tmp_path / "pkg" / "self").symlink_to(".", target_is_directory=True)
        assert _relpaths(tmp_path) == ["pkg/a.py"]

    def test_symlink_to_file_inside_tree_counted_once(self, tmp_path: Path) -> None:
        _touch(tmp_path, "real/tasks.py")
        (tmp_path / "alias.py").symlink_to(tmp_path / "real" / "tasks.py")
        assert _relpaths(tmp_path) == ["real/tasks.py"]

    def test_symlink_to_file_outside_tree(self, tmp_path: Path) -> None:
        outside = tmp_path / "outside"
        _touch(outside, "shared.py")
        project = tmp_path / "project"
        project.mkdir()
        (project / "shared.py").symlink_to(outside / "shared.py")
        found, _ = discover([project], Config(root=project, source=None))
        assert found == [SourceFile("shared.py", project / "shared.py")]

    def test_dangling_symlink_gives_notice(self, tmp_path: Path) -> None:
        _touch(tmp_path, "ok.py")
        (tmp_path / "gone.py").symlink_to(tmp_path / "missing.py")
        (tmp_path / "gone_dir").symlink_to(tmp_path / "missing", target_is_directory=True)
        found, notices = _discover(tmp_path)
        assert [f.relpath for f in found] == ["ok.py"]
        assert notices == [Notice("gone.py", "dangling symlink")]

    def test_symlink_file_loop_gives_notice(self, tmp_path: Path) -> None:
        (tmp_path / "a.py").symlink_to(tmp_path / "b.py")
        (tmp_path / "b.py").symlink_to(tmp_path / "a.py")
        found, notices = _discover(tmp_path)
        assert found == []
        assert notices == [Notice("a.py", "symlink loop"), Notice("b.py", "symlink loop")]

    def test_explicit_dangling_symlink(self, tmp_path: Path) -> None:
        (tmp_path / "gone.py").symlink_to(tmp_path / "missing.py")
        assert _discover(tmp_path, "gone.py") == ([], [Notice("gone.py", "dangling symlink")])

    def test_explicit_symlinked_directory_is_followed(self, tmp_path: Path) -> None:
        _touch(tmp_path, "real/a.py")
        (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
        found, _ = _discover(tmp_path, "link")
        assert [f.relpath for f in found] == ["link/a.py"]

    def test_excluded_symlink_is_skipped(self, tmp_path: Path) -> None:
        _touch(tmp_path, "elsewhere/x.py")
        (tmp_path / "gen_x.py").symlink_to(tmp_path / "elsewhere" / "x.py")
        found, _ = _discover(tmp_path, extend_exclude=("gen_*.py", "elsewhere"))
        assert found == []


_PATTERN_LINES = st.lists(
    st.sampled_from(
        [
            "build",
            "*.py",
            "!keep.py",
            "/docs/",
            "a/**/b",
            "**/tests",
            "src/*.py",
            "!src/",
            "x?",
            "[ab]*.py",
            "# comment",
            "",
            "dist/",
            "!dist/keep/",
            "\\!bang",
            "*.egg-info",
            "a b",
            "(?P<g>x)",
            "\\#hash",
            "**",
            "node_modules",
            "keep.py",
            ".env",
            "x1/",
            "...",
            "tests ",
        ]
    ),
    max_size=8,
)
_PATHS = st.lists(
    st.sampled_from(
        ["a", "b", "build", "docs", "src", "x1", "tests", "keep.py", "dist", "(?P<g>x)", ".env"]
    ),
    min_size=1,
    max_size=4,
).map("/".join)


@settings(max_examples=1000, deadline=None)
@given(lines=_PATTERN_LINES, path=_PATHS, is_dir=st.booleans())
def test_the_quick_test_never_changes_a_verdict(lines: list[str], path: str, is_dir: bool) -> None:
    spec = _compile(lines)
    probe = path + "/" if is_dir else path
    assert _Patterns(spec).verdict(probe) == spec.check_file(probe).include


@needs_symlinks
def test_real_paths_find_a_given_file_under_any_path(tmp_path: Path) -> None:
    real = tmp_path / "proj" / "shop"
    real.mkdir(parents=True)
    (real / "tasks.py").write_text("")
    (real / "other.py").write_text("")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "tasks.py").write_text("")
    (tmp_path / "linked").symlink_to(real, target_is_directory=True)
    (tmp_path / "alias.py").symlink_to(real / "tasks.py")
    given = RealPaths([real / "tasks.py"])
    expected = os.path.realpath(real / "tasks.py")

    assert given.of(real / "tasks.py") == expected
    assert given.of(tmp_path / "linked" / "tasks.py") == expected  # through a symlinked folder
    assert given.of(tmp_path / "alias.py") == expected  # a symlink with another name
    assert given.of(tmp_path / "elsewhere" / "tasks.py") is None  # same name, another file
    assert given.of(real / "other.py") is None
