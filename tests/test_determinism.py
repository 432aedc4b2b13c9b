"""The same project gives byte-identical output, whatever the order the file system lists it in.

The project is a mix of the fixture projects plus files that produce notices
(a syntax error, a binary file, newer-Python syntax), so findings, jobs and
notices from many files must all come out in one stable order.  Every output
format of ``check``, ``jobs`` and ``report`` is compared.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from jobaudit.cli import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _formats(command: str) -> tuple[str, ...]:
    for param in main.commands[command].params:
        if "--format" in getattr(param, "opts", ()) and isinstance(param.type, click.Choice):
            return tuple(str(choice) for choice in param.type.choices)
    return ("text",)


RENDERINGS = [
    (command, fmt)
    for command in ("check", "jobs", "report")
    if command in main.commands
    for fmt in _formats(command)
]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("determinism") / "project"
    for source in sorted((FIXTURES / "projects").iterdir()):
        shutil.copytree(source, root / source.name)
    rule_fixtures = sorted((FIXTURES / "rules").rglob("*.py"))
    for index, path in enumerate(rule_fixtures[:: max(1, len(rule_fixtures) // 30)]):
        target = root / "rules" / f"r{index:03d}_{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    (root / "broken.py").write_text("import celery\ndef broken(:\n")
    (root / "binary.py").write_bytes(b"\x89PNG\r\n\x00")
    (root / "newer.py").write_text("try:\n    pass\nexcept ValueError, KeyError:\n    pass\n")
    return root


def _outputs(*paths: Path | str) -> dict[tuple[str, str], str]:
    outputs: dict[tuple[str, str], str] = {}
    for command, fmt in RENDERINGS:
        args = [command, *map(str, paths), "--format", fmt]
        result = CliRunner().invoke(main, args)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        outputs[command, fmt] = result.stdout + "\n--- stderr ---\n" + result.stderr
    return outputs


@pytest.fixture(scope="module")
def baseline(project: Path) -> dict[tuple[str, str], str]:
    outputs = _outputs(project)
    assert "JOB301" in outputs["check", "text"]
    assert "broken.py:2: syntax error" in outputs["check", "text"]
    return outputs


def _assert_same(expected: dict[tuple[str, str], str], actual: dict[tuple[str, str], str]) -> None:
    for key, output in expected.items():
        assert actual[key] == output, f"{key} differs"


def test_two_runs_are_identical(project: Path, baseline: dict[tuple[str, str], str]) -> None:
    _assert_same(baseline, _outputs(project))


class _Listing:
    """What ``os.scandir`` returns, with the entries in another order."""

    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)

    def __next__(self) -> os.DirEntry[str]:
        raise StopIteration

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def close(self) -> None:
        return None


def _reorder(monkeypatch: pytest.MonkeyPatch, order: Callable[[list[Any]], list[Any]]) -> None:
    scandir, listdir = os.scandir, os.listdir

    def reordered_scandir(path: Any = ".") -> _Listing:
        with scandir(path) as iterator:
            return _Listing(order(list(iterator)))

    def reordered_listdir(path: Any = ".") -> list[Any]:
        return order(listdir(path))

    monkeypatch.setattr(os, "scandir", reordered_scandir)
    monkeypatch.setattr(os, "listdir", reordered_listdir)


@pytest.mark.parametrize("seed", [None, 1, 2])
def test_file_system_order_does_not_matter(
    project: Path,
    baseline: dict[tuple[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
    seed: int | None,
) -> None:
    def order(items: list[Any]) -> list[Any]:
        if seed is None:
            return items[::-1]
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        return shuffled

    _reorder(monkeypatch, order)
    _assert_same(baseline, _outputs(project))


def test_argument_order_does_not_matter(project: Path) -> None:
    first, second = project / "demo", project / "rules"
    _assert_same(_outputs(first, second), _outputs(second, first))


def test_hash_seed_does_not_matter(project: Path) -> None:
    """Set and dict order of strings changes with PYTHONHASHSEED; output must not."""

    def run(seed: str, fmt: str) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "jobaudit", "check", str(project), "--format", fmt],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert completed.returncode == 1, completed.stderr
        return completed.stdout + completed.stderr

    for fmt in _formats("check"):
        assert run("1", fmt) == run("2", fmt), fmt


def test_parallel_jobs_do_not_change_output(
    project: Path, baseline: dict[tuple[str, str], str]
) -> None:
    options = {opt for param in main.commands["check"].params for opt in param.opts}
    if "--jobs" not in options:
        pytest.skip("check has no --jobs option yet")
    for fmt in _formats("check"):
        result = CliRunner().invoke(main, ["check", str(project), "--format", fmt, "--jobs", "4"])
        output = result.stdout + "\n--- stderr ---\n" + result.stderr
        assert output == baseline["check", fmt], fmt
