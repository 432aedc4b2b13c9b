"""The project model: the reduce step over every file's facts.

It resolves names across modules, finds the jobs and their call sites, reads
framework configuration (Django settings, ``app.conf``, worker settings) and
gives each job its effective ``JobPolicy``.  Rules read only this model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Protocol

from jobaudit.deploy import WorkerOptions
from jobaudit.discovery import Discovery, EnqueueSite
from jobaudit.facts import FileFacts, FunctionFacts
from jobaudit.frameworks import build_frameworks
from jobaudit.frameworks.custom import Custom
from jobaudit.model import Backoff, Job, JobPolicy, Location, Resolved
from jobaudit.notices import Notice
from jobaudit.symbols import Assigned, External, Loader, ProjectClass, ProjectFunction, Resolver
from jobaudit.values import Call, Local, Ref, Unknown, Value, dotted

if TYPE_CHECKING:
    from jobaudit.config import Config
    from jobaudit.frameworks.base import Framework

BODY_DEPTH = 2
"""How many calls deep a job's body follows the project's own functions (principle 3)."""


@dataclass(frozen=True)
class BodyFunction:
    """A function that runs as part of a job: the job itself or a helper it calls."""

    facts: FunctionFacts
    path: str
    depth: int
    via: tuple[str, ...]
    """The chain of calls from the job, for messages (``sync_orders → _post``)."""


@dataclass(frozen=True)
class SettingValue:
    """A configuration key found in a settings module or ``app.conf``."""

    value: Value
    source: str
    location: Location


class Settings:
    """The assignments of one settings module, following ``from .base import *``."""

    def __init__(self, resolver: Resolver, module: str) -> None:
        self.module = module
        self.values: dict[str, SettingValue] = {}
        self.incomplete: str | None = None
        self._load(resolver, module, set())

    def _load(self, resolver: Resolver, module: str, seen: set[str]) -> None:
        if module in seen:
            return
        seen.add(module)
        facts = resolver.modules.get(module)
        if facts is None:
            self.incomplete = f"settings module '{module}' is not in the scanned files"
            return
        for star in facts.star_imports:
            if star in resolver.modules:
                self._load(resolver, star, seen)
            else:
                self.incomplete = f"'{module}' imports * from '{star}', which was not scanned"
        short = module.rpartition(".")[2]
        for name, value, span in facts.assigns:
            self.values[name] = SettingValue(
                resolver.evaluate(value), f"{short}.{name}", Location(facts.path, span)
            )

    def get(self, name: str) -> SettingValue | None:
        return self.values.get(name)


def is_test_path(relpath: str, patterns: Sequence[str]) -> bool:
    """Test files (option ``test-paths``): jobs they define are not the project's jobs."""
    return _is_test_path(relpath, tuple(patterns))


@lru_cache(maxsize=65536)
def _is_test_path(relpath: str, patterns: tuple[str, ...]) -> bool:
    """Asked for every call site and file by several rules: matched once per path."""
    parts = PurePosixPath(relpath).parts
    for pattern in patterns:
        if "/" in pattern.strip("/"):
            if fnmatch(relpath, pattern) or relpath.startswith(pattern.rstrip("/") + "/"):
                return True
            continue
        if any(fnmatch(part, pattern) for part in parts[:-1]):
            return True
        if parts and fnmatch(parts[-1], pattern):
            return True
    return False


class TestSource(Protocol):
    """Where a run's test files come from (:class:`jobaudit.corpus.Corpus`)."""

    def test_paths(self, patterns: Sequence[str]) -> list[str]: ...

    def test_files(
        self, patterns: Sequence[str], mentions: Callable[[str], bool]
    ) -> list[FileFacts]: ...


