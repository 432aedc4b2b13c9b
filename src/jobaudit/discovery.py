"""Finding jobs the way real projects declare them.

A job is found from its decorator (through aliases, an ``app`` imported from
elsewhere, project wrappers that forward to a framework decorator,
``functools.partial`` and subclasses of framework decorator classes), from a
class that derives from a framework's job class, or from a registration: arq's
``WorkerSettings.functions``, Celery's ``app.register_task``, RQ enqueue
targets (function objects and dotted strings), or ``[tool.jobaudit.custom]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from jobaudit.facts import CallSite, ClassFacts, FileFacts, FunctionFacts
from jobaudit.model import Job, Location, Option
from jobaudit.symbols import (
    Assigned,
    External,
    InstanceAttr,
    ProjectClass,
    ProjectFunction,
    Symbol,
)
from jobaudit.values import Attr, Call, Local, Ref, Seq, Span, Unknown, Value, dotted, render

if TYPE_CHECKING:
    from jobaudit.frameworks.base import Framework
    from jobaudit.project import Project

_MAX_WRAPPER_DEPTH = 3
ENQUEUE_METHODS = frozenset(
    {
        "delay",
        "apply_async",
        "delay_on_commit",
        "apply_async_on_commit",
        "send",
        "send_with_options",
        "kiq",
        "enqueue",
        "aenqueue",
        "schedule",
        "s",
        "si",
        "signature",
        "call_local",
    }
)


@dataclass(frozen=True)
class Match:
    """A decorator (or registration) recognised as declaring a job of ``framework``."""

    framework: Framework
    options: tuple[Option, ...]
    declaration: str
    app: str | None = None
    origin: str = ""
    """The framework decorator this resolves to (``celery.shared_task``, ``celery.Celery.task``)."""


@dataclass(frozen=True)
class _Wrapper:
    """A project function or partial that forwards to a framework decorator."""

    inner: Match
    name: str
    params: dict[str, str] = field(default_factory=dict)
    """Wrapper parameter → framework option it is passed as."""
    passthrough: bool = False
    """The wrapper's ``**kwargs`` reach the framework decorator."""
    defaults: tuple[Option, ...] = ()
    positional: int | None = None
    """For a ``functools.partial``: how many positional arguments it fixes; the
    decorator's own positional arguments continue after them."""


@dataclass(frozen=True)
class EnqueueSite:
    """A call that enqueues (or schedules, or calls) a job."""

    job: Job
    method: str
    site: CallSite
    path: str
    function: FunctionFacts | None


