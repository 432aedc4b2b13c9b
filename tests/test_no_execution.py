"""jobaudit never imports or runs the code it analyses.

Every module of the scanned project has import-time side effects: it writes a
marker file and then ends the process (``sys.exit``, ``os._exit``) or raises.
Had jobaudit imported any of them, a marker would exist, or the run would have
ended with the module's exit code instead of reporting the finding.  The
project also holds modules named like the standard library and jobaudit's own
dependencies, which must not shadow them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cli import main

SIDE_EFFECT = """\
import os as _os
import sys as _sys
open(_os.path.join({markers!r}, {name!r}), "w").close()
{ending}
"""

ENDINGS = {
    "exit": "_sys.exit(97)",
    "hard-exit": "_os._exit(98)",
    "raise": "raise SystemExit(99)",
}

MODULES = {
    "conftest.py": ("exit", ""),
    "setup.py": ("hard-exit", "from setuptools import setup\nsetup(name='shop')\n"),
    "manage.py": ("exit", ""),
    "noxfile.py": ("raise", ""),
    "sitecustomize.py": ("hard-exit", ""),
    "usercustomize.py": ("hard-exit", ""),
    "__main__.py": ("hard-exit", ""),
    "proj/__init__.py": ("exit", "from .celery import app\n__all__ = ['app']\n"),
    "proj/celery.py": (
        "hard-exit",
        "from celery import Celery\napp = Celery('proj')\n"
        "app.config_from_object('django.conf:settings', namespace='CELERY')\n",
    ),
    "proj/settings.py": ("exit", "CELERY_TASK_TIME_LIMIT = 30\n"),
    "shop/__init__.py": ("raise", ""),
    "shop/tasks.py": (
        "hard-exit",
        "from proj.celery import app\n\n\n"
        "@app.task(bind=True, max_retries=None, autoretry_for=(ConnectionError,))\n"
        "def sync(self, order_id):\n    pass\n",
    ),
    "shop/newer.py": (
        "exit",
        "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n"
        'type Alias = int\nlabel = f"{\'a\' + "b"}"\n',
    ),
    "tests/conftest.py": ("exit", "import pytest\n"),
    # Modules named like what jobaudit imports: a sys.path entry for the
    # project would make them shadow the real ones.
    "click.py": ("hard-exit", ""),
    "json.py": ("hard-exit", ""),
    "ast.py": ("hard-exit", ""),
    "tokenize.py": ("hard-exit", ""),
    "pathspec.py": ("hard-exit", ""),
    "libcst.py": ("hard-exit", ""),
    "jobaudit.py": ("hard-exit", ""),
}


@pytest.fixture
def scanned(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "project"
    markers = tmp_path / "markers"
    markers.mkdir()
    for relpath, (ending, body) in MODULES.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        prologue = SIDE_EFFECT.format(
            markers=str(markers), name=relpath.replace("/", "."), ending=ENDINGS[ending]
        )
        # The side effect comes first, so that importing the module at all runs it.
        path.write_text(prologue + body)
    (root / "pyproject.toml").write_text("[tool.jobaudit]\nsettings-modules = ['proj.settings']\n")
    return root, markers


def _assert_analysed_without_running(root: Path, markers: Path, code: int, stdout: str) -> None:
    assert sorted(p.name for p in markers.iterdir()) == []
    assert code == 1, stdout
    findings = json.loads(stdout)["findings"]
    assert ("JOB301", "shop/tasks.py") in {(f["code"], f["path"]) for f in findings}


def test_in_process(scanned: tuple[Path, Path]) -> None:
    root, markers = scanned
    before = set(sys.modules)
    result = CliRunner().invoke(main, ["check", str(root), "--format", "json"])
    _assert_analysed_without_running(root, markers, result.exit_code, result.stdout)
    imported = set(sys.modules) - before
    assert not {name for name in imported if name.startswith(("proj", "shop", "conftest"))}


def _jobaudit() -> tuple[list[str], bool]:
    """The installed ``jobaudit`` script, and whether it may run from inside the project.

    ``python -c``/``-m`` would put the working directory on sys.path (Python's
    doing, not jobaudit's), so without the script the run starts beside it.
    """
    script = Path(sys.executable).with_name("jobaudit")
    if script.is_file():
        return [str(script)], True
    return [sys.executable, "-c", "from jobaudit.cli import main; main()"], False


@pytest.mark.parametrize("command", ["check", "jobs", "report"])
def test_in_a_fresh_process_run_from_inside_the_project(
    scanned: tuple[Path, Path], command: str
) -> None:
    """As users run it, from the project root."""
    root, markers = scanned
    prefix, inside = _jobaudit()
    cwd = root if inside else root.parent
    completed = subprocess.run(
        [*prefix, command, str(root)], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert completed.returncode in (0, 1), completed.stderr
    assert "Traceback" not in completed.stderr
    assert sorted(p.name for p in markers.iterdir()) == []
    if command == "check":
        json_run = subprocess.run(
            [*prefix, "check", str(root), "--format", "json"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        _assert_analysed_without_running(root, markers, json_run.returncode, json_run.stdout)


def test_newer_syntax_is_read_not_run(scanned: tuple[Path, Path]) -> None:
    """The libcst child that reads newer-Python files parses them, never runs them."""
    root, markers = scanned
    result = CliRunner().invoke(main, ["check", str(root / "shop"), "--format", "json"])
    assert sorted(p.name for p in markers.iterdir()) == []
    notices = json.loads(result.stdout)["notices"]
    assert [n for n in notices if n["path"].endswith("newer.py")] == []
