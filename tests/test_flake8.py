"""The flake8 plugin, run through flake8 itself: same findings as ``jobaudit check``.

Each fixture project is copied into its own git repository (a real project is
one; the copy keeps the jobaudit repository's other fixtures out of its
context), then ``flake8 --select JOB`` and ``jobaudit check --format json``
run on it and must agree on (path, line, column, code) for every rule the
plugin runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobaudit.checks import ALL_RULES

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ROOT / "fixtures" / "projects"
PROJECT_RULES = {rule.code for rule in ALL_RULES if rule.scope == "project"}
LINE = re.compile(r"^(?P<path>.+?):(?P<line>\d+):(?P<column>\d+): (?P<code>[A-Z]+\d+) ")
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}

Found = set[tuple[str, int, int, str]]


def _git_project(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    subprocess.run(["git", "init", "-q", str(target)], check=True, env=ENV)
    return target


def flake8(cwd: Path, *args: str, stdin: str | None = None) -> tuple[int, Found, str]:
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "JOB", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    found: Found = set()
    for line in completed.stdout.splitlines():
        match = LINE.match(line)
        assert match is not None, line
        path = match["path"].removeprefix("./")
        found.add((path, int(match["line"]), int(match["column"]), match["code"]))
    return completed.returncode, found, completed.stderr


def jobaudit(cwd: Path, *args: str) -> Found:
    completed = subprocess.run(
        [sys.executable, "-m", "jobaudit", "check", ".", "--format", "json", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return {
        (f["path"], f["line"], f["column"], f["code"])
        for f in json.loads(completed.stdout)["findings"]
        if f["code"] not in PROJECT_RULES
    }


def test_the_plugin_is_registered() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--version"], capture_output=True, text=True, check=True
    )
    assert "jobaudit:" in completed.stdout


@pytest.mark.parametrize(
    "project", sorted(p for p in PROJECTS.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_same_findings_as_the_cli(project: Path, tmp_path: Path) -> None:
    copy = _git_project(project, tmp_path / project.name)
    code, by_flake8, stderr = flake8(copy, ".")
    by_cli = jobaudit(copy)
    assert by_flake8 == by_cli, stderr
    assert code == (1 if by_cli else 0)


def test_demo_has_findings_and_a_single_process_agrees(tmp_path: Path) -> None:
    copy = _git_project(PROJECTS / "demo", tmp_path / "demo")
    _, parallel, _ = flake8(copy, ".", "--jobs", "2")
    _, serial, _ = flake8(copy, ".", "--jobs", "1")
    assert parallel == serial == jobaudit(copy)
    assert {code for *_, code in parallel} >= {"JOB301", "JOB401", "JOB402"}


APP = """\
from celery import Celery

app = Celery("shop")
app.conf.task_time_limit = 300
"""

TASKS = """\
from shop.celery import app

NAME = "é"


@app.task(bind=True, max_retries=None, autoretry_for=(OSError,), retry_backoff=True)
def sync(self, order_id):
    pass


@app.task(bind=True, max_retries=None, autoretry_for=(OSError,), retry_backoff=True)  # noqa: JOB301
def quiet(self, order_id):
    pass