class Discovery:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.resolver = project.resolver
        self._wrappers: dict[str, _Wrapper | None] = {}

    # -- decorators ----------------------------------------------------------------------

    def classify(self, decorator: Value, path: str, depth: int = 0) -> Match | None:
        """Whether a decorator expression declares a job, and with which options."""
        call = decorator if isinstance(decorator, Call) else None
        target = call.func if call is not None else decorator
        symbol = self.resolver.symbol_of(target)
        site_options = self._call_options(call, path, "task option") if call else ()
        base = self._match_symbol(symbol, target, path, depth)
        if base is None:
            return None
        if isinstance(base, _Wrapper):
            return self._apply_wrapper(base, call, path)
        positional = self._positional(base.framework, base.origin, call, path)
        return Match(
            base.framework,
            base.options + positional + site_options,
            base.declaration,
            base.app,
            base.origin,
        )

    def _match_symbol(
        self, symbol: Symbol, target: Value, path: str, depth: int
    ) -> Match | _Wrapper | None:
        custom = self.project.custom
        name = dotted(target) or ""
        if isinstance(symbol, External):
            for framework in self.project.frameworks:
                if symbol.name in framework.decorators:
                    return Match(framework, (), f"@{render(target)}", origin=symbol.name)
            if custom is not None and symbol.name in custom.decorator_names:
                return Match(custom, (), f"@{render(target)}", origin=symbol.name)
            return None
        if isinstance(symbol, InstanceAttr):
            for framework in self.project.frameworks:
                if framework.is_instance_decorator(symbol.cls, symbol.attrs):
                    app = None
                    if symbol.instance is not None:
                        app = f"{symbol.instance.module}.{symbol.instance.name}"
                    origin = f"{symbol.cls}.{'.'.join(symbol.attrs)}"
                    return Match(framework, (), f"@{render(target)}", app, origin)
            return None
        if custom is not None and name in custom.decorator_names:
            return Match(custom, (), f"@{render(target)}")
        if depth >= _MAX_WRAPPER_DEPTH:
            return None
        if isinstance(symbol, ProjectFunction):
            return self.wrapper(symbol, depth + 1)
        if isinstance(symbol, ProjectClass):
            if custom is not None:
                qual = f"{symbol.facts.module}.{symbol.facts.qualname}"
                if qual in custom.decorator_names:
                    return Match(custom, (), f"@{render(target)}")
            for base in self.resolver.external_bases(symbol):
                for framework in self.project.frameworks:
                    if base in framework.decorators:
                        return Match(
                            framework, (), f"@{render(target)} (subclass of {base})", origin=base
                        )
            return None
        if isinstance(symbol, Assigned):
            return self._partial(symbol, depth + 1)
        return None

    def _partial(self, symbol: Assigned, depth: int) -> _Wrapper | None:
        value = symbol.value
        if not isinstance(value, Call) or not value.args:
            return None
        func = self.resolver.symbol_of(value.func)
        if not (isinstance(func, External) and func.name == "functools.partial"):
            return None
        inner = self.classify(value.args[0], symbol.path, depth)
        if inner is None:
            return None
        fixed = self._call_options(value, symbol.path, f"functools.partial '{symbol.name}'")
        declaration = f"@{symbol.name} (functools.partial of {inner.origin})"
        return _Wrapper(
            Match(inner.framework, inner.options + fixed, declaration, inner.app, inner.origin),
            symbol.name,
            passthrough=True,
            positional=len(value.args) - 1,
        )

    def wrapper(self, symbol: ProjectFunction, depth: int = 1) -> _Wrapper | None:
        """Analyse a project function used as a decorator: does it forward to a framework?"""
        facts = symbol.facts
        key = f"{facts.module}.{facts.qualname}"
        if key in self._wrappers:
            return self._wrappers[key]
        self._wrappers[key] = None
        found = self._find_forward(facts, facts, symbol.path, depth)
        self._wrappers[key] = found
        return found

    def _find_forward(
        self, outer: FunctionFacts, facts: FunctionFacts, path: str, depth: int
    ) -> _Wrapper | None:
        candidates: list[Call] = [site.call for site in facts.calls]
        for nested in facts.nested:
            candidates.extend(d for d in nested.decorators if isinstance(d, Call))
            candidates.extend(Call(d) for d in nested.decorators if not isinstance(d, Call))
        for call in candidates:
            symbol = self.resolver.symbol_of(call.func)
            if isinstance(symbol, ProjectFunction) and symbol.facts is outer:
                continue
            base = self._match_symbol(symbol, call.func, path, depth)
            if base is None:
                continue
            if isinstance(base, _Wrapper):
                base = base.inner
            return self._forwarding(outer, call, base, path)
        for nested in facts.nested:
            found = self._find_forward(outer, nested, path, depth)
            if found is not None:
                return found
        return None

    def _forwarding(self, outer: FunctionFacts, call: Call, base: Match, path: str) -> _Wrapper:
        source = f"wrapper '{outer.qualname}'"
        fixed: list[Option] = []
        params: dict[str, str] = {}
        defaults: list[Option] = []
        for key, value in call.kwargs:
            if isinstance(value, Local) and value.name in outer.params:
                params[value.name] = key
                default = outer.default(value.name)
                if default is not None:
                    defaults.append(self._option(key, default, source, path, None))
            elif isinstance(value, Local):
                fixed.append(Option(key, Unknown(f"computed in {source}"), value, source))
            else:
                fixed.append(self._option(key, value, source, path, call.kwarg_span(key)))
        passthrough = any(
            isinstance(star, Local) and star.name == outer.kwarg for star in call.star_kwargs
        )
        inner = Match(
            base.framework,
            base.options + tuple(fixed),
            f"@{outer.qualname} (project wrapper of {base.origin})",
            base.app,
            base.origin,
        )
        return _Wrapper(inner, outer.qualname, params, passthrough, tuple(defaults))

    def _apply_wrapper(self, wrapper: _Wrapper, call: Call | None, path: str) -> Match:
        options = list(wrapper.inner.options)
        given = {key for key, _ in call.kwargs} if call is not None else set()
        for default in wrapper.defaults:
            if default.name not in given:
                options.append(default)
        if call is not None and wrapper.positional is not None:
            framework = wrapper.inner.framework
            key = framework.decorator_key(wrapper.inner.origin)
            names = framework.positional_options.get(key, ())[wrapper.positional :]
            for option, value in zip(names, call.args, strict=False):
                options.append(self._option(option, value, "task option", path, call.span))
        if call is not None:
            for key, value in call.kwargs:
                if key in wrapper.params:
                    options.append(
                        self._option(
                            wrapper.params[key], value, "task option", path, call.kwarg_span(key)
                        )
                    )
                elif wrapper.passthrough:
                    options.append(
                        self._option(key, value, "task option", path, call.kwarg_span(key))
                    )
            if call.star_kwargs:
                options.append(Option("**", Unknown("options passed with **"), None, "task option"))
        return Match(
            wrapper.inner.framework, tuple(options), wrapper.inner.declaration, wrapper.inner.app
        )

    def _positional(
        self, framework: Framework, origin: str, call: Call | None, path: str
    ) -> tuple[Option, ...]:
        """Positional decorator arguments named after the framework decorator ``origin``."""
        if call is None or not call.args:
            return ()
        names = framework.positional_options.get(framework.decorator_key(origin), ())
        return tuple(
            self._option(option, value, "task option", path, value_span(value, call))
            for option, value in zip(names, call.args, strict=False)
        )

    def _call_options(self, call: Call, path: str, source: str) -> tuple[Option, ...]:
        options = [
            self._option(key, value, source, path, call.kwarg_span(key))
            for key, value in call.kwargs
        ]
        if call.star_kwargs:
            options.append(Option("**", Unknown("options passed with **"), None, source))
        return tuple(options)

    def _option(self, name: str, value: Value, source: str, path: str, span: Span | None) -> Option:
        location = Location(path, span) if span is not None else None
        return Option(name, self.resolver.evaluate(value), value, source, location)

    # -- whole project -------------------------------------------------------------------

    def run(self) -> list[Job]:
        jobs: dict[tuple[str, str], Job] = {}
        for facts in self.resolver.modules.values():
            for function in facts.functions:
                self._decorated(facts, function, None, jobs)
            for cls in facts.classes:
                for method in cls.methods:
                    self._decorated(facts, method, cls, jobs)
                self._class_job(facts, cls, jobs)
            for _, value, span in facts.assigns:
                self._declared_by_call(facts, value, span, jobs)
        for framework in self.project.frameworks:
            registrar = getattr(framework, "registered_jobs", None)
            if registrar is None:
                continue
            for job in registrar(self.project, self):
                jobs.setdefault((job.module, job.function.qualname), job)
        self._enqueue_targets(jobs)
        return sorted(jobs.values(), key=lambda job: (job.path, job.location.span, job.name))

    def _decorated(
        self,
        facts: FileFacts,
        function: FunctionFacts,
        cls: ClassFacts | None,
        jobs: dict[tuple[str, str], Job],
    ) -> None:
        for decorator, span in zip(function.decorators, function.decorator_spans, strict=True):
            match = self.classify(decorator, facts.path)
            if match is None:
                continue
            job = self.make_job(facts, function, match, Location(facts.path, span))
            jobs[(facts.module, function.qualname)] = job
            return

    def _declared_by_call(
        self, facts: FileFacts, value: Value, span: Span, jobs: dict[tuple[str, str], Job]
    ) -> None:
        """``send = app.task(_send)``, ``dramatiq.actor(fn, max_retries=3)``, ``app.task(**o)(fn)``:
        a decorator applied by a call at module level declares the function it is given."""
        if not isinstance(value, Call) or not value.args:
            return
        function = self.resolver.symbol_of(value.args[0])
        if not isinstance(function, ProjectFunction):
            return
        decorator: Value = value.func
        if value.kwargs or value.star_kwargs:
            decorator = replace(value, args=value.args[1:])
        match = self.classify(decorator, facts.path)
        key = (function.facts.module, function.facts.qualname)
        if match is None or key in jobs:
            return
        module = self.resolver.modules[function.facts.module]
        jobs[key] = self.make_job(module, function.facts, match, Location(facts.path, span))

    def make_job(
        self,
        facts: FileFacts,
        function: FunctionFacts,
        match: Match,
        decorator_location: Location | None,
        cls: ClassFacts | None = None,
    ) -> Job:
        options: dict[str, Option] = {}
        for option in match.options:
            options[option.name] = option
        name = function.name if cls is None else cls.name
        pragma_line = (cls or function).span[0]
        first_line = min([pragma_line, *(s[0] for s in function.decorator_spans)])
        pragmas = dict(facts.pragmas)
        pragma = next(
            (pragmas[line] for line in range(first_line, pragma_line + 1) if line in pragmas), None
        )
        return Job(
            name=name,
            qualname=f"{facts.module}.{(cls.qualname if cls else function.qualname)}",
            framework=match.framework.name,
            path=facts.path,
            module=facts.module,
            function=function,
            declaration=match.declaration,
            decorator_location=decorator_location,
            options=options,
            cls=cls,
            app=match.app,
            idempotent_pragma=pragma,
        )

    def _class_job(
        self, facts: FileFacts, cls: ClassFacts, jobs: dict[tuple[str, str], Job]
    ) -> None:
        symbol = ProjectClass(cls, facts.path)
        bases = self.resolver.external_bases(symbol)
        if not bases and (self.project.custom is None or not cls.bases):
            return  # custom base classes are usually the project's own, with no external base
        for framework in self.project.frameworks:
            classifier = getattr(framework, "class_job", None)
            if classifier is None:
                continue
            job = classifier(self.project, self, facts, cls, bases)
            if job is not None:
                jobs[(facts.module, job.function.qualname)] = job
                return

    def _enqueue_targets(self, jobs: dict[tuple[str, str], Job]) -> None:
        """RQ jobs that exist only because another file enqueues them."""
        rq = self.project.framework("rq")
        if rq is None:
            return
        from jobaudit.project import is_test_path

        for facts in self.resolver.modules.values():
            if is_test_path(facts.path, self.project.config.test_paths):
                continue  # tests enqueue helpers on throw-away queues
            imports_rq = any(target.startswith(("rq", "django_rq")) for _, target in facts.imports)
            for site, function in iter_call_sites(facts):
                method = method_name(site.call.func)
                target = rq_enqueue_target(site.call, method)
                if target is None or not (imports_rq or self._on_rq_queue(site.call, function)):
                    continue
                symbol = (
                    self.resolver.lookup(target)
                    if isinstance(target, str)
                    else self.resolver.symbol_of(target)
                )
                if not isinstance(symbol, ProjectFunction):
                    continue
                key = (symbol.facts.module, symbol.facts.qualname)
                if key in jobs:
                    continue
                module_facts = self.resolver.modules[symbol.facts.module]
                match = Match(rq, (), f"enqueued by {render(site.call.func)}() in {facts.path}")
                jobs[key] = self.make_job(module_facts, symbol.facts, match, None)

    def _on_rq_queue(self, call: Call, function: FunctionFacts | None) -> bool:
        """``queue.enqueue`` on an RQ queue built elsewhere (or from a subclass of one)."""
        func = call.func
        if isinstance(func, Local) and function is not None:
            built = function.local(func.name.rpartition(".")[0])
            cls = self.resolver.instance_class(built) if built is not None else None
        else:
            symbol = self.resolver.symbol_of(func)
            cls = symbol.cls if isinstance(symbol, InstanceAttr) else None
        return cls is not None and cls.startswith(("rq.", "django_rq."))

    def enqueue_sites(self, jobs: list[Job]) -> list[EnqueueSite]:
        """Every call that enqueues a known job (``job.delay(...)``, ``q.enqueue(job)``...)."""
        by_function = {(job.module, job.function.qualname): job for job in jobs}
        sites: list[EnqueueSite] = []
        for facts in self.resolver.modules.values():
            for site, function in iter_call_sites(facts):
                name = dotted(site.call.func) or ""
                if "." not in name and not isinstance(site.call.func, Attr):
                    continue
                receiver, method = name.rpartition(".")[0], method_name(site.call.func)
                job: Job | None = None
                if method in ENQUEUE_METHODS and isinstance(site.call.func, Ref):
                    symbol = self.resolver.lookup(receiver)
                    if isinstance(symbol, ProjectFunction):
                        job = by_function.get((symbol.facts.module, symbol.facts.qualname))
                if job is None:
                    target = rq_enqueue_target(site.call, method)
                    if target is None:
                        target = rq_enqueue_target(site.call, method, TEMPORAL_CALLS)
                    if target is not None:
                        symbol = (
                            self.resolver.lookup(target)
                            if isinstance(target, str)
                            else self.resolver.symbol_of(target)
                        )
                        if isinstance(symbol, ProjectFunction):
                            job = by_function.get((symbol.facts.module, symbol.facts.qualname))
                if job is not None:
                    sites.append(EnqueueSite(job, method, site, facts.path, function))
        return sites


