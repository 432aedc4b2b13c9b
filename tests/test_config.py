"""Finding, reading and validating ``[tool.jobaudit]`` / ``jobaudit.toml``."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import pytest

from jobaudit.config import (
    DEFAULT_EXCLUDES,
    Config,
    ConfigError,
    CustomConfig,
    load_config,
)

KNOWN = ("JOB101", "JOB102", "JOB301", "JOB302", "JOB404", "JOB501")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages name files relative to the cwd, so run every test from tmp_path."""
    monkeypatch.chdir(tmp_path)


def _pyproject(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _load_body(tmp_path: Path, body: str, known: tuple[str, ...] = KNOWN) -> Config:
    _pyproject(tmp_path, body)
    return load_config([tmp_path], known_codes=known)


def _error(tmp_path: Path, body: str, known: tuple[str, ...] = KNOWN) -> str:
    with pytest.raises(ConfigError) as info:
        _load_body(tmp_path, body, known)
    return str(info.value)


class TestDiscovery:
    def test_no_config_gives_defaults_rooted_at_cwd(self, tmp_path: Path) -> None:
        (tmp_path / "src").mkdir()
        config = load_config([tmp_path / "src"])
        assert config == Config(root=tmp_path, source=None)
        assert config.select is None
        assert config.fail_on == "warning"
        assert config.respect_gitignore is True

    def test_pyproject_with_table(self, tmp_path: Path) -> None:
        path = _pyproject(tmp_path, "[tool.jobaudit]\npreview = true\n")
        (tmp_path / "pkg" / "sub").mkdir(parents=True)
        config = load_config([tmp_path / "pkg" / "sub"])
        assert config.root == tmp_path
        assert config.source == path
        assert config.preview is True

    def test_starts_from_a_file_argument(self, tmp_path: Path) -> None:
        _pyproject(tmp_path, "[tool.jobaudit]\npreview = true\n")
        module = tmp_path / "pkg" / "tasks.py"
        module.parent.mkdir()
        module.write_text("")
        assert load_config([module]).preview is True

    def test_starts_from_cwd_without_paths(self, tmp_path: Path) -> None:
        _pyproject(tmp_path, "[tool.jobaudit]\npreview = true\n")
        assert load_config([]).preview is True

    def test_pyproject_without_table_is_skipped(self, tmp_path: Path) -> None:
        outer = _pyproject(tmp_path, "[tool.jobaudit]\nfail-on = 'error'\n")
        _pyproject(tmp_path / "inner", "[project]\nname = 'inner'\n")
        config = load_config([tmp_path / "inner"])
        assert config.source == outer
        assert config.fail_on == "error"

    def test_unrelated_broken_pyproject_is_skipped(self, tmp_path: Path) -> None:
        _pyproject(tmp_path / "inner", "[project\nname = '{{ cookiecutter.name }}'\n")
        assert load_config([tmp_path / "inner"]).source is None

    def test_nearest_config_wins(self, tmp_path: Path) -> None:
        _pyproject(tmp_path, "[tool.jobaudit]\nfail-on = 'error'\n")
        inner = _pyproject(tmp_path / "inner", "[tool.jobaudit]\nfail-on = 'note'\n")
        config = load_config([tmp_path / "inner"])
        assert (config.source, config.root, config.fail_on) == (inner, inner.parent, "note")

    def test_jobaudit_toml_wins_over_pyproject(self, tmp_path: Path) -> None:
        _pyproject(tmp_path, "[tool.jobaudit]\nfail-on = 'error'\n")
        (tmp_path / "jobaudit.toml").write_text("fail-on = 'note'\n")
        config = load_config([tmp_path])
        assert config.source == tmp_path / "jobaudit.toml"
        assert config.fail_on == "note"

    def test_empty_jobaudit_toml_counts(self, tmp_path: Path) -> None:
        _pyproject(tmp_path, "[tool.jobaudit]\nfail-on = 'error'\n")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "jobaudit.toml").write_text("")
        config = load_config([tmp_path / "sub"])
        assert config.root == tmp_path / "sub"
        assert config.fail_on == "warning"

    def test_explicit_config_file(self, tmp_path: Path) -> None:
        other = tmp_path / "ci" / "strict.toml"
        other.parent.mkdir()
        other.write_text("select = ['JOB']\n")
        _pyproject(tmp_path, "[tool.jobaudit]\nselect = ['JOB1']\n")
        config = load_config([tmp_path], config_file=other)
        assert config.select == ("JOB",)
        assert config.root == other.parent
        assert config.source == other

    def test_explicit_pyproject_uses_its_tool_table(self, tmp_path: Path) -> None:
        path = _pyproject(tmp_path / "x", "[tool.jobaudit]\nignore = ['JOB404']\n")
        assert load_config([], config_file=path, known_codes=KNOWN).ignore == ("JOB404",)

    def test_explicit_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"^nope\.toml: no such file$"):
            load_config([], config_file=Path("nope.toml"))


