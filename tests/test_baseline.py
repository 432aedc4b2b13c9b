"""``--write-baseline`` / ``--baseline`` on a real git repository, edited as people edit code."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from jobaudit.cli import main

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


@shared_task
def refresh(url):
    requests.get(url)
    requests.get(url)
"""

COPY = """

@shared_task(bind=True, max_retries=None, autoretry_for=(OSError,), retry_backoff=True)
def poll_again(self, url):
    return requests.get(url, timeout=5).json()
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


def check(cwd: Path, *args: str) -> tuple[int, str, str]:
    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(main, ["check", *args])
    finally:
        os.chdir(previous)
    return result.exit_code, result.stdout, result.stderr


def codes(out: str) -> list[str]:
    return [
        line.split(": ")[0] + " " + line.split()[1] for line in out.splitlines() if ": JOB" in line
    ]


def write_baseline(repo: Path) -> dict[str, object]:
    code, out, err = check(repo, "--write-baseline", "baseline.json")
    assert code == 0, out + err
    assert out == ""
    assert "recorded 3 findings in baseline.json" in err
    document: dict[str, object] = json.loads((repo / "baseline.json").read_text())
    return document


def test_the_file_is_versioned_sorted_and_has_no_line_numbers(repo: Path) -> None:
    document = write_baseline(repo)
    assert document["jobaudit-baseline"] == 1
    entries = document["findings"]
    assert isinstance(entries, list)
    assert entries == sorted(entries, key=lambda e: (e["path"], e["rule"], e["job"], e["code"]))
    assert {e["rule"] for e in entries} == {"JOB301", "JOB404"}
    assert all(set(e) == {"rule", "path", "job", "code", "occurrence"} for e in entries)
    assert [e["occurrence"] for e in entries if e["rule"] == "JOB404"] == [0, 1]
    assert entries[0]["path"] == "app/tasks.py"
    assert entries[0]["job"] == "app.tasks.poll"
    assert "max_retries=None" in entries[0]["code"]
    again = (repo / "baseline.json").read_text()
    write_baseline(repo)
    assert (repo / "baseline.json").read_text() == again


def test_nothing_new_is_clean(repo: Path) -> None:
    write_baseline(repo)
    code, out, err = check(repo, "--baseline", "baseline.json")
    assert code == 0, out
    assert "All checks passed" in out
    assert "3 findings in the baseline baseline.json not shown" in err


def test_lines_inserted_above_and_reindented_code_stay_baselined(repo: Path) -> None:
    write_baseline(repo)
    moved = TASKS.replace(
        "from celery import shared_task\n",
        'from celery import shared_task\n\n\nTIMEOUT = 5\n"""A docstring."""\n',
    ).replace(
        "    requests.get(url)\n    requests.get(url)\n",
        "    if url:\n        requests.get(url)\n        requests.get(url)\n",
    )
    (repo / "app" / "tasks.py").write_text(moved)
    git(repo, "commit", "-q", "-am", "move")
    code, out, _ = check(repo, "--baseline", "baseline.json")
    assert code == 0, out


def test_the_same_problem_in_a_new_job_is_new(repo: Path) -> None:
    write_baseline(repo)
    (repo / "app" / "tasks.py").write_text(TASKS + COPY)
    code, out, err = check(repo, "--baseline", "baseline.json")
    assert code == 1
    assert codes(out) == ["app/tasks.py:16:25 JOB301"]
    assert "Task 'poll_again'" in out
    assert "3 findings in the baseline" in err


def test_identical_findings_are_counted(repo: Path) -> None:
    write_baseline(repo)
    tripled = TASKS + "    requests.get(url)\n"
    (repo / "app" / "tasks.py").write_text(tripled)
    code, out, _ = check(repo, "--baseline", "baseline.json")
    assert code == 1
    assert codes(out) == ["app/tasks.py:14:5 JOB404"]

    single = TASKS.replace(
        "    requests.get(url)\n    requests.get(url)\n", "    requests.get(url)\n"
    )
    (repo / "app" / "tasks.py").write_text(single)
    code, out, err = check(repo, "--baseline", "baseline.json")
    assert code == 0, out
    assert "2 findings in the baseline baseline.json not shown" in err
    assert "1 baseline entry no longer found" in err


def test_fixed_findings_are_reported_as_stale(repo: Path) -> None:
    write_baseline(repo)
    (repo / "app" / "tasks.py").write_text(TASKS.replace("max_retries=None", "max_retries=5"))
    code, _, err = check(repo, "--baseline", "baseline.json")
    assert code == 0
    assert "1 baseline entry no longer found (rewrite it with --write-baseline)" in err
    # Rules that did not run do not make their entries stale.
    _, _, err = check(repo, "--baseline", "baseline.json", "--select", "JOB404")
    assert "no longer found" not in err


def test_paths_are_relative_to_the_baseline_file(repo: Path) -> None:
    write_baseline(repo)
    (repo / "app" / "tasks.py").write_text(TASKS + COPY)
    code, out, _ = check(repo / "app", "--baseline", "../baseline.json")
    assert code == 1
    assert codes(out) == ["tasks.py:16:25 JOB301"]


def test_files_given_alone_with_a_baseline(repo: Path) -> None:
    (repo / "app" / "other.py").write_text(TASKS.replace("def poll", "def other_poll"))
    git(repo, "add", "-A")
    code, _, _ = check(repo, "--write-baseline", "baseline.json")
    assert code == 0
    (repo / "app" / "tasks.py").write_text(TASKS.replace("max_retries=None", "max_retries=5"))
    code, out, err = check(repo, "app/tasks.py", "--baseline", "baseline.json")
    assert code == 0, out
    # Only app/tasks.py was reported on: other.py's entries are neither used nor stale.
    assert "2 findings in the baseline baseline.json not shown" in err
    assert "1 baseline entry no longer found" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not a jobaudit baseline (invalid JSON"),
        ('{"findings": []}', "no 'jobaudit-baseline' version"),
        ('{"jobaudit-baseline": 99, "findings": []}', "format 99 is not supported"),
        ('{"jobaudit-baseline": 1, "findings": [{"rule": "JOB301"}]}', "findings[0].path"),
    ],
)
def test_a_bad_baseline_is_an_error(repo: Path, content: str, message: str) -> None:
    (repo / "baseline.json").write_text(content)
    code, _, err = check(repo, "--baseline", "baseline.json")
    assert code == 2
    assert message in err