class Project:
    def __init__(
        self,
        files: list[FileFacts],
        config: Config,
        worker_options: WorkerOptions | None = None,
        loader: Loader | None = None,
        relevant: Callable[[str], bool] | None = None,
        tests: TestSource | None = None,
    ) -> None:
        self.config = config
        self._tests = tests
        self.worker_options: WorkerOptions = worker_options or {}
        self.resolver = Resolver(files, loader, relevant)
        self.frameworks: list[Framework] = build_frameworks(config)
        self.custom: Custom | None = next(
            (f for f in self.frameworks if isinstance(f, Custom)), None
        )
        self._settings: dict[str, Settings] = {}
        discovery = Discovery(self)
        self.jobs: list[Job] = [
            job for job in discovery.run() if not is_test_path(job.path, config.test_paths)
        ]
        self._job_functions = frozenset(id(job.function) for job in self.jobs)
        self.sites: list[EnqueueSite] = discovery.enqueue_sites(self.jobs)
        for framework in self.frameworks:
            framework.prepare(self)
        self.errors: list[Notice] = []
        for job in self.jobs:
            job.policy = self._policy(job)
        self.reported: frozenset[str] | None = None
        """The files findings are reported on (``jobaudit check FILE...``); None for all."""

    def reported_jobs(self) -> list[Job]:
        """The jobs defined in the files reported on.

        A rule whose findings are all on a job's definition checks only these:
        pre-commit names the changed files, and most changes define no job."""
        if self.reported is None:
            return self.jobs
        return [job for job in self.jobs if job.path in self.reported]

    def _policy(self, job: Job) -> JobPolicy:
        """The job's effective policy; an adapter that fails costs only this job's (all unknown)."""
        framework = self.framework_of(job)
        try:
            return conform(framework.policy(job, self))
        except Exception as exc:
            reason = f"internal error in the {framework.name} adapter on {job.label()}"
            self.errors.append(Notice(job.path, f"{reason} ({type(exc).__name__}: {exc})"))
            unknown = Resolved(Unknown("the framework adapter failed"), "internal error")
            return JobPolicy(
                max_attempts=unknown,
                backoff=unknown,
                retry_on=unknown,
                permanent=Resolved((), "internal error"),
                time_limit=unknown,
                soft_time_limit=unknown,
                delivery=unknown,
                idempotency_guard=unknown,
            )

    # -- frameworks ----------------------------------------------------------------------

    def framework(self, name: str) -> Framework | None:
        return next((f for f in self.frameworks if f.name == name), None)

    def framework_of(self, job: Job) -> Framework:
        framework = self.framework(job.framework)
        assert framework is not None, job.framework
        return framework

    def test_paths(self) -> list[str]:
        """Every test file of the run (option ``test-paths``), parsed or not."""
        tests = self.config.test_paths
        if self._tests is not None:
            return self._tests.test_paths(tests)
        return [path for path in self.resolver.facts_by_path if is_test_path(path, tests)]

    def test_files(self, mentions: Callable[[str], bool]) -> list[FileFacts]:
        """The facts of the test files that may name a job (``mentions`` their text), which
        only JOB7xx read; with the prefilter they are parsed here, on demand."""
        tests = self.config.test_paths
        if self._tests is not None:
            return self._tests.test_files(tests, mentions)
        return [f for f in self.resolver.facts_by_path.values() if is_test_path(f.path, tests)]

    def jobs_of(self, framework: str) -> list[Job]:
        return [job for job in self.jobs if job.framework == framework]

    def sites_of(self, job: Job, tests: bool = True) -> list[EnqueueSite]:
        """The job's call sites; ``tests=False`` leaves out those in test files, which often
        enqueue on throw-away queues with other options than production code."""
        return [
            site
            for site in self.sites
            if site.job is job and (tests or not is_test_path(site.path, self.config.test_paths))
        ]

    # -- settings ------------------------------------------------------------------------

    def settings(self, module: str) -> Settings:
        if module not in self._settings:
            self._settings[module] = Settings(self.resolver, module)
        return self._settings[module]

    def django_settings_modules(self) -> list[str]:
        """Where Django settings live: configuration, then ``DJANGO_SETTINGS_MODULE`` defaults."""
        if self.config.settings_modules:
            return list(self.config.settings_modules)
        found: list[str] = []
        for facts in self.resolver.modules.values():
            for site in facts.calls:
                call = site.call
                name = dotted(call.func) or ""
                if not name.endswith(("environ.setdefault", "environ.__setitem__")):
                    continue
                if len(call.args) == 2 and call.args[0] == "DJANGO_SETTINGS_MODULE":
                    module = call.args[1]
                    if isinstance(module, str) and module not in found:
                        found.append(module)
        return found

    def reads_setting(self, name: str) -> bool:
        """Whether the project's own code reads a setting (so it is not a framework typo)."""
        return any(name in facts.upper_names for facts in self.resolver.modules.values())

    # -- job bodies ----------------------------------------------------------------------

    def body(self, job: Job, depth: int = BODY_DEPTH) -> list[BodyFunction]:
        """The job function and the project functions it calls, ``depth`` calls deep."""
        out = [BodyFunction(job.function, job.path, 0, (job.function.name,))]
        seen = {(job.module, job.function.qualname)}
        frontier = [out[0]]
        for level in range(1, depth + 1):
            next_frontier: list[BodyFunction] = []
            for current in frontier:
                for site in current.facts.calls:
                    callee = self.callee(site.call, current.facts, job)
                    if callee is None:
                        continue
                    key = (callee.facts.module, callee.facts.qualname)
                    if key in seen:
                        continue
                    seen.add(key)
                    found = BodyFunction(
                        callee.facts, callee.path, level, (*current.via, callee.facts.name)
                    )
                    out.append(found)
                    next_frontier.append(found)
            frontier = next_frontier
        return out

    def callee(self, call: Call, caller: FunctionFacts, job: Job) -> ProjectFunction | None:
        """The project function a call runs, when it can be resolved by name."""
        func = call.func
        if isinstance(func, Ref):
            symbol = self.resolver.lookup(func.name)
            if isinstance(symbol, ProjectFunction) and not self.is_job_function(symbol.facts):
                return symbol
            return None
        if isinstance(func, Local) and func.name.startswith("self.") and job.cls is not None:
            method = func.name[5:]
            if "." in method:
                return None
            member = self.resolver.class_member(ProjectClass(job.cls, job.path), method)
            return member if isinstance(member, ProjectFunction) else None
        return None

    def is_job_function(self, function: FunctionFacts) -> bool:
        return id(function) in self._job_functions

    def external_name(self, value: Value) -> str | None:
        """The external dotted name a value denotes (``requests.post``), following aliases."""
        if isinstance(value, Ref):
            symbol = self.resolver.lookup(value.name)
            if isinstance(symbol, External):
                return symbol.name
            if isinstance(symbol, Assigned) and isinstance(symbol.value, Ref):
                return self.external_name(symbol.value)
        return None


