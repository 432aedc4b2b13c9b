"""The index of what the tests do with each job (JOB701, JOB702 and the readiness "Tests" gate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobaudit.checks.tests.failure_path_untested import FailurePathUntested
from jobaudit.checks.tests.job_without_tests import JobWithoutTests
from jobaudit.config import Config
from jobaudit.engine import run
from jobaudit.job_tests import RAISES, RERUN, RETRY, SIDE_EFFECT, STATE, coverage_index
from jobaudit.report.readiness import PASS, UNKNOWN, WARN, build
from jobaudit.report.readiness_entry import sections
from jobaudit.result import Result
from jobaudit.testing import example_files

TASKS = """\
from celery import shared_task


@shared_task(name="mail.send")
def send(user_id):
    pass


@shared_task
def other(user_id):
    pass
"""


def project(tmp_path: Path, tests: str, tasks: str = TASKS, name: str = "test_tasks.py") -> Result:
    (tmp_path / "proj").mkdir(exist_ok=True)
    (tmp_path / "proj" / "__init__.py").write_text("from proj.tasks import send as exported\n")
    (tmp_path / "proj" / "tasks.py").write_text(tasks)
    (tmp_path / "tests").mkdir(exist_ok=True)
    (tmp_path / "tests" / name).write_text(tests)
    config = Config(root=tmp_path, source=None)
    return run([tmp_path], config, [JobWithoutTests(), FailurePathUntested()])


def kinds(result: Result, job_name: str = "send") -> set[str] | None:
    job = next(job for job in result.jobs if job.name == job_name)
    tests = coverage_index(result.project).of(job)
    return None if tests is None else set(tests.failures)


@pytest.mark.parametrize(
    "test",
    [
        "from proj.tasks import send\n",
        "from proj.tasks import send as s\n\ndef test_x():\n    s.delay(1)\n",
        "import proj.tasks as t\n\ndef test_x():\n    t.send.apply_async((1,))\n",
        "from proj import exported\n\ndef test_x():\n    exported(1)\n",
        "def test_x(app):\n    app.send_task('mail.send', args=[1])\n",
        "@mock.patch('proj.tasks.send.delay')\ndef test_x(m):\n    pass\n",
        "@mock.patch('proj.exported.delay')\ndef test_x(m):\n    pass\n",
        "def test_x():\n    from proj.tasks import send as job\n\n    job.delay(1)\n",
        "def test_x(queue):\n    queue.enqueue('proj.tasks.send', 1)\n",
    ],
    ids=[
        "import",
        "alias",
        "module-alias",
        "re-export",
        "registered-name",
        "patch-target",
        "patch-through-re-export",
        "local-import",
        "dotted-string",
    ],
)
def test_references(tmp_path: Path, test: str) -> None:
    result = project(tmp_path, test)
    assert kinds(result) is not None
    assert kinds(result, "other") is None
    assert [f.code for f in result.findings if f.job == "proj.tasks.other"] == ["JOB701"]


@pytest.mark.parametrize(
    ("test", "kind"),
    [
        (
            "from unittest import mock\nfrom proj.tasks import send\n\n"
            "@mock.patch('proj.tasks.api', side_effect=[ConnectionError(), None])\n"
            "def test_x(api):\n    send(1)\n",
            SIDE_EFFECT,
        ),
        (
            "from proj.tasks import send\n\ndef test_x(api):\n"
            "    api.post.side_effect = TimeoutError\n    send(1)\n",
            SIDE_EFFECT,
        ),
        (
            "from proj.tasks import send\n\ndef test_x(monkeypatch):\n"
            "    def boom(*a):\n        raise OSError\n\n"
            "    monkeypatch.setattr('proj.tasks.api', boom)\n    send(1)\n",
            SIDE_EFFECT,
        ),
        (
            "import pytest\nfrom proj.tasks import send\n\ndef test_x():\n"
            "    with pytest.raises(KeyError):\n        send(1)\n",
            RAISES,
        ),
        (
            "import unittest\nfrom proj.tasks import send\n\nclass T(unittest.TestCase):\n"
            "    def test_x(self):\n        self.assertRaises(KeyError, send, 1)\n",
            RAISES,
        ),
        (
            "from proj.tasks import send\n\ndef test_x(mocker):\n"
            "    m = mocker.patch.object(send, 'retry')\n    send(1)\n    m.assert_called_once()\n",
            RETRY,
        ),
        (
            "from proj.tasks import send\n\ndef test_x():\n"
            "    assert send.apply(args=[0]).state == 'FAILURE'\n",
            STATE,
        ),
        ("from proj.tasks import send\n\ndef test_x():\n    send(1)\n    send(1)\n", RERUN),
        (
            "from proj.tasks import send\n\ndef test_x():\n    for _ in 'ab':\n        send(1)\n",
            RERUN,
        ),
    ],
    ids=[
        "side-effect-list",
        "side-effect-attribute",
        "raising-fake",
        "pytest-raises",
        "assert-raises",
        "retry-mock",
        "failure-state",
        "twice",
        "loop",
    ],
)
def test_failure_signals(tmp_path: Path, test: str, kind: str) -> None:
    result = project(tmp_path, test)
    found = kinds(result)
    assert found is not None and kind in found, found
    assert not [f for f in result.findings if f.code == "JOB702"]


def test_happy_path_only(tmp_path: Path) -> None:
    test = (
        "from unittest import mock\nfrom proj.tasks import send\n\n"
        "@mock.patch('proj.tasks.api', side_effect=lambda: None)\n"
        "def test_send(api):\n    send.delay(1)\n    send.delay.assert_called_once()\n"
    )
    result = project(tmp_path, test)
    assert kinds(result) == set()
    (finding,) = [f for f in result.findings if f.code == "JOB702"]
    assert finding.job == "proj.tasks.send" and finding.path == "proj/tasks.py"
    assert finding.line == 5, "the job's def line"
    assert "tests/test_tasks.py::test_send" in finding.message


def test_a_failure_in_another_test_of_the_file_does_not_count(tmp_path: Path) -> None:
    test = (
        "import pytest\nfrom proj.tasks import other, send\n\n"
        "def test_send():\n    send(1)\n\n"
        "def test_other():\n    with pytest.raises(ValueError):\n        other(1)\n"
    )
    result = project(tmp_path, test)
    assert [f.job for f in result.findings if f.code == "JOB702"] == ["proj.tasks.send"]


def test_fixtures_and_helpers_are_part_of_the_test(tmp_path: Path) -> None:
    test = (
        "from unittest import mock\nimport pytest\nfrom proj.tasks import other, send\n\n"
        "@pytest.fixture\ndef api_down():\n"
        "    with mock.patch('proj.tasks.api', side_effect=OSError):\n        yield\n\n"
        "def test_send(api_down):\n    send(1)\n\n"
        "def _expect_error(job):\n    with pytest.raises(Exception):\n        job(1)\n\n"
        "def test_other():\n    _expect_error(other)\n"
    )
    result = project(tmp_path, test)
    assert not result.findings


def test_a_fixture_two_fixtures_share_runs_the_job_once(tmp_path: Path) -> None:
    test = (
        "import pytest\nfrom proj.tasks import send\n\n"
        "@pytest.fixture\ndef sent():\n    send(1)\n\n"
        "@pytest.fixture\ndef order(sent):\n    return 1\n\n"
        "@pytest.fixture\ndef invoice(sent):\n    return 2\n\n"
        "def test_send(order, invoice):\n    assert order < invoice\n"
    )
    result = project(tmp_path, test)
    assert kinds(result) == set(), "pytest runs `sent` once per test: not a second run"
    assert [f.job for f in result.findings if f.code == "JOB702"] == ["proj.tasks.send"]


def test_silent_without_test_files(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    result = run([tmp_path], Config(root=tmp_path, source=None), [JobWithoutTests()])
    assert not result.findings and len(result.jobs) == 2
    assert coverage_index(result.project).files == []


def test_jobs_defined_in_tests_are_not_reported(tmp_path: Path) -> None:
    helper = TASKS.replace("mail.send", "fake.send").replace("def send", "def helper_job")
    result = project(tmp_path, helper, name="test_x.py")
    assert sorted((f.code, f.job) for f in result.findings) == [
        ("JOB701", "proj.tasks.other"),
        ("JOB701", "proj.tasks.send"),
    ]


def test_message_counts_the_test_files(tmp_path: Path) -> None:
    result = project(tmp_path, "from proj.tasks import send\n")
    (finding,) = [f for f in result.findings if f.code == "JOB701"]
    assert finding.message == (
        "Task 'other' is not referred to by any test (looked in 1 test file matching test-paths)"
    )


def test_readiness_gate(tmp_path: Path) -> None:
    test = (
        "import pytest\nfrom proj.tasks import send\n\ndef test_send():\n    send(1)\n    send(1)\n"
    )
    report = build(project(tmp_path, test))
    states = {entry.job.name: entry.gate("tests").state for entry in report.entries}
    assert states == {"send": PASS, "other": WARN}
    entry = next(entry for entry in report.entries if entry.job.name == "send")
    rows = {row.label: row for section in sections(entry) for row in section.rows}
    assert rows["test files"].value == "tests/test_tasks.py"
    assert rows["failures exercised"].value == "second run"


def test_readiness_gate_is_unknown_without_test_files(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(TASKS)
    config = Config(root=tmp_path, source=None)
    report = build(run([tmp_path], config, [JobWithoutTests(), FailurePathUntested()]))
    gate = report.entries[0].gate("tests")
    assert gate.state == UNKNOWN
    assert [item.label for item in gate.unresolved] == ["test files"]


def test_example_files_keep_the_block_line_numbers() -> None:
    block = "a = 1\n\n# file: tests/test_a.py\nb = 2\n"
    files = example_files(block)
    assert files == {
        "example.py": "a = 1\n\n\n\n",
        "tests/test_a.py": "\n\n# file: tests/test_a.py\nb = 2\n",
    }
    assert example_files("x = 1\n") == {"example.py": "x = 1\n"}


def test_class_patches_base_set_up_and_nested_fixtures(tmp_path: Path) -> None:
    test = (
        "import unittest\nfrom unittest import mock\nimport pytest\n"
        "from proj.tasks import other, send\n\n"
        "class Base(unittest.TestCase):\n    def setUp(self):\n"
        "        mock.patch('proj.tasks.api', side_effect=OSError).start()\n\n"
        "class SendTests(Base):\n    def test_send(self):\n        send(1)\n\n"
        "@mock.patch('proj.tasks.api', side_effect=[TimeoutError(), None])\n"
        "class OtherTests(unittest.TestCase):\n    def test_other(self, api):\n        other(1)\n"
    )
    assert not project(tmp_path, test).findings
    nested = (
        "from unittest import mock\nimport pytest\nfrom proj.tasks import other, send\n\n"
        "@pytest.fixture\ndef api():\n    with mock.patch('proj.tasks.api') as m:\n"
        "        m.side_effect = ConnectionError\n        yield m\n\n"
        "@pytest.fixture\ndef client(api):\n    return object()\n\n"
        "def test_send(client):\n    send(1)\n\n"
        "def test_other(client):\n    other(1)\n    other(2)\n"
    )
    assert not project(tmp_path, nested).findings


_RULE_FIXTURES = Path(__file__).parent.parent / "fixtures" / "rules"


@pytest.mark.parametrize(
    "root",
    sorted(_RULE_FIXTURES.glob("JOB70[12]/*")),
    ids=lambda root: root.relative_to(_RULE_FIXTURES).as_posix(),
)
def test_naming_files_reports_what_a_whole_run_reports_on_them(root: Path) -> None:
    """``jobaudit check FILE`` (pre-commit) checks only the jobs the named files define."""
    config = Config(root=root, source=None)
    rules = [JobWithoutTests(), FailurePathUntested()]
    whole = run([root], config, rules).findings
    for path in sorted(root.rglob("*.py")):
        relpath = path.relative_to(root).as_posix()
        named = run([root], config, rules, report=[path]).findings
        assert named == [finding for finding in whole if finding.path == relpath], relpath


def test_the_index_is_not_built_when_no_named_file_defines_a_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(tmp_path, "from proj.tasks import send\n")
    (tmp_path / "proj" / "views.py").write_text("def index(request):\n    return None\n")

    def unwanted(_: object) -> None:
        raise AssertionError("the coverage index was built")

    monkeypatch.setattr("jobaudit.job_tests._Builder", unwanted)
    config = Config(root=tmp_path, source=None)
    rules = [JobWithoutTests(), FailurePathUntested()]
    result = run([tmp_path], config, rules, report=[tmp_path / "proj" / "views.py"])
    assert result.findings == []
    assert result.internal_errors == []
