"""The flake8 plugin: jobaudit's job, call-site and config rules inside ``flake8``.

It is the same analysis as ``jobaudit check``, not a second one: flake8 only
decides which file is being looked at.  A rule needs more than that file (the
Celery app and its settings, base classes, wrappers defined elsewhere), and
flake8 runs each file in a fresh plugin instance, possibly in several worker
processes, with no hook once all files are done.  So each process builds the
project model from disk the first time it meets a file of a project, and keeps
it, cached by the project's root; every later file of that project costs a
dictionary look-up.  Facts of unchanged files come from the CLI's cache in
``.jobaudit_cache/``, which the plugin fills too.  The file being checked is
taken from what flake8 passes (an editor sends its unsaved buffer): when that
differs from what was read from disk, the model is rebuilt once with that
file's facts replaced.

flake8 itself applies ``# noqa`` and ``--select``/``--extend-select``/
``--ignore``, so the plugin yields every finding of its rules.  Rules of scope
``project`` (whole-tree judgements such as JOB901) stay in the CLI.  Rule
options and ``preview`` come from ``[tool.jobaudit]``, found from the file (or
given with ``--jobaudit-config``), because flake8 never reads
``pyproject.toml``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from jobaudit.cache import CACHE_DIR, Cache
from jobaudit.checks import ALL_RULES, Finding, Rule
from jobaudit.config import Config, ConfigError, load_config
from jobaudit.corpus import Corpus
from jobaudit.deploy import WorkerOptions, worker_options
from jobaudit.engine import check, context_root, model, module_names
from jobaudit.facts import FileFacts
from jobaudit.files import SourceFile, discover
from jobaudit.gcpause import paused
from jobaudit.parallel import facts_for
from jobaudit.positions import char_column
from jobaudit.project import Project
from jobaudit.selection import known_codes
from jobaudit.source import decode, from_tree

Report = tuple[int, int, str]
"""What flake8 prints: 1-based line, 0-based character column, ``"JOB301 message"``."""


class Plugin:
    """The ``flake8.extension`` entry point ``JOB``."""

    config_file: ClassVar[str | None] = None

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        # Work happens here rather than in run(): flake8 turns an exception
        # raised while building a plugin (a bad [tool.jobaudit]) into a clear
        # "plugin failed" error naming the file, but not one raised in run().
        self._reports = reports(filename, lines, tree, Plugin.config_file)

    @classmethod
    def add_options(cls, option_manager: Any) -> None:
        option_manager.add_option(
            "--jobaudit-config",
            default=None,
            parse_from_config=True,
            normalize_paths=True,
            help="jobaudit configuration file (default: the pyproject.toml with "
            "[tool.jobaudit] or jobaudit.toml found from each file)",
        )

    @classmethod
    def parse_options(cls, options: Any) -> None:
        cls.config_file = options.jobaudit_config
        prepare(getattr(options, "filenames", None) or ["."], cls.config_file)

    def run(self) -> Iterator[tuple[int, int, str, type[Plugin]]]:
        for line, column, text in self._reports:
            yield line, column, text, type(self)


@dataclass(frozen=True)
class Context:
    """One project as read from disk, with the unsuppressed findings of the plugin's rules."""

    config: Config
    rules: tuple[Rule, ...]
    files: Mapping[str, SourceFile]
    """Discovered files by absolute path, and by real path."""
    facts: Mapping[str, FileFacts]
    """Facts by relative path."""
    workers: WorkerOptions
    findings: Mapping[str, tuple[Finding, ...]]
    """Findings by relative path."""
    corpus: Corpus
    """The files as read: what the prefilter selected, and the rest, parsed on demand."""


def reports(
    filename: str, lines: Sequence[str], tree: ast.AST, config_file: str | None
) -> list[Report]:
    """The findings of one file as flake8 wants them."""
    absolute = os.path.abspath(filename)
    path = Path(absolute)
    root, source = project_of(os.path.dirname(absolute), config_file)
    context = load_context(root, source)
    file = context.files.get(absolute) or context.files.get(os.path.realpath(absolute))
    found: Sequence[Finding]
    if file is not None and file.relpath not in context.facts:
        data = "".join(lines).encode("utf-8", "replace")
        if context.corpus.unchanged(file.relpath, data):
            return []  # skipped by the prefilter, as read from disk
        if not context.corpus.relevant(file.relpath, data):
            return []  # the prefilter's answer: nothing in this file can matter
    buffer = tuple(line[:-1] if line.endswith("\n") else line for line in lines)
    if file is not None and _unchanged(context, file, buffer):
        found = context.findings.get(file.relpath, ())
    elif file is None and path.exists():
        # On disk but not discovered: excluded by the configuration or .gitignore.
        return []
    else:
        assert isinstance(tree, ast.Module)
        file = file or SourceFile(Path(filename).as_posix(), path)
        found = _with_buffer(context, file, "".join(lines), tree)
    return [
        (
            f.line,
            char_column(buffer[f.line - 1] if f.line <= len(buffer) else "", f.column),
            f"{f.code} {f.message}",
        )
        for f in found
    ]