class TestValues:
    def test_every_key(self, tmp_path: Path) -> None:
        config = _load_body(
            tmp_path,
            """
[tool.jobaudit]
select = ["JOB1", "JOB3"]
ignore = ["JOB102"]
extend-select = ["JOB501"]
preview = true
exclude = ["legacy"]
extend-exclude = ["generated/*.py"]
respect-gitignore = false
test-paths = ["spec"]
settings-modules = ["proj.settings.prod"]
idempotency-guards = ["proj.locks.once"]
permanent-errors = ["proj.errors.Fatal"]
fail-on = "error"

[tool.jobaudit.per-file-ignores]
"scripts/*.py" = ["JOB3"]

[tool.jobaudit.custom]
decorators = ["proj.jobs.background"]
base-classes = ["proj.jobs.Job"]
enqueue-functions = ["proj.jobs.defer"]
retry-options = ["max_attempts"]
timeout-options = ["deadline"]

[tool.jobaudit.rules.JOB404]
max-seconds = 600
queues = ["slow"]
""",
        )
        assert config.select == ("JOB1", "JOB3")
        assert config.ignore == ("JOB102",)
        assert config.extend_select == ("JOB501",)
        assert config.preview is True
        assert config.exclude == ("legacy",)
        assert config.extend_exclude == ("generated/*.py",)
        assert config.effective_excludes == ("legacy", "generated/*.py")
        assert config.respect_gitignore is False
        assert config.per_file_ignores == {"scripts/*.py": ("JOB3",)}
        assert config.test_paths == ("spec",)
        assert config.settings_modules == ("proj.settings.prod",)
        assert config.idempotency_guards == ("proj.locks.once",)
        assert config.permanent_errors == ("proj.errors.Fatal",)
        assert config.fail_on == "error"
        assert config.custom == CustomConfig(
            decorators=("proj.jobs.background",),
            base_classes=("proj.jobs.Job",),
            enqueue_functions=("proj.jobs.defer",),
            retry_options=("max_attempts",),
            timeout_options=("deadline",),
        )
        assert config.rules == {"JOB404": {"max-seconds": 600, "queues": ["slow"]}}

    def test_default_excludes(self, tmp_path: Path) -> None:
        config = _load_body(tmp_path, "[tool.jobaudit]\nextend-exclude = ['scratch']\n")
        assert config.effective_excludes == (*DEFAULT_EXCLUDES, "scratch")
        assert ".venv" in DEFAULT_EXCLUDES
        assert "migrations" not in DEFAULT_EXCLUDES

    def test_default_test_paths(self) -> None:
        assert Config(root=Path("/"), source=None).test_paths == (
            "tests",
            "test",
            "test_*.py",
            "*_test.py",
            "conftest.py",
        )

    def test_with_overrides(self, tmp_path: Path) -> None:
        config = _load_body(tmp_path, "[tool.jobaudit]\nselect = ['JOB1']\npreview = false\n")
        changed = config.with_overrides(select=("JOB3",), preview=True)
        assert (changed.select, changed.preview) == (("JOB3",), True)
        assert (config.select, config.preview) == (("JOB1",), False)
        assert changed.source == config.source

    def test_picklable_for_worker_processes(self, tmp_path: Path) -> None:
        config = _load_body(
            tmp_path,
            "[tool.jobaudit.per-file-ignores]\n'a.py' = ['JOB1']\n"
            "[tool.jobaudit.rules.JOB404]\nx = 1\n",
        )
        assert pickle.loads(pickle.dumps(config)) == config

    def test_selectors_without_known_codes(self, tmp_path: Path) -> None:
        config = _load_body(tmp_path, "[tool.jobaudit]\nselect = ['JOB', 'JOB9', 'JOB999']\n", ())
        assert config.select == ("JOB", "JOB9", "JOB999")


