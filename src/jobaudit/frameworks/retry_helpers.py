"""In-job retry helpers: tenacity, backoff, retrying, retry and stamina (§1.8).

They are not job frameworks, but a job that uses one retries inside each of its
own attempts, and their defaults are the opposite of safe: a bare tenacity
``@retry`` retries forever, immediately, on any exception; ``backoff`` without
``max_tries``/``max_time``, ``retrying`` without a ``stop_*`` argument and
``retry`` with ``tries=-1`` never stop either.  ``stamina`` is the exception: its
defaults (10 attempts, 45 s, jittered exponential waits) are safe.

A helper is found where the job's body (the job and the project functions it
calls) decorates or calls it, also through a module-level alias such as
``RETRY = retry(stop=...)`` used as ``@RETRY``.  Several jobs often share one
helper, so rules report a helper use once, at its place, naming the jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.model import Job, Location
from jobaudit.symbols import Assigned
from jobaudit.values import Call, Ref, Value

if TYPE_CHECKING:
    from jobaudit.project import BodyFunction, Project

LIBRARIES = {
    "tenacity.retry": "tenacity",
    "tenacity.Retrying": "tenacity",
    "tenacity.AsyncRetrying": "tenacity",
    "tenacity.asyncio.AsyncRetrying": "tenacity",
    "backoff.on_exception": "backoff",
    "backoff.on_predicate": "backoff",
    "retrying.retry": "retrying",
    "retrying.Retrying": "retrying",
    "retry.retry": "retry",
    "retry.api.retry": "retry",
    "retry.api.retry_call": "retry",
    "stamina.retry": "stamina",
}
STOP_OPTIONS = {
    "tenacity": ("stop",),
    "backoff": ("max_tries", "max_time"),
    "retrying": ("stop", "stop_max_attempt_number", "stop_max_delay", "stop_func"),
}
WAIT_OPTIONS = {
    "tenacity": ("wait",),
    "retrying": (
        "wait",
        "wait_fixed",
        "wait_random_min",
        "wait_random_max",
        "wait_incrementing_start",
        "wait_incrementing_increment",
        "wait_exponential_multiplier",
        "wait_exponential_max",
        "wait_func",
    ),
}
NEVER = frozenset({"tenacity.stop_never", "tenacity.stop.stop_never"})
NO_WAIT = frozenset({"tenacity.wait_none", "tenacity.wait.wait_none"})
RETRY_POSITIONS = {"tries": 1, "delay": 2}
"""Positional indices in ``retry.retry(exceptions, tries, delay, ...)``; ``retry_call`` adds 3."""
BROAD = frozenset({"builtins.Exception", "builtins.BaseException"})


@dataclass(frozen=True)
class HelperUse:
    """One use of a retry helper in a job's body."""

    library: str
    name: str
    call: Call
    """The decorator or call; a bare decorator is an argument-less Call."""
    location: Location
    function: BodyFunction

    def given(self, *names: str) -> bool:
        """Whether any of ``names`` is passed (not as None), or could be (``**kwargs``)."""
        return bool(self.call.star_kwargs) or any(self.call.kwarg(n) is not None for n in names)

    @property
    def where(self) -> str:
        """``'fetch', which the job calls`` or ``the job itself``, for messages."""
        if self.function.depth == 0:
            return "the job itself"
        return f"'{self.function.facts.name}', which the job calls"

    def action(self, what: str) -> str:
        """``retries forever with @retry``, said of the job: directly or through its callee."""
        return said_of_job(self.function, f"{what} with {self.spelling}")

    @property
    def spelling(self) -> str:
        """How the use is written, for messages: ``@retry``, ``Retrying()``, ``on_exception()``."""
        short = self.name.rpartition(".")[2]
        decorates = self.location.span in self.function.facts.decorator_spans
        return f"@{short}" if decorates else f"{short}()"

    def unbounded(self, project: Project) -> bool:
        """The helper never stops retrying (its stop condition is missing or ``stop_never``)."""
        if self.call.star_args or self.call.star_kwargs:
            return False
        if self.library == "retry":
            tries = self._retry_argument(project, "tries")
            return tries is None or tries == -1
        if self.library == "tenacity" and self.call.kwarg("stop") is not None:
            return project.external_name(self.call.kwarg("stop")) in NEVER
        options = STOP_OPTIONS.get(self.library)
        return options is not None and not self.given(*options)

    def immediate(self, project: Project) -> bool:
        """The helper retries without waiting (no wait configured, or ``wait_none()``)."""
        if self.call.star_args or self.call.star_kwargs:
            return False
        if self.library == "retry":
            delay = self._retry_argument(project, "delay")
            return delay is None or delay == 0
        wait = self.call.kwarg("wait")
        if self.library == "tenacity" and isinstance(wait, Call):
            return project.external_name(wait.func) in NO_WAIT
        options = WAIT_OPTIONS.get(self.library)
        return options is not None and not self.given(*options)

    def _retry_argument(self, project: Project, name: str) -> Value:
        """``tries``/``delay`` of the ``retry`` library, keyword or positional, evaluated.

        None when not passed; anything but a number never equals -1 or 0, so an
        unresolved value keeps the rules silent.
        """
        value = self.call.kwarg(name)
        position = RETRY_POSITIONS[name] + (3 if self.name.endswith("retry_call") else 0)
        if value is None and len(self.call.args) > position:
            value = self.call.args[position]
        return project.resolver.evaluate(value)


