"""Fuzzing the whole run: generated and mutated programs through every command and format.

Each example is written into a fresh project beside a known-good job file and
run through ``jobaudit check`` in every ``--format``, ``jobaudit jobs`` and
``jobaudit report`` in each of theirs (read from the command line itself, so a
new format is fuzzed as soon as it exists).  Properties:

* nothing raises and no run is incomplete (exit 0 or 1, never an internal
  error), whatever the file contains;
* the good job is always found, with its finding while its policy is unbounded
  (one bad file never loses another's);
* the same input gives byte-identical output, run after run;
* JSON outputs parse, and SARIF validates against the OASIS schema;
* ``jobaudit fix --unsafe-fixes`` leaves every file that parsed still parsing.

The default run is short, for CI (50 examples per test, derandomised so CI is
reproducible).  For a long run set ``JOBAUDIT_FUZZ_EXAMPLES``; examples are
then random::

    JOBAUDIT_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobaudit.cli import main

# hypothesmith compiles what it generates; the warnings are about that code, not jobaudit.
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = sorted((ROOT / "fixtures").rglob("*.py"))
SARIF_SCHEMA = ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"

LONG_RUN = "JOBAUDIT_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("JOBAUDIT_FUZZ_EXAMPLES", "50"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG_RUN,
    database=None,
    suppress_health_check=list(HealthCheck),
)
NODES = settings(FUZZ, max_examples=min(EXAMPLES, 50), derandomize=True)
"""hypothesmith's ``from_node`` generator itself exhausts memory on long random runs
(hypothesis was killed at 24 GB while drawing the second example, before jobaudit
saw it), so it keeps the short derandomized run; the long run's count is in the
other properties."""

GOOD_JOB = """\
from celery import shared_task


@shared_task(bind=True, max_retries=None, autoretry_for=(ConnectionError,), retry_backoff=True)
def keep_me(self, order_id):
    pass
"""


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


def _sarif_validator() -> Callable[[Any], None] | None:
    try:
        import jsonschema
    except ImportError:
        return None
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return validator.validate


VALIDATE_SARIF = _sarif_validator() if SARIF_SCHEMA.is_file() else None


_STDOUT = io.StringIO()
_STDERR = io.StringIO()


def _invoke(args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in-process and return (exit code, stdout, stderr).

    Not ``CliRunner``: click caches a stream wrapper per ``sys.stdout`` object
    and the cache keeps each wrapper alive, so ten thousand runners' streams
    pile up until the long run is killed for memory.  Reusing one pair of
    streams keeps that cache at one entry.
    """
    for stream in (_STDOUT, _STDERR):
        stream.seek(0)
        stream.truncate()
    with contextlib.redirect_stdout(_STDOUT), contextlib.redirect_stderr(_STDERR):
        try:
            code = main.main(args, prog_name="jobaudit", standalone_mode=False)
        except SystemExit as exit_:
            code = exit_.code
    return (code if isinstance(code, int) else 0), _STDOUT.getvalue(), _STDERR.getvalue()


def _run(root: Path, command: str, fmt: str) -> str:
    args = [command, str(root), "--format", fmt]
    if command == "check":
        args.append("--no-color")
    code, stdout, stderr = _invoke(args)
    assert code in (0, 1), (command, fmt, code, stderr)
    assert "internal error" not in stderr, stderr
    return stdout


def _assert_well_formed(fmt: str, output: str) -> None:
    if fmt in ("json", "sarif"):
        document = json.loads(output, parse_constant=_reject_constant)
        if fmt == "sarif" and VALIDATE_SARIF is not None:
            VALIDATE_SARIF(document)


def _assert_good_job_kept(outputs: dict[tuple[str, str], str]) -> None:
    """The good job is always found, and its finding stays while its policy says "unbounded".

    Another file may legitimately change that policy (``task_annotations``
    setting ``max_retries`` for every task), but never hide the job.
    """
    (job,) = [
        job
        for job in json.loads(outputs["jobs", "json"])["jobs"]
        if (job["path"], job["name"]) == ("good_job.py", "keep_me")
    ]
    findings = json.loads(outputs["check", "json"])["findings"]
    if job["policy"]["max_attempts"] == "unbounded":
        assert ("JOB301", "good_job.py") in {(f["code"], f["path"]) for f in findings}


def _reject_constant(name: str) -> None:
    raise AssertionError(f"{name} is not JSON")


def _check_project(files: dict[str, bytes]) -> None:
    """Every property of the module docstring, for one project."""
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "good_job.py").write_text(GOOD_JOB)
        for name, data in files.items():
            (root / name).write_bytes(data)
        outputs: dict[tuple[str, str], str] = {}
        for command, fmt in RENDERINGS:
            outputs[command, fmt] = first = _run(root, command, fmt)
            _assert_well_formed(fmt, first)
            assert _run(root, command, fmt) == first, (command, fmt)
        _assert_good_job_kept(outputs)
        _check_fix(root, files)


def _check_fix(root: Path, files: dict[str, bytes]) -> None:
    parsed_before = {name for name, data in files.items() if _parses(data)}
    code, _, stderr = _invoke(["fix", "--unsafe-fixes", str(root)])
    assert code in (0, 1), (code, stderr)
    for name in parsed_before:
        assert _parses((root / name).read_bytes()), f"fix broke {name}"


def _parses(data: bytes) -> bool:
    try:
        ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


# --- generated programs --------------------------------------------------------------


