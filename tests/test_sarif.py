"""``check --format sarif``: valid SARIF 2.1.0 that GitHub code scanning ingests and displays well.

Every log a test here produces goes through ``assert_valid``: the official
OASIS schema (tests/data, draft-04) plus the properties and limits GitHub
documents (docs/integrations.md).  The SARIF Multitool and sarif-tools run as
independent checks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from jobaudit import __version__
from jobaudit.checks.base import Rule
from jobaudit.cli import main
from jobaudit.config import Config
from jobaudit.engine import run
from jobaudit.report import sarif
from jobaudit.selection import select_rules

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"
DEMO = REPO / "fixtures" / "projects" / "demo"
FIXTURE_PROJECTS = sorted(
    [p for p in (REPO / "fixtures" / "projects").iterdir() if p.is_dir()]
    + [p for p in (REPO / "fixtures" / "rules").iterdir() if p.is_dir()]
)
SCHEMA = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
MULTITOOL_VERSION = "5.7.0"

UNBOUNDED = """\
from celery import shared_task


@shared_task(bind=True, max_retries=None, autoretry_for=(ConnectionError,), retry_backoff=True)
def sync(self, order_id):
    pass
"""
CLEAN = UNBOUNDED.replace("max_retries=None, ", "")


def check_sarif(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["check", "--format", "sarif", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    log = json.loads(result.stdout)
    assert_valid(log)
    return result.exit_code, log


def assert_valid(log: dict[str, Any]) -> None:
    """The schema, then what GitHub requires or limits (integrations.md §1.1, §1.2, §9)."""
    errors = sorted(VALIDATOR.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]
    assert log["version"] == "2.1.0"
    assert log["$schema"] == sarif.SCHEMA_URI
    (run_,) = log["runs"]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "jobaudit"
    assert driver["version"] == driver["semanticVersion"] == __version__
    assert driver["informationUri"].startswith("https://")
    assert 0 < len(driver["rules"]) <= 25_000
    for rule in driver["rules"]:
        assert rule["id"] and 0 < len(rule["name"]) <= 255
        for key in ("shortDescription", "fullDescription"):
            assert 0 < len(rule[key]["text"]) <= 1024
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert rule["helpUri"].startswith("https://")
        assert rule["defaultConfiguration"]["level"] in {"error", "warning", "note"}
        properties = rule["properties"]
        assert 0 < len(properties["tags"]) <= 20
        assert properties["precision"] in {"very-high", "high", "medium", "low"}
        assert properties["problem.severity"] in {"error", "warning", "recommendation"}
        assert "security-severity" not in properties
    assert run_["columnKind"] == "utf16CodeUnits"
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file:///")
    assert run_["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")
    assert "results" in run_ and len(run_["results"]) <= 25_000
    assert "readiness" in run_["properties"]
    assert "executionSuccessful" in run_["invocations"][0]
    ids = [rule["id"] for rule in driver["rules"]]
    for result in run_["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in {"error", "warning", "note"}
        assert result["message"]["text"]
        assert "suppressions" not in result and "baselineState" not in result
        assert set(result["partialFingerprints"]) == {sarif.FINGERPRINT_KEY}
        assert len(result["locations"]) == 1
        for location in result["locations"] + result.get("relatedLocations", []):
            physical = location["physicalLocation"]
            uri = physical["artifactLocation"]["uri"]
            assert ":" not in uri and not uri.startswith("/"), uri
            assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            region = physical["region"]
            assert {"startLine", "startColumn", "endLine", "endColumn"} <= set(region)
            assert region["startLine"] >= 1 and region["endLine"] >= region["startLine"]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "tasks.py").write_text(UNBOUNDED)
    return tmp_path


@pytest.mark.parametrize("path", FIXTURE_PROJECTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_project_gives_valid_sarif(path: Path) -> None:
    check_sarif(str(path))


def test_findings_become_results(project: Path) -> None:
    code, log = check_sarif(str(project), "--select", "JOB301")
    assert code == 1
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "JOB301"
    assert result["level"] == "error"
    assert result["message"]["text"].startswith("Task 'sync' retries")
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"] == {"uri": "tasks.py", "uriBaseId": "%SRCROOT%"}
    assert physical["region"] == {"startLine": 4, "startColumn": 25, "endLine": 4, "endColumn": 41}
    assert "automationDetails" not in log["runs"][0]


def test_clean_run_has_an_empty_results_array(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(CLEAN)
    code, log = check_sarif(str(tmp_path), "--select", "JOB301")
    assert code == 0
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["properties"]["readiness"]["jobs"] == 1


def test_warning_level_is_written_out(tmp_path: Path) -> None:
    """sarif-om drops values equal to its defaults; a result's ``warning`` must stay."""
    (tmp_path / "tasks.py").write_text(CLEAN.replace("retry_backoff=True", "retry_backoff=False"))
    _, log = check_sarif(str(tmp_path), "--select", "JOB302")
    (result,) = log["runs"][0]["results"]
    assert result["level"] == "warning"


