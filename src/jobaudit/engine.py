"""run(paths, config) → Result: the pipeline of ``docs/architecture.md`` end to end.

Files are discovered, parsed once each and turned into facts (the map step);
the facts are merged into the project model (the reduce step); the selected
rules run against it; findings are filtered by ``# noqa`` and per-file ignores
and sorted.  Nothing a file contains can stop the run: unreadable files and
failing rules become notices.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pathspec

from jobaudit.checks import ALL_RULES
from jobaudit.checks.base import Finding, Rule
from jobaudit.checks.meta.unused_noqa import UnusedNoqa
from jobaudit.config import Config
from jobaudit.corpus import Corpus
from jobaudit.deploy import WorkerOptions, worker_options
from jobaudit.facts import FileFacts
from jobaudit.files import RealPaths, SourceFile, _git_toplevel, discover
from jobaudit.gcpause import paused
from jobaudit.model import Job
from jobaudit.notices import Notice
from jobaudit.parallel import facts_for as facts_for
from jobaudit.project import Project
from jobaudit.reuse import digest, slim

if TYPE_CHECKING:
    from jobaudit.cache import Cache


@dataclass
class Result:
    root: Path
    files: int
    jobs: list[Job]
    findings: list[Finding]
    notices: list[Notice]
    project: Project | None
    """None when the whole result came from the cache (:func:`run` with ``reuse``)."""
    rules: list[Rule]
    suppressed: int = 0
    internal_errors: list[Notice] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    """Each analysed file's absolute path by its relative path (git and baselines need both)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds per phase of the run (``--timings``)."""
    parsed: int = 0
    """How many files were parsed (or taken from the cache); the others could not matter."""
    job_count: int = 0
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """A reused result's source lines of the files with findings (reporters quote them)."""

    @property
    def model(self) -> Project:
        """The project model, for what reads more than the findings (reports, ``--diff``)."""
        if self.project is None:
            raise LookupError("a result reused from the cache has no project model")
        return self.project

    def lines(self, path: str) -> tuple[str, ...]:
        """The source lines of an analysed file (empty when it was not parsed)."""
        if self.project is None:
            return self.sources.get(path, ())
        facts = self.project.resolver.facts_by_path.get(path)
        return facts.lines if facts is not None else ()


class ModuleNamer:
    """Dotted module names from paths: the package chain of ``__init__.py`` files.

    A folder without ``__init__.py`` inside a package is a namespace package
    (saleor keeps data-migration tasks in ``order/migrations/tasks/``), so the
    chain goes on through it while the folder above is a package.
    """

    def __init__(self) -> None:
        self._is_package: dict[Path, bool] = {}
        self._chains: dict[Path, tuple[str, ...]] = {}

    def _package(self, directory: Path) -> bool:
        known = self._is_package.get(directory)
        if known is None:
            known = (directory / "__init__.py").is_file()
            self._is_package[directory] = known
        return known

    def name(self, path: Path) -> tuple[str, bool]:
        is_package = path.name == "__init__.py"
        parts = [*self._chain(path.parent), *([] if is_package else [path.stem])]
        return ".".join(parts) or path.stem, is_package

    def _chain(self, directory: Path) -> tuple[str, ...]:
        """The package names down to ``directory``, once per directory (large trees)."""
        known = self._chains.get(directory)
        if known is None:
            parent = directory.parent
            if self._package(directory) or (parent != directory and self._package(parent)):
                above = self._chain(parent) if parent != directory else ()
                known = (*above, directory.name)
            else:
                known = ()
            self._chains[directory] = known
        return known


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
        # Undecodable file-name bytes are shown as \xNN, as in relpath, never as surrogates.
        module = os.fsencode(module).decode("utf-8", "backslashreplace")
        if module in taken or module in FRAMEWORK_PACKAGES:
            module = file.relpath.replace("/", ".")
        taken.add(module)
        names[file.relpath] = (module, is_package)
    return names