class TestErrors:
    def test_broken_toml_names_file_and_line(self, tmp_path: Path) -> None:
        message = _error(tmp_path, '[tool.jobaudit]\nselect = ["JOB1"\npreview = true\n')
        assert message.startswith("pyproject.toml:3:")
        assert "invalid TOML: " in message

    def test_broken_toml_at_end(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\npreview = ")
        assert message.startswith("pyproject.toml: invalid TOML: ")
        assert "end of document" in message

    def test_broken_toml_outside_cwd_names_absolute_path(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        project = tmp_path / "project"
        _pyproject(project, "[tool.jobaudit]\npreview = \n")
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        with pytest.raises(ConfigError) as info:
            load_config([project])
        assert str(info.value).startswith(f"{(project / 'pyproject.toml').as_posix()}:")

    def test_not_utf8(self, tmp_path: Path) -> None:
        (tmp_path / "pyproject.toml").write_bytes(b"[tool.jobaudit]\n# \xff\n")
        with pytest.raises(ConfigError, match=r"pyproject\.toml: not valid UTF-8 \(byte 0xff"):
            load_config([tmp_path])

    def test_unknown_key_suggests_closest(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nextend-selekt = ['JOB1']\n")
        assert message == (
            "pyproject.toml: unknown key 'extend-selekt' in [tool.jobaudit]; "
            "did you mean 'extend-select'?"
        )

    def test_snake_case_key_suggests_kebab_case(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nper_file_ignores = {}\n")
        assert message.endswith(
            "unknown key 'per_file_ignores' in [tool.jobaudit]; did you mean 'per-file-ignores'?"
        )

    def test_unknown_key_far_from_all_lists_valid_keys(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nzzz = 1\n")
        assert "unknown key 'zzz' in [tool.jobaudit]; valid keys: select, ignore," in message

    def test_unknown_custom_key(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.custom]\ndecorator = ['a.b']\n")
        assert message == (
            "pyproject.toml: unknown key 'decorator' in [tool.jobaudit.custom]; "
            "did you mean 'decorators'?"
        )

    def test_unknown_key_in_jobaudit_toml(self, tmp_path: Path) -> None:
        (tmp_path / "jobaudit.toml").write_text("previe = true\n")
        with pytest.raises(ConfigError) as info:
            load_config([tmp_path])
        assert str(info.value) == "jobaudit.toml: unknown key 'previe'; did you mean 'preview'?"

    def test_tool_table_in_jobaudit_toml(self, tmp_path: Path) -> None:
        (tmp_path / "jobaudit.toml").write_text("[tool.jobaudit]\npreview = true\n")
        with pytest.raises(ConfigError, match=r"go at the top level of jobaudit\.toml"):
            load_config([tmp_path])

    def test_wrong_type(self, tmp_path: Path) -> None:
        message = _error(tmp_path, '[tool.jobaudit]\npreview = "yes"\n')
        assert message == (
            "pyproject.toml: [tool.jobaudit] 'preview' must be a boolean, got a string (\"yes\")"
        )

    def test_wrong_type_in_jobaudit_toml(self, tmp_path: Path) -> None:
        (tmp_path / "jobaudit.toml").write_text("select = 'JOB1'\n")
        with pytest.raises(ConfigError) as info:
            load_config([tmp_path])
        assert str(info.value) == (
            "jobaudit.toml: 'select' must be an array of strings, got a string (\"JOB1\")"
        )

    def test_wrong_item_type(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nextend-exclude = ['a', 3]\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit] 'extend-exclude[1]' must be a string, "
            "got an integer (3)"
        )

    def test_table_expected(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\ncustom = ['x']\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit] 'custom' must be a table, got an array ([\"x\"])"
        )

    def test_tool_jobaudit_not_a_table(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool]\njobaudit = 1\n")
        assert message == "pyproject.toml: [tool.jobaudit] must be a table, got an integer (1)"

    def test_fail_on_choices(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nfail-on = 'warn'\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit] 'fail-on' must be one of error, warning, note, "
            "got \"warn\"; did you mean 'warning'?"
        )

    def test_unknown_code_suggests_closest(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nignore = ['JOB3O1']\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit] 'ignore' has unknown rule code \"JOB3O1\"; "
            "did you mean 'JOB301'?"
        )

    @pytest.mark.parametrize("code", ["JOB", "JOB3", "JOB30", "JOB302"])
    def test_valid_selectors(self, tmp_path: Path, code: str) -> None:
        assert _load_body(tmp_path, f"[tool.jobaudit]\nselect = ['{code}']\n").select == (code,)

    @pytest.mark.parametrize("code", ["JOB29", "JOB1011", "job999", "E501", "ALL", ""])
    def test_invalid_selectors(self, tmp_path: Path, code: str) -> None:
        message = _error(tmp_path, f"[tool.jobaudit]\nextend-select = ['{code}']\n")
        assert f"'extend-select' has unknown rule code \"{code}\"" in message

    def test_case_does_not_matter_as_on_the_command_line(self, tmp_path: Path) -> None:
        config = _load_body(tmp_path, "[tool.jobaudit]\nselect = ['job101', 'Job3']\n")
        assert config.select == ("JOB101", "JOB3")

    @pytest.mark.parametrize("family", ["JOB5", "JOB7", "JOB9"])
    def test_a_whole_family_is_accepted_before_it_has_rules(
        self, tmp_path: Path, family: str
    ) -> None:
        assert _load_body(tmp_path, f"[tool.jobaudit]\nignore = ['{family}']\n").ignore == (family,)

    def test_bad_code_shape_without_known_codes(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nselect = ['W605']\n", ())
        assert message.endswith("rule codes look like 'JOB101', or a prefix such as 'JOB1'")

    def test_per_file_ignores_codes(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.per-file-ignores]\n'tests/*' = ['JOB99']\n")
        assert message.startswith(
            "pyproject.toml: [tool.jobaudit] 'per-file-ignores.\"tests/*\"' has unknown rule code "
            "\"JOB99\""
        )

    def test_per_file_ignores_value_type(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.per-file-ignores]\n'tests/*' = 'JOB1'\n")
        assert "must be an array of strings" in message

    def test_unknown_rule_table(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.rules.JOB405]\nx = 1\n")
        assert message == (
            "pyproject.toml: unknown rule 'JOB405' in [tool.jobaudit.rules]; did you mean 'JOB404'?"
        )

    def test_rule_table_must_be_a_table(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.rules]\nJOB404 = 3\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit.rules] 'JOB404' must be a table, got an integer (3)"
        )

    def test_rule_table_prefix_is_not_a_rule(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.rules.JOB4]\nx = 1\n", ())
        assert message.startswith("pyproject.toml: unknown rule 'JOB4' in [tool.jobaudit.rules]")

    def test_dotted_names(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nsettings-modules = ['proj/settings.py']\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit] 'settings-modules[0]' must be a dotted name "
            'such as "myapp.jobs.name", got "proj/settings.py"'
        )

    def test_option_names_are_identifiers(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit.custom]\nretry-options = ['max-retries']\n")
        assert message == (
            "pyproject.toml: [tool.jobaudit.custom] 'retry-options[0]' must be a keyword "
            'argument name, got "max-retries"'
        )

    def test_invalid_exclude_pattern(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nexclude = ['!']\n")
        assert "'exclude[0]' is not a valid gitignore-style pattern" in message

    def test_empty_exclude_pattern(self, tmp_path: Path) -> None:
        message = _error(tmp_path, "[tool.jobaudit]\nexclude = ['  ']\n")
        assert message == "pyproject.toml: [tool.jobaudit] 'exclude[0]' is empty"

    def test_a_directory_named_like_the_config(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="is a directory"):
            load_config([], config_file=tmp_path)

    @pytest.mark.skipif(
        sys.platform == "win32" or os.geteuid() == 0, reason="root reads unreadable files"
    )
    def test_unreadable(self, tmp_path: Path) -> None:
        path = _pyproject(tmp_path, "[tool.jobaudit]\n")
        path.chmod(0)
        try:
            with pytest.raises(
                ConfigError, match=r"pyproject\.toml: cannot read: permission denied"
            ):
                load_config([tmp_path])
        finally:
            path.chmod(0o644)

    def test_unreadable_simulated(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        _pyproject(tmp_path, "[tool.jobaudit]\n")

        def deny(self: Path) -> bytes:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(Path, "read_bytes", deny)
        with pytest.raises(ConfigError) as info:
            load_config([tmp_path])
        assert str(info.value) == "pyproject.toml: cannot read: permission denied"
