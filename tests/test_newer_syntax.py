"""Jobs in files written for a newer Python than the one jobaudit runs on are still found.

Every sample holds a Celery task with a JOB301 finding after (or beside) the
newer construct, so a copy that moved a line or a column would move the
finding.  The command-line tests pass on every supported Python: on one that
reads the syntax natively they show nothing is lost, on an older one they
prove the down-levelled copy keeps positions.  The tests of the copy itself
are skipped where the running Python parses the sample natively.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from jobaudit import downlevel, source
from jobaudit.cli import main
from jobaudit.downlevel import Inspection, inspect

DECORATOR = (
    "@shared_task(bind=True, max_retries=None, autoretry_for=(ConnectionError,), "
    "retry_backoff=True)"
)


def _sample(body: str) -> str:
    return "from celery import shared_task\n\n" + textwrap.dedent(body).replace(
        "@DECORATOR", DECORATOR
    )


SAMPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pep695-type-parameters": (
        _sample(
            """
            def first[T](items: list[T]) -> T:
                return items[0]


            class Batch[T: (int, str), *Ts, **P]:
                pass


            @DECORATOR
            def sync[T](self, order_id: T) -> T:
                return first([order_id])
            """
        ),
        ("type parameters (PEP 695)",),
    ),
    "pep695-type-statement": (
        _sample(
            """
            type OrderId = int
            type Pair[K, V] = tuple[K, V]; type Flag = bool


            @DECORATOR
            def sync(self, order_id: OrderId):
                pass
            """
        ),
        ("type statement (PEP 695)",),
    ),
    "pep695-multiline-type-parameters": (
        _sample(
            """
            class Registry[
                K,  # the key
                V,
            ](dict[K, V]):
                pass


            @DECORATOR
            def sync(self, order_id):
                pass
            """
        ),
        ("type parameters (PEP 695)",),
    ),
    "pep696-type-parameter-defaults": (
        _sample(
            """
            class Box[T = int]:
                pass


            @DECORATOR
            def sync(self, order_id):
                return Box()
            """
        ),
        ("type parameter default (PEP 696)",),
    ),
    "pep758-except-without-parentheses": (
        _sample(
            """
            def fetch(order_id):
                try:
                    return order_id.load()
                except ConnectionError, TimeoutError:
                    return None


            @DECORATOR
            def sync(self, order_id):
                try:
                    fetch(order_id)
                except ValueError, KeyError: pass
            """
        ),
        ("except without parentheses (PEP 758)",),
    ),
    "pep654-except-star": (
        _sample(
            """
            @DECORATOR
            def sync(self, order_id):
                try:
                    order_id.load()
                except* ValueError:
                    pass
                except* (KeyError, TypeError):
                    pass
            """
        ),
        ("except* (PEP 654)",),
    ),
    "pep646-star-unpacking": (
        _sample(
            """
            from typing import Callable, TypeVarTuple

            Ts = TypeVarTuple("Ts")


            def call(func: Callable[[*Ts], None], *args: *Ts) -> tuple[int, *Ts]:
                return (0, *args)


            @DECORATOR
            def sync(self, order_id):
                return call(print, order_id)
            """
        ),
        (
            "star unpacking in an annotation (PEP 646)",
            "star unpacking in a subscript (PEP 646)",
        ),
    ),
    "pep701-f-strings": (
        _sample(
            """
            PREFIX = {"name": "shop", "]": "odd"}
            LABEL = f"{PREFIX["name"]}.sync"
            LINES = f"{"\\n".join(["a", "b"])}"
            NOTE = f"{
                PREFIX["]"]  # a comment inside the replacement field
            }"
            NESTED = f"{f"{f"{LABEL}"}"}"


            @shared_task(name=f"{PREFIX["name"]}.sync", bind=True, max_retries=None, autoretry_for=(
                ConnectionError,
            ))
            def sync(self, order_id):
                print(f"{order_id!r:>{10}} {"done"}")
            """
        ),
        ("f-string (PEP 701)",),
    ),
    "pep750-t-strings": (
        _sample(
            """
            def render(name):
                return t"Hello {name}!"


            QUERY = t\"\"\"
                SELECT * FROM orders WHERE id = {1}
            \"\"\"


            @DECORATOR
            def sync(self, order_id):
                return render(t"{order_id:>10}")
            """
        ),
        ("t-string (PEP 750)",),
    ),
    "all-at-once": (
        _sample(
            """
            type Payload = dict[str, int]


            def retrying[**P, R](func):
                return func


            @DECORATOR
            def sync[T](self, payload: Payload) -> None:
                try:
                    print(f"{payload["id"]}", t"{payload}")
                except* OSError, ValueError:
                    pass
                except* KeyError:
                    pass
            """
        ),
        (
            "type statement (PEP 695)",
            "except without parentheses (PEP 758)",
            "t-string (PEP 750)",
        ),
    ),
}


def _expected_finding(text: str) -> tuple[int, int]:
    """Line and 1-based column of ``max_retries=None``, where JOB301 points."""
    for number, line in enumerate(text.splitlines(), start=1):
        if "max_retries=None" in line:
            return number, line.index("max_retries=None") + 1
    raise AssertionError("sample without max_retries=None")


def _native(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return False
    return True


def _check(root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = CliRunner().invoke(main, ["check", str(root), "--format", "json", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"jobaudit crashed: {result.exception!r}")
    return result.exit_code, json.loads(result.stdout), result.stderr


@pytest.mark.parametrize("name", SAMPLES)
def test_job_in_newer_syntax_is_found_where_it_is(tmp_path: Path, name: str) -> None:
    text, _ = SAMPLES[name]
    (tmp_path / "tasks.py").write_text(text)
    code, document, err = _check(tmp_path, "--select", "JOB301")
    assert document["notices"] == [], err
    line, column = _expected_finding(text)
    assert [(f["code"], f["line"], f["column"]) for f in document["findings"]] == [
        ("JOB301", line, column)
    ]
    assert code == 1
    result = CliRunner().invoke(main, ["jobs", str(tmp_path), "--format", "json"])
    assert [job["name"] for job in json.loads(result.stdout)["jobs"]] == ["sync"]


@pytest.mark.parametrize("name", SAMPLES)
def test_the_copy_keeps_every_line_and_column(name: str) -> None:
    text, features = SAMPLES[name]
    if _native(text):
        pytest.skip("the running Python reads this syntax natively")
    verdict = inspect(text)
    assert verdict is not None and verdict.valid
    found = {feature.name for feature in verdict.features}
    assert found & set(features), found
    copy = downlevel.downlevel(text, verdict.blanks)
    assert copy is not None
    ast.parse(copy.text)
    original, rewritten = text.splitlines(), copy.text.splitlines()
    assert len(rewritten) == len(original)
    for before, after in zip(original, rewritten, strict=True):
        # Same length, except where a blank that spans lines ends in a continuation.
        assert len(after) == len(before) or after.endswith("\\"), (before, after)


def test_blanked_strings_stay_f_strings_so_their_value_is_unknown() -> None:
    text = 'x = t"{a}"\ny = f"{b["c"]}"\n'
    copy = downlevel.downlevel(text, [(1, 4, 1, 10), (2, 4, 2, 15)], version=(3, 10))
    assert copy is not None
    assert copy.text == 'x = f"   "\ny = f"        "\n'
    assert all(isinstance(node.value, ast.JoinedStr) for node in ast.parse(copy.text).body)


def test_multiline_blanks_continue_the_statement() -> None:
    text = 'call(t"""a\n{b}\n""", 2)\nz = 1\n'
    copy = downlevel.downlevel(text, [(1, 5, 3, 3)], version=(3, 10))
    assert copy is not None
    assert copy.text == 'call(f"" \\\n  \\\n   , 2)\nz = 1\n'
    call = ast.parse(copy.text).body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert ast.parse(copy.text).body[1].lineno == 4


def test_stars_are_rewritten_only_for_3_10() -> None:
    text = "try:\n    pass\nexcept* ValueError:\n    pass\nx: tuple[*Ts]\n"
    assert downlevel.downlevel(text, version=(3, 11)) is None
    copy = downlevel.downlevel(text, version=(3, 10))
    assert copy is not None
    assert copy.text == "try:\n    pass\nexcept  ValueError:\n    pass\nx: tuple[ Ts]\n"


def test_list_displays_and_case_patterns_keep_their_stars() -> None:
    text = (
        "x = [*a]\nf(*a)\nmatch x:\n    case [*rest]:\n        pass\nfor y in *a, *b:\n    pass\n"
    )
    assert downlevel.downlevel(text, version=(3, 10)) is None


def test_lines_are_python_lines_not_str_splitlines() -> None:
    """A form feed or U+2028 in the file must not shift the rewritten lines."""
    text = "\x0c\nx = '\u2028'\ntype A = int\n"
    copy = downlevel.downlevel(text)
    assert copy is not None
    assert copy.text == "\x0c\nx = '\u2028'\nA      = int\n"


needs_pre_312 = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="the running Python reads type statements natively"
)
needs_pre_314 = pytest.mark.skipif(
    sys.version_info >= (3, 14), reason="the running Python reads PEP 758 natively"
)


@needs_pre_312
def test_notice_names_the_python_a_file_needs_when_no_copy_can_be_made(tmp_path: Path) -> None:
    """A ``type`` statement broken by a backslash is not rewritten: the notice says what to do."""
    good = SAMPLES["pep695-type-statement"][0]
    (tmp_path / "tasks.py").write_text(good)
    (tmp_path / "aliases.py").write_text("import celery\ntype \\\n    OrderId = int\n")
    code, document, _ = _check(tmp_path)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    expected = (
        "needs Python 3.12 (type statement (PEP 695) on line 2), which jobaudit cannot read "
        f"on Python {running}; run jobaudit with Python 3.12 or newer "
        "(e.g. uvx --python 3.12 jobaudit check)"
    )
    assert document["notices"] == [{"path": "aliases.py", "line": 2, "reason": expected}]
    assert (
        f"jobaudit: aliases.py:2: {expected}"
        in CliRunner().invoke(main, ["check", str(tmp_path)]).stderr
    )
    assert code == 1
    assert [f["path"] for f in document["findings"] if f["code"] == "JOB301"] == ["tasks.py"]


@needs_pre_314
def test_notice_names_the_newest_python_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(source, "downlevel", lambda text, blanks=(): None)
    text, _ = SAMPLES["pep758-except-without-parentheses"]
    (tmp_path / "tasks.py").write_text(text)
    code, document, _ = _check(tmp_path)
    (notice,) = document["notices"]
    assert notice["reason"].startswith(
        "needs Python 3.14 (except without parentheses (PEP 758) on line 7)"
    )
    assert notice["line"] == 7
    assert code == 0  # the notice alone does not fail the run


@needs_pre_314
def test_without_libcst_token_rewrites_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libcst crashed or is missing: a copy the running Python reads is still used.

    Strings cannot be found without libcst, so a t-string file keeps the
    interpreter's syntax error, with the hint to use a newer Python.
    """
    monkeypatch.setattr(source, "inspect", lambda text, detail=True: None)
    (tmp_path / "tasks.py").write_text(SAMPLES["pep758-except-without-parentheses"][0])
    (tmp_path / "templates.py").write_text(SAMPLES["pep750-t-strings"][0])
    _, document, _ = _check(tmp_path)
    assert ("JOB301", "tasks.py") in {(f["code"], f["path"]) for f in document["findings"]}
    (notice,) = document["notices"]
    assert notice["path"] == "templates.py"
    assert notice["reason"].startswith("syntax error: ")
    assert "if the file is valid Python newer than" in notice["reason"]


