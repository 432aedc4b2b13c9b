"""``--diff REF`` on a real git repository: only what the change touched is reported."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cli import main
from jobaudit.diffmode import parse_diff

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}

TASKS = """\
import requests
from celery import shared_task


@shared_task(bind=True, max_retries=None, autoretry_for=(OSError,), retry_backoff=True)
def poll(self, url):
    return requests.get(url, timeout=5).json()


@shared_task(
    bind=True,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=3,
)
def refresh(self, url):
    return requests.get(url, timeout=5).json()
"""

NEW_JOB = """

@shared_task
def export(url):
    requests.get(url)
"""


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=ENV)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text("")
    (tmp_path / "app" / "tasks.py").write_text(TASKS)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "start")
    return tmp_path


def check(cwd: Path, *args: str) -> tuple[int, list[str], str]:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["check", *args])
    finally:
        os.chdir(previous)
    found = [
        line.split(": ")[0] + " " + line.split()[1]
        for line in result.stdout.splitlines()
        if ": JOB" in line
    ]
    return result.exit_code, found, result.stderr


def test_an_unchanged_tree_reports_nothing(repo: Path) -> None:
    assert check(repo)[1] == ["app/tasks.py:5:25 JOB301"]
    code, found, err = check(repo, "--diff", "HEAD")
    assert (code, found) == (0, [])
    assert "1 finding on lines unchanged since HEAD" in err


def test_only_findings_on_changed_lines(repo: Path) -> None:
    (repo / "app" / "tasks.py").write_text(TASKS + NEW_JOB)
    code, found, _ = check(repo, "--diff", "HEAD")
    assert code == 1
    assert found == ["app/tasks.py:22:5 JOB404"]


def test_committed_changes_since_an_older_ref(repo: Path) -> None:
    (repo / "app" / "tasks.py").write_text(TASKS + NEW_JOB)
    git(repo, "commit", "-q", "-am", "export")
    assert check(repo, "--diff", "HEAD")[1] == []
    assert check(repo, "--diff", "HEAD~1")[1] == ["app/tasks.py:22:5 JOB404"]


def test_a_deleted_line_counts_for_the_lines_around_it(repo: Path) -> None:
    (repo / "app" / "tasks.py").write_text(TASKS.replace("    retry_backoff=True,\n", ""))
    code, found, _ = check(repo, "--diff", "HEAD")
    assert code == 1
    assert found == ["app/tasks.py:12:5 JOB302"]


def test_untracked_files_are_new_throughout(repo: Path) -> None:
    (repo / "app" / "jobs.py").write_text(TASKS + NEW_JOB)
    _, found, _ = check(repo, "--diff", "HEAD")
    assert found == ["app/jobs.py:5:25 JOB301", "app/jobs.py:22:5 JOB404"]
    # A git-ignored file is not part of any change, even when named.
    ignored = repo / ".gitignore"
    ignored.write_text("build/\n")
    (repo / "build").mkdir()
    (repo / "build" / "tasks.py").write_text(TASKS)
    _, found, _ = check(repo, "build/tasks.py", "--diff", "HEAD")
    assert found == []


def test_project_rules_need_a_deciding_file_to_change(repo: Path) -> None:
    stale = TASKS.replace("def poll(self, url):\n", "def poll(self, url):  # noqa: JOB302\n")
    (repo / "app" / "tasks.py").write_text(stale)
    (repo / "app" / "other.py").write_text("VALUE = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "stale noqa")
    everything = ["app/tasks.py:5:25 JOB301", "app/tasks.py:6:23 JOB901"]
    assert check(repo, "--show-unused-noqa")[1] == everything
    (repo / "app" / "other.py").write_text("VALUE = 2\n")
    assert check(repo, "--show-unused-noqa", "--diff", "HEAD")[1] == []
    (repo / "app" / "tasks.py").write_text(stale + "\n# a comment far from the noqa\n")
    assert check(repo, "--show-unused-noqa", "--diff", "HEAD")[1] == ["app/tasks.py:6:23 JOB901"]


def test_from_a_sub_directory(repo: Path) -> None:
    (repo / "app" / "tasks.py").write_text(TASKS + NEW_JOB)
    assert check(repo / "app", ".", "--diff", "HEAD")[1] == ["tasks.py:22:5 JOB404"]


def test_errors(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    code, _, err = check(repo, "--diff", "no-such-branch")
    assert code == 2
    assert "'no-such-branch' is not a commit" in err
    outside = tmp_path_factory.mktemp("nogit")
    (outside / "tasks.py").write_text(TASKS)
    code, _, err = check(outside, "--diff", "HEAD")
    assert code == 2
    assert "git rev-parse failed" in err


def test_parse_diff() -> None:
    diff = (
        "diff --git a/x.py b/x.py\n"
        "--- a/x.py\n"
        "+++ b/x.py\n"
        "@@ -3 +3,2 @@\n"
        "-old\n+new\n+new\n"
        "@@ -10,2 +11,0 @@\n"
        "-gone\n-gone\n"
        'diff --git "a/t\\303\\251st\\tx.py" "b/t\\303\\251st\\tx.py"\n'
        '+++ "b/t\\303\\251st\\tx.py"\n'
        "@@ -0,0 +1 @@\n+x\n"
        "diff --git a/old.py b/old.py\n"
        "+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-x\n"
    )
    assert parse_diff(diff) == {"x.py": frozenset({3, 4, 11, 12}), "tést\tx.py": frozenset({1})}
