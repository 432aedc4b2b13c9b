"""Network and database clients: which calls block, and what gives them a timeout.

``blocking.py`` says whether a call can block at all; this module knows, per
client, how the call is given a bound of its own (a keyword, a position, a
constructor option, a URL parameter) and what each library does when it is
not given one.  The defaults differ and are what matters: ``requests``,
``urllib``, ``http.client``, ``smtplib``, ``socket`` and ``subprocess`` wait
forever; ``redis-py`` waited forever before 8.0 and waits 5 s since; ``httpx``
has a 5 s default and ``aiohttp`` a 5 minute one, so only an explicit
``None`` turns them off.

A ``requests.Session`` is judged by how it was built: a project subclass or a
mounted adapter that mentions a timeout, or a ``session.request = partial(...)``,
give every call a timeout the call itself does not show.  Whatever cannot be
resolved (a session passed in as a parameter, options passed with ``**``, a URL
read from the environment) counts as having a timeout: the rules stay silent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from jobaudit.blocking import is_blocking
from jobaudit.discovery import iter_call_sites, method_name
from jobaudit.facts import CallSite, FileFacts, FunctionFacts
from jobaudit.per_project import per_project
from jobaudit.pins import dependency_files
from jobaudit.symbols import Assigned, External, InstanceAttr, ProjectClass, Symbol
from jobaudit.values import Attr, Call, Local, Ref, Unknown, Value, dotted

if TYPE_CHECKING:
    from jobaudit.project import Project


@dataclass(frozen=True)
class Spec:
    """How one blocking call takes its timeout."""

    keyword: str
    position: int | None = None
    """Index of the timeout among positional arguments, when the API allows it there."""
    max_positional: int | None = None
    """With more positional arguments than this, the timeout may be among them (unknown)."""
    socket_default: bool = False
    """``socket.setdefaulttimeout()`` bounds it when no timeout is passed."""


_REQUESTS_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request")
_SOCKET_TIMEOUT = Spec("timeout", socket_default=True)
WAIT_FOREVER: dict[str, Spec] = {
    **{f"requests.{verb}": Spec("timeout") for verb in _REQUESTS_VERBS},
    **{f"requests.api.{verb}": Spec("timeout") for verb in _REQUESTS_VERBS},
    "urllib.request.urlopen": Spec("timeout", position=2, socket_default=True),
    "http.client.HTTPConnection": Spec("timeout", position=2, socket_default=True),
    "http.client.HTTPSConnection": Spec("timeout", max_positional=2, socket_default=True),
    "smtplib.SMTP": Spec("timeout", position=3, socket_default=True),
    "smtplib.SMTP_SSL": Spec("timeout", max_positional=3, socket_default=True),
    "socket.create_connection": Spec("timeout", position=1, socket_default=True),
    **{
        f"subprocess.{name}": Spec("timeout")
        for name in ("run", "call", "check_output", "check_call")
    },
}
"""Calls that wait forever unless given a timeout (positions checked on CPython 3.12)."""

REDIS_CLIENTS = (
    "redis.Redis",
    "redis.StrictRedis",
    "redis.client.Redis",
    "redis.client.StrictRedis",
)
REDIS: dict[str, Spec] = {
    **{name: Spec("socket_timeout", position=4) for name in REDIS_CLIENTS},
    **{f"{name}.from_url": Spec("socket_timeout", max_positional=1) for name in REDIS_CLIENTS},
    "redis.from_url": Spec("socket_timeout", max_positional=1),
    "redis.asyncio.Redis": Spec("socket_timeout", position=4),
    "redis.asyncio.StrictRedis": Spec("socket_timeout", position=4),
    "redis.asyncio.Redis.from_url": Spec("socket_timeout", max_positional=1),
    "redis.asyncio.from_url": Spec("socket_timeout", max_positional=1),
}
"""redis-py clients; ``socket_timeout`` defaults to None before 8.0 and to 5 s since."""
REDIS_DEFAULT_SINCE = 8

POSTGRES = frozenset(
    {
        "psycopg.connect",
        "psycopg.Connection.connect",
        "psycopg.AsyncConnection.connect",
        "psycopg2.connect",
    }
)
POSTGRES_TIMEOUTS = ("connect_timeout", "statement_timeout")

REQUESTS_SESSIONS = frozenset(
    {
        "requests.Session",
        "requests.sessions.Session",
        "requests.session",
        "requests.sessions.session",
    }
)
REQUESTS_ADAPTERS = frozenset({"requests.adapters.HTTPAdapter", "requests.HTTPAdapter"})
SESSION_METHODS = {verb: Spec("timeout") for verb in _REQUESTS_VERBS}
SESSION_METHODS["request"] = Spec("timeout", position=8)
"""``Session.request(method, url, params, data, headers, cookies, files, auth, timeout)``."""

HTTPX_FUNCTIONS = frozenset(f"httpx.{verb}" for verb in (*_REQUESTS_VERBS, "stream"))
HTTPX_CLIENTS = frozenset({"httpx.Client", "httpx.AsyncClient"})
HTTPX_TIMEOUT = frozenset({"httpx.Timeout"})
AIOHTTP_SESSIONS = frozenset({"aiohttp.ClientSession", "aiohttp.client.ClientSession"})
AIOHTTP_TIMEOUT = frozenset({"aiohttp.ClientTimeout", "aiohttp.client.ClientTimeout"})
AIOHTTP_FIELDS = ("total", "connect", "sock_read", "sock_connect")
CLIENT_METHODS = frozenset({*_REQUESTS_VERBS, "stream", "ws_connect"})

NETWORK_AWAITS = frozenset(
    {
        "asyncio.open_connection",
        "asyncio.open_unix_connection",
        "asyncio.streams.open_connection",
        "asyncio.streams.open_unix_connection",
    }
)
"""Awaits that wait on the network with no bound unless wrapped in ``wait_for``/``timeout``."""
BOUNDING_CONTEXTS = ("timeout", "deadline", "time_limit", "fail_after", "move_on_after")
"""Words in the name of a ``with`` manager or decorator that bounds the code it wraps."""
ALARMS = frozenset({"signal.alarm", "signal.setitimer"})


@dataclass(frozen=True)
class Untimed:
    """A blocking call that has no timeout of its own."""

    call: Call
    name: str
    """How messages name the call: ``requests.post()``, ``session.get() (requests.Session)``."""
    missing: str
    """What is missing: ``without a timeout``, ``with timeout=None``..."""


def untimed(site: CallSite, function: FunctionFacts, project: Project) -> Untimed | None:
    """The call of ``site`` when it blocks with no timeout of its own, else None."""
    call = site.call
    name = project.external_name(call.func)
    if name is not None:
        return _function_call(call, name, function, project)
    if isinstance(call.func, (Local, Attr, Ref)):
        return _method_call(call, function, project)
    return None


def network_await(site: CallSite, project: Project) -> str | None:
    """The asyncio network call awaited directly at ``site`` (not through ``wait_for``)."""
    name = project.external_name(site.call.func)
    return name if site.awaited and name in NETWORK_AWAITS else None


def bounded(site: CallSite, function: FunctionFacts, project: Project) -> bool:
    """Whether something around the call bounds it: ``with timeout(...)``, a timeout
    decorator on the function, or a ``signal.alarm()`` in it."""
    if any(_bounding(manager, project) for manager in site.withs):
        return True
    if any(_bounding(decorator, project) for decorator in function.decorators):
        return True
    return any(project.external_name(other.call.func) in ALARMS for other in function.calls)


def _bounding(value: Value, project: Project) -> bool:
    target = value.func if isinstance(value, Call) else value
    name = project.external_name(target) or dotted(target) or ""
    last = name.rpartition(".")[2].lower()
    return any(word in last for word in BOUNDING_CONTEXTS)


# -- module-level functions and constructors ----------------------------------------------


def _function_call(
    call: Call, name: str, function: FunctionFacts, project: Project
) -> Untimed | None:
    if not is_blocking(name):
        return None
    spec = WAIT_FOREVER.get(name)
    if spec is not None:
        if spec.socket_default and socket_default_timeout(project):
            return None
        return _required(call, spec, f"{name}()", "a timeout", function, project)
    spec = REDIS.get(name)
    if spec is not None:
        if call.kwarg("connection_pool") is not None or not redis_waits_forever(project):
            return None
        url = call.args[0] if name.endswith("from_url") and call.args else call.kwarg("url")
        if url is not None and not _lacks(url, ("socket_timeout",), function, project):
            return None
        return _required(
            call,
            spec,
            f"{name}()",
            "socket_timeout (redis-py before 8.0 waits forever)",
            function,
            project,
        )
    if name in POSTGRES:
        return _postgres(call, name, function, project)
    if name in HTTPX_FUNCTIONS or name in HTTPX_CLIENTS:
        return _explicit_none(call, name, function, project, "httpx's 5 s default")
    if name in AIOHTTP_SESSIONS:
        timeout = call.kwarg("timeout")
        if timeout is not None and _aiohttp_unbounded(timeout, function, project, session=True):
            return Untimed(call, f"{name}()", "with a ClientTimeout that sets no limit")
    return None


def _required(
    call: Call, spec: Spec, shown: str, what: str, function: FunctionFacts, project: Project
) -> Untimed | None:
    """A call that waits forever unless ``spec``'s timeout is passed (and is not None)."""
    if call.star_args or call.star_kwargs:
        return None  # the timeout may arrive through ``*args`` or ``**kwargs``
    value = call.kwarg(spec.keyword)
    if value is None and spec.position is not None and len(call.args) > spec.position:
        value = call.args[spec.position]
    if value is None and spec.max_positional is not None and len(call.args) > spec.max_positional:
        return None
    if value is None:
        if spec.keyword in dict(call.kwargs):  # ``timeout=None`` written out
            return Untimed(call, shown, f"with {spec.keyword}=None")
        return Untimed(call, shown, f"without {what}")
    if _resolve(value, function, project) is None:
        return Untimed(call, shown, f"with {spec.keyword}=None")
    return None