@needs_pre_312
def test_a_copy_that_parses_is_still_confirmed_by_libcst(tmp_path: Path) -> None:
    """Blanking ``[]`` would make this read, but no Python accepts empty type parameters."""
    (tmp_path / "tasks.py").write_text(SAMPLES["pep758-except-without-parentheses"][0])
    generic = "import celery\n\n\ndef first[](items):\n    return items[0]\n"
    (tmp_path / "generic.py").write_text(generic)
    code, document, _ = _check(tmp_path)
    (notice,) = document["notices"]
    assert notice["path"] == "generic.py"
    assert notice["reason"].startswith("syntax error: ")
    assert "newer" not in notice["reason"]
    assert code == 1


@needs_pre_314
def test_a_dead_libcst_child_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "tasks.py").write_text(SAMPLES["pep758-except-without-parentheses"][0])
    assert _check(tmp_path)[1]["notices"] == []
    process = downlevel._CHILD.process
    assert process is not None
    process.kill()
    process.wait()
    code, document, _ = _check(tmp_path)
    assert document["notices"] == []
    assert code == 1


def test_a_missing_libcst_is_reported_as_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    child = downlevel._Child()
    monkeypatch.setattr(downlevel, "_CHILD", child)
    monkeypatch.setattr(downlevel.sys, "executable", sys.executable + "-does-not-exist")
    assert inspect("except A, B:\n") is None
    assert child.unavailable


