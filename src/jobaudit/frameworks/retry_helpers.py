"""In-job retry helpers: tenacity, backoff, retrying, retry and stamina (§1.8).

They are not job frameworks, but a job that uses one retries inside each of its
own attempts, and their defaults are the opposite of safe: a bare tenacity
``@retry`` retries forever, immediately, on any exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobaudit.model import Job, Location
from jobaudit.values import Call, Value

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
    "retry.retry_call": "retry",
    "retry.api.retry_call": "retry",
    "stamina.retry": "stamina",
}
STOP_OPTIONS = {
    "tenacity": ("stop",),
    "backoff": ("max_tries", "max_time"),
    "retrying": ("stop", "stop_max_attempt_number", "stop_max_delay", "stop_func"),
}
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
        """Whether any of ``names`` is passed, or could be (``**kwargs``)."""
        return bool(self.call.star_kwargs) or any(self.call.kwarg(n) is not None for n in names)

    @property
    def where(self) -> str:
        """``'fetch' (called by the job)`` or ``the job itself``, for messages."""
        if self.function.depth == 0:
            return "the job itself"
        return f"'{self.function.facts.name}', which the job calls"

    def unbounded(self) -> bool:
        if self.library == "retry":
            tries = self.call.kwarg("tries")
            if self.call.star_kwargs:
                return False
            if self.name.endswith("retry_call"):
                return tries is None or tries == -1
            positional = self.call.args[1] if len(self.call.args) > 1 else None
            value = tries if tries is not None else positional
            return value is None or value == -1
        if self.library == "backoff" and len(self.call.args) > 2:
            return False
        options = STOP_OPTIONS.get(self.library)
        return options is not None and not self.given(*options)


def helper_uses(job: Job, project: Project) -> list[HelperUse]:
    """Retry helpers decorating or called by the job and the project functions it calls."""
    uses: list[HelperUse] = []
    for function in project.body(job):
        candidates: list[tuple[Value, Location]] = []
        for decorator, span in zip(function.facts.decorators, function.facts.decorator_spans):
            call = decorator if isinstance(decorator, Call) else Call(decorator, span=span)
            candidates.append((call, Location(function.path, span)))
        for site in function.facts.calls:
            candidates.append((site.call, Location(function.path, site.call.span)))
        for value, location in candidates:
            assert isinstance(value, Call)
            name = project.external_name(value.func)
            if name in LIBRARIES:
                uses.append(HelperUse(LIBRARIES[name], name, value, location, function))
    return uses