@paused()
def run(
    paths: Sequence[Path],
    config: Config,
    rules: Sequence[Rule],
    report: Sequence[Path] | None = None,
    *,
    prefilter: bool = True,
    cache: Cache | None = None,
    jobs: int = 1,
    overlay: Mapping[str, bytes] | None = None,
    reuse: bool = False,
) -> Result:
    """Analyse ``paths``; with ``report``, report on those files only (:func:`split_targets`).

    ``prefilter`` parses only the files that can matter (``jobaudit.prefilter``);
    the findings are the same without it.  ``cache`` reuses facts of unchanged
    files; ``jobs`` parses in that many processes.  ``reuse`` (with ``cache``)
    returns the stored result of a run with the same inputs (:mod:`jobaudit.reuse`),
    which has no project model.
    """
    clock = Clock()
    files, notices = discover(paths, config)
    if report is not None:
        files, shown, given_notices = _reported(files, report, config)
    names = module_names(files)
    clock.lap("discover")
    key = None
    if cache is not None and reuse and overlay is None:
        key = digest(files, names, notices, config, rules, paths, report, prefilter, cache.stamps)
        stored = cache.result(key)
        if isinstance(stored, Result):
            cache.flush()
            clock.lap("reuse result")
            found = {file.relpath: file.path for file in files}
            return replace(stored, rules=list(rules), timings=clock.laps, parsed=0, paths=found)
    named = RealPaths(path for path in (report or paths) if not os.path.isdir(path))
    corpus = Corpus(
        files,
        names,
        config,
        prefilter=prefilter,
        cache=cache,
        jobs=jobs,
        named={file.relpath for file in files if named.of(file.path) is not None},
        overlay=overlay,
    )
    clock.lap("read and parse")
    project = model(corpus, config, worker_options(config.root, paths))
    if report is not None:
        project.reported = frozenset(shown)
    clock.lap("project model")
    facts = list(project.resolver.facts_by_path.values())
    findings, errors = check(project, rules)
    errors = project.errors + errors
    unused, audit_errors = audit_suppressions(project, rules, findings)
    errors += audit_errors
    notices.extend(corpus.all_notices())  # after the rules: they may parse files on demand
    clock.lap("rules")
    jobs_found = project.jobs
    if report is not None:
        findings = [f for f in findings if f.path in shown]
        unused = [f for f in unused if f.path in shown]
        errors = [e for e in errors if not e.path or e.path in shown]
        notices = given_notices + [n for n in notices if n.path in shown]
        jobs_found = [job for job in jobs_found if job.path in shown]
    kept, suppressed = suppress(findings, facts, config)
    kept = sorted(kept + suppress(unused, [], config)[0])
    clock.lap("suppress")
    result = Result(
        root=config.root,
        files=len(files) if report is None else len(shown),
        jobs=jobs_found,
        job_count=len(jobs_found),
        findings=kept,
        notices=sorted(set(notices + errors)),
        project=project,
        rules=list(rules),
        suppressed=suppressed,
        internal_errors=errors,
        paths={file.relpath: file.path for file in files},
        timings=clock.laps,
        parsed=len(corpus.facts) + len(corpus.notices),
    )
    if cache is not None and key is not None:
        cache.store_result(key, slim(result))
    return result


def model(corpus: Corpus, config: Config, workers: WorkerOptions) -> Project:
    """The project model (the reduce step) over the corpus, modules parsed on demand.

    Built again when it finds jobs that files the prefilter skipped import
    (:meth:`Corpus.widen`); that happens only for jobs declared by registration.
    """
    while True:
        project = Project(
            corpus.loaded(),
            config,
            workers,
            loader=corpus.load,
            relevant=corpus.relevant_name,
            tests=corpus,
        )
        if not corpus.widen(project.jobs):
            return project


class Clock:
    """Wall time per phase, for ``--timings``."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = self.laps.get(name, 0.0) + now - self._last
        self._last = now


def split_targets(paths: Sequence[Path], config: Config) -> tuple[list[Path], list[Path] | None]:
    """What to analyse and what to report on: ``(context, report)``.

    Files given alone (pre-commit passes the changed files) are reported on,
    but analysed within their project, so that the settings module, the
    Celery app and wrappers defined in other files are seen (their
    :func:`context_root`).  When a directory is given, what is given is
    analysed and reported on (``report`` is ``None``).
    """
    if not paths or any(path.is_dir() for path in paths):
        return list(paths), None
    files = [Path(os.path.abspath(path)) for path in paths]
    common = Path(os.path.commonpath([str(file.parent) for file in files]))
    return [context_root(common, config), *files], list(paths)


def context_root(directory: Path, config: Config) -> Path:
    """The root of the project that ``directory`` (absolute) belongs to.

    The directory of the configuration file; without one, the git work tree;
    outside git, the directory above the outermost package holding
    ``directory`` (``shop/tasks.py`` needs ``shop/settings.py`` and also
    ``proj/celery.py`` beside ``shop/``).
    """
    if config.source is not None:
        return Path(config.root)
    top = _git_toplevel(str(directory))
    if top is not None:
        return Path(top)
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        directory = directory.parent
    return directory


def _reported(
    files: Sequence[SourceFile], report: Sequence[Path], config: Config
) -> tuple[list[SourceFile], set[str], list[Notice]]:
    """``files`` with the ``report`` files named as given, their names, and notices about them.

    A file reached both through the context's walk and by name keeps the name
    it was given (``tasks.py`` when run from ``shop/``, not the walk's path).
    """
    given, notices = discover(report, config)
    named = {os.path.realpath(file.path): file for file in given}
    real = RealPaths(named)
    files = [named.get(real.of(file.path) or "", file) for file in files]
    return files, {file.relpath for file in given}, notices


def audit_suppressions(
    project: Project, rules: Sequence[Rule], findings: Sequence[Finding]
) -> tuple[list[Finding], list[Notice]]:
    """Findings about the ``# noqa`` comments themselves, when JOB901 is selected.

    A comment is used when any rule, selected or not, reports on its line, so
    the rules that did not run are run here too, for this judgement only.
    """
    auditors = [rule for rule in rules if isinstance(rule, UnusedNoqa)]
    if not auditors:
        return [], []
    ran = {rule.code for rule in rules}
    others = [rule() for rule in ALL_RULES if rule.code not in ran and rule is not UnusedNoqa]
    extra, errors = check(project, others)
    judged = [*findings, *extra]
    codes = [rule.code for rule in ALL_RULES]
    out = [f for rule in auditors for f in rule.check_suppressions(project, judged, codes)]
    return out, errors


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
    # gitignore rules, as for ``exclude``: "legacy.py" matches at any depth, "*" stays in a folder
    per_file = [
        (pathspec.GitIgnoreSpec.from_lines([pattern]), ignored)
        for pattern, ignored in config.per_file_ignores.items()
    ]
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
            spec.match_file(finding.path) and any(finding.code.startswith(c) for c in ignored)
            for spec, ignored in per_file
        ):
            suppressed += 1
            continue
        kept.append(finding)
    return kept, suppressed