def conform(policy: JobPolicy) -> JobPolicy:
    """The policy with every value outside :class:`JobPolicy`'s documented types made Unknown.

    Analysed code can pass anything as an option (``max_retries=[]``,
    ``time_limit="x"``, ``1e309``); an adapter that forwards such a value must
    not make a rule compare a list with seconds, or a report fail to write it.
    """
    changes = {}
    for name, fits, kind in _CONTRACT:
        resolved: Resolved = getattr(policy, name)
        if not isinstance(resolved.value, Unknown) and not fits(resolved.value):
            reason = Unknown(f"{name.replace('_', ' ')} is not {kind}")
            changes[name] = Resolved(reason, resolved.source, resolved.location)
    return dataclasses.replace(policy, **changes) if changes else policy


def _count(value: object) -> bool:
    return value == "unbounded" or (isinstance(value, int) and not isinstance(value, bool))


def _duration(value: object) -> bool:
    return value is None or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    )


def _names(value: object) -> bool:
    return isinstance(value, tuple) and all(isinstance(item, str) for item in value)


_CONTRACT: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    ("max_attempts", _count, "a whole number"),
    ("time_limit", _duration, "a finite number of seconds"),
    ("soft_time_limit", _duration, "a finite number of seconds"),
    ("backoff", lambda value: isinstance(value, Backoff), "a backoff"),
    ("retry_on", lambda value: value in ("all", "none") or _names(value), "exception names"),
    ("permanent", _names, "exception names"),
    ("delivery", lambda value: value in ("at-least-once", "at-most-once"), "a delivery mode"),
)
