"""Which jobs the project's tests refer to, and which of those tests exercise a failure.

JOB701, JOB702 and the readiness report's "Tests" gate all read one index,
built once per project from the facts of its test files
(:meth:`Project.test_files`).  Everything here errs towards "tested": a test
that is missed becomes a finding the user must argue with, while a test
credited too generously only costs a note, so a reference or a failure
signal is counted whenever the test's code plausibly makes one.

A test *refers* to a job when it imports it, names it (``send.delay()``,
``queue.enqueue(send)``, ``env.run(send)``, ``patch.object(send, ...)``),
calls it, or spells its dotted path or registered name in a string
(``app.send_task("proj.tasks.send")``, ``@patch("proj.tasks.send.delay")``).
A test *exercises a failure* when it makes something raise (``side_effect=``
an exception, a fake that raises), expects one (``pytest.raises``,
``assertRaises``), looks at retries or the framework's failure state, runs
the job twice, or says so in its name (``test_send_retries_on_timeout``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from jobaudit.facts import ClassFacts, FileFacts, FunctionFacts
from jobaudit.per_project import per_project
from jobaudit.symbols import Assigned, InstanceAttr, Missing, ProjectClass, ProjectFunction
from jobaudit.values import Attr, BinOp, Call, Local, Mapping, Ref, Seq, Value

if TYPE_CHECKING:
    from jobaudit.model import Job
    from jobaudit.project import Project

SIDE_EFFECT, RAISES, RETRY, STATE = "side effect", "raises", "retry", "failure state"
RERUN, NAMED = "second run", "name"
FAILURE_KINDS = (SIDE_EFFECT, RAISES, RETRY, STATE, RERUN, NAMED)
"""What counts as exercising a failure, in the words the report uses."""

RUN_METHODS = frozenset(
    {
        "delay",
        "apply",
        "apply_async",
        "delay_on_commit",
        "apply_async_on_commit",
        "run",
        "call",
        "acall",
        "send",
        "send_with_options",
        "kiq",
        "enqueue",
        "aenqueue",
        "call_local",
        "fn",
    }
)
"""Methods of a job that run or enqueue it once (a test calling two runs it twice)."""
RUNNERS = frozenset(
    {"enqueue", "enqueue_call", "enqueue_in", "enqueue_at", "run", "send_task", "execute"}
)
"""Calls that run the job they are given (``queue.enqueue(job)``, ``ActivityEnvironment().run``)."""
RAISES_CALLS = frozenset(
    {"raises", "assertRaises", "assertRaisesRegex", "assertRaisesRegexp", "assertRaisesMessage"}
)
FAILURE_WORDS = frozenset(
    {
        "FAILURE",
        "is_failed",
        "FailedJobRegistry",
        "failed_job_registry",
        "TaskException",
        "dead_letters",
        "on_failure",
        "MaxRetriesExceededError",
        "Reject",
        "ApplicationError",
        "ActivityError",
    }
)
"""Names whose use means the test looks at the framework's failure state."""
_SET_UP = ("setUp", "setUpClass", "setUpTestData", "setup_method", "asyncSetUp")
"""Methods a test class runs before each test (or once before all of them)."""
_RETRY = re.compile(r"retr(?:y|ies|ied)", re.IGNORECASE)
_FAILURE_WORD = re.compile(r"\b(?:" + "|".join(sorted(FAILURE_WORDS)) + r")\b")
_FAILURE_NAME = re.compile(
    r"fail|error|exception|raise|retr(?:y|ies)|timeout|crash|idempot|twice|again|duplicate",
    re.IGNORECASE,
)
_EXCEPTION_NAME = re.compile(
    r"(?:Error|Exception|Exit|Interrupt|Timeout|TimedOut|Retry|Failure|Failed|Fault|Refused"
    r"|Abort|Reject|Unavailable|timeout)$"
)
_STRING = re.compile(r"""(['"])([A-Za-z_][\w.:-]*)\1""")
_SIDE_EFFECT = re.compile(r"\bside_effect\s*=\s*(.+)")
_LOCAL_IMPORT = re.compile(r"^\s*from\s+([\w.]+)\s+import\s+\(?([\w\s,]+)")
_WORD = re.compile(r"[A-Za-z_]\w*")