def _helper(project: Project, call: Call, location: Location) -> tuple[str, Call, Location] | None:
    """The helper a decorator or call denotes: directly, or through a module-level alias."""
    name = project.external_name(call.func)
    if name in LIBRARIES:
        return name, call, location
    if isinstance(call.func, Ref) and not call.args and not call.kwargs:
        symbol = project.resolver.lookup(call.func.name)
        if isinstance(symbol, Assigned) and isinstance(symbol.value, Call):
            aliased = project.external_name(symbol.value.func)
            if aliased in LIBRARIES:
                return aliased, symbol.value, Location(symbol.path, symbol.value.span)
    return None


def uses_in(function: BodyFunction, project: Project) -> list[HelperUse]:
    """Retry helpers decorating or called by one function of a job's body."""
    candidates: list[tuple[Call, Location]] = []
    for decorator, span in zip(
        function.facts.decorators, function.facts.decorator_spans, strict=True
    ):
        call = decorator if isinstance(decorator, Call) else Call(decorator, span=span)
        candidates.append((call, Location(function.path, span)))
    for site in function.facts.calls:
        candidates.append((site.call, Location(function.path, site.call.span)))
    uses: list[HelperUse] = []
    for call, location in candidates:
        found = _helper(project, call, location)
        if found is not None:
            name, helper_call, place = found
            uses.append(HelperUse(LIBRARIES[name], name, helper_call, place, function))
    return uses


def helper_uses(job: Job, project: Project) -> list[HelperUse]:
    """Retry helpers decorating or called by the job and the project functions it calls."""
    return [use for function in project.body(job) for use in uses_in(function, project)]


def said_of_job(function: BodyFunction, what: str) -> str:
    """``raises Retry()`` said of the job, or ``calls 'fetch', which raises Retry()``."""
    if function.depth == 0:
        return what
    return f"calls '{function.facts.name}', which {what}"


def jobs_label(jobs: list[Job]) -> str:
    """``Task 'a'``, or ``Task 'a' (and 2 other jobs)`` for a place several jobs reach."""
    others = len(jobs) - 1
    if not others:
        return jobs[0].label()
    return f"{jobs[0].label()} (and {others} other job{'s' if others > 1 else ''})"


def body_places(
    project: Project,
    problems: Callable[[Job, BodyFunction], Iterable[tuple[Location, str]]],
) -> Iterator[tuple[Location, str, list[Job]]]:
    """Problems found in job bodies, once per place, with every job that reaches it.

    A helper function or a shared ``RETRY = retry(...)`` is part of the body of
    every job that calls it; reporting it once per job would repeat one
    defect on one line.  ``problems`` returns (place, description) pairs.
    """
    places: dict[Location, tuple[str, list[Job]]] = {}
    for job in project.jobs:
        for function in project.body(job):
            for location, text in problems(job, function):
                entry = places.setdefault(location, (text, []))
                if job not in entry[1]:
                    entry[1].append(job)
    for location in sorted(places):
        text, jobs = places[location]
        yield location, text, jobs
