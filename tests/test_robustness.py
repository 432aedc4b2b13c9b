"""No input stops a run, through the whole command line.

Each bad file or setting sits in a project next to ``tasks.py``, a Celery task
with a known JOB301 finding.  A bad file must give a notice that names it and
says why, the good file's finding must still be reported, and the exit code
must follow the contract (0 clean, 1 findings, 2 usage, configuration or
internal error; notices alone never change it).  ``test_source.py``,
``test_files.py`` and ``test_config.py`` test the same inputs one module at a
time; these tests prove the whole run survives them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobaudit import downlevel, engine, parallel
from jobaudit.cli import main

JOB = """\
from celery import shared_task


@shared_task(bind=True, max_retries=None, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync(self, order_id):
    pass
"""
"""A job with one JOB301 finding (unbounded autoretry) on line 4."""

CLEAN_JOB = JOB.replace("max_retries=None, ", "")

needs_posix = pytest.mark.skipif(os.name != "posix", reason="POSIX file system semantics")


@dataclass
class Run:
    """One ``jobaudit check --format json`` run."""

    code: int
    document: dict[str, Any]
    stderr: str

    @property
    def findings(self) -> list[tuple[str, str, int]]:
        return [(f["code"], f["path"], f["line"]) for f in self.document["findings"]]

    def reasons(self, path: str) -> list[str]:
        return [n["reason"] for n in self.document["notices"] if n["path"] == path]

    def notice(self, path: str) -> dict[str, Any]:
        (found,) = [n for n in self.document["notices"] if n["path"] == path]
        return dict(found)


def check(root: Path, *args: str) -> Run:
    result = CliRunner().invoke(main, ["check", str(root), "--format", "json", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"jobaudit crashed: {result.exception!r}\n{result.stderr}")
    return Run(result.exit_code, json.loads(result.stdout), result.stderr)


def check_text(root: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", str(root), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"jobaudit crashed: {result.exception!r}\n{result.stderr}")
    return result.exit_code, result.stdout, result.stderr


def assert_good_file_reported(run: Run) -> None:
    assert run.code == 1, run.stderr
    assert ("JOB301", "tasks.py", 4) in run.findings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "tasks.py").write_text(JOB)
    return root


# --- files that cannot be read, decoded or parsed ------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"

BAD_FILES = [
    pytest.param(
        b"import celery\n\n\ndef broken(:\n    pass\n",
        "syntax error: invalid syntax (line 4, column 12)",
        4,
        id="syntax-error",
    ),
    pytest.param(
        b"x = 1\ny = '\xff'\n",
        "not valid UTF-8 text (byte 0xff at offset 11)",
        2,
        id="invalid-utf8",
    ),
    pytest.param(
        b"# -*- coding: klingon -*-\nx = 1\n",
        "unknown encoding 'klingon' declared on line 1",
        1,
        id="unknown-cookie",
    ),
    pytest.param(
        "# coding: ascii\nname = 'café'\n".encode(),
        "not valid ascii text (byte 0xc3",
        2,
        id="cookie-contradicts-content",
    ),
    pytest.param(
        b"\xef\xbb\xbf# coding: latin-1\nx = 1\n",
        "encoding 'latin-1' declared on line 1 contradicts the UTF-8 byte order mark",
        1,
        id="cookie-contradicts-bom",
    ),
    pytest.param(
        b"# coding: rot13\nx = 1\n",
        "encoding 'rot13' declared on line 1 is not a text encoding",
        1,
        id="codec-not-text",
    ),
    pytest.param(b"x = 1\n\x00\n", "contains NUL bytes (binary file?)", 2, id="nul-bytes"),
    pytest.param(PNG, "contains NUL bytes (binary file?)", 3, id="binary-png"),
    pytest.param(
        bytes(range(0x80, 0x100)) * 8,
        "not valid UTF-8 text (byte 0x80 at offset 0)",
        1,
        id="binary-without-nul",
    ),
]


@pytest.mark.parametrize(("data", "reason", "line"), BAD_FILES)
def test_bad_file_is_a_notice_and_the_run_goes_on(
    project: Path, data: bytes, reason: str, line: int
) -> None:
    (project / "bad.py").write_bytes(data)
    run = check(project)
    assert_good_file_reported(run)
    notice = run.notice("bad.py")
    assert notice["reason"].startswith(reason), notice
    assert notice["line"] == line
    assert run.document["summary"]["files"] == 2

    code, out, err = check_text(project)
    assert code == 1
    assert "tasks.py:4:" in out and "JOB301" in out
    assert f"jobaudit: bad.py:{line}: {reason}" in err


def test_a_real_syntax_error_does_not_suggest_a_newer_python(project: Path) -> None:
    """libcst reads every grammar up to 3.14: when it rejects the file too, it is just broken."""
    (project / "bad.py").write_text("import celery\n\n\ndef broken(:\n    pass\n")
    (reason,) = check(project).reasons("bad.py")
    assert "newer" not in reason


@pytest.mark.parametrize(
    ("name", "data", "line"),
    [
        ("bom.py", b"\xef\xbb\xbf" + JOB.encode(), 4),
        ("latin1.py", b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + JOB.encode(), 6),
        ("crlf.py", JOB.replace("\n", "\r\n").encode(), 4),
        ("old_mac.py", JOB.replace("\n", "\r").encode(), 4),
        ("form_feed.py", b"\x0c\n" + JOB.encode(), 5),
        ("separator.py", "# \u2028 \x1c\n".encode() + JOB.encode(), 5),
    ],
    ids=["utf8-bom", "latin1-cookie", "crlf", "cr-only", "form-feed", "unicode-separators"],
)
def test_unusual_but_valid_files_are_analysed(
    project: Path, name: str, data: bytes, line: int
) -> None:
    (project / name).write_bytes(data)
    run = check(project)
    assert run.code == 1
    assert run.document["notices"] == []
    finding = next(f for f in run.document["findings"] if f["path"] == name)
    assert (finding["code"], finding["line"], finding["column"]) == ("JOB301", line, 25)


def test_empty_file(project: Path) -> None:
    (project / "empty.py").write_bytes(b"")
    (project / "__init__.py").write_bytes(b"")
    run = check(project)
    assert_good_file_reported(run)
    assert run.document["notices"] == []
    assert run.document["summary"]["files"] == 3


def test_fifty_thousand_lines(project: Path) -> None:
    lines = ["import os", ""]
    index = 0
    while len(lines) < 49_990:
        lines += [f"def helper_{index}(value):", f"    return os.path.join(value, 'p{index}')", ""]
        index += 1
    (project / "big.py").write_text("\n".join([*lines, *JOB.splitlines()]) + "\n")
    started = time.monotonic()
    run = check(project)
    elapsed = time.monotonic() - started
    assert_good_file_reported(run)
    assert ("JOB301", "big.py", len(lines) + 4) in run.findings
    assert run.document["notices"] == []
    assert elapsed < 60, f"a 50,000-line file took {elapsed:.1f} s"


DEEP = {
    "parentheses": "x = " + "(" * 100_000 + ")" * 100_000 + "\n",
    "lists": "x = " + "[" * 2_000 + "]" * 2_000 + "\n",
    "long-sum": "x = 1" + " + 1" * 100_000 + "\n",
    "unary": "x = " + "-" * 100_000 + "1\n",
    "not-chain": "x = " + "not " * 100_000 + "1\n",
    "attribute-chain": "x = a" + ".b" * 100_000 + "\n",
    "call-chain": "x = f" + "()" * 100_000 + "\n",
    "lambdas": "x = " + "lambda: " * 20_000 + "1\n",
    "indentation": "".join(" " * i + "if x:\n" for i in range(120)) + " " * 120 + "pass\n",
    "job-in-deep-call": "from celery import shared_task\n\n"
    "@shared_task(max_retries=None, autoretry_for=(ConnectionError,))\n"
    "def deep():\n    return " + "f(" * 150 + ")" * 150 + "\n",
}
DEEP_REASONS = (
    "too deeply nested for Python's parser (RecursionError)",
    "ran out of memory while parsing",
    "too deeply nested to analyse (RecursionError)",
    "syntax error: too many nested parentheses",
    "syntax error: too many levels of indentation",
)


@pytest.mark.parametrize("text", DEEP.values(), ids=DEEP.keys())
def test_deeply_nested_code(project: Path, text: str) -> None:
    """RecursionError and MemoryError from the parser, or the analysis, cost only that file.

    Which of them a given shape causes depends on the Python version (3.10
    builds some of these trees); either the file is analysed or it is a notice.
    """
    (project / "deep.py").write_text(text)
    run = check(project)
    assert_good_file_reported(run)
    for reason in run.reasons("deep.py"):
        assert reason.startswith(DEEP_REASONS), reason


def test_deep_code_with_a_syntax_error_does_not_hang_or_crash(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libcst (asked whether the file is newer Python) crashes or crawls on such input.

    It runs in a child process with a timeout, so the run survives either way.
    """
    monkeypatch.setattr(downlevel, "_BASE_TIMEOUT", 2.0)
    deep = "import celery\nx = (1" + " + 1" * 20_000 + ")\ndef broken(:\n"
    (project / "deep.py").write_text(deep)
    started = time.monotonic()
    run = check(project)
    assert_good_file_reported(run)
    (reason,) = run.reasons("deep.py")
    assert reason.startswith("syntax error: invalid syntax"), reason
    assert time.monotonic() - started < 30


# --- the file system -----------------------------------------------------------------


def _unprivileged() -> list[str] | None:
    """A command prefix under which file permissions apply, or None.

    Root (as in CI containers) reads everything, so the run is made in a child
    that has dropped the capabilities that bypass permissions (``setpriv``);
    switching to ``nobody`` would not work when the interpreter lives in
    root's home.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import os; os.listdir('/root/.no-such-dir')"],
        capture_output=True,
        check=False,
    )
    works = subprocess.run([*prefix, sys.executable, "-c", "pass"], check=False).returncode == 0
    return prefix if works and probe.returncode != 0 else None


@needs_posix
def test_unreadable_file_and_folder(project: Path) -> None:
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to apply")
    (project / "secret.py").write_text(JOB.replace("sync", "secret_sync"))
    hidden = project / "hidden"
    hidden.mkdir()
    (hidden / "jobs.py").write_text(JOB.replace("sync", "hidden_sync"))
    (project / "secret.py").chmod(0)
    hidden.chmod(0)
    try:
        completed = subprocess.run(
            [*prefix, sys.executable, "-m", "jobaudit", "check", ".", "--format", "json"],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        hidden.chmod(0o755)
        (project / "secret.py").chmod(0o644)
    run = Run(completed.returncode, json.loads(completed.stdout), completed.stderr)
    assert_good_file_reported(run)
    assert run.reasons("secret.py") == ["cannot read: permission denied"]
    assert run.reasons("hidden") == ["cannot read directory: permission denied"]
    assert "jobaudit: secret.py: cannot read: permission denied" in completed.stderr
    assert "Traceback" not in completed.stderr


@needs_posix
def test_symlink_loops(project: Path) -> None:
    (project / "self.py").symlink_to("self.py")
    (project / "a.py").symlink_to("b.py")
    (project / "b.py").symlink_to("a.py")
    (project / "sub").mkdir()
    (project / "sub" / "up").symlink_to("..", target_is_directory=True)
    run = check(project)
    assert_good_file_reported(run)
    for name in ("self.py", "a.py", "b.py"):
        assert run.reasons(name) == ["symlink loop"]
    # The directory loop is not followed: tasks.py is found once, under its own name.
    assert [f for f in run.findings if f[0] == "JOB301"] == [("JOB301", "tasks.py", 4)]


@needs_posix
def test_symlinks_pointing_outside_the_tree(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "shared.py").write_text(JOB.replace("sync", "shared_sync"))
    (outside / "lib").mkdir()
    (outside / "lib" / "jobs.py").write_text(JOB.replace("sync", "lib_sync"))
    (project / "linked.py").symlink_to(outside / "shared.py")
    (project / "vendor").symlink_to(outside / "lib", target_is_directory=True)
    (project / "dangling.py").symlink_to(outside / "missing.py")
    code, out, err = check_text(project)
    run = check(project)
    assert_good_file_reported(run)
    # A linked file is analysed under the link's name; a linked directory is
    # not walked; nothing shows where the link points.
    assert ("JOB301", "linked.py", 4) in run.findings
    assert not any(path.startswith("vendor") for _, path, _ in run.findings)
    assert run.reasons("dangling.py") == ["dangling symlink"]
    assert str(outside) not in out + err + json.dumps(run.document)
    assert code == 1


def test_file_deleted_between_discovery_and_reading(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "gone.py").write_text(JOB.replace("sync", "gone_sync"))
    discover = engine.discover

    def discover_then_delete(*args: Any, **kwargs: Any) -> Any:
        found = discover(*args, **kwargs)
        (project / "gone.py").unlink()
        return found

    monkeypatch.setattr(engine, "discover", discover_then_delete)
    run = check(project)
    assert_good_file_reported(run)
    assert run.reasons("gone.py") == ["file disappeared before it could be read"]


def test_file_replaced_by_a_directory_before_reading(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "moved.py").write_text(JOB)
    discover = engine.discover

    def discover_then_replace(*args: Any, **kwargs: Any) -> Any:
        found = discover(*args, **kwargs)
        (project / "moved.py").unlink()
        (project / "moved.py").mkdir()
        return found

    monkeypatch.setattr(engine, "discover", discover_then_replace)
    run = check(project)
    assert_good_file_reported(run)
    (reason,) = run.reasons("moved.py")
    assert reason.startswith("cannot read: ")


def _make_undecodable(directory: Path, name: bytes, data: bytes) -> None:
    try:
        with open(os.path.join(os.fsencode(directory), name), "wb") as handle:
            handle.write(data)
    except OSError as exc:  # macOS and some file systems refuse such names
        pytest.skip(f"the file system refuses non-UTF-8 names: {exc}")


@needs_posix
def test_non_utf8_file_names(project: Path, tmp_path: Path) -> None:
    _make_undecodable(project, b"caf\xe9.py", JOB.replace("sync", "cafe_sync").encode())
    pkg = os.path.join(os.fsencode(project), b"pkg\xff")
    os.mkdir(pkg)
    _make_undecodable(Path(os.fsdecode(pkg)), b"tasks.py", JOB.replace("sync", "pkg_sync").encode())
    run = check(project)
    assert_good_file_reported(run)
    assert ("JOB301", "caf\\xe9.py", 4) in run.findings
    assert ("JOB301", "pkg\\xff/tasks.py", 4) in run.findings
    for finding in run.document["findings"]:
        finding["job"].encode("utf-8")  # no lone surrogates from the file name
    # Every output form can be written: stdout (text, JSON) and a file.
    code, out, _ = check_text(project)
    assert code == 1 and "caf\\xe9.py:4:" in out
    target = tmp_path / "report.json"
    result = CliRunner().invoke(
        main, ["check", str(project), "--format", "json", "--output", str(target)]
    )
    assert result.exit_code == 1, result.stderr
    assert json.loads(target.read_text(encoding="utf-8")) == run.document


# --- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "[tool.jobaudit]\nselect = ['JOB301'\n",
            "pyproject.toml: invalid TOML: Unclosed array",
            id="unclosed-array",
        ),
        pytest.param(
            "[tool.jobaudit]\nselect = JOB301\n",
            "pyproject.toml:2:10: invalid TOML: Invalid value",
            id="bare-word",
        ),
        pytest.param(
            "[tool.jobaudit]\nselect = 'JOB301'\n",
            "[tool.jobaudit] 'select' must be an array of strings, got a string (\"JOB301\")",
            id="string-for-array",
        ),
        pytest.param(
            "[tool.jobaudit]\nexclude = [1]\n",
            "[tool.jobaudit] 'exclude[0]' must be a string, got an integer (1)",
            id="integer-in-array",
        ),
        pytest.param(
            "[tool.jobaudit]\npreview = 'yes'\n",
            "[tool.jobaudit] 'preview' must be a boolean, got a string (\"yes\")",
            id="string-for-boolean",
        ),
        pytest.param(
            "[tool.jobaudit]\nfail-on = 2\n",
            "[tool.jobaudit] 'fail-on' must be",
            id="integer-for-choice",
        ),
        pytest.param(
            "[tool.jobaudit]\nrules = 3\n",
            "[tool.jobaudit] 'rules' must be a table, got an integer (3)",
            id="integer-for-table",
        ),
        pytest.param(
            "[tool]\njobaudit = 'on'\n",
            '[tool.jobaudit] must be a table, got a string ("on")',
            id="tool-jobaudit-not-a-table",
        ),
        pytest.param(
            "[tool.jobaudit.per-file-ignores]\n'tests/*' = 3\n",
            "'per-file-ignores.\"tests/*\"' must be an array of strings, got an integer (3)",
            id="per-file-ignores-value",
        ),
    ],
)
def test_broken_configuration_is_exit_two_naming_file_and_key(
    project: Path, body: str, message: str
) -> None:
    """A broken setting stops the run: analysing with settings the user did not mean is worse."""
    (project / "pyproject.toml").write_text(body)
    code, out, err = check_text(project)
    assert code == 2
    assert out == ""
    assert err.startswith("jobaudit: error: ")
    assert "pyproject.toml" in err
    assert message in err
    assert "Traceback" not in err


def test_invalid_utf8_in_the_configuration(project: Path) -> None:
    (project / "jobaudit.toml").write_bytes(b"select = ['JOB301']\n# \xff\n")
    code, _, err = check_text(project)
    assert code == 2
    assert "jobaudit.toml: not valid UTF-8 (byte 0xff at offset 22)" in err


def test_an_unrelated_broken_pyproject_is_not_read(project: Path) -> None:
    """Only a pyproject that mentions jobaudit is parsed: a templated one must not stop a run."""
    (project / "pyproject.toml").write_text('[project\nname = "{{ cookiecutter.name }}"\n')
    run = check(project)
    assert_good_file_reported(run)


# --- the exit code contract ----------------------------------------------------------


def test_notices_alone_do_not_change_the_exit_code(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(CLEAN_JOB)
    (tmp_path / "bad.py").write_bytes(b"\x00")
    code, _, err = check_text(tmp_path)
    assert code == 0
    assert "jobaudit: bad.py:1: contains NUL bytes" in err
    run = check(tmp_path)
    assert run.code == 0
    assert run.document["summary"]["findings"] == 0


def test_exit_zero_and_quiet_with_notices(project: Path) -> None:
    (project / "bad.py").write_text("import celery\ndef broken(:\n")
    code, out, err = check_text(project, "--exit-zero")
    assert code == 0
    assert "JOB301" in out and "bad.py:2: syntax error" in err
    code, out, err = check_text(project, "--quiet")
    assert code == 1
    assert "JOB301" in out
    assert err == ""


def test_nothing_to_analyse(tmp_path: Path) -> None:
    code, out, _ = check_text(tmp_path)
    assert code == 0
    assert "0 jobs in 0 files" in out


def test_every_bad_input_at_once(project: Path) -> None:
    """All the bad files of this module in one project: each is a notice, nothing is lost."""
    for index, param in enumerate(BAD_FILES):
        data = param.values[0]
        assert isinstance(data, bytes)
        (project / f"bad_{index}.py").write_bytes(data)
    for name, text in DEEP.items():
        (project / f"deep_{name.replace('-', '_')}.py").write_text(text)
    run = check(project)
    assert_good_file_reported(run)
    noticed = {n["path"] for n in run.document["notices"]}
    assert {f"bad_{i}.py" for i in range(len(BAD_FILES))} <= noticed
    assert run.document["summary"]["files"] == 1 + len(BAD_FILES) + len(DEEP)


# --- odd values from code reach every output -----------------------------------------

ODD_OPTIONS = """\
import dramatiq
from arq.worker import func
from celery import Celery
from huey import RedisHuey

app = Celery("odd")
app.conf.task_time_limit = []
huey = RedisHuey()


@app.task(bind=True, max_retries="x", time_limit=[], soft_time_limit={}, autoretry_for=5,
          retry_backoff={}, retry_jitter="no", default_retry_delay=[], acks_late=[])
def celery_job(self):
    raise self.retry(countdown=[], max_retries={}, exc=5)


@dramatiq.actor(max_retries=[], time_limit="x", min_backoff={}, max_backoff=[], throws=3)
def dramatiq_job():
    pass


@huey.task(retries=1e309, retry_delay=float("nan"), expires={})
def huey_job():
    pass


async def arq_job(ctx):
    pass


class WorkerSettings:
    functions = [func(arq_job, max_tries=[], timeout="x")]
"""

SURROGATES = """\
import os
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settin\\udce9gs")
app = Celery("sh\\ud800op")
app.config_from_object("django.conf:settings", namespace="CELERY")


@app.task(name="sync\\udce9", max_retries=None, autoretry_for=(ConnectionError,))
def sync(order_id):
    pass
"""


def _renderings() -> list[tuple[str, str]]:
    out = []
    for command in ("check", "jobs", "report"):
        for param in main.commands[command].params:
            if "--format" in getattr(param, "opts", ()):
                out += [(command, str(fmt)) for fmt in getattr(param.type, "choices", ())]
    return out


@pytest.mark.parametrize("text", [ODD_OPTIONS, SURROGATES], ids=["odd-options", "surrogates"])
def test_odd_values_from_code_reach_every_output(project: Path, tmp_path: Path, text: str) -> None:
    """Lists where numbers belong, NaN, lone surrogates: every format is written, as valid JSON."""
    (project / "odd.py").write_text(text)
    for command, fmt in _renderings():
        target = tmp_path / f"{command}.{fmt}"
        result = CliRunner().invoke(
            main, [command, str(project), "--format", fmt, "--output", str(target)]
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{command} --format {fmt} crashed: {result.exception!r}")
        assert result.exit_code in (0, 1), (command, fmt, result.stderr)
        assert "internal error" not in result.stderr
        written = target.read_text(encoding="utf-8")
        if fmt in ("json", "sarif"):
            json.loads(written, parse_constant=_reject_constant)


def _reject_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


# --- a rule that raises (test_cli.py covers the per-job case in text) ----------------


def test_a_rule_raising_on_the_whole_project(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The error names the rule; the other findings stay; exit 2 even with --exit-zero."""
    from jobaudit.checks import rule_by_key

    rule = rule_by_key("JOB301")
    assert rule is not None

    def explode(self: object, project: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(rule, "check_project", explode)
    run = check(project, "--select", "JOB301")
    assert run.code == 2
    assert ("JOB301", "tasks.py", 4) in run.findings
    (notice,) = run.document["notices"]
    assert notice["reason"] == "internal error in JOB301 (KeyError: 'boom')"
    code, out, err = check_text(project, "--select", "JOB301", "--quiet", "--exit-zero")
    assert code == 2
    assert "JOB301" in out
    assert "internal error in JOB301" in err


def test_an_error_while_analysing_one_file_is_a_notice(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "odd.py").write_text("import celery\n")
    extract = parallel.extract

    def fail_on_odd(tree: Any, path: str, *args: Any, **kwargs: Any) -> Any:
        if path == "odd.py":
            raise ValueError("unexpected tree")
        return extract(tree, path, *args, **kwargs)

    monkeypatch.setattr(parallel, "extract", fail_on_odd)
    run = check(project)
    assert_good_file_reported(run)
    assert run.reasons("odd.py") == ["internal error while analysing: ValueError: unexpected tree"]


def test_a_framework_adapter_raising_costs_only_its_jobs(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobaudit.frameworks.celery import Celery

    def explode(self: object, job: object, project: object) -> None:
        raise RuntimeError("boom")

    (project / "actors.py").write_text(
        "import dramatiq\n\n\n@dramatiq.actor(max_retries=None)\ndef sync_actor(order_id):\n"
        "    pass\n"
    )
    monkeypatch.setattr(Celery, "policy", explode)
    run = check(project, "--select", "JOB301")
    assert run.code == 2
    assert [f for f in run.findings if f[1] == "actors.py"] == [("JOB301", "actors.py", 4)]
    assert run.reasons("tasks.py") == [
        "internal error in the celery adapter on Task 'sync' (RuntimeError: boom)"
    ]
