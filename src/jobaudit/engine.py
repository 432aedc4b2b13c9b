"""run(paths, config) → Result: the pipeline of ``docs/architecture.md`` end to end.

Files are discovered, parsed once each and turned into facts (the map step);
the facts are merged into the project model (the reduce step); the selected
rules run against it; findings are filtered by ``# noqa`` and per-file ignores
and sorted.  Nothing a file contains can stop the run: unreadable files and
failing rules become notices.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from jobaudit.checks.base import Finding, Rule
from jobaudit.config import Config
from jobaudit.deploy import worker_options
from jobaudit.facts import FileFacts, extract
from jobaudit.files import SourceFile, discover
from jobaudit.model import Job
from jobaudit.notices import Notice
from jobaudit.project import Project
from jobaudit.source import ParsedSource, load_source


@dataclass
class Result:
    root: Path
    files: int
    jobs: list[Job]
    findings: list[Finding]
    notices: list[Notice]
    project: Project
    rules: list[Rule]
    suppressed: int = 0
    internal_errors: list[Notice] = field(default_factory=list)


class ModuleNamer:
    """Dotted module names from paths: the package chain of ``__init__.py`` files.

    A folder without ``__init__.py`` inside a package is a namespace package
    (saleor keeps data-migration tasks in ``order/migrations/tasks/``), so the
    chain goes on through it while the folder above is a package.
    """

    def __init__(self) -> None:
        self._is_package: dict[Path, bool] = {}

    def _package(self, directory: Path) -> bool:
        known = self._is_package.get(directory)
        if known is None:
            known = (directory / "__init__.py").is_file()
            self._is_package[directory] = known
        return known

    def name(self, path: Path) -> tuple[str, bool]:
        is_package = path.name == "__init__.py"
        parts: list[str] = [] if is_package else [path.stem]
        directory = path.parent
        while self._package(directory) or (
            directory.parent != directory and self._package(directory.parent)
        ):
            parts.insert(0, directory.name)
            if directory.parent == directory:
                break
            directory = directory.parent
        return ".".join(parts) or path.stem, is_package


FRAMEWORK_PACKAGES = frozenset(
    {
        "celery",
        "rq",
        "django_rq",
        "dramatiq",
        "huey",
        "arq",
        "taskiq",
        "temporalio",
        "tenacity",
        "backoff",
        "retrying",
        "retry",
        "stamina",
        "django",
        "django_tasks",
        "requests",
        "httpx",
    }
)
"""Top-level names a loose script cannot really have: it imports the package it would shadow."""


def module_names(files: Sequence[SourceFile]) -> dict[str, tuple[str, bool]]:
    """Each file's module name; a file whose name is taken gets one spelled from its path.

    Two scripts called ``tasks.py`` in folders without ``__init__.py`` would
    otherwise share the name ``tasks`` and one would hide the other's jobs; a
    loose ``celery.py`` must not hide the real ``celery`` package.
    """
    namer = ModuleNamer()
    taken: set[str] = set()
    names: dict[str, tuple[str, bool]] = {}
    for file in sorted(files):
        module, is_package = namer.name(file.path)
        if module in taken or module in FRAMEWORK_PACKAGES:
            module = file.relpath.replace("/", ".")
        taken.add(module)
        names[file.relpath] = (module, is_package)
    return names


def facts_for(file: SourceFile, parsed: ParsedSource, name: tuple[str, bool]) -> FileFacts:
    module, is_package = name
    return extract(
        parsed.tree,
        file.relpath,
        module,
        is_package,
        lines=tuple(parsed.lines),
        noqa=parsed.noqa,
        pragmas=parsed.pragmas,
    )


def collect(files: Iterable[SourceFile]) -> tuple[list[FileFacts], list[Notice]]:
    """The map step: parse each file once and keep only its facts."""
    files = list(files)
    names = module_names(files)
    facts: list[FileFacts] = []
    notices: list[Notice] = []
    for file in files:
        parsed = load_source(file)
        if isinstance(parsed, Notice):
            notices.append(parsed)
            continue
        try:
            facts.append(facts_for(file, parsed, names[file.relpath]))
        except RecursionError:
            notices.append(Notice(file.relpath, "too deeply nested to analyse (RecursionError)"))
    return facts, notices


def run(paths: Sequence[Path], config: Config, rules: Sequence[Rule]) -> Result:
    files, notices = discover(paths, config)
    facts, parse_notices = collect(files)
    notices.extend(parse_notices)
    project = Project(facts, config, worker_options(config.root))
    findings, errors = check(project, rules)
    kept, suppressed = suppress(findings, facts, config)
    return Result(
        root=config.root,
        files=len(files),
        jobs=project.jobs,
        findings=kept,
        notices=sorted(set(notices + errors)),
        project=project,
        rules=list(rules),
        suppressed=suppressed,
        internal_errors=errors,
    )


def check(project: Project, rules: Sequence[Rule]) -> tuple[list[Finding], list[Notice]]:
    """Run every rule; a rule that raises costs only its own findings on that job."""
    findings: set[Finding] = set()
    errors: list[Notice] = []
    for rule in rules:
        for job in project.jobs:
            try:
                findings.update(rule.check_job(job, project))
            except Exception as exc:
                errors.append(
                    Notice(job.path, f"internal error in {rule.code} ({type(exc).__name__}: {exc})")
                )
        try:
            findings.update(rule.check_project(project))
        except Exception as exc:
            errors.append(
                Notice("", f"internal error in {rule.code} ({type(exc).__name__}: {exc})")
            )
    return sorted(findings), errors


def suppress(
    findings: list[Finding], facts: list[FileFacts], config: Config
) -> tuple[list[Finding], int]:
    """Drop findings silenced by ``# noqa`` on their line or by ``per-file-ignores``."""
    noqa = {f.path: dict(f.noqa) for f in facts}
    kept: list[Finding] = []
    suppressed = 0
    for finding in findings:
        codes = noqa.get(finding.path, {})
        if finding.line in codes:
            listed = codes[finding.line]
            if listed is None or any(finding.code.startswith(code) for code in listed):
                suppressed += 1
                continue
        if any(
            fnmatch(finding.path, pattern) and any(finding.code.startswith(c) for c in ignored)
            for pattern, ignored in config.per_file_ignores.items()
        ):
            suppressed += 1
            continue
        kept.append(finding)
    return kept, suppressed