def test_an_invalid_file_is_invalid_for_libcst_too() -> None:
    assert inspect("def broken(:\n") == Inspection(valid=False)
    assert inspect("x = (\n") == Inspection(valid=False)


def test_libcst_failing_on_valid_code_gives_no_verdict() -> None:
    """libcst 1.9 cannot build ``t"a" t"b"`` (valid 3.14): no verdict, not "invalid"."""
    assert inspect('x = t"a" t"b"\n') is None


@needs_pre_314
def test_check_never_imports_libcst(tmp_path: Path) -> None:
    """libcst is read in a child process only; the checking process stays lean."""
    (tmp_path / "tasks.py").write_text(SAMPLES["all-at-once"][0])
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from jobaudit.cli import main\n"
        f"result = CliRunner().invoke(main, ['check', {str(tmp_path)!r}, '--format', 'json'])\n"
        "assert 'JOB301' in result.stdout, result.stdout\n"
        "assert 'libcst' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr


# -- the copy vouching for PEP 758 lists, so libcst need not be asked ------------------


def _vouched(text: str) -> bool:
    copy = downlevel.downlevel(text)
    assert copy is not None
    return downlevel.vouches(copy, ast.parse(copy.text))


VOUCHED = [
    "except ValueError, TypeError:",
    pytest.param(
        "except* ValueError, TypeError:",
        marks=pytest.mark.skipif(
            sys.version_info < (3, 11), reason="on 3.10 the copy rewrites the star as well"
        ),
    ),
    "except (OSError, EOFError), errors.Retry, KeyError:",
    "except A | B, C:",
    "except a, b | c:",
    "except ÄrgerError, ÜbelError:",
    "except errors['ä'].Timeout, Exception:",
]


