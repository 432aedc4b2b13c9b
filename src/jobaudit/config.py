"""Project configuration: ``[tool.jobaudit]`` in ``pyproject.toml`` or a ``jobaudit.toml``.

The configuration is read once into a frozen :class:`Config` that the rest of
jobaudit treats as plain data (it is picklable, so worker processes can share
it).  Every key and value is validated up front: a typo in a linter's
configuration is otherwise silently ignored and the user believes a rule is
off (or on) when it is not, so an unknown key is an error that names the file
and suggests the closest valid key.

Only TOML 1.0 is accepted, because that is what ``tomllib`` reads on every
supported Python (``tomli`` >= 2.4 would accept TOML 1.1 on 3.10 only).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import json
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pathspec

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "DEFAULT_EXCLUDES",
    "DEFAULT_TEST_PATHS",
    "FAIL_ON_LEVELS",
    "Config",
    "ConfigError",
    "CustomConfig",
    "FixConfig",
    "load_config",
]

DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    ".venv",
    "venv",
    "env",
    ".env",
    "virtualenv",
    "__pycache__",
    "node_modules",
    "build",
    "dist",
    "site-packages",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".eggs",
    "*.egg-info",
    ".jobaudit_cache",
    ".*/",
)
"""Directories that never hold the project's own jobs.

Hidden directories (``.*/``) hold tool data, not the project's jobs: saleor's
``.semgrep/`` keeps sample Celery tasks as test cases for its semgrep rules.