def _explicit_none(
    call: Call, name: str, function: FunctionFacts, project: Project, default: str
) -> Untimed | None:
    """httpx: only ``timeout=None`` (or ``Timeout(None)``) turns its default off."""
    if "timeout" not in dict(call.kwargs):
        return None
    value = _resolve(call.kwarg("timeout"), function, project)
    if value is None or _httpx_unbounded(value, project):
        return Untimed(call, f"{name}()", f"with timeout=None, which turns off {default}")
    return None


def _httpx_unbounded(value: Value, project: Project) -> bool:
    """``httpx.Timeout(None)`` with no other limit set."""
    if not isinstance(value, Call) or project.external_name(value.func) not in HTTPX_TIMEOUT:
        return False
    given = list(value.args) + [v for _, v in value.kwargs]
    return (
        bool(given)
        and not value.star_args
        and not value.star_kwargs
        and all(project.resolver.evaluate(v) is None for v in given)
    )


def _aiohttp_unbounded(
    value: Value, function: FunctionFacts, project: Project, session: bool
) -> bool:
    """A ``ClientTimeout`` with every field None; for a single request ``None`` too.

    ``ClientSession(timeout=None)`` keeps the 5 minute default, but
    ``session.get(url, timeout=None)`` becomes ``ClientTimeout(total=None)``.
    """
    resolved = _resolve(value, function, project)
    if resolved is None:
        return not session
    if (
        not isinstance(resolved, Call)
        or project.external_name(resolved.func) not in AIOHTTP_TIMEOUT
        or resolved.star_args
        or resolved.star_kwargs
    ):
        return False
    given = list(resolved.args) + [v for k, v in resolved.kwargs if k in AIOHTTP_FIELDS]
    return all(project.resolver.evaluate(v) is None for v in given)


