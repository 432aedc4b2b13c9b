"""The pre-commit hook, run by the real ``pre-commit try-repo``, and the file mode it relies on.

``try-repo`` installs the hook from a git repository into its own virtualenv
(``pip install .``, which needs PyPI for the build backend).  It only sees
files the repository tracks, so the test commits a copy of this checkout,
tracked and untracked files alike, into a throwaway repository first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from jobaudit.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}

APP = """\
import sentry_sdk
from celery import Celery

sentry_sdk.init(dsn="https://key@sentry.example.com/1")

app = Celery("shop")
app.conf.task_time_limit = 300
app.conf.worker_send_task_events = True
"""
"""A production-ready app (time limit, error tracking, task events), so the project rules
stay quiet and each test is about the one task it writes."""

UNBOUNDED = """\
from shop.celery import app


@app.task(bind=True, max_retries=None, autoretry_for=(OSError,), retry_backoff=True)
def sync(self, order_id):
    pass
"""

BOUNDED = UNBOUNDED.replace("max_retries=None", "max_retries=5")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=ENV
    ).stdout


def shop(root: Path, tasks: str) -> Path:
    package = root / "shop"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "celery.py").write_text(APP)
    (package / "tasks.py").write_text(tasks)
    return root


def hook_repository(target: Path) -> Path:
    """This checkout as a committed git repository, as a release of it would be."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "commit", "-q", "-m", "jobaudit")
    return target


def try_repo(
    project: Path, hooks: Path, home: Path, *args: str, hook: str = "jobaudit"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks), hook, *args],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={**ENV, "PRE_COMMIT_HOME": str(home)},
    )


def test_manifest_is_valid() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", ".pre-commit-hooks.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_hook_fails_on_a_finding_and_passes_once_fixed(tmp_path: Path) -> None:
    hooks = hook_repository(tmp_path / "hooks")
    project = shop(tmp_path / "project", UNBOUNDED)
    git(project, "init", "-q")
    git(project, "add", "-A")

    failed = try_repo(project, hooks, tmp_path / "cache", "--all-files")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "jobaudit" in output and "Failed" in output
    assert "shop/tasks.py:4:22: JOB301 [error] Task 'sync' retries forever" in output
    # The app's time limit is in shop/celery.py: JOB401 would fire without that context.
    assert "JOB401" not in output

    (project / "shop" / "tasks.py").write_text(BOUNDED)
    git(project, "add", "-A")
    # Only the changed file is passed; its project is still read for the app's settings.
    passed = try_repo(project, hooks, tmp_path / "cache", "--files", "shop/tasks.py")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout


STATEMENT_RETRY = """\
from shop.celery import app


@app.task(bind=True, max_retries=3)
def sync(self, order_id):
    try:
        pass
    except OSError as exc:
        self.retry(exc=exc, countdown=2**self.request.retries * 10)
"""


def test_fix_hook_fixes_and_fails_so_the_change_is_reviewed(tmp_path: Path) -> None:
    hooks = hook_repository(tmp_path / "hooks")
    project = shop(tmp_path / "project", STATEMENT_RETRY)
    git(project, "init", "-q")
    git(project, "add", "-A")

    fixed = try_repo(project, hooks, tmp_path / "cache", "--all-files", hook="jobaudit-fix")
    output = fixed.stdout + fixed.stderr
    assert fixed.returncode == 1, output
    assert "files were modified by this hook" in output
    tasks = (project / "shop" / "tasks.py").read_text()
    assert tasks == STATEMENT_RETRY.replace("        self.retry(", "        raise self.retry(")

    git(project, "add", "-A")
    again = try_repo(project, hooks, tmp_path / "cache", "--all-files", hook="jobaudit-fix")
    assert again.returncode == 0, again.stdout + again.stderr


# -- files given alone: reported on, analysed within their project -------------------------


def check(cwd: Path, *args: str) -> tuple[int, str, str]:
    runner = CliRunner()
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = runner.invoke(main, ["check", *args])
    finally:
        os.chdir(previous)
    return result.exit_code, result.stdout, result.stderr


def test_a_file_alone_sees_its_project_in_git(tmp_path: Path) -> None:
    project = shop(tmp_path / "repo", UNBOUNDED)
    (project / "scripts").mkdir()
    (project / "scripts" / "broken.py").write_text("def (:\n")
    (project / "shop" / "other.py").write_text(UNBOUNDED.replace("def sync", "def other"))
    git(project, "init", "-q")
    code, out, err = check(project / "shop", "tasks.py")
    assert code == 1
    # Reported: only the file given; context: the app in celery.py (no JOB401), and the
    # unparsable script elsewhere in the tree is no concern of this run.
    assert out.splitlines()[0].startswith("tasks.py:4:22: JOB301")
    assert "other" not in out and "JOB401" not in out
    assert out.rstrip().endswith("in 1 job across 1 file.")
    assert "broken.py" not in err


def test_a_file_alone_outside_git_sees_its_package_root(tmp_path: Path) -> None:
    project = shop(tmp_path / "plain", UNBOUNDED)
    code, out, _ = check(project, "shop/tasks.py")
    assert code == 1
    assert "JOB301" in out and "JOB401" not in out


def test_config_root_is_the_context(tmp_path: Path) -> None:
    shop(tmp_path / "cfg" / "src", UNBOUNDED)
    (tmp_path / "cfg" / "pyproject.toml").write_text('[tool.jobaudit]\nignore = ["JOB302"]\n')
    code, out, _ = check(tmp_path / "cfg", "src/shop/tasks.py")
    assert code == 1
    assert "src/shop/tasks.py:4:22: JOB301" in out and "JOB401" not in out