``migrations`` is deliberately absent: Django projects do define and enqueue
jobs from data migrations, and skipping them would hide real findings.
"""

DEFAULT_TEST_PATHS: tuple[str, ...] = ("tests", "test", "test_*.py", "*_test.py", "conftest.py")

FAIL_ON_LEVELS: tuple[str, ...] = ("error", "warning", "note")

PYPROJECT = "pyproject.toml"
JOBAUDIT_TOML = "jobaudit.toml"

_T = TypeVar("_T")


class ConfigError(Exception):
    """An unreadable configuration file or an invalid key or value.

    The message is meant to be shown as is: it names the file, the key and,
    when one is close, the valid spelling.  The CLI exits with status 2.
    """


@dataclass(frozen=True)
class CustomConfig:
    """How a project's home-grown job system is spelled (``[tool.jobaudit.custom]``).

    All names are dotted, as they would be imported (``myapp.jobs.background``),
    so they can be resolved against the project's own modules.
    """

    decorators: tuple[str, ...] = ()
    base_classes: tuple[str, ...] = ()
    enqueue_functions: tuple[str, ...] = ()
    retry_options: tuple[str, ...] = ()
    timeout_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class FixConfig:
    """The values unsafe fixes write (``[tool.jobaudit.fix]``), documented in docs/configuration.md.

    A fix that must choose a number takes it from here, never from a guess
    of its own, so a team decides once what "a time limit" means for it.
    """

    time_limit: int = 300
    soft_time_limit: int = 270
    max_attempts: int = 5
    """Attempts in all (the first run included): Celery ``max_retries`` is one less."""
    request_timeout: int = 30
    time_limit_scope: str = "task"
    """JOB401: ``task`` adds limits to each task, ``project`` one app-wide setting."""
    line_length: int = 88
    """A decorator a fix makes longer than this is split one argument per line."""


@dataclass(frozen=True)
class Config:
    """The effective configuration of one run.

    ``root`` is absolute; paths in the output are relative to it.  ``source``
    is the file the settings came from, or ``None`` when none was found.
    ``select`` is ``None`` for "the default rule set"; ``exclude`` is ``None``
    for :data:`DEFAULT_EXCLUDES` (a given list replaces them, as in ruff).
    ``rules`` keeps the ``[tool.jobaudit.rules.JOBnnn]`` tables raw, because
    only each rule knows its own options.
    """

    root: Path
    source: Path | None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    preview: bool = False
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    per_file_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    test_paths: tuple[str, ...] = DEFAULT_TEST_PATHS
    settings_modules: tuple[str, ...] = ()
    idempotency_guards: tuple[str, ...] = ()
    permanent_errors: tuple[str, ...] = ()
    fail_on: str = "warning"
    custom: CustomConfig = field(default_factory=CustomConfig)
    rules: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    fix: FixConfig = field(default_factory=FixConfig)

    def with_overrides(self, **changes: Any) -> Config:
        """Return a copy with some fields replaced (command-line options win over the file)."""
        return dataclasses.replace(self, **changes)

    @property
    def effective_excludes(self) -> tuple[str, ...]:
        """The patterns actually applied: ``exclude`` (or the defaults) plus ``extend-exclude``."""
        base = DEFAULT_EXCLUDES if self.exclude is None else self.exclude
        return base + self.extend_exclude


_TOP_KEYS: tuple[str, ...] = (
    "select",
    "ignore",
    "extend-select",
    "preview",
    "exclude",
    "extend-exclude",
    "respect-gitignore",
    "per-file-ignores",
    "test-paths",
    "settings-modules",
    "idempotency-guards",
    "permanent-errors",
    "fail-on",
    "custom",
    "rules",
    "fix",
)

_FIX_KEYS: tuple[str, ...] = (
    "time-limit",
    "soft-time-limit",
    "max-attempts",
    "request-timeout",
    "time-limit-scope",
    "line-length",
)

_CUSTOM_KEYS: tuple[str, ...] = (
    "decorators",
    "base-classes",
    "enqueue-functions",
    "retry-options",
    "timeout-options",
)

_SELECTOR_RE = re.compile(r"JOB[0-9]{0,3}")
_FULL_CODE_RE = re.compile(r"JOB[0-9]{3}")
_TOML_POSITION_RE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def load_config(
    paths: Sequence[Path],
    config_file: Path | None = None,
    known_codes: Collection[str] = (),
) -> Config:
    """Find, read and validate the configuration for a run over ``paths``.

    With ``config_file`` that file is used (a ``pyproject.toml`` through its
    ``[tool.jobaudit]`` table, any other file through its top-level keys).
    Otherwise the directories from the first path (or the current directory)
    up to the filesystem root are searched; the first one holding a
    ``jobaudit.toml``, or a ``pyproject.toml`` with a ``[tool.jobaudit]``
    table, wins, and becomes ``Config.root``.  Without any, the root is the
    current directory and every setting has its default.

    ``known_codes`` (the registered rule codes) lets rule selectors be checked;
    when empty only their shape is.
    """
    if config_file is not None:
        path = Path(os.path.abspath(config_file))
        return _config_from(path, _parse_table(path, _read_bytes(path)), known_codes)
    for directory in _search_dirs(paths):
        candidate = directory / JOBAUDIT_TOML
        if candidate.is_file():
            return _config_from(
                candidate, _parse_table(candidate, _read_bytes(candidate)), known_codes
            )
        candidate = directory / PYPROJECT
        if not candidate.is_file():
            continue
        data = _read_bytes(candidate)
        # A cheap byte test first, so unrelated (possibly templated, unparsable)
        # pyproject files on the way up are never parsed.
        table = _parse_table(candidate, data) if b"jobaudit" in data else None
        if table is not None:
            return _config_from(candidate, table, known_codes)
    return Config(root=Path(os.getcwd()), source=None)


def _search_dirs(paths: Sequence[Path]) -> list[Path]:
    """The directories to look in for a configuration file, nearest first."""
    start = Path(os.path.abspath(paths[0] if paths else os.getcwd()))
    if not start.is_dir():
        start = start.parent
    return [start, *start.parents]


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{_label(path)}: no such file") from None
    except PermissionError:
        raise ConfigError(f"{_label(path)}: cannot read: permission denied") from None
    except IsADirectoryError:
        raise ConfigError(f"{_label(path)}: cannot read: is a directory") from None
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise ConfigError(f"{_label(path)}: cannot read: {reason}") from None


def _parse_table(path: Path, data: bytes) -> dict[str, Any] | None:
    """The jobaudit settings in ``data`` (read from ``path``).

    ``None`` for a pyproject without ``[tool.jobaudit]``.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = data[exc.start]
        raise ConfigError(
            f"{_label(path)}: not valid UTF-8 (byte 0x{byte:02x} at offset {exc.start})"
        ) from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_message(path, str(exc))) from None
    if path.name != PYPROJECT:
        return document
    tool = document.get("tool")
    if not isinstance(tool, dict) or "jobaudit" not in tool:
        return None
    table = tool["jobaudit"]
    if not isinstance(table, dict):
        got = _describe(table)
        raise ConfigError(f"{_label(path)}: [tool.jobaudit] must be a table, got {got}")
    return table


def _toml_error_message(path: Path, message: str) -> str:
    """Put the position tomllib appends to its message where editors look for it."""
    position = _TOML_POSITION_RE.search(message)
    if position is None:
        return f"{_label(path)}: invalid TOML: {message}"
    line, column = position.groups()
    return f"{_label(path)}:{line}:{column}: invalid TOML: {message[: position.start()]}"


def _label(path: Path) -> str:
    """How a configuration file is named in messages: relative to the cwd when inside it."""
    cwd = os.getcwd()
    absolute = os.path.abspath(path)
    try:
        inside = os.path.commonpath([cwd, absolute]) == cwd
    except ValueError:
        inside = False
    return Path(os.path.relpath(absolute, cwd) if inside else absolute).as_posix()