def _postgres(call: Call, name: str, function: FunctionFacts, project: Project) -> Untimed | None:
    """libpq waits forever unless ``connect_timeout`` or a ``statement_timeout`` is given."""
    if call.star_args or call.star_kwargs:
        return None
    if call.kwarg("connect_timeout") is not None:
        return None
    options = call.kwarg("options")
    if options is not None and not _lacks(options, ("statement_timeout",), function, project):
        return None
    conninfo = call.args[0] if call.args else call.kwarg("conninfo") or call.kwarg("dsn")
    if conninfo is not None and not _lacks(conninfo, POSTGRES_TIMEOUTS, function, project):
        return None
    return Untimed(call, f"{name}()", "without connect_timeout or a statement_timeout")


def _lacks(value: Value, words: tuple[str, ...], function: FunctionFacts, project: Project) -> bool:
    """A literal string (DSN, URL, options) that mentions none of ``words``.

    Anything computed (a setting read from the environment, an f-string) may
    carry the parameter, so it does not count as lacking it.
    """
    resolved = _resolve(value, function, project)
    return isinstance(resolved, str) and not any(word in resolved for word in words)


def _resolve(value: Value, function: FunctionFacts, project: Project) -> Value:
    """A value with a plain local or a module-level name followed to what it was given."""
    if isinstance(value, Local) and "." not in value.name:
        bound = function.local(value.name)
        if bound is not None and not isinstance(bound, Local):
            return project.resolver.evaluate(bound)
        return Unknown(f"local variable '{value.name}'")
    return project.resolver.evaluate(value)