@FUZZ
@given(hypothesmith.from_grammar())
def test_programs_from_the_grammar(code: str) -> None:
    _check_project({"fuzzed.py": code.encode("utf-8", "surrogatepass")})


@NODES
@given(hypothesmith.from_node())
def test_programs_from_libcst_nodes(code: str) -> None:
    _check_project({"fuzzed.py": code.encode("utf-8", "surrogatepass")})


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes(data: bytes) -> None:
    _check_project({"fuzzed.py": data})


# --- mutated fixtures ----------------------------------------------------------------

SNIPPETS = [
    "max_retries=None",
    "autoretry_for=(Exception,)",
    "@app.task(bind=True, max_retries=None, autoretry_for=(Exception,))\n",
    "@shared_task\n",
    "@dramatiq.actor(max_retries=None)\n",
    "def job(self, *args, **kwargs):\n    self.retry(countdown=None)\n",
    "try:\n    pass\nexcept:\n    pass\n",
    "except (Retry, Exception):\n    raise\n",
    "raise self.retry(exc=exc, max_retries=float('inf'))\n",
    "from celery import Celery\napp = Celery()\napp.conf.task_time_limit = None\n",
    "import celery as celery\n",
    "from . import *\n",
    "from .. import tasks\n",
    "global app\n",
    "del app\n",
    "app = app\n",
    "class Task(Task):\n    max_retries = max_retries\n",
    "lambda: (yield)\n",
    "@(lambda f: f)\n",
    "**{}",
    "*()",
    "'\\udce9'",
    "\x00",
    "\\\n",
    "(",
    "]",
    ":",
    '"""',
    "\t",
    "\r",
    "\x0c",
    "\u2028",
    "# noqa: JOB301\n",
    "# jobaudit: idempotent --\n",
    "# -*- coding: latin-1 -*-\n",
    "\ufeff",
]

VALUES = [
    "None",
    "True",
    "-1",
    "0",
    "10**100",
    "1e309",
    "float('nan')",
    "''",
    "'x' * 3",
    "b'x'",
    "[]",
    "{}",
    "()",
    "(Exception,)",
    "[ValueError, *errors]",
    "{**options}",
    "lambda: 0",
    "lambda self, *a: a",
    "f'{x}'",
    "x.y.z",
    "x[0]",
    "x()",
    "await x",
    "x if y else z",
    "(x := 1)",
    "...",
    "os.environ['X']",
    "int(os.environ.get('X', 3))",
    "app",
    "self",
    "Retry",
    "timedelta(seconds=-5)",
]


@st.composite
def mutated_fixture(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(FIXTURES))
    text = path.read_text(encoding="utf-8")
    mutations = draw(st.lists(st.sampled_from(sorted(_MUTATIONS)), min_size=1, max_size=4))
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    for name in mutations:
        text = _MUTATIONS[name](text, rng)
    return text.encode("utf-8", "surrogatepass")


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True) or [""]


def _delete_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "".join(lines)


def _duplicate_line(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    index = rng.randrange(len(lines))
    lines.insert(index, lines[index])
    return "".join(lines)


def _swap_lines(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return "".join(lines)


def _truncate(text: str, rng: random.Random) -> str:
    return text[: rng.randrange(len(text) + 1)]


def _insert_snippet(text: str, rng: random.Random) -> str:
    position = rng.randrange(len(text) + 1)
    return text[:position] + rng.choice(SNIPPETS) + text[position:]


def _reindent(text: str, rng: random.Random) -> str:
    lines = _lines(text)
    index = rng.randrange(len(lines))
    lines[index] = rng.choice(["", " ", "    ", "\t"]) + lines[index].lstrip()
    return "".join(lines)


def _replace_expression(text: str, rng: random.Random) -> str:
    """Swap one expression for another that still parses: odd values, not syntax errors."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return text
    nodes = [node for node in ast.walk(tree) if isinstance(node, ast.expr)]
    keywords = [node for node in ast.walk(tree) if isinstance(node, ast.keyword)]
    if not nodes:
        return text
    replacement = ast.parse(rng.choice(VALUES), mode="eval").body
    if keywords and rng.random() < 0.5:
        rng.choice(keywords).value = replacement
    else:
        target = rng.choice(nodes)
        for parent in ast.walk(tree):
            for field, value in ast.iter_fields(parent):
                if value is target:
                    setattr(parent, field, replacement)
                elif isinstance(value, list) and target in value:
                    value[value.index(target)] = replacement
    try:
        return ast.unparse(ast.fix_missing_locations(tree))
    except (AttributeError, TypeError, ValueError, RecursionError):
        return text


_MUTATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "delete_line": _delete_line,
    "duplicate_line": _duplicate_line,
    "swap_lines": _swap_lines,
    "truncate": _truncate,
    "insert_snippet": _insert_snippet,
    "reindent": _reindent,
    "replace_expression": _replace_expression,
}


@FUZZ
@given(mutated_fixture())
def test_mutated_fixtures(data: bytes) -> None:
    _check_project({"fuzzed.py": data})


@FUZZ
@given(st.lists(mutated_fixture(), min_size=2, max_size=4))
def test_mutated_fixtures_as_one_project(files: list[bytes]) -> None:
    """Mutated files that import each other (``from .`` / ``tasks``) in one package."""
    names = ["__init__.py", "tasks.py", "celery.py", "settings.py"]
    _check_project(dict(zip(names, files, strict=False)))


def test_every_rendering_is_fuzzed() -> None:
    assert ("check", "json") in RENDERINGS
    assert ("check", "text") in RENDERINGS
    assert len(FIXTURES) > 20