@dataclass(frozen=True)
class CoveringTest:
    """One test (a function or a ``TestCase`` method) that refers to a job."""

    path: str
    name: str
    """Its qualified name in the file (``TestSend.test_retry``)."""
    failures: frozenset[str]
    """The kinds of failure it exercises (``FAILURE_KINDS``); empty when none."""

    @property
    def label(self) -> str:
        """``tests/test_tasks.py::TestSend::test_retry``, as pytest names it."""
        return f"{self.path}::{self.name.replace('.', '::')}"


@dataclass
class JobTests:
    """What the tests do with one job."""

    files: set[str] = field(default_factory=set)
    """Test files that refer to the job."""
    units: list[CoveringTest] = field(default_factory=list)

    @property
    def failure_units(self) -> list[CoveringTest]:
        return [unit for unit in self.units if unit.failures]

    @property
    def failures(self) -> frozenset[str]:
        return frozenset(kind for unit in self.units for kind in unit.failures)


class CoverageIndex:
    """The tests of every job of a project; jobs no test refers to are absent."""

    def __init__(self, files: list[str], by_job: dict[str, JobTests]) -> None:
        self.files = files
        """The test files that were scanned (their paths); none means "cannot tell"."""
        self._by_job = by_job

    def of(self, job: Job) -> JobTests | None:
        return self._by_job.get(job.qualname)


@per_project
def coverage_index(project: Project) -> CoverageIndex:
    """The project's index, built on first use and shared by the rules and the report.

    It covers the jobs of the files reported on (:meth:`Project.reported_jobs`): with
    files named, pre-commit's changed ones, the test files that name none of their
    jobs are not read, and none at all when they define no job, which is most
    commits.  A job's entry is the same either way."""
    if not project.reported_jobs():
        return CoverageIndex(project.test_paths(), {})
    return _Builder(project).build()


@dataclass(frozen=True)
class _Mentions:
    """Whether a text may refer to a job: it has one of the words or contains a phrase.

    Phrases are looked for one substring test each: several times faster than one
    alternation of them all, which the regex engine tries one by one at every position.
    """

    words: frozenset[str]
    phrases: tuple[str, ...]

    def __call__(self, text: str) -> bool:
        return self.named(_WORD.findall(text)) or self.phrased(text)

    def named(self, words: Iterable[str]) -> bool:
        return not self.words.isdisjoint(words)

    def phrased(self, text: str) -> bool:
        return any(phrase in text for phrase in self.phrases)


@dataclass
class _Summary:
    """What one function (with the functions nested in it) does with jobs."""

    jobs: set[str] = field(default_factory=set)
    runs: Counter[str] = field(default_factory=Counter)
    """Per job, how many calls in the function run it (a call in a loop counts twice)."""
    failures: set[str] = field(default_factory=set)

    def add(self, other: _Summary) -> None:
        self.jobs |= other.jobs
        self.runs.update(other.runs)
        self.failures |= other.failures