"""


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    package = tmp_path / "shop"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "celery.py").write_text(APP)
    (package / "tasks.py").write_text(TASKS)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=ENV)
    return tmp_path


def test_context_from_other_files_noqa_and_ignore(shop: Path) -> None:
    _, found, _ = flake8(shop, "shop/tasks.py")
    # The app's time limit lives in another file: no JOB401; the noqa'd task is silent.
    assert found == {("shop/tasks.py", 6, 22, "JOB301")}
    assert flake8(shop, "shop/tasks.py", "--extend-ignore", "JOB301")[1] == set()
    assert len(flake8(shop, "shop/tasks.py", "--disable-noqa")[1]) == 2


def test_a_second_run_reuses_the_facts_and_sees_an_edit(shop: Path) -> None:
    _, first, _ = flake8(shop, ".")
    facts = sorted((shop / ".jobaudit_cache" / "facts").rglob("*"))
    assert [entry for entry in facts if entry.is_file()], "the plugin fills the CLI's cache"
    assert flake8(shop, ".")[1] == first == {("shop/tasks.py", 6, 22, "JOB301")}
    tasks = shop / "shop" / "tasks.py"
    tasks.write_text(TASKS.replace("max_retries=None", "max_retries=3", 1))
    assert flake8(shop, ".")[1] == set() == jobaudit(shop)


def test_explicit_select_of_other_codes_hides_job(shop: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "E9", "shop/tasks.py"],
        cwd=shop,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "JOB301" not in completed.stdout
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "E9", "--extend-select", "JOB", "."],
        cwd=shop,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "JOB301" in completed.stdout


def test_columns_count_characters(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(
        "from celery import shared_task\n\n\n"
        '@shared_task(name="résumé", bind=True, max_retries=None, autoretry_for=(OSError,), '
        "retry_backoff=True)\n"
        "def sync(self):\n    pass\n",
        encoding="utf-8",
    )
    _, by_flake8, _ = flake8(tmp_path, "tasks.py")
    # Each "é" is two bytes in UTF-8: max_retries= starts at byte 41, at character 39.
    assert by_flake8 == jobaudit(tmp_path) == {("tasks.py", 4, 40, "JOB301")}


def test_an_unsaved_buffer_is_analysed_as_sent(shop: Path) -> None:
    fixed = TASKS.replace("max_retries=None", "max_retries=5")
    _, found, stderr = flake8(shop, "--stdin-display-name", "shop/tasks.py", "-", stdin=fixed)
    assert found == set(), stderr
    broken = "\n\n" + TASKS.replace("# noqa: JOB301", "")
    _, found, _ = flake8(shop, "--stdin-display-name", "shop/tasks.py", "-", stdin=broken)
    assert found == {("shop/tasks.py", 8, 22, "JOB301"), ("shop/tasks.py", 13, 22, "JOB301")}


def test_a_buffer_turns_a_skipped_file_into_a_job_module(shop: Path) -> None:
    helpers = shop / "shop" / "helpers.py"
    helpers.write_text("LIMIT = 3\n")
    assert flake8(shop, "shop/helpers.py")[1] == set()
    as_task = TASKS.replace("# noqa: JOB301", "")
    _, found, _ = flake8(shop, "--stdin-display-name", "shop/helpers.py", "-", stdin=as_task)
    assert found == {("shop/helpers.py", 6, 22, "JOB301"), ("shop/helpers.py", 11, 22, "JOB301")}


def test_project_rules_and_excluded_files_stay_out(shop: Path) -> None:
    (shop / "pyproject.toml").write_text(
        '[tool.jobaudit]\nextend-select = ["JOB901"]\nextend-exclude = ["legacy"]\n'
    )
    (shop / "legacy").mkdir()
    (shop / "legacy" / "tasks.py").write_text(TASKS)
    (shop / "shop" / "stale.py").write_text(
        "from shop.celery import app\n\n\n@app.task(max_retries=3)  # noqa: JOB301\n"
        "def ping():\n    pass\n"
    )
    _, found, _ = flake8(shop, ".")
    assert found == {("shop/tasks.py", 6, 22, "JOB301")}
    assert jobaudit(shop) == found


def test_a_configuration_error_is_reported(shop: Path) -> None:
    (shop / "pyproject.toml").write_text('[tool.jobaudit]\nselekt = ["JOB3"]\n')
    completed = subprocess.run(
        [sys.executable, "-m", "flake8", "--select", "JOB", "shop/tasks.py"],
        cwd=shop,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode != 0
    assert "unknown key 'selekt'" in completed.stdout + completed.stderr


def test_a_configuration_file_named_in_flake8(shop: Path) -> None:
    (shop / "ci.toml").write_text('extend-exclude = ["shop/tasks.py"]\n')
    (shop / ".flake8").write_text("[flake8]\njobaudit-config = ci.toml\n")
    assert flake8(shop, "shop/tasks.py")[1] == set()
    assert flake8(shop, "shop/tasks.py", "--isolated")[1] == {("shop/tasks.py", 6, 22, "JOB301")}