# -- methods of client objects ------------------------------------------------------------


@dataclass(frozen=True)
class _Instance:
    """A client object a method is called on: its library class and how it was built."""

    cls: str
    configured: bool
    """Something the call does not show gives it a timeout (or may: unknown counts)."""
    spelled: str


def _method_call(call: Call, function: FunctionFacts, project: Project) -> Untimed | None:
    method = method_name(call.func)
    if method not in CLIENT_METHODS:
        return None
    instance = _receiver(call.func, function, project)
    if instance is None:
        return None
    shown = f"{instance.spelled}.{method}()"
    if instance.cls in REQUESTS_SESSIONS:
        if instance.configured or method not in SESSION_METHODS:
            return None
        return _required(
            call,
            SESSION_METHODS[method],
            f"{shown} (requests.Session)",
            "a timeout",
            function,
            project,
        )
    if instance.cls in HTTPX_CLIENTS:
        return _explicit_none(
            call, f"{instance.spelled}.{method}", function, project, "the client's timeout"
        )
    if instance.cls in AIOHTTP_SESSIONS and "timeout" in dict(call.kwargs):
        timeout = call.kwarg("timeout")
        if _aiohttp_unbounded(timeout, function, project, session=False):
            spelled = "timeout=None" if timeout is None else "a ClientTimeout"
            return Untimed(
                call,
                f"{shown} (aiohttp)",
                f"with {spelled}, which removes every limit for this request",
            )
    return None


def _receiver(func: Value, function: FunctionFacts, project: Project) -> _Instance | None:
    """The client object ``func`` is a method of, when the code shows how it was built."""
    if isinstance(func, Attr) and isinstance(func.base, Call):
        return _built(func.base, project, configured=False, spelled=None)
    if isinstance(func, Local):
        base = func.name.rpartition(".")[0]
        if not base or "." in base:
            return None  # ``self.session.get``: an attribute jobaudit does not follow
        bound = function.local(base)
        if not isinstance(bound, Call):
            return None
        configured = _configured_locally(base, function, project)
        return _built(bound, project, configured=configured, spelled=base)
    if isinstance(func, Ref):
        holder = project.resolver.lookup(func.name.rpartition(".")[0])
        if not isinstance(holder, Assigned) or not isinstance(holder.value, Call):
            return None
        configured = _configured_in_project(holder, project)
        return _built(holder.value, project, configured=configured, spelled=holder.name)
    return None