def _config_from(path: Path, table: dict[str, Any] | None, known_codes: Collection[str]) -> Config:
    is_pyproject = path.name == PYPROJECT
    section = "[tool.jobaudit]" if is_pyproject else ""
    reader = _Reader(_label(path), section, table or {}, frozenset(known_codes))
    if not is_pyproject and "tool" in reader.table:
        raise ConfigError(
            f"{reader.file}: settings go at the top level of {path.name}, "
            f"not under [tool.jobaudit] (that form is for pyproject.toml)"
        )
    reader.reject_unknown(_TOP_KEYS)
    return Config(
        root=path.parent,
        source=path,
        select=reader.codes("select", None),
        ignore=reader.codes("ignore", ()),
        extend_select=reader.codes("extend-select", ()),
        preview=reader.flag("preview", False),
        exclude=reader.patterns("exclude", None),
        extend_exclude=reader.patterns("extend-exclude", ()),
        respect_gitignore=reader.flag("respect-gitignore", True),
        per_file_ignores=reader.per_file_ignores("per-file-ignores"),
        test_paths=reader.patterns("test-paths", DEFAULT_TEST_PATHS),
        settings_modules=reader.dotted_names("settings-modules", ()),
        idempotency_guards=reader.dotted_names("idempotency-guards", ()),
        permanent_errors=reader.dotted_names("permanent-errors", ()),
        fail_on=reader.choice("fail-on", FAIL_ON_LEVELS, "warning"),
        custom=_custom_config(reader.subtable("custom")),
        rules=_rule_tables(reader.subtable("rules")),
        fix=_fix_config(reader.subtable("fix")),
    )


def _fix_config(reader: _Reader | None) -> FixConfig:
    if reader is None:
        return FixConfig()
    reader.reject_unknown(_FIX_KEYS)
    default = FixConfig()
    config = FixConfig(
        time_limit=reader.positive("time-limit", default.time_limit),
        soft_time_limit=reader.positive("soft-time-limit", default.soft_time_limit),
        max_attempts=reader.positive("max-attempts", default.max_attempts),
        request_timeout=reader.positive("request-timeout", default.request_timeout),
        time_limit_scope=reader.choice("time-limit-scope", ("task", "project"), "task"),
        line_length=reader.positive("line-length", default.line_length),
    )
    if config.soft_time_limit >= config.time_limit:
        raise ConfigError(
            f"{reader.file}: {reader.section} 'soft-time-limit' ({config.soft_time_limit}) must "
            f"be less than 'time-limit' ({config.time_limit}), or the soft limit never fires"
        )
    return config


def _custom_config(reader: _Reader | None) -> CustomConfig:
    if reader is None:
        return CustomConfig()
    reader.reject_unknown(_CUSTOM_KEYS)
    return CustomConfig(
        decorators=reader.dotted_names("decorators", ()),
        base_classes=reader.dotted_names("base-classes", ()),
        enqueue_functions=reader.dotted_names("enqueue-functions", ()),
        retry_options=reader.identifiers("retry-options", ()),
        timeout_options=reader.identifiers("timeout-options", ()),
    )


def _rule_tables(reader: _Reader | None) -> dict[str, Mapping[str, object]]:
    """Keep each rule's options raw; only the rule itself knows what they mean."""
    if reader is None:
        return {}
    rules: dict[str, Mapping[str, object]] = {}
    known = reader.known_codes
    for code, options in reader.table.items():
        if not _FULL_CODE_RE.fullmatch(code) or (known and code not in known):
            raise ConfigError(
                f"{reader.file}: unknown rule '{code}' in {reader.section}"
                f"{_suggestion(code.upper(), sorted(known))}"
            )
        if not isinstance(options, dict):
            raise reader.type_error(code, "a table", options)
        rules[code] = dict(options)
    return rules