class _Builder:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.resolver = project.resolver
        self.jobs = project.reported_jobs()
        self.by_function = {id(job.function): job for job in self.jobs}
        self.by_class = {id(job.cls): job for job in self.jobs if job.cls is not None}
        self.names: dict[str, set[str]] = {}
        """Dotted paths and registered names → the jobs they spell."""
        for job in self.jobs:
            for name in _string_names(job):
                self.names.setdefault(name, set()).add(job.qualname)
        self.methods: dict[str, list[Job]] = {}
        for job in self.jobs:
            if job.function.class_name is not None and job.cls is None:
                self.methods.setdefault(job.function.name, []).append(job)
        self._refs: dict[str, str | None] = {}
        self._hits: dict[str, dict[int, set[str]]] = {}
        self._strings: dict[str, tuple[str, ...]] = {}
        """The jobs each string literal names: the same few strings recur in every test."""
        self._summaries: dict[int, _Summary] = {}
        self._words: dict[str, tuple[frozenset[str], bool]] = {}
        """Per test file: its words, and whether it contains one of the (fixed) phrases."""
        self.fixtures: dict[str, list[FunctionFacts]] = {}
        self.helpers: dict[int, FileFacts] = {}
        self._fixture_chains: dict[tuple[int, int], list[FunctionFacts]] = {}
        self._fixtures_seen: dict[tuple[str, str], list[FunctionFacts]] = {}
        self.jobs_mentioned = self._mentions()
        self.mentions = self.jobs_mentioned
        self.files = self._test_files()

    def _test_files(self) -> list[FileFacts]:
        """The test files that mention a job, or a fixture or helper that runs one.

        A test may never name the job it runs: ``def test_refund(complete_purchase)``
        gets it from a conftest fixture.  So the names of fixtures and helpers that
        refer to a job are mentions too, until no new one is found.
        """
        while True:
            files = self.project.test_files(self.mentions)
            self.fixtures.clear()
            self.helpers.clear()
            self._fixture_chains.clear()
            self._fixtures_seen.clear()
            for facts in files:
                for function in _functions(facts):
                    self.helpers[id(function)] = facts
                    if any(_last(d).endswith("fixture") for d in function.decorators):
                        self.fixtures.setdefault(function.name, []).append(function)
            carriers: set[str] = set()
            for facts in files:
                if not self._mentioned(facts):
                    continue
                classes = self._classes_named(facts)
                for cls, function in _units(facts):
                    name = function.name
                    if name.startswith("test") or name in self.mentions.words:
                        continue  # nothing calls a test, or already a mention
                    if self._unit(facts, cls, function, classes).jobs:
                        carriers.add(name)
            if not carriers:
                return files
            self.mentions = _Mentions(self.mentions.words | carriers, self.mentions.phrases)

    def _mentions(self) -> _Mentions:
        """What a text must contain to refer to any job: the name of a job's function or
        class (which ends its dotted path too), a name project modules import one under,
        or a registered name spelled out."""
        words: set[str] = set()
        phrases: set[str] = set()
        for job in self.jobs:
            words.update({job.function.name, *([job.cls.name] if job.cls else [])})
            paths = {job.qualname, f"{job.module}.{job.function.name}"}
            for name in _string_names(job) - paths:
                if name.isidentifier():
                    words.add(name)
                else:
                    phrases.add(name)  # ``"export-products"``: its words are everywhere
        for facts in self.resolver.modules.values():
            for alias, target in facts.imports:
                if target.rpartition(".")[2] in words and self._job_of_name(target):
                    words.add(alias)  # ``from proj.tasks import send as notify``
        return _Mentions(frozenset(words), tuple(sorted(phrases)))

    def build(self) -> CoverageIndex:
        by_job: dict[str, JobTests] = {}
        for facts in self.files:
            self._file(facts, by_job)
        return CoverageIndex(self.project.test_paths(), by_job)

    # -- one test file ---------------------------------------------------------------------

    def _file(self, facts: FileFacts, by_job: dict[str, JobTests]) -> None:
        if not self._mentioned(facts):
            return  # most test files name no job at all
        classes = self._classes_named(facts)
        referred: set[str] = set()
        for _, target in facts.imports:
            referred.update(self._job_of_name(target))
        for value in _module_values(facts):
            referred.update(self._jobs_in(value, facts, None, classes))
        for jobs in self._string_hits(facts).values():
            referred |= jobs
        units: list[tuple[str, _Summary]] = []
        for cls, function in _units(facts):
            summary = self._unit(facts, cls, function, classes)
            referred |= summary.jobs
            units.append((function.qualname, summary))
        unit_jobs = {job for _, summary in units for job in summary.jobs}
        for job in referred:
            tests = by_job.setdefault(job, JobTests())
            tests.files.add(facts.path)
            if job not in unit_jobs:  # named only at module level: any test of the file may run it
                failures = frozenset(kind for _, s in units for kind in s.failures)
                tests.units.append(CoveringTest(facts.path, "<module>", failures))
        for name, summary in units:
            for job in summary.jobs:
                kinds = set(summary.failures)
                if summary.runs[job] >= 2:
                    kinds.add(RERUN)
                by_job[job].units.append(CoveringTest(facts.path, name, frozenset(kinds)))

    def _mentioned(self, facts: FileFacts) -> bool:
        """``self.mentions`` of a test file.  Only the words grow, and every file is asked
        again when they do, so its words and its phrase test are taken once."""
        seen = self._words.get(facts.path)
        if seen is None:
            text = facts.lines.text
            seen = frozenset(_WORD.findall(text)), self.mentions.phrased(text)
            self._words[facts.path] = seen
        words, phrase = seen
        return phrase or self.mentions.named(words)

    def _classes_named(self, facts: FileFacts) -> set[str]:
        """Class names (``module.Class``) the file imports: their method jobs may be called."""
        out: set[str] = set()
        for _, target in facts.imports:
            symbol = self.resolver.lookup(target)
            if isinstance(symbol, ProjectClass):
                out.add(f"{symbol.facts.module}.{symbol.facts.qualname}")
        return out

    def _unit(
        self, facts: FileFacts, cls: ClassFacts | None, function: FunctionFacts, classes: set[str]
    ) -> _Summary:
        """A test with what runs for it: its fixtures, setUp, and the test helpers it calls."""
        summary = _Summary()
        summary.add(self._summary(facts, function, classes))
        if _FAILURE_NAME.search(function.name):
            summary.failures.add(NAMED)
        # Each member once: pytest builds a fixture once per test, however many of the
        # test's fixtures ask for it, so its runs of a job count once.
        members = {id(member): member for member in self._members(function, cls)}
        for member in members.values():
            other = self.helpers.get(id(member))
            if other is not None:
                summary.add(self._summary(other, member, classes))
        if cls is not None:  # ``@mock.patch(..., side_effect=...)`` on the TestCase class
            for decorator in cls.decorators:
                summary.jobs.update(self._jobs_in(decorator, facts, None, classes))
                effect = decorator.kwarg("side_effect") if isinstance(decorator, Call) else None
                if self._raising(effect, function):
                    summary.failures.add(SIDE_EFFECT)
        return summary

    def _members(self, function: FunctionFacts, cls: ClassFacts | None) -> Iterator[FunctionFacts]:
        yield from self._fixtures(function, 0)
        for site in function.calls:
            func = site.call.func
            if isinstance(func, Ref):
                symbol = self.resolver.lookup(func.name)
                if isinstance(symbol, ProjectFunction) and id(symbol.facts) in self.helpers:
                    yield symbol.facts
            elif isinstance(func, Local) and cls is not None and func.name.startswith("self."):
                method = cls.method(func.name[5:])
                if method is not None and method is not function:
                    yield method
        if cls is not None:
            path = self.helpers[id(function)].path
            for klass, _ in self.resolver.mro(ProjectClass(cls, path)):
                for name in _SET_UP:
                    method = klass.method(name)
                    if method is not None and method is not function:
                        yield method

    def _fixtures(self, function: FunctionFacts, depth: int) -> list[FunctionFacts]:
        """The fixtures a test (or a fixture) asks for, and theirs, three levels deep.

        Worked out once per function and depth: every test of a suite asks for
        the same few fixtures, and so does every fixture built on them."""
        if depth > 2:
            return []
        known = self._fixture_chains.get((id(function), depth))
        if known is not None:
            return known
        used = [p for p in function.params if p not in {"self", "cls"}]
        for decorator in function.decorators:
            if isinstance(decorator, Call) and _last(decorator.func) == "usefixtures":
                used.extend(arg for arg in decorator.args if isinstance(arg, str))
        path = self.helpers[id(function)].path
        found: list[FunctionFacts] = []
        for name in used:
            for fixture in self._visible(name, path):
                if fixture is not function:
                    found.append(fixture)
                    found.extend(self._fixtures(fixture, depth + 1))
        self._fixture_chains[id(function), depth] = found
        return found

    def _visible(self, name: str, path: str) -> list[FunctionFacts]:
        """The fixtures of a name a test in ``path`` gets: its file's, else its conftests',
        else (a plugin module's, which pytest_plugins may load anywhere) all of them."""
        known = self._fixtures_seen.get((name, path))
        if known is None:
            known = self._fixtures_seen[name, path] = self._visible_now(name, path)
        return known

    def _visible_now(self, name: str, path: str) -> list[FunctionFacts]:
        fixtures = self.fixtures.get(name, [])
        own = [f for f in fixtures if self.helpers[id(f)].path == path]
        if own:
            return own
        folder = PurePosixPath(path).parent
        conftests = [
            f
            for f in fixtures
            if (where := PurePosixPath(self.helpers[id(f)].path)).name == "conftest.py"
            and (where.parent == folder or where.parent in folder.parents)
        ]
        return conftests or fixtures

    # -- one function ----------------------------------------------------------------------

    def _summary(self, facts: FileFacts, function: FunctionFacts, classes: set[str]) -> _Summary:
        cached = self._summaries.get(id(function))
        if cached is not None:
            return cached
        summary = _Summary()
        imported = _local_imports(facts, function)
        for value in function.decorators:
            summary.jobs.update(self._jobs_in(value, facts, imported, classes))
            if isinstance(value, Call) and self._raising(value.kwarg("side_effect"), function):
                summary.failures.add(SIDE_EFFECT)
        for _, value in function.locals:
            if not isinstance(value, Call):  # calls are in ``function.calls`` too
                summary.jobs.update(self._jobs_in(value, facts, imported, classes))
        for site in function.calls:
            call = site.call
            summary.jobs.update(self._jobs_in(call, facts, imported, classes, calls=False))
            for job in self._runs(call, facts, imported, classes):
                summary.runs[job] += 2 if site.in_loop else 1
            if _last(call.func) in RAISES_CALLS:
                summary.failures.add(RAISES)
            if self._raising(call.kwarg("side_effect"), function):
                summary.failures.add(SIDE_EFFECT)
        first, last = _lines(function)
        for line, jobs in self._string_hits(facts).items():
            if first <= line <= last:
                summary.jobs |= jobs
        text = facts.lines.block(first, last)
        for assigned in _SIDE_EFFECT.finditer(text):
            if _raising_text(assigned.group(1), function):
                summary.failures.add(SIDE_EFFECT)
        if _RETRY.search(text):
            summary.failures.add(RETRY)
        if _FAILURE_WORD.search(text):
            summary.failures.add(STATE)
        if any(nested.raises for nested in function.nested):
            summary.failures.add(SIDE_EFFECT)  # a fake that raises, patched in somewhere
        for nested in function.nested:
            summary.add(self._summary(facts, nested, classes))
        self._summaries[id(function)] = summary
        return summary

    def _runs(
        self, call: Call, facts: FileFacts, imported: dict[str, str], classes: set[str]
    ) -> set[str]:
        """Jobs a call runs once: ``send()``, ``send.delay()``, ``q.enqueue(send)``."""
        func = call.func
        method = _last(func)
        found: set[str] = set()
        if isinstance(func, (Ref, Local, Attr)):
            found = set(self._jobs_in_name(func, facts, imported, classes, direct=True))
        if not found and method in RUN_METHODS:
            base = _receiver(func)
            if base is not None:
                found = set(self._jobs_in_name(base, facts, imported, classes, direct=True))
        if not found and method in RUNNERS and call.args:
            found = set(self._jobs_in(call.args[0], facts, imported, classes))
        return found

    # -- references ------------------------------------------------------------------------

    def _jobs_in(
        self,
        value: Value,
        facts: FileFacts,
        imported: dict[str, str] | None,
        classes: set[str],
        calls: bool = True,
    ) -> Iterator[str]:
        """Jobs the names and strings in a value denote (a string split over lines is
        one here, unlike in the source); ``calls=False`` leaves out calls nested in it,
        which the facts list on their own."""
        for part in _parts(value, calls):
            if isinstance(part, str):
                yield from self._jobs_in_string(part)
            else:
                yield from self._jobs_in_name(part, facts, imported or {}, classes)

    def _string_hits(self, facts: FileFacts) -> dict[int, set[str]]:
        """The jobs the string literals of each line of a file name, by line number."""
        found = self._hits.get(facts.path)
        if found is None:
            found = {}
            for number, line in enumerate(facts.lines, start=1):
                jobs = set(self._jobs_in_text(line))
                if jobs:
                    found[number] = jobs
            self._hits[facts.path] = found
        return found

    def _jobs_in_name(
        self,
        value: Ref | Local | Attr,
        facts: FileFacts,
        imported: dict[str, str],
        classes: set[str],
        direct: bool = False,
    ) -> Iterator[str]:
        """The job a name denotes; unless ``direct``, also one it is an attribute of."""
        if isinstance(value, Ref):
            found = self._job_of_name(value.name, strip=not direct)
            yield from found
            return
        if isinstance(value, Attr):
            return
        head, _, rest = value.name.partition(".")
        if head in imported:
            target = f"{imported[head]}.{rest}" if rest else imported[head]
            yield from self._job_of_name(target, strip=not direct)
            return
        last = value.name.rpartition(".")[2]
        for job in self.methods.get(last, ()):
            owner = f"{job.module}.{job.function.qualname.rpartition('.')[0]}"
            if owner in classes:
                yield job.qualname

    def _job_of_name(self, name: str, strip: bool = True) -> set[str]:
        """The job a dotted name denotes (``proj.tasks.send``, ``proj.tasks.send.delay``)."""
        key = f"{name}|{strip}"
        if key not in self._refs:
            self._refs[key] = self._lookup(name, strip)
        found = self._refs[key]
        return {found} if found is not None else set()

    def _lookup(self, name: str, strip: bool) -> str | None:
        parts = name.split(".")
        for cut in range(len(parts), 1, -1):
            symbol = self.resolver.lookup(".".join(parts[:cut]))
            job = self._job_of_symbol(symbol)
            if job is not None:
                return job
            if not strip or not isinstance(symbol, (Missing, InstanceAttr, Assigned)):
                return None
        return None

    def _job_of_symbol(self, symbol: object, depth: int = 0) -> str | None:
        if isinstance(symbol, ProjectFunction):
            job = self.by_function.get(id(symbol.facts))
        elif isinstance(symbol, ProjectClass):
            job = self.by_class.get(id(symbol.facts))
        elif isinstance(symbol, Assigned) and depth < 2:
            value = symbol.value  # ``send = app.task(_send)``, ``task = huey.task()(fn)``
            target = value.args[0] if isinstance(value, Call) and value.args else value
            if isinstance(target, Ref):
                return self._job_of_symbol(self.resolver.lookup(target.name), depth + 1)
            return None
        else:
            return None
        return job.qualname if job is not None else None

    def _jobs_in_text(self, line: str) -> Iterator[str]:
        """Jobs a string literal on the line names: dotted path, patch target, registered name."""
        if "'" not in line and '"' not in line:
            return
        for match in _STRING.finditer(line):
            yield from self._jobs_in_string(match.group(2))

    def _jobs_in_string(self, text: str) -> tuple[str, ...]:
        known = self._strings.get(text)
        if known is None:
            known = self._strings[text] = tuple(self._string_jobs(text))
        return known

    def _string_jobs(self, text: str) -> Iterator[str]:
        if not self.jobs_mentioned(text):
            return  # most strings of a test name no job: skip resolving them as paths
        text = text.replace(":", ".")
        if "." in text and self.resolver.module_for(text) is not None:
            yield from self._job_of_name(text)  # ``"proj.views.send.delay"``: a re-export
        while text:
            yield from self.names.get(text, ())
            text = text.rpartition(".")[0]

    def _raising(self, value: Value, function: FunctionFacts, depth: int = 0) -> bool:
        """Whether a ``side_effect`` value raises: an exception, a list holding one, a raiser."""
        if value is None or depth > 3:
            return False
        if isinstance(value, Call):
            return self._raising(value.func, function, depth + 1)
        if isinstance(value, Seq):
            return any(self._raising(item, function, depth + 1) for item in value.items)
        if isinstance(value, (Ref, Attr)):
            name = _last(value)
            if _EXCEPTION_NAME.search(name):
                return True
            if isinstance(value, Ref):
                symbol = self.resolver.lookup(value.name)
                if isinstance(symbol, ProjectFunction):
                    return bool(symbol.facts.raises)
                if isinstance(symbol, ProjectClass):
                    bases = self.resolver.external_bases(symbol)
                    return any(_EXCEPTION_NAME.search(base) for base in bases)
            return False
        if isinstance(value, Local):
            if _EXCEPTION_NAME.search(value.name):
                return True
            nested = next((f for f in function.nested if f.name == value.name), None)
            if nested is not None:
                return bool(nested.raises)
            return self._raising(function.local(value.name), function, depth + 1)
        return False