def test_category_sets_automation_details(project: Path) -> None:
    _, log = check_sarif(str(project), "--sarif-category", "jobaudit")
    assert log["runs"][0]["automationDetails"] == {"id": "jobaudit/"}
    _, log = check_sarif(str(project), "--sarif-category", "backend/")
    assert log["runs"][0]["automationDetails"] == {"id": "backend/"}


def test_noqa_suppressed_findings_are_left_out(tmp_path: Path) -> None:
    source = UNBOUNDED.replace("retry_backoff=True)", "retry_backoff=True)  # noqa: JOB301")
    (tmp_path / "tasks.py").write_text(source)
    _, log = check_sarif(str(tmp_path), "--select", "JOB301")
    assert log["runs"][0]["results"] == []


def test_unparsable_file_is_a_notification_not_a_result(project: Path) -> None:
    (project / "broken.py").write_text("import celery\ndef broken(:\n")
    code, log = check_sarif(str(project), "--select", "JOB301")
    assert code == 1
    run_ = log["runs"][0]
    assert [r["ruleId"] for r in run_["results"]] == ["JOB301"]
    (invocation,) = run_["invocations"]
    assert invocation["executionSuccessful"] is True
    (notification,) = invocation["toolExecutionNotifications"]
    assert notification["level"] == "warning"
    assert notification["message"]["text"].startswith("broken.py: syntax error")
    location = notification["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "broken.py"
    assert location["region"] == {"startLine": 2}


def test_internal_error_marks_the_run_failed(project: Path) -> None:
    class Exploding(Rule):
        code = "JOB401"
        name = "no-time-limit"
        summary = "Always fails."

        def check_job(self, job: object, project: object) -> Any:
            raise RuntimeError("boom")

    rules = [rule for rule in select_rules(None) if rule.code != "JOB401"] + [Exploding()]
    result = run([project], Config(root=project, source=None), rules)
    log = sarif.build(result)
    assert_valid(log)
    invocation = log["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert any(
        n["level"] == "error" and "internal error in JOB401" in n["message"]["text"]
        for n in invocation["toolExecutionNotifications"]
    )


def test_related_locations_are_linked_from_the_message() -> None:
    result = run([DEMO], Config(root=REPO, source=None), select_rules(None))
    log = sarif.build(result)
    assert_valid(log)
    linked = [r for r in log["runs"][0]["results"] if r.get("relatedLocations")]
    assert linked
    for item in linked:
        for related in item["relatedLocations"]:
            assert f"]({related['id']})" in item["message"]["text"]
            assert related["message"]["text"]
        # the first sentence stands alone: the links come after it
        assert item["message"]["text"].index(". See [") > 0


def test_uris_are_relative_to_the_repository_root_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    package = tmp_path / "services" / "billing"
    package.mkdir(parents=True)
    (package / "tasks.py").write_text(UNBOUNDED)
    (tmp_path / "services" / "pyproject.toml").write_text("[tool.jobaudit]\n")
    expected = "services/billing/tasks.py"
    for cwd, target in (
        (tmp_path, "services/billing"),
        (tmp_path / "services", "billing"),
        (package, "."),
    ):
        monkeypatch.chdir(cwd)
        _, log = check_sarif(target, "--select", "JOB301")
        (result,) = log["runs"][0]["results"]
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        assert location["uri"] == expected, cwd
        root = log["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        assert root == tmp_path.resolve().as_uri() + "/"


def test_uris_are_percent_encoded(tmp_path: Path) -> None:
    folder = tmp_path / "my jobs"
    folder.mkdir()
    (folder / "tâches.py").write_text(UNBOUNDED)
    _, log = check_sarif(str(tmp_path), "--select", "JOB301")
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "my%20jobs/t%C3%A2ches.py"


def test_fingerprint_survives_lines_added_above_and_follows_the_code(project: Path) -> None:
    def fingerprint() -> tuple[int, str]:
        _, log = check_sarif(str(project), "--select", "JOB301")
        (result,) = log["runs"][0]["results"]
        region = result["locations"][0]["physicalLocation"]["region"]
        return region["startLine"], result["partialFingerprints"][sarif.FINGERPRINT_KEY]

    line, before = fingerprint()
    (project / "tasks.py").write_text("import os\nimport sys\n\n" + UNBOUNDED)
    moved_line, after = fingerprint()
    assert moved_line == line + 3
    assert after == before
    (project / "tasks.py").write_text(UNBOUNDED.replace("max_retries=None", "max_retries = None"))
    assert fingerprint()[1] == before, "whitespace is normalised away"
    (project / "tasks.py").write_text(UNBOUNDED.replace("def sync", "def sync_orders"))
    assert fingerprint()[1] != before, "the job is part of the key"


def test_identical_findings_get_distinct_fingerprints(tmp_path: Path) -> None:
    second = UNBOUNDED.split("\n\n\n", 1)[1].replace("def sync", "def sync_again")
    (tmp_path / "tasks.py").write_text(UNBOUNDED + "\n\n" + second)
    _, log = check_sarif(str(tmp_path), "--select", "JOB301")
    values = [r["partialFingerprints"][sarif.FINGERPRINT_KEY] for r in log["runs"][0]["results"]]
    assert len(values) == 2 and len(set(values)) == 2


def test_results_over_githubs_limit_are_cut_with_a_notification(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    second = UNBOUNDED.split("\n\n\n", 1)[1].replace("def sync", "def sync_again")
    (tmp_path / "tasks.py").write_text(UNBOUNDED + "\n\n" + second)
    monkeypatch.setattr(sarif, "MAX_RESULTS", 1)
    _, log = check_sarif(str(tmp_path), "--select", "JOB301")
    run_ = log["runs"][0]
    assert len(run_["results"]) == 1
    texts = [n["message"]["text"] for n in run_["invocations"][0]["toolExecutionNotifications"]]
    assert any("1 lower-level results were left out" in text for text in texts)


@pytest.mark.parametrize(
    ("line", "byte_column", "expected"),
    [
        ('x = "é𝔘"; send.delay(1)', 14, 12),
        ('x = "é𝔘"; send.delay(1)', 27, 25),
        ("plain ascii", 6, 7),
        ("", 0, 1),
    ],
)
def test_utf16_columns(line: str, byte_column: int, expected: int) -> None:
    assert sarif.utf16_column(line, byte_column) == expected


def test_rule_descriptors_come_from_the_rule_pages(project: Path) -> None:
    _, log = check_sarif(str(project), "--select", "JOB301")
    rules = {rule["id"]: rule for rule in log["runs"][0]["tool"]["driver"]["rules"]}
    rule = rules["JOB301"]
    assert rule["name"] == "unbounded-retries"
    assert rule["help"]["markdown"].startswith("# JOB301")
    assert rule["helpUri"].endswith("/rules/JOB301-unbounded-retries.md")
    assert rule["defaultConfiguration"] == {"level": "error"}
    assert {"reliability", "retries"} <= set(rule["properties"]["tags"])


def test_golden_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pins the whole shape; ``JOBAUDIT_UPDATE_GOLDEN=1 pytest`` rewrites it after a change."""
    project = tmp_path / "sarif_project"
    shutil.copytree(DATA / "sarif_project", project)
    (project / "billing" / "broken.py").write_text("import celery\ndef broken(:\n")
    monkeypatch.chdir(project)
    # two rules only, so new rules in the catalogue do not change the file
    _, log = check_sarif(".", "--select", "JOB301,JOB401")
    run_ = log["runs"][0]
    run_["originalUriBaseIds"]["%SRCROOT%"]["uri"] = "file:///REPO/"
    run_["tool"]["driver"]["version"] = run_["tool"]["driver"]["semanticVersion"] = "VERSION"
    # Wording belongs to the rules and their pages, which have their own tests;
    # the golden file pins the shape, so rule-owned text is replaced by markers.
    for rule in run_["tool"]["driver"]["rules"]:
        rule["shortDescription"] = {"text": "SUMMARY"}
        rule["fullDescription"] = {"text": "WHAT IT DOES"}
        rule["help"] = {"text": "PAGE", "markdown": "PAGE"}
    for result in run_["results"]:
        links = re.findall(r"\]\((\d+)\)", result["message"]["text"])
        result["message"]["text"] = "MESSAGE" + (
            ". See " + "; ".join(f"[RELATED]({n})" for n in links) + "." if links else ""
        )
        for related in result.get("relatedLocations", []):
            related["message"]["text"] = "RELATED"
    for notification in run_["invocations"][0]["toolExecutionNotifications"]:
        path, _, _ = notification["message"]["text"].partition(": ")
        notification["message"]["text"] = f"{path}: REASON"
    rendered = json.dumps(log, indent=2, ensure_ascii=False) + "\n"
    golden = GOLDEN / "sarif_project.sarif"
    if os.environ.get("JOBAUDIT_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered, encoding="utf-8")
    assert rendered == golden.read_text(encoding="utf-8")


# -- columns in every output format ---------------------------------------------------------

WIDE = "\U0001d518"
"""MATHEMATICAL FRAKTUR CAPITAL U: 4 UTF-8 bytes, 2 UTF-16 code units, 1 character."""
NON_ASCII = (
    "from celery import shared_task\n\n\n"
    f'@shared_task(name="reçu-{WIDE}", bind=True, max_retries=None, retry_backoff=True,'
    " autoretry_for=(OSError,))\n"
    "def sync(self, order_id):\n"
    "    pass\n"
)
DECORATOR = NON_ASCII.splitlines()[3]
BYTE_COLUMN = DECORATOR.encode("utf-8").index(b"max_retries")
CHAR_COLUMN = DECORATOR.index("max_retries") + 1
UTF16_COLUMN = len(DECORATOR[: DECORATOR.index("max_retries")].encode("utf-16-le")) // 2 + 1


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_columns_after_non_ascii_text(fmt: str, tmp_path: Path) -> None:
    assert BYTE_COLUMN + 1 != CHAR_COLUMN != UTF16_COLUMN  # the line really tells them apart
    (tmp_path / "tasks.py").write_text(NON_ASCII, encoding="utf-8")
    args = ["check", str(tmp_path), "--format", fmt, "--select", "JOB301"]
    out = CliRunner().invoke(main, args).stdout
    end_char = CHAR_COLUMN + len("max_retries=None")
    if fmt == "text":
        assert f"tasks.py:4:{CHAR_COLUMN}: JOB301" in out
    elif fmt == "json":
        (finding,) = json.loads(out)["findings"]
        assert (finding["column"], finding["end_column"]) == (CHAR_COLUMN, end_char)
    elif fmt == "github":
        assert f"line=4,endLine=4,col={CHAR_COLUMN},endColumn={end_char},title=JOB301" in out
    else:
        log = json.loads(out)
        assert_valid(log)
        region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
        assert region["startColumn"] == UTF16_COLUMN
        assert region["endColumn"] == UTF16_COLUMN + len("max_retries=None")


# -- independent validators and consumers ------------------------------------------------------


def _multitool() -> Path:
    """The SARIF Multitool's offline Linux binary, installed once into a cache folder."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the SARIF Multitool ships as an npm package")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    prefix = cache / "jobaudit-tests" / f"sarif-multitool-{MULTITOOL_VERSION}"
    binary = prefix / "node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool"
    if not binary.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        completed = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(prefix),
                f"@microsoft/sarif-multitool@{MULTITOOL_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert completed.returncode == 0, completed.stderr
        if not binary.exists():
            pytest.skip("the SARIF Multitool has no binary for this platform (Linux x86-64 only)")
    binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def _multitool_findings(binary: Path, logs: list[Path], tmp_path: Path) -> list[str]:
    """Its exit code is 0 even when it finds errors, so the verdict is read from its output log."""
    output = tmp_path / "validation.sarif"
    subprocess.run(
        [
            str(binary),
            "validate",
            *map(str, logs),
            "--rule-kind",
            "Gh;Sarif",
            "-o",
            str(output),
            "--log",
            "ForceOverwrite",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "DOTNET_CLI_TELEMETRY_OPTOUT": "1"},
    )
    results = json.loads(output.read_text(encoding="utf-8-sig"))["runs"][0].get("results", [])
    return [
        f"{r['ruleId']} [{r.get('level', 'warning')}] {r['message'].get('text', r['message'])}"
        for r in results
    ]


def test_sarif_multitool_github_and_sarif_rules(tmp_path: Path) -> None:
    binary = _multitool()
    broken = tmp_path / "broken.sarif"
    broken.write_text(json.dumps({"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]}))
    assert _multitool_findings(binary, [broken], tmp_path), "the multitool must flag a bad log"
    logs = []
    for number, path in enumerate(FIXTURE_PROJECTS):
        result = CliRunner().invoke(main, ["check", str(path), "--format", "sarif"])
        target = tmp_path / f"{number:02d}-{path.name}.sarif"
        target.write_text(result.stdout, encoding="utf-8")
        logs.append(target)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tasks.py").write_text(NON_ASCII, encoding="utf-8")
    (tmp_path / "src" / "broken.py").write_text("def broken(:\n")
    result = CliRunner().invoke(main, ["check", str(tmp_path / "src"), "--format", "sarif"])
    (tmp_path / "notices.sarif").write_text(result.stdout, encoding="utf-8")
    logs.append(tmp_path / "notices.sarif")
    assert _multitool_findings(binary, logs, tmp_path) == []


def test_sarif_tools_reads_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    target = tmp_path / "demo.sarif"
    result = CliRunner().invoke(
        main, ["check", "fixtures/projects/demo", "--format", "sarif", "-o", str(target)]
    )
    assert result.exit_code == 1
    completed = subprocess.run(
        [sys.executable, "-m", "sarif", "--check", "warning", "summary", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "due to issues at or above warning severity" in completed.stderr
    assert "JOB301" in completed.stdout
    counts = {
        level: int(line.split(":")[1])
        for line in completed.stdout.splitlines()
        for level in ("error", "warning", "note")
        if line.startswith(f"{level}:")
    }
    log = json.loads(target.read_text(encoding="utf-8"))
    levels = [r["level"] for r in log["runs"][0]["results"]]
    assert counts == {level: levels.count(level) for level in ("error", "warning", "note")}
    assert completed.returncode == counts["error"] + counts["warning"]