RQ_ENQUEUE = {"enqueue": 0, "enqueue_call": 0, "enqueue_in": 1, "enqueue_at": 1, "prepare_data": 0}
TEMPORAL_CALLS = {
    "execute_activity": 0,
    "start_activity": 0,
    "execute_local_activity": 0,
    "start_local_activity": 0,
    "execute_activity_method": 0,
    "start_activity_method": 0,
    "execute_local_activity_method": 0,
    "start_local_activity_method": 0,
}


def rq_enqueue_target(
    call: Call, method: str, table: dict[str, int] = RQ_ENQUEUE
) -> Value | str | None:
    """The job an RQ enqueue (or Temporal activity) call names: a function or a dotted string."""
    position = table.get(method)
    if position is None:
        return None
    target: Value | None = (
        call.kwarg("func") if method in {"enqueue_call", "prepare_data"} else None
    )
    if target is None and len(call.args) > position:
        target = call.args[position]
    if isinstance(target, str):
        return target if "." in target else None
    if isinstance(target, (Ref, Local)):
        return target if isinstance(target, Ref) else None
    return None


def method_name(func: Value) -> str:
    """The last attribute of a called expression (``enqueue`` of ``get_queue("high").enqueue``)."""
    if isinstance(func, Attr):
        return func.name
    return (dotted(func) or "").rpartition(".")[2]


def iter_call_sites(facts: FileFacts) -> list[tuple[CallSite, FunctionFacts | None]]:
    """Every call of a module, with the function it is in (None at module level)."""
    out: list[tuple[CallSite, FunctionFacts | None]] = [(site, None) for site in facts.calls]
    stack: list[FunctionFacts] = list(facts.functions)
    classes = list(facts.classes)
    while classes:
        cls = classes.pop()
        stack.extend(cls.methods)
        classes.extend(cls.inner)
    while stack:
        function = stack.pop()
        out.extend((site, function) for site in function.calls)
        stack.extend(function.nested)
    return out


def value_span(value: Value, call: Call) -> Span | None:
    """Positional arguments carry no span of their own; point at the call."""
    return call.span


def seq_items(value: Value) -> tuple[Value, ...]:
    return value.items if isinstance(value, Seq) else ()