def _raising_text(text: str, function: FunctionFacts) -> bool:
    """The right-hand side of ``mock.side_effect = ...`` (not in the facts) read as text."""
    for word in _WORD.findall(text):
        if _EXCEPTION_NAME.search(word):
            return True
        if any(nested.name == word and nested.raises for nested in function.nested):
            return True
    return False


def _string_names(job: Job) -> set[str]:
    """The strings that name a job: its dotted path and any registered name."""
    names = {job.qualname, f"{job.module}.{job.function.name}"}
    if job.name != job.function.name:
        names.add(job.name)
    for key in ("name", "actor_name", "task_name"):
        option = job.option(key)
        if option is not None and isinstance(option.value, str) and option.value:
            names.add(option.value)
    return names


def _functions(facts: FileFacts) -> Iterator[FunctionFacts]:
    for _, function in _units(facts):
        yield function


def _units(facts: FileFacts) -> Iterator[tuple[ClassFacts | None, FunctionFacts]]:
    """Top-level functions and the methods of classes (nested classes included)."""
    for function in facts.functions:
        yield None, function
    stack = list(facts.classes)
    while stack:
        cls = stack.pop(0)
        for method in cls.methods:
            yield cls, method
        stack.extend(cls.inner)


def _module_values(facts: FileFacts) -> Iterator[Value]:
    for _, value, _ in facts.assigns:
        yield value
    for site in facts.calls:
        yield site.call
    stack = list(facts.classes)
    while stack:
        cls = stack.pop()
        yield from cls.decorators
        yield from cls.bases
        for _, value, _ in cls.attrs:
            yield value
        stack.extend(cls.inner)