def _built(call: Call, project: Project, configured: bool, spelled: str | None) -> _Instance | None:
    """The client a constructor call builds; ``spelled`` is the variable holding it."""
    symbol = project.resolver.symbol_of(call.func)
    if spelled is None:
        spelled = f"{(dotted(call.func) or '').rpartition('.')[2]}()"
    if isinstance(symbol, External):
        return _Instance(symbol.name, configured, spelled)
    if isinstance(symbol, ProjectClass):
        bases = project.resolver.external_bases(symbol)
        cls = next((base for base in bases if base in REQUESTS_SESSIONS | HTTPX_CLIENTS), None)
        if cls is None:
            return None
        return _Instance(cls, configured or _mentions_timeout(symbol, project), spelled)
    return None


def _mentions_timeout(cls: ProjectClass, project: Project) -> bool:
    """A project class (a Session or adapter subclass) whose code speaks of a timeout."""
    for klass, _ in project.resolver.mro(cls):
        if any("timeout" in name.lower() for name, _, _ in klass.attrs):
            return True
        if any(
            "timeout" in word.lower() for method in klass.methods for word in method.identifiers
        ):
            return True
    return False


def _configured_locally(name: str, function: FunctionFacts, project: Project) -> bool:
    """A session built in this function and given a timeout here (adapter, ``partial``)."""
    if "partial" in function.identifiers and "timeout" in function.identifiers:
        return True  # ``session.request = functools.partial(session.request, timeout=...)``
    mounts = [
        site.call
        for site in function.calls
        if isinstance(site.call.func, Local) and site.call.func.name == f"{name}.mount"
    ]
    return any(_adapter_sets_timeout(mount, function, project) for mount in mounts)


_CONFIGURED: WeakKeyDictionary[Project, dict[str, bool]] = WeakKeyDictionary()


def _configured_in_project(holder: Assigned, project: Project) -> bool:
    """A module-level session given a timeout anywhere in the project: ``SESSION.request =
    ...`` or ``setattr(SESSION, ...)``, ``SESSION.mount(...)`` with an adapter that may set
    one, or a function that names the session and speaks of a timeout (``AppConfig.ready``)."""
    target = f"{holder.module}.{holder.name}"
    cache = _CONFIGURED.setdefault(project, {})
    if target not in cache:
        cache[target] = any(
            _configures(facts, target, holder.name, project)
            for facts in project.resolver.modules.values()
        )
    return cache[target]


def _configures(facts: FileFacts, target: str, name: str, project: Project) -> bool:
    for assign in facts.attr_assigns:
        if dotted(assign.target) in {f"{target}.request", f"{target}.send"}:
            return True
    named = name in facts.lines.text  # else no function of the module can speak of it
    for site, owner in iter_call_sites(facts):
        func = dotted(site.call.func)
        if func == f"{target}.mount" and _adapter_sets_timeout(site.call, owner, project):
            return True
        if func == "builtins.setattr" and site.call.args and dotted(site.call.args[0]) == target:
            return True
        if named and owner is not None and owner.identifiers.all_of((name, "timeout")):
            return True
    return False


