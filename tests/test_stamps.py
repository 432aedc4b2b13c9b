"""File digests remembered by ``stat``: unchanged files are not read, changed ones always are."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit import corpus, source, stamps
from jobaudit.cli import main
from jobaudit.files import SourceFile
from jobaudit.stamps import Stamps, content_digest

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "demo"
LATER = 10_000_000_000
"""Ten seconds, in nanoseconds: a clock this far ahead sees every file as settled."""


def _file(tmp_path: Path, text: str) -> SourceFile:
    path = tmp_path / "jobs.py"
    path.write_text(text, encoding="utf-8")
    return SourceFile("jobs.py", path)


def _no_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make every read of a Python file fail the test; return where they were attempted."""
    attempts: list[str] = []

    def refuse(file: SourceFile) -> bytes | None:
        attempts.append(file.relpath)
        raise AssertionError(f"{file.relpath} was read")

    monkeypatch.setattr(source, "read_bytes", refuse)  # stamps imports it when it must read
    monkeypatch.setattr(corpus, "read_bytes", refuse)
    return attempts


def test_a_settled_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = _file(tmp_path, "x = 1\n")
    first = Stamps(now=time.time_ns() + LATER)
    assert first.digest(file) == content_digest(b"x = 1\n")
    assert first.changed
    _no_reads(monkeypatch)
    assert Stamps(first.index).digest(file) == content_digest(b"x = 1\n")


def test_an_edit_that_keeps_size_and_mtime_is_seen(tmp_path: Path) -> None:
    file = _file(tmp_path, "x = 1\n")
    before = os.stat(file.path)
    first = Stamps(now=time.time_ns() + LATER)
    first.digest(file)
    time.sleep(0.02)  # past the filesystem's timestamp granularity
    file.path.write_text("x = 2\n", encoding="utf-8")
    os.utime(file.path, ns=(before.st_atime_ns, before.st_mtime_ns))  # a `touch -d` or rsync -t
    assert Stamps(first.index, now=time.time_ns() + LATER).digest(file) == content_digest(
        b"x = 2\n"
    )


def test_a_file_changed_just_now_is_not_remembered(tmp_path: Path) -> None:
    file = _file(tmp_path, "x = 1\n")
    fresh = Stamps()
    assert fresh.digest(file) == content_digest(b"x = 1\n")
    assert fresh.index == {}


def test_unreadable_files_have_no_digest(tmp_path: Path) -> None:
    binary = tmp_path / "blob.py"
    binary.write_bytes(b"\x00\x01")
    ahead = Stamps(now=time.time_ns() + LATER)
    assert ahead.digest(SourceFile("blob.py", binary)) is None
    assert ahead.digest(SourceFile("gone.py", tmp_path / "gone.py")) is None
    assert ahead.index == {}


def test_a_warm_check_reads_no_python_file_and_an_edit_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stamps, "SETTLED", -LATER)
    tree = shutil.copytree(DEMO, tmp_path / "demo")
    args = ["check", str(tree), "--format", "json"]
    first = CliRunner().invoke(main, args)
    with monkeypatch.context() as inner:
        attempts = _no_reads(inner)
        assert CliRunner().invoke(main, args).stdout == first.stdout
        assert CliRunner().invoke(main, [*args, "--select", "JOB4"]).exit_code in (0, 1)
        assert attempts == []
    time.sleep(0.02)
    settings = tree / "shop" / "settings.py"
    settings.write_text(settings.read_text(encoding="utf-8") + "CELERY_TASK_TIME_LIMIT = 60\n")
    edited = CliRunner().invoke(main, args).stdout
    assert edited != first.stdout
    assert edited == CliRunner().invoke(main, [*args, "--no-cache"]).stdout


def test_nothing_is_remembered_where_ctime_is_the_creation_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stamps, "TRUSTED", False)  # Windows
    file = _file(tmp_path, "x = 1\n")
    ahead = Stamps(now=time.time_ns() + LATER)
    assert ahead.digest(file) == content_digest(b"x = 1\n")
    assert ahead.index == {}
