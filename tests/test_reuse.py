"""A warm ``check`` reuses the whole stored result, and only when no input changed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cache import CACHE_DIR, KEPT_RESULTS
from jobaudit.cli import main

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "demo"
REUSED = "reuse result"
"""The phase ``--timings`` shows when the stored result was printed."""


def _check(tree: Path, *args: str) -> tuple[str, str]:
    """``check`` on the tree: (stdout, stderr), with ``--timings`` on stderr."""
    done = CliRunner().invoke(main, ["check", str(tree), "--timings", *args])
    assert done.exit_code in (0, 1), done.output
    return done.stdout, done.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy)
    return copy


@pytest.mark.parametrize(
    "args",
    [
        ("--show-source", "--statistics"),
        ("--format", "json"),
        ("--format", "github"),
        ("--format", "json", "--select", "JOB3"),
        ("--quiet",),
    ],
)
def test_a_warm_check_prints_the_stored_result_byte_for_byte(
    tree: Path, args: tuple[str, ...]
) -> None:
    cold, _ = _check(tree, *args, "--no-cache")
    first, timings = _check(tree, *args)
    assert REUSED not in timings
    warm, timings = _check(tree, *args)
    assert REUSED in timings
    assert "(0 of 4 files parsed)" in timings
    assert first == warm == cold
    assert cold.strip()  # the demo has findings: the stored result is not empty


def test_a_warm_check_against_a_baseline(tree: Path) -> None:
    baseline = tree / "baseline.json"
    _check(tree, "--write-baseline", str(baseline))
    _touch_python(tree)  # one finding fewer: its baseline entry is stale

    def run(*args: str) -> tuple[str, str]:
        done = CliRunner().invoke(main, ["check", str(tree), "--baseline", str(baseline), *args])
        return done.stdout, done.stderr

    cold = run("--no-cache")
    assert "no longer found" in cold[1]
    assert run() == run() == cold
    assert REUSED in _check(tree, "--baseline", str(baseline))[1]


def _touch_python(tree: Path) -> None:
    with open(tree / "shop" / "settings.py", "a", encoding="utf-8") as handle:
        handle.write("CELERY_TASK_TIME_LIMIT = 60\n")


def _add_python(tree: Path) -> None:
    (tree / "shop" / "more.py").write_text(
        "from shop.celery import app\n\n\n@app.task\ndef more():\n    pass\n", encoding="utf-8"
    )


def _add_procfile(tree: Path) -> None:
    (tree / "Procfile").write_text("worker: celery -A shop worker --time-limit=60\n")


def _add_requirements(tree: Path) -> None:
    (tree / "requirements.txt").write_text("redis==5.0.1\n", encoding="utf-8")


def _configure(tree: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.jobaudit]\nignore = ["JOB301"]\n')


@pytest.mark.parametrize(
    "change", [_touch_python, _add_python, _add_procfile, _add_requirements, _configure]
)
def test_any_changed_input_is_analysed_again(tree: Path, change: Callable[[Path], None]) -> None:
    _check(tree, "--format", "json")
    assert REUSED in _check(tree, "--format", "json")[1]
    change(tree)
    after, timings = _check(tree, "--format", "json")
    assert REUSED not in timings
    assert after == _check(tree, "--format", "json", "--no-cache")[0]
    assert REUSED in _check(tree, "--format", "json")[1]


def test_changed_options_are_analysed_again(tree: Path) -> None:
    _check(tree)
    assert REUSED not in _check(tree, "--select", "JOB4")[1]
    assert REUSED not in _check(tree, "--preview")[1]
    assert REUSED in _check(tree)[1]


@pytest.mark.parametrize(
    "args",
    [("--format", "sarif"), ("--diff", "HEAD"), ("--no-cache",)],
)
def test_outputs_that_read_the_model_never_reuse(tree: Path, args: tuple[str, ...]) -> None:
    _check(tree)
    assert REUSED in _check(tree)[1]
    done = CliRunner().invoke(main, ["check", str(tree), "--timings", *args])
    assert REUSED not in done.stderr


def test_only_the_newest_results_are_kept(tree: Path) -> None:
    for index in range(KEPT_RESULTS + 3):
        (tree / "shop" / "extra.py").write_text(f"VALUE = {index}\n", encoding="utf-8")
        _check(tree)
    assert len(list((tree / CACHE_DIR / "results").iterdir())) == KEPT_RESULTS
    assert REUSED in _check(tree)[1]  # the newest one is among them


_MODULES_AFTER_CHECK = """\
import sys
from jobaudit.cli import main
try:
    main(["check", sys.argv[1], "--quiet"])
except SystemExit:
    pass
print(" ".join(sorted(name for name in sys.modules if name.startswith("jobaudit"))))
"""


def _modules_after_check(tree: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER_CHECK, str(tree)],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def test_a_warm_check_imports_no_rule_and_no_analysis(tree: Path) -> None:
    """The warm path is mostly Python's start-up and jobaudit's imports: it keeps them few."""
    analysis = {"jobaudit.checks", "jobaudit.corpus", "jobaudit.facts", "jobaudit.project"}
    cold = _modules_after_check(tree)
    assert analysis <= cold  # the check can see them when they are there
    warm = _modules_after_check(tree)
    assert not analysis & warm