def _adapter_sets_timeout(mount: Call, function: FunctionFacts | None, project: Project) -> bool:
    """Whether ``session.mount(prefix, adapter)`` may give the session a timeout.

    requests' own ``HTTPAdapter`` has no timeout option; a project subclass
    that mentions one, or any adapter jobaudit cannot read, may.
    """
    adapter = mount.args[1] if len(mount.args) > 1 else mount.kwarg("adapter")
    if function is not None and isinstance(adapter, Local):
        adapter = function.local(adapter.name)
    if not isinstance(adapter, Call):
        return True
    symbol: Symbol = project.resolver.symbol_of(adapter.func)
    if isinstance(symbol, External):
        return symbol.name not in REQUESTS_ADAPTERS
    if isinstance(symbol, ProjectClass):
        return _mentions_timeout(symbol, project)
    return not isinstance(symbol, InstanceAttr)


# -- project-wide facts -------------------------------------------------------------------


@per_project
def socket_default_timeout(project: Project) -> bool:
    """Whether the project calls ``socket.setdefaulttimeout()`` with a value anywhere."""
    return _sets_socket_default(project)


def _sets_socket_default(project: Project) -> bool:
    for facts in project.resolver.modules.values():
        for site, _ in iter_call_sites(facts):
            call = site.call
            if project.external_name(call.func) == "socket.setdefaulttimeout" and (
                not call.args or project.resolver.evaluate(call.args[0]) is not None
            ):
                return True
    return False


def redis_waits_forever(project: Project) -> bool:
    """Whether the project pins a redis-py older than 8.0, whose ``socket_timeout`` is None.

    redis-py 8.0 made 5 s the default; without a pin older than that, the
    version the project installs is unknown and a missing ``socket_timeout``
    is not reported.
    """
    major = declared_major(str(project.config.root), "redis")
    return major is not None and major < REDIS_DEFAULT_SINCE


_LOCKED = re.compile(
    r'\[\[package\]\]\s*\nname\s*=\s*"(?P<name>[^"]+)"\s*\nversion\s*=\s*"(?P<v>\d+)'
)
_REQUIREMENT = re.compile(
    r"""(?:^|["'\s,])(?P<name>[A-Za-z0-9_.-]+)(?:\[[^\]]*\])?[ \t]*(?:=[ \t]*["'])?"""
    r"""(?P<spec>(?:[ \t]*(?:==|~=|<=|<|>=|>|!=|\^|~)[ \t]*[\d.*]+[ \t]*,?)+)""",
    re.MULTILINE,
)


@cache
def declared_major(root: str, package: str) -> int | None:
    """The highest major version of ``package`` the project's dependency files allow.

    Read from lock files (``uv.lock``, ``poetry.lock``) at the project root,
    else from ``requirements*.txt`` and ``pyproject.toml`` pins and upper bounds
    (``==5.0.1``, ``~=5.2``, ``^5.0``, ``<6``).  None when nothing bounds it.
    """
    locks, requirements = dependency_files(Path(root))
    for lock in locks:
        text = _read(lock)
        for match in _LOCKED.finditer(text):
            if _canonical(match.group("name")) == package:
                return int(match.group("v"))
    majors: list[int] = []
    for path in requirements:
        for match in _REQUIREMENT.finditer(_read(path)):
            if _canonical(match.group("name")) != package:
                continue
            bound = _upper_major(match.group("spec"))
            if bound is None:
                return None
            majors.append(bound)
    return max(majors) if majors else None


def _upper_major(spec: str) -> int | None:
    """The highest major a version specifier allows (``>=5,<6`` → 5), or None (unbounded)."""
    best: int | None = None
    for operator, version in re.findall(r"(==|~=|<=|<|>=|>|!=|\^|~)\s*([\d.*]+)", spec):
        parts = [int(part) for part in version.split(".") if part.isdigit()]
        if not parts or operator in {">=", ">", "!="}:
            continue
        major = parts[0]
        if operator == "<" and all(part == 0 for part in parts[1:]):
            major -= 1
        best = major if best is None else min(best, major)
    return best


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    except OSError:
        return ""


__all__ = [
    "NETWORK_AWAITS",
    "Untimed",
    "bounded",
    "declared_major",
    "network_await",
    "redis_waits_forever",
    "socket_default_timeout",
    "untimed",
]