def _lines(function: FunctionFacts) -> tuple[int, int]:
    """The function's first and last line, decorators included."""
    first = min([function.span[0], *(span[0] for span in function.decorator_spans)])
    return first, max(function.end_line, first)


def _local_imports(facts: FileFacts, function: FunctionFacts) -> dict[str, str]:
    """``from proj.tasks import send as s`` inside a test: the facts keep such names as locals."""
    out: dict[str, str] = {}
    first, last = _lines(function)
    for line in facts.lines[first:last]:
        if "import" not in line:
            continue
        match = _LOCAL_IMPORT.match(line)
        if match is None or match.group(1).startswith("."):
            continue
        for item in match.group(2).split(","):
            words = item.split()
            if len(words) == 3 and words[1] == "as":
                out[words[2]] = f"{match.group(1)}.{words[0]}"
            elif len(words) == 1:
                out[words[0]] = f"{match.group(1)}.{words[0]}"
    return out


def _parts(value: Value, calls: bool = True, depth: int = 0) -> Iterator[Ref | Local | Attr | str]:
    """The names and dotted strings inside a value (a call's function, arguments,
    lists...); with ``calls=False``, not those of the calls among its arguments."""
    if depth > 8:
        return
    if isinstance(value, (Ref, Local)) or (isinstance(value, str) and "." in value):
        yield value
    elif isinstance(value, Attr):
        yield value
        yield from _parts(value.base, calls, depth + 1)
    elif isinstance(value, Call):
        if depth and not calls:
            return
        yield from _parts(value.func, calls, depth + 1)
        for item in _chain(value.args, (v for _, v in value.kwargs), value.star_args):
            yield from _parts(item, calls, depth + 1)
    elif isinstance(value, Seq):
        for item in value.items:
            yield from _parts(item, calls, depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items:
            yield from _parts(key, calls, depth + 1)
            yield from _parts(item, calls, depth + 1)
    elif isinstance(value, BinOp):
        yield from _parts(value.left, calls, depth + 1)
        yield from _parts(value.right, calls, depth + 1)


def _chain(*groups: Iterable[Value]) -> Iterator[Value]:
    for group in groups:
        yield from group


def _last(value: Value) -> str:
    """The last name of a dotted value (``raises`` of ``pytest.raises``)."""
    if isinstance(value, Call):
        return _last(value.func)
    if isinstance(value, (Ref, Local)):
        return value.name.rpartition(".")[2]
    if isinstance(value, Attr):
        return value.name
    return ""


def _receiver(value: Value) -> Ref | Local | Attr | None:
    """``send`` of ``send.delay``."""
    if isinstance(value, Ref) and "." in value.name:
        return Ref(value.name.rpartition(".")[0])
    if isinstance(value, Local) and "." in value.name:
        return Local(value.name.rpartition(".")[0])
    if isinstance(value, Attr) and isinstance(value.base, (Ref, Local, Attr)):
        return value.base
    return None


__all__ = ["FAILURE_KINDS", "CoverageIndex", "CoveringTest", "JobTests", "coverage_index"]