class _Reader:
    """Typed access to one TOML table, raising :class:`ConfigError` with the file and key."""

    def __init__(
        self, file: str, section: str, table: dict[str, Any], known_codes: frozenset[str]
    ) -> None:
        self.file = file
        self.section = section
        self.table = table
        self.known_codes = known_codes

    def reject_unknown(self, valid: Sequence[str]) -> None:
        for key in self.table:
            if key in valid:
                continue
            where = f" in {self.section}" if self.section else ""
            dashed = key.replace("_", "-")
            hint = (
                f"; did you mean '{dashed}'?"
                if dashed in valid
                else _suggestion(key, valid, fallback=f"; valid keys: {', '.join(valid)}")
            )
            raise ConfigError(f"{self.file}: unknown key '{key}'{where}{hint}")

    def subtable(self, key: str) -> _Reader | None:
        if key not in self.table:
            return None
        value = self.table[key]
        if not isinstance(value, dict):
            raise self.type_error(key, "a table", value)
        inner = f"{self.section[1:-1]}.{key}" if self.section else key
        return _Reader(self.file, f"[{inner}]", value, self.known_codes)

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, bool):
            raise self.type_error(key, "a boolean", value)
        return value

    def positive(self, key: str, default: int) -> int:
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.type_error(key, "a positive integer", value)
        return value

    def choice(self, key: str, choices: Sequence[str], default: str) -> str:
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, str):
            raise self.type_error(key, "a string", value)
        if value not in choices:
            options = ", ".join(choices)
            raise ConfigError(
                f"{self.file}: {self._where(key)} must be one of {options}, got {json.dumps(value)}"
                f"{_suggestion(value.lower(), choices)}"
            )
        return value

    def strings(self, key: str, default: _T) -> tuple[str, ...] | _T:
        if key not in self.table:
            return default
        return self._string_items(key, self.table[key])

    def patterns(self, key: str, default: _T) -> tuple[str, ...] | _T:
        """Glob patterns, checked now so a bad one is reported with its key, not mid-run."""
        values = self.strings(key, None)
        if values is None:
            return default
        for index, pattern in enumerate(values):
            if not pattern.strip():
                raise ConfigError(f"{self.file}: {self._where(f'{key}[{index}]')} is empty")
            try:
                pathspec.GitIgnoreSpec.from_lines([pattern])
            except ValueError:
                raise ConfigError(
                    f"{self.file}: {self._where(f'{key}[{index}]')} is not a valid "
                    f"gitignore-style pattern: {json.dumps(pattern)}"
                ) from None
        return values

    def dotted_names(self, key: str, default: _T) -> tuple[str, ...] | _T:
        values = self.strings(key, None)
        if values is None:
            return default
        for index, value in enumerate(values):
            if not all(part.isidentifier() for part in value.split(".")):
                raise ConfigError(
                    f"{self.file}: {self._where(f'{key}[{index}]')} must be a dotted name "
                    f'such as "myapp.jobs.name", got {json.dumps(value)}'
                )
        return values

    def identifiers(self, key: str, default: _T) -> tuple[str, ...] | _T:
        values = self.strings(key, None)
        if values is None:
            return default
        for index, value in enumerate(values):
            if not value.isidentifier():
                raise ConfigError(
                    f"{self.file}: {self._where(f'{key}[{index}]')} must be a keyword "
                    f"argument name, got {json.dumps(value)}"
                )
        return values

    def codes(self, key: str, default: _T) -> tuple[str, ...] | _T:
        values = self.strings(key, None)
        if values is None:
            return default
        for value in values:
            self._check_selector(key, value)
        return tuple(value.upper() for value in values)

    def per_file_ignores(self, key: str) -> dict[str, tuple[str, ...]]:
        inner = self.subtable(key)
        if inner is None:
            return {}
        result: dict[str, tuple[str, ...]] = {}
        for glob, value in inner.table.items():
            label = f"{key}.{json.dumps(glob)}"
            codes = self._string_items(label, value)
            for code in codes:
                self._check_selector(label, code)
            result[glob] = tuple(code.upper() for code in codes)
        return result

    def _string_items(self, key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.type_error(key, "an array of strings", value)
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.type_error(f"{key}[{index}]", "a string", item)
        return tuple(value)

    def _check_selector(self, key: str, code: str) -> None:
        """A selector is ``JOB``, a family (``JOB3``), a known code or a prefix of one (``JOB30``).

        Case does not matter, as on the command line.  A whole family is
        accepted even before this version has a rule in it, so a configuration
        that ignores ``JOB5`` keeps working when such rules arrive.
        """
        known = self.known_codes
        selector = code.upper()
        if _SELECTOR_RE.fullmatch(selector) and (
            not known or len(selector) <= len("JOB1") or any(k.startswith(selector) for k in known)
        ):
            return
        if known:
            hint = _suggestion(code.upper(), sorted(known))
        else:
            hint = "; rule codes look like 'JOB101', or a prefix such as 'JOB1'"
        raise ConfigError(
            f"{self.file}: {self._where(key)} has unknown rule code {json.dumps(code)}{hint}"
        )

    def _where(self, key: str) -> str:
        return f"{self.section} '{key}'" if self.section else f"'{key}'"

    def type_error(self, key: str, expected: str, value: object) -> ConfigError:
        return ConfigError(
            f"{self.file}: {self._where(key)} must be {expected}, got {_describe(value)}"
        )


def _suggestion(word: str, candidates: Sequence[str], fallback: str = "") -> str:
    matches = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean '{matches[0]}'?" if matches else fallback


def _describe(value: object) -> str:
    """Name a TOML value's type with a short rendering, e.g. ``a string ("yes")``."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, str):
        return f"a string ({_shorten(json.dumps(value))})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a float ({value})"
    if isinstance(value, list):
        return f"an array ({_shorten(json.dumps(value, default=str))})"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return f"a date/time ({value.isoformat()})"
    return type(value).__name__


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
