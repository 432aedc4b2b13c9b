"""run(paths, config) → Result: the pipeline of ``docs/architecture.md`` end to end.

Files are discovered, parsed once each and turned into facts (the map step);
the facts are merged into the project model (the reduce step); the selected
rules run against it; findings are filtered by ``# noqa`` and per-file ignores
and sorted.  Nothing a file contains can stop the run: unreadable files and
failing rules become notices.

The analysis modules (the corpus, the project model, the rules) are imported
by the functions that use them: a warm ``check`` finds its stored result
(:func:`walk`, :func:`stored`) without importing any of them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pathspec

from jobaudit.config import Config
from jobaudit.deploy import WorkerOptions, worker_options
from jobaudit.files import RealPaths, SourceFile, _git_toplevel, discover
from jobaudit.findings import Finding
from jobaudit.gcpause import paused
from jobaudit.notices import Notice
from jobaudit.result import Result
from jobaudit.reuse import digest, slim

if TYPE_CHECKING:
    from jobaudit.cache import Cache
    from jobaudit.checks.base import Rule
    from jobaudit.corpus import Corpus
    from jobaudit.facts import FileFacts
    from jobaudit.project import Project


class ModuleNamer:
    """Dotted module names from paths: the package chain of ``__init__.py`` files.

    A folder without ``__init__.py`` inside a package is a namespace package
    (saleor keeps data-migration tasks in ``order/migrations/tasks/``), so the
    chain goes on through it while the folder above is a package.
    """

    def __init__(self) -> None:
        self._is_package: dict[str, bool] = {}
        self._chains: dict[str, tuple[str, ...]] = {}

    def _package(self, directory: str) -> bool:
        known = self._is_package.get(directory)
        if known is None:
            known = os.path.isfile(os.path.join(directory, "__init__.py"))
            self._is_package[directory] = known
        return known

    def name(self, path: Path) -> tuple[str, bool]:
        # Strings, not Path methods: this runs for every file of every run, the warm one too.
        directory, filename = os.path.split(os.fspath(path))
        stem = os.path.splitext(filename)[0]
        is_package = filename == "__init__.py"
        parts = [*self._chain(directory), *([] if is_package else [stem])]
        return ".".join(parts) or stem, is_package

    def _chain(self, directory: str) -> tuple[str, ...]:
        """The package names down to ``directory``, once per directory (large trees)."""
        known = self._chains.get(directory)
        if known is None:
            parent = os.path.dirname(directory)
            if self._package(directory) or (parent != directory and self._package(parent)):
                above = self._chain(parent) if parent != directory else ()
                known = (*above, os.path.basename(directory))
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


@dataclass
class Walk:
    """A run's files, found before any is read, and the digest of the run's inputs.

    That is all the warm path of ``check`` needs to find a stored result
    (:func:`stored`); a run that finds none is given the walk rather than
    walking the tree again.
    """

    files: list[SourceFile]
    names: dict[str, tuple[str, bool]]
    notices: list[Notice]
    shown: set[str] | None
    """The files reported on, when files were named (:func:`split_targets`)."""
    given: list[Notice]
    """Notices about the named files themselves."""
    key: str | None
    """The digest of every input of the run (:mod:`jobaudit.reuse`), when results are reused."""
    clock: Clock


def walk(
    paths: Sequence[Path],
    config: Config,
    codes: Sequence[str],
    report: Sequence[Path] | None = None,
    *,
    prefilter: bool = True,
    cache: Cache | None = None,
    reuse: bool = False,
) -> Walk:
    """Discover the files of a run over ``paths`` with the rules of ``codes``; with ``reuse``
    (and ``cache``), also take the digest its result is stored under."""
    clock = Clock()
    files, notices = discover(paths, config)
    shown: set[str] | None = None
    given: list[Notice] = []
    if report is not None:
        files, shown, given = _reported(files, report, config)
    names = module_names(files)
    clock.lap("discover")
    key = None
    if cache is not None and reuse:
        key = digest(files, names, notices, config, codes, paths, report, prefilter, cache.stamps)
    return Walk(files, names, notices, shown, given, key, clock)


def stored(walked: Walk, cache: Cache) -> Result | None:
    """The stored result of a run with the same inputs, if there is one."""
    found = cache.result(walked.key) if walked.key is not None else None
    if not isinstance(found, Result):
        return None
    cache.flush()
    walked.clock.lap("reuse result")
    paths = {file.relpath: file.path for file in walked.files}
    return replace(found, timings=walked.clock.laps, parsed=0, paths=paths)


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
    walked: Walk | None = None,
) -> Result:
    """Analyse ``paths``; with ``report``, report on those files only (:func:`split_targets`).

    ``prefilter`` parses only the files that can matter (``jobaudit.prefilter``);
    the findings are the same without it.  ``cache`` reuses facts of unchanged
    files; ``jobs`` parses in that many processes.  ``reuse`` (with ``cache``)
    returns the stored result of a run with the same inputs (:mod:`jobaudit.reuse`),
    which has no project model.  ``walked`` is this run's :func:`walk`, from a caller
    that has looked for the stored result itself (:func:`stored`).
    """
    codes = [rule.code for rule in rules]
    if walked is None:
        reusing = reuse and overlay is None
        walked = walk(paths, config, codes, report, prefilter=prefilter, cache=cache, reuse=reusing)
        reused = stored(walked, cache) if cache is not None else None
        if reused is not None:
            return replace(reused, rules=list(rules))
    from jobaudit.corpus import Corpus  # the analysis: not even imported when a result is reused

    files, names, shown = walked.files, walked.names, walked.shown
    notices = list(walked.notices)
    clock = walked.clock
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
    try:
        project = model(corpus, config, worker_options(config.root, paths))
        if shown is not None:
            project.reported = frozenset(shown)
        clock.lap("project model")
        facts = list(project.resolver.facts_by_path.values())
        findings, errors = check(project, rules)
        errors = project.errors + errors
        unused, audit_errors = audit_suppressions(project, rules, findings)
        errors += audit_errors
        notices.extend(corpus.all_notices())  # after the rules: they may parse files on demand
    finally:
        corpus.close()  # the rules are the last to parse
    clock.lap("rules")
    jobs_found = project.jobs
    if shown is not None:
        findings = [f for f in findings if f.path in shown]
        unused = [f for f in unused if f.path in shown]
        errors = [e for e in errors if not e.path or e.path in shown]
        notices = walked.given + [n for n in notices if n.path in shown]
        jobs_found = [job for job in jobs_found if job.path in shown]
    kept, suppressed = suppress(findings, facts, config)
    kept = sorted(kept + suppress(unused, [], config)[0])
    clock.lap("suppress")
    result = Result(
        root=config.root,
        files=len(files) if shown is None else len(shown),
        jobs=jobs_found,
        job_count=len(jobs_found),
        findings=kept,
        notices=sorted(set(notices + errors)),
        project=project,
        rules=list(rules),
        codes=codes,
        suppressed=suppressed,
        internal_errors=errors,
        paths={file.relpath: file.path for file in files},
        timings=clock.laps,
        parsed=len(corpus.facts) + len(corpus.notices),
    )
    if cache is not None and walked.key is not None:
        cache.store_result(walked.key, slim(result))
    return result


def model(corpus: Corpus, config: Config, workers: WorkerOptions) -> Project:
    """The project model (the reduce step) over the corpus, modules parsed on demand.

    Built again when it finds jobs that files the prefilter skipped import
    (:meth:`Corpus.widen`); that happens only for jobs declared by registration.
    """
    from jobaudit.project import Project

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
    from jobaudit.checks import ALL_RULES
    from jobaudit.checks.meta.unused_noqa import UnusedNoqa

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