def _try(clause: str) -> str:
    return f"try:\n    pass\n{clause}\n    pass\n"


@pytest.mark.parametrize("clause", VOUCHED)
def test_the_copy_vouches_for_except_lists_it_reads_item_by_item(clause: str) -> None:
    """Each ``|`` put for a comma joins two operands, so each item is an expression."""
    assert _vouched(_try(clause))


@pytest.mark.parametrize("clause", VOUCHED)
def test_libcst_agrees_with_every_list_the_copy_vouches_for(clause: str) -> None:
    verdict = inspect(_try(clause), detail=False)
    assert verdict is not None and verdict.valid


@pytest.mark.parametrize(
    "clause",
    [
        "except a if b, c else d:",  # reads as a if (b | c) else d: not a list of expressions
        "except not a, b:",  # valid, but the copy regroups it: libcst decides
    ],
)
def test_the_copy_does_not_vouch_for_lists_it_regroups(clause: str) -> None:
    assert not _vouched(_try(clause))


def test_libcst_rejects_the_list_the_copy_regroups_into_a_valid_one() -> None:
    """Why the copy parsing is not enough: ``a if b`` is not an expression."""
    assert ast.parse(_try("except a if b| c else d:"))
    verdict = inspect(_try("except a if b, c else d:"), detail=False)
    assert verdict is not None and not verdict.valid


def test_the_copy_does_not_vouch_when_it_also_rewrote_something_else() -> None:
    """Blanked type parameters are not read at all, so only libcst can judge them."""
    text = "def first[T](x):\n    try:\n        pass\n    except A, B:\n        pass\n"
    assert not _vouched(text)


@needs_pre_314
def test_a_vouched_file_is_read_without_asking_libcst(monkeypatch: pytest.MonkeyPatch) -> None:
    def ask(text: str, detail: bool = True) -> None:
        raise AssertionError("libcst was asked")

    monkeypatch.setattr(source, "inspect", ask)
    parsed = source.parse_source(
        "try:\n    pass\nexcept ValueError, KeyError:\n    pass\n", "jobs.py"
    )
    statement = parsed.tree.body[0]
    assert isinstance(statement, ast.Try)
    assert isinstance(statement.handlers[0].type, ast.BinOp)


@needs_pre_314
def test_a_list_the_copy_regroups_is_judged_by_libcst() -> None:
    with pytest.raises(source.SourceError) as info:
        source.parse_source("try:\n    pass\nexcept a if b, c else d:\n    pass\n", "bad.py")
    assert info.value.line == 3
    assert "newer" not in info.value.reason