def prepare(paths: Sequence[str], config_file: str | None) -> None:
    """Build the models of the projects holding ``paths`` now, in flake8's main process.

    flake8 parses options before it forks its workers, so under ``fork`` they
    all inherit these models instead of each building its own (the time of
    a full analysis and its memory, once per CPU).  Under ``spawn`` each
    worker parses the options again and this runs there, as lazily as before.
    A configuration error is left for the first file to report.
    """
    for given in paths:
        if given == "-":
            given = "."
        path = Path(os.path.abspath(given))
        directory = path if path.is_dir() else path.parent
        try:
            load_context(*project_of(str(directory), config_file))
        except ConfigError:
            continue


@cache
def project_of(directory: str, config_file: str | None) -> tuple[Path, Path | None]:
    """The root of the project holding ``directory`` (as the CLI finds it) and its configuration."""
    given = Path(config_file) if config_file else None
    config = load_config([Path(directory)], given, known_codes())
    return context_root(Path(directory), config), config.source


@cache
def load_context(root: Path, source: Path | None) -> Context:
    """Read, model and check one project from disk, once per process.

    The model is kept until flake8 exits, so it is built with the cyclic
    collector paused, and frozen out of its walks after (:mod:`jobaudit.gcpause`).
    """
    with paused():
        return _read_context(root, source)


def _read_context(root: Path, source: Path | None) -> Context:
    if source is not None:
        config = load_config([root], source, known_codes())
    else:
        config = Config(root=root, source=None)
    rules = tuple(plugin_rules(config))
    files, _ = discover([root], config)
    cache = Cache(config.root / CACHE_DIR, config)  # the CLI's: either one fills it for the other
    corpus = Corpus(files, module_names(files), config, cache=cache)
    workers = worker_options(config.root, [root])
    project = model(corpus, config, workers)
    findings, _ = check(project, rules)
    facts = list(project.resolver.facts_by_path.values())
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    return Context(
        config=config,
        rules=rules,
        files={
            **{os.path.realpath(file.path): file for file in files},
            **{os.path.abspath(file.path): file for file in files},
        },
        facts={item.path: item for item in facts},
        workers=workers,
        findings={path: tuple(found) for path, found in by_path.items()},
        corpus=corpus,
    )


def plugin_rules(config: Config) -> list[Rule]:
    """Every rule that judges one file with the project's facts; preview ones when enabled.

    Selection among them is flake8's; only the preview gate is jobaudit's, so
    that a rule still in preview is not on by default in flake8 either.
    """
    named = {*(config.select or ()), *config.extend_select}
    return [
        rule()
        for rule in ALL_RULES
        if rule.scope != "project" and (not rule.preview or config.preview or rule.code in named)
    ]


def _unchanged(context: Context, file: SourceFile, buffer: tuple[str, ...]) -> bool:
    """Whether flake8's text of ``file`` is what the cached model was built from."""
    facts = context.facts.get(file.relpath)
    if facts is not None:
        return tuple(facts.lines) == buffer
    # Not analysed (unreadable then, or skipped as irrelevant): compare with the disk.
    try:
        text = decode(file.path.read_bytes())
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return False
    disk = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if disk and disk[-1] == "":
        disk.pop()
    return tuple(disk) == buffer


def _with_buffer(context: Context, file: SourceFile, text: str, tree: ast.Module) -> list[Finding]:
    """The findings of ``file`` when its content is ``text`` instead of what is on disk."""
    files = sorted({f for f in context.files.values() if f.relpath != file.relpath})
    name = module_names([*files, file])[file.relpath]
    own = facts_for(file, from_tree(text, tree), name)
    facts = [f for path, f in context.facts.items() if path != file.relpath] + [own]
    project = Project(facts, context.config, context.workers, loader=context.corpus.load)
    findings, _ = check(project, context.rules)
    return [finding for finding in findings if finding.path == file.relpath]
