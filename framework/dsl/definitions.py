"""``@task`` and ``@pipeline``: pure definitions, kept apart from execution.

A task stays a plain Python callable outside a pipeline. Inside a pipeline body, calling it records
a node and returns a :class:`~strato.dsl.handles.Handle`. For a type checker, both decorators keep
the function's signature (``ParamSpec``), and a call inside a pipeline is typed as the value its
handle stands for, so the wiring between tasks is type-checked too.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, ParamSpec, TypeVar, overload

from .. import ir
from ..errors import DefinitionError, Diagnostic, Location, StratoError, TraceError, caller_location
from ..governance import Policy, tag_problems
from ..options import Catch, Http, ObjectCreated, Retry, Schedule
from ..runtime.tasks import register_task_function
from ..secrets import Secret, as_json
from .handles import Handle
from .tracing import Draft, Traced, Tracer, current_tracer

P = ParamSpec("P")
R = TypeVar("R")
RESERVED = ("wait_for",)
RUNTIMES = ("function", "worker")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,63}$")
_POOL = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")


def _annotation(annotation: Any) -> str | None:
    if annotation is inspect.Parameter.empty:
        return None
    return annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)


def _params(fn: Callable[..., object]) -> tuple[list[inspect.Parameter], str | None]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return [], None
    return list(signature.parameters.values()), _annotation(signature.return_annotation)


def _bind(params: Sequence[ir.ParamSpec], args: tuple[Any, ...], kwargs: dict[str, Any], subject: str,
          loc: Location | None, problems: list[Diagnostic]) -> dict[str, Any]:
    """Match call arguments to parameters, reporting every mismatch (not just the first)."""
    bound: dict[str, Any] = {}
    names = [p.name for p in params]
    if len(args) > len(names):
        problems.append(Diagnostic(f"takes {len(names)} argument(s) but {len(args)} were given", loc, subject))
    for name, value in zip(names, args, strict=False):
        bound[name] = value
    for name, value in kwargs.items():
        if name not in names:
            hint = f"; parameters are {', '.join(names)}" if names else "; it takes no parameters"
            problems.append(Diagnostic(f"unknown argument {name!r}{hint}", loc, subject))
        elif name in bound:
            problems.append(Diagnostic(f"argument {name!r} given twice", loc, subject))
        else:
            bound[name] = value
    missing = [p.name for p in params if p.required and p.name not in bound]
    if missing:
        problems.append(Diagnostic(f"missing argument(s) {', '.join(map(repr, missing))}", loc, subject))
    return bound


class TaskDefinition(Generic[P, R]):
    """A function declared with ``@task``, with its execution options.

    Registered by module and qualname when declared, so runners find its code from the IR alone,
    even when no import can (a script run as ``__main__``, a function's locals).
    """

    def __init__(self, fn: Callable[P, R], *, name: str | None = None, retry: Retry | None = None,
                 timeout: float | None = None, memory: int | None = None, catch: Catch | None = None,
                 tags: dict[str, str] | None = None, reads: Sequence[str] = (), writes: Sequence[str] = (),
                 runtime: str = "function", checks: Sequence[Any] = (), pool: str | None = None,
                 location: Location | None = None):
        self.fn: Callable[P, R] = fn
        self.name: str = name if name else getattr(fn, "__name__", "task")
        self.retry, self.timeout, self.memory, self.catch = retry, timeout, memory, catch
        self.tags = tags or {}
        self.reads, self.writes, self.runtime = reads, writes, runtime
        self.checks = checks
        self.pool = pool
        self.location = location or _definition_location(fn)
        self._parameters, self._returns = _params(fn)
        self._param_specs = tuple(
            ir.ParamSpec(p.name, _annotation(p.annotation), p.default is inspect.Parameter.empty,
                         None if p.default is inspect.Parameter.empty or ir.json_problem(as_json(p.default))
                         else as_json(p.default))
            for p in self._parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        self._spec: ir.TaskSpec | None = None
        self._handler: TaskDefinition[Any, Any] | None = None
        self.implicit = False
        functools.update_wrapper(self, fn)
        register_task_function(self.name, fn)
        if not self._check_problems():
            from ..checks import register

            register(fn, list(checks))  # found through the function wherever it runs, never from a payload

    @property
    def subject(self) -> str:
        return f"task {self.name!r}"

    # plain Python or a node --------------------------------------------------------------------
    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(self, *args: Any, wait_for: Any, **kwargs: Any) -> R: ...  # in a pipeline: ordering only
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = current_tracer()
        if tracer is None:
            if any(isinstance(a, Handle) for a in (*args, *kwargs.values())):
                raise TraceError(f"{self.subject} was called with a pipeline result outside a pipeline; handles "
                                 "exist only while a @pipeline body is traced")
            return self.fn(*args, **kwargs)
        return self._record(tracer, None, args, kwargs)

    def alias(self, name: str) -> _NamedCall[P, R]:
        """Name one call explicitly: ``extract.alias("extract_eu")(day)``."""
        return _NamedCall(self, name, caller_location())

    def map(self, items: Any, *, max_concurrency: int | None = None, wait_for: Any = None,
            **broadcast: Any) -> list[R]:
        """Call the task once per element of ``items`` (its first parameter); results keep input order.

        Returns a handle on that list (typed as the list it stands for).
        """
        return self._record_map(None, items, max_concurrency, wait_for, broadcast)  # type: ignore[return-value]

    def _record(self, tracer: Tracer, explicit: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Handle:
        loc = caller_location()
        wait_for = kwargs.pop("wait_for", None)
        name = tracer.register_task(self, loc)
        subject = self.subject
        problems: list[Diagnostic] = []
        bound = _bind(self._param_specs, args, kwargs, subject, loc, problems)
        tracer.sink.extend(problems)
        values = {k: tracer.to_value(v, f"argument {k!r}", loc, subject) for k, v in bound.items()}
        draft = Draft("task", self.name, explicit, loc, tracer.guard, values, tracer.wait_for(wait_for, loc, subject),
                      task=name)
        return tracer.add(draft)

    def _record_map(self, explicit: str | None, items: Any, max_concurrency: Any, wait_for: Any,
                    broadcast: dict[str, Any]) -> Handle:
        tracer = current_tracer()
        if tracer is None:
            raise TraceError(f"{self.subject}.map() fans out inside a @pipeline; outside one, use a list "
                             f"comprehension: [{self.name}(x) for x in items]")
        loc = caller_location()
        name = tracer.register_task(self, loc)
        subject = f"map of {self.subject}"
        if not self._param_specs:
            tracer.sink.error("map() passes each item as the task's first parameter, but the task takes none",
                              loc, subject)
            return tracer.add(Draft("map", self.name, explicit, loc, None, task=name, items=ir.Literal([])))
        item_param = self._param_specs[0].name
        problems: list[Diagnostic] = []
        if item_param in broadcast:
            problems.append(Diagnostic(f"{item_param!r} receives each item of the list; do not pass it as well",
                                       loc, subject))
        bound = _bind(self._param_specs[1:], (), {k: v for k, v in broadcast.items() if k != item_param}, subject,
                      loc, problems)
        if max_concurrency is not None and (not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool)
                                            or max_concurrency < 1):
            problems.append(Diagnostic(f"max_concurrency must be a whole number >= 1 or None, got {max_concurrency!r}",
                                       loc, subject))
            max_concurrency = None
        tracer.sink.extend(problems)
        items_value = tracer.to_value(items, "the mapped items", loc, subject)
        if isinstance(items_value, ir.Literal) and not isinstance(items_value.value, list):
            tracer.sink.error(f"map() needs a list (or a result holding one), got {items_value.value!r}", loc, subject)
        values = {k: tracer.to_value(v, f"argument {k!r}", loc, subject) for k, v in bound.items()}
        draft = Draft("map", self.name, explicit, loc, tracer.guard, values, tracer.wait_for(wait_for, loc, subject),
                      task=name, items=items_value, item_param=item_param, max_concurrency=max_concurrency)
        return tracer.add(draft)

    # checks and spec -------------------------------------------------------------------------
    def catch_handler(self) -> TaskDefinition[Any, Any] | None:
        if self.catch is None or not callable(self.catch.handler):
            return None
        if self._handler is None:
            handler = self.catch.handler
            if isinstance(handler, TaskDefinition):
                self._handler = handler
            else:
                self._handler = TaskDefinition(handler)
                self._handler.implicit = True  # made for a plain function: an explicit @task of it wins
        return self._handler

    def problems(self) -> list[Diagnostic]:
        subject, loc = self.subject, self.location
        out: list[Diagnostic] = []
        if self.name == "<lambda>":
            out.append(Diagnostic("a lambda cannot be a task or catch handler: clouds load tasks by name; define it "
                                  "with def", loc, subject))
        elif not isinstance(self.name, str) or not _NAME.match(self.name):
            out.append(Diagnostic(f"task name {self.name!r} must start with a letter or '_' and use letters, digits, "
                                  "'_' or '-' (at most 64)", loc, subject))
        for p in self._parameters:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                out.append(Diagnostic(f"parameter {'*' if p.kind == p.VAR_POSITIONAL else '**'}{p.name}: tasks take "
                                      "named parameters only, so each input maps to a JSON field", loc, subject))
            elif p.kind == p.POSITIONAL_ONLY:
                out.append(Diagnostic(f"parameter {p.name!r} is positional-only; remove the '/'", loc, subject))
            if p.name in RESERVED:
                out.append(Diagnostic(f"parameter name {p.name!r} is reserved by Strato; rename it", loc, subject))
        if self.retry is not None:
            if isinstance(self.retry, Retry):
                out.extend(self.retry.problems(subject))
            else:
                out.append(Diagnostic(f"retry must be a Retry(...), got {self.retry!r}", loc, subject))
        if self.timeout is not None and (isinstance(self.timeout, bool) or not isinstance(self.timeout, (int, float))
                                         or not math.isfinite(self.timeout) or self.timeout <= 0):
            out.append(Diagnostic(f"timeout must be a number of seconds > 0, got {self.timeout!r}", loc, subject))
        if self.memory is not None and (isinstance(self.memory, bool) or not isinstance(self.memory, int)
                                        or not 128 <= self.memory <= 32768):
            out.append(Diagnostic(f"memory is in MB, a whole number from 128 to 32768, got {self.memory!r}",
                                  loc, subject))
        if self.catch is not None:
            if not isinstance(self.catch, Catch):
                out.append(Diagnostic(f"catch must be a Catch(handler=...), got {self.catch!r}", loc, subject))
            else:
                out.extend(self.catch.problems(subject))
                handler = self.catch_handler()
                if (handler is not None and len([p for p in handler._param_specs if p.required]) > 1) or (
                        handler is not None and not handler._param_specs):
                    out.append(Diagnostic(f"catch handler {handler.name!r} must take one argument, the error "
                                          '{"error": ..., "cause": ...}', self.catch.location, subject))
        out.extend(tag_problems(self.tags, subject, loc))
        for field in ("reads", "writes"):
            value = getattr(self, field)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                out.append(Diagnostic(f"{field} must be a list of dataset names or URIs (strings), got {value!r}",
                                      loc, subject))
        out.extend(Diagnostic(message, loc, subject) for message in self._check_problems())
        if self.pool is not None and (not isinstance(self.pool, str) or not _POOL.match(self.pool)):
            out.append(Diagnostic(f"pool must be a name of letters, digits, '_', '-' or '.' (at most 64), got "
                                  f"{self.pool!r}", loc, subject))
        if self.runtime not in RUNTIMES:
            out.append(Diagnostic(f"runtime must be one of {', '.join(map(repr, RUNTIMES))}, got {self.runtime!r}",
                                  loc, subject))
        return out

    def _check_problems(self) -> list[str]:
        from ..checks import Check

        checks = self.checks
        if isinstance(checks, (str, bytes)) or not isinstance(checks, (list, tuple)):
            return [f"checks must be a list of checks (e.g. [not_empty(), unique('id')] from strato.checks), "
                    f"got {checks!r}"]
        out: list[str] = []
        names: set[str] = set()
        for item in checks:
            if not isinstance(item, Check):
                out.append(f"checks: {item!r} is not a check; make one with strato.checks.check(fn, name=...) or "
                           "use a ready-made one (not_empty(), row_count(...), unique(...), ...)")
                continue
            out.extend(item.problems())
            if item.name in names:
                out.append(f"checks: two checks are named {item.name!r}; give one another name with check(name=...)")
            names.add(item.name)
        return out

    def spec(self) -> ir.TaskSpec:
        if self._spec is None:
            handler = self.catch_handler()
            catch = ir.CatchSpec(handler.name, self.catch.on) if handler is not None and self.catch else None
            reads = tuple(self.reads) if not isinstance(self.reads, str) else (self.reads,)
            writes = tuple(self.writes) if not isinstance(self.writes, str) else (self.writes,)
            self._spec = ir.TaskSpec(
                self.name, self.fn.__module__, self.fn.__qualname__, self._param_specs, self._returns,
                self.retry.spec() if isinstance(self.retry, Retry) else None,
                float(self.timeout) if isinstance(self.timeout, (int, float)) else None,
                self.memory if isinstance(self.memory, int) else None, catch,
                dict(self.tags) if isinstance(self.tags, dict) else {}, reads, writes, self.runtime,
                inspect.getdoc(self.fn), self.location,
                checks=tuple(ir.CheckSpec(c.name, c.severity, c.describe() or None) for c in self.checks)
                if not self._check_problems() else (),
                pool=self.pool if isinstance(self.pool, str) else None,
            )
        return self._spec

    def __repr__(self) -> str:
        return f"<task {self.name}>"


class _NamedCall(Generic[P, R]):
    """A task call with an explicit name (``task.alias("name")``)."""

    def __init__(self, task: TaskDefinition[P, R], name: str, location: Location | None):
        self.task, self.name, self.location = task, name, location

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(self, *args: Any, wait_for: Any, **kwargs: Any) -> R: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = current_tracer()
        if tracer is None:
            return self.task(*args, **kwargs)
        self._check(tracer)
        return self.task._record(tracer, self.name, args, kwargs)

    def map(self, items: Any, *, max_concurrency: int | None = None, wait_for: Any = None,
            **broadcast: Any) -> list[R]:
        tracer = current_tracer()
        if tracer is not None:
            self._check(tracer)
        return self.task._record_map(self.name, items, max_concurrency, wait_for, broadcast)  # type: ignore[return-value]

    def _check(self, tracer: Tracer) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            tracer.sink.error(f"call name {self.name!r} must start with a letter or '_' and use letters, digits, '_' "
                              "or '-' (at most 64)", self.location, self.task.subject)


@overload
def task(fn: Callable[P, R]) -> TaskDefinition[P, R]: ...
@overload
def task(*, name: str | None = ..., retry: Retry | None = ..., timeout: float | None = ..., memory: int | None = ...,
         catch: Catch | None = ..., tags: dict[str, str] | None = ..., reads: Sequence[str] = ...,
         writes: Sequence[str] = ..., runtime: str = ..., checks: Sequence[Any] = ..., pool: str | None = ...
         ) -> Callable[[Callable[P, R]], TaskDefinition[P, R]]: ...
def task(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Declare a task: a plain function of JSON-serialisable values, run as one step of a pipeline.

    Options: ``name``, ``retry=Retry(...)``, ``timeout`` (seconds), ``memory`` (MB), ``catch=Catch(...)``,
    ``tags``, ``reads``/``writes`` (lineage: dataset names or URIs), ``runtime`` ("function" | "worker"),
    ``checks`` (data-quality checks on the result: :mod:`strato.checks`), ``pool`` (a shared limit on how
    many of its attempts run at once across local runs: ``strato pools set NAME SLOTS``).
    """
    unknown = set(options) - {"name", "retry", "timeout", "memory", "catch", "tags", "reads", "writes", "runtime",
                              "checks", "pool"}
    if unknown:
        raise StratoError(f"{caller_location()}: @task got unknown option(s) {', '.join(sorted(unknown))}")
    if fn is not None:
        return TaskDefinition(fn, **options)
    return lambda f: TaskDefinition(f, **options)


class PipelineDefinition(Generic[P, R]):
    """A function declared with ``@pipeline``: its body wires tasks together and is traced into IR."""

    def __init__(self, fn: Callable[P, R], *, name: str | None = None,
                 schedule: Schedule | str | None = None, triggers: Iterable[ObjectCreated | Http] = (),
                 tags: dict[str, str] | None = None, policies: Iterable[Policy] = (),
                 on_failure: Any = None, on_success: Any = None, location: Location | None = None):
        self.fn: Callable[P, R] = fn
        self.name: str = name if name else getattr(fn, "__name__", "pipeline")
        self.location = location or _definition_location(fn)
        self.schedule = Schedule(cron=schedule, location=self.location) if isinstance(schedule, str) else schedule
        zone = self.schedule.timezone if isinstance(self.schedule, Schedule) else "UTC"
        self.triggers = list(triggers or ())
        self.tags = tags or {}
        self.policies = list(policies or ())
        self.hooks: dict[str, Any] = {kind: value for kind, value in (("on_failure", on_failure),
                                                                      ("on_success", on_success)) if value is not None}
        self._hook_tasks: dict[str, tuple[TaskDefinition[Any, Any], dict[str, Any]]] = {}
        parameters, _ = _params(fn)
        self._parameters = parameters
        self.param_specs = tuple(
            ir.ParamSpec(p.name, _annotation(p.annotation), p.default is inspect.Parameter.empty,
                         None if p.default is inspect.Parameter.empty else _default_json(p.default, zone))
            for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        )
        self._traced: Traced | None = None
        functools.update_wrapper(self, fn)

    @property
    def subject(self) -> str:
        return f"pipeline {self.name!r}"

    def trace(self, stack: tuple[PipelineDefinition[Any, Any], ...] = ()) -> Traced:
        """Trace the body into IR, collecting every definition problem found on the way."""
        from .tracing import Tracer

        if stack:
            return self._trace(Tracer(self, stack))
        if self._traced is None:
            self._traced = self._trace(Tracer(self, ()))
        return self._traced

    def _trace(self, tracer: Tracer) -> Traced:
        for problem in self.problems():
            tracer.sink.items.append(problem)
        return tracer.run()

    def schedule_spec(self) -> ir.ScheduleSpec | None:
        return self.schedule.spec() if isinstance(self.schedule, Schedule) else None  # else reported

    def hook_tasks(self) -> dict[str, tuple[TaskDefinition[Any, Any], dict[str, Any]]]:
        """Each hook as (its task, values for its other parameters); a plain function becomes a task."""
        if not self.hooks:
            return self._hook_tasks
        from ..hooks import Hook

        for kind, value in self.hooks.items():
            if kind in self._hook_tasks:
                continue
            fn, args = (value.task, dict(value.args)) if isinstance(value, Hook) else (value, {})
            if isinstance(fn, TaskDefinition):
                self._hook_tasks[kind] = (fn, args)
            elif callable(fn) and not isinstance(fn, PipelineDefinition):
                made: TaskDefinition[Any, Any] = TaskDefinition(fn)
                made.implicit = True  # made for a plain function: an explicit @task of it wins
                self._hook_tasks[kind] = (made, args)
        return self._hook_tasks

    def hook_specs(self) -> dict[str, ir.HookSpec]:
        out = {}
        for kind, (definition, args) in self.hook_tasks().items():
            first = definition._param_specs[0].name if definition._param_specs else "run"
            out[kind] = ir.HookSpec(definition.name, {k: ir.Literal(as_json(v)) for k, v in sorted(args.items())},
                                    first)
        return out

    def _hook_problems(self) -> list[Diagnostic]:
        out: list[Diagnostic] = []
        tasks = self.hook_tasks()
        for kind, value in self.hooks.items():
            if kind not in tasks:
                out.append(Diagnostic(f"{kind} must be a @task, a function taking the run's outcome, or "
                                      f"strato.hooks.webhook(...), got {value!r}", self.location, self.subject))
                continue
            definition, args = tasks[kind]
            if definition.name == "<lambda>":
                continue  # reported with the task's own problems
            params = definition._param_specs
            hook = f"{kind} hook {definition.name!r}"
            if not params:
                out.append(Diagnostic(f"{hook} must take the run's outcome as its first parameter "
                                      '({"pipeline", "run_id", "status", "error", "backend"})',
                                      self.location, self.subject))
                continue
            unknown = sorted(set(args) - {p.name for p in params})
            if unknown:
                out.append(Diagnostic(f"{hook} has no parameter(s) {', '.join(unknown)} to give values to (its "
                                      "first parameter is the run's outcome)", self.location, self.subject))
            elif params[0].name in args:  # only a Hook(...) gives values
                out.append(Diagnostic(f"{hook}: its first parameter {params[0].name!r} is the run's outcome; give "
                                      "no value for it", self.location, self.subject))
            missing = [p.name for p in params[1:] if p.required and p.name not in args]
            if missing:
                out.append(Diagnostic(f"{hook} needs values for {', '.join(missing)}: "
                                      "use strato.hooks.Hook(task, {name: value})", self.location, self.subject))
            for name, arg in args.items():
                problem = arg.problem() if isinstance(arg, Secret) else ir.json_problem(as_json(arg), f"{name!r}")
                if problem:
                    out.append(Diagnostic(f"{hook} argument {name!r}: {problem}", self.location, self.subject))
        return out

    def trigger_specs(self) -> tuple[ir.TriggerSpec, ...]:
        return tuple(t.spec() for t in self.triggers if isinstance(t, (ObjectCreated, Http)))  # others reported

    @property
    def ir(self) -> ir.PipelineIR:
        """The IR; raises :class:`DefinitionError` listing every problem when the definition has errors."""
        traced = self.trace()
        if traced.errors:
            raise DefinitionError(traced.diagnostics)
        return traced.ir

    def problems(self) -> list[Diagnostic]:
        subject, loc = self.subject, self.location
        out: list[Diagnostic] = []
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            out.append(Diagnostic(f"pipeline name {self.name!r} must start with a letter or '_' and use letters, "
                                  "digits, '_' or '-' (at most 64)", loc, subject))
        for p in self._parameters:
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                out.append(Diagnostic(f"parameter {p.name!r}: pipeline parameters are named fields of the run's JSON "
                                      "input; remove *, ** and /", loc, subject))
            elif isinstance(p.default, Secret) and p.default.problem():
                out.append(Diagnostic(f"parameter {p.name!r}: {p.default.problem()}", loc, subject))
            elif p.default is not inspect.Parameter.empty and ir.json_problem(_default_json(p.default, "UTC")):
                out.append(Diagnostic(f"parameter {p.name!r}: {ir.json_problem(p.default, 'its default')}",
                                      loc, subject))
        if self.schedule is not None:
            if isinstance(self.schedule, Schedule):
                out.extend(self.schedule.problems(f"{subject} schedule"))
            else:
                out.append(Diagnostic(f"schedule must be Schedule(...) or a cron string, got {self.schedule!r}",
                                      loc, subject))
        for trigger in self.triggers:
            if isinstance(trigger, (ObjectCreated, Http)):
                out.extend(trigger.problems(f"{subject} trigger {type(trigger).__name__}"))
            else:
                out.append(Diagnostic(f"triggers take ObjectCreated(...) or Http(...), got {trigger!r}", loc, subject))
        out.extend(tag_problems(self.tags, subject, loc))
        out.extend(self._hook_problems())
        for item in self.policies:
            if not isinstance(item, Policy):
                out.append(Diagnostic(f"policies take Policy objects (RequireTags, AllowedValues, @policy), "
                                      f"got {item!r}", loc, subject))
        return out

    @overload
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...
    @overload
    def __call__(self, *args: Any, wait_for: Any, **kwargs: Any) -> R: ...  # a sub-pipeline: ordering only
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = current_tracer()
        if tracer is None:
            from ..runtime import run_inline

            return run_inline(self, args, kwargs)
        loc = caller_location()
        wait_for = kwargs.pop("wait_for", None)
        problems: list[Diagnostic] = []
        subject = f"sub-pipeline {self.name!r}"
        bound = _bind(self.param_specs, args, kwargs, subject, loc, problems)
        tracer.sink.extend(problems)
        name = tracer.register_pipeline(self, loc)
        values = {k: tracer.to_value(v, f"argument {k!r}", loc, subject) for k, v in bound.items()}
        draft = Draft("pipeline", self.name, None, loc, tracer.guard, values, tracer.wait_for(wait_for, loc, subject),
                      pipeline=name or self.name)
        return tracer.add(draft)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


@overload
def pipeline(fn: Callable[P, R]) -> PipelineDefinition[P, R]: ...
@overload
def pipeline(*, name: str | None = ..., schedule: Schedule | str | None = ...,
             triggers: Iterable[ObjectCreated | Http] = ..., tags: dict[str, str] | None = ...,
             policies: Iterable[Policy] = ..., on_failure: Any = ..., on_success: Any = ...
             ) -> Callable[[Callable[P, R]], PipelineDefinition[P, R]]: ...
def pipeline(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Declare a pipeline. Options: ``name``, ``schedule`` (Schedule or cron string), ``triggers``
    (ObjectCreated, Http), ``tags``, ``policies``, ``on_failure`` / ``on_success`` (a task called with
    the run's outcome once the run has ended: :mod:`strato.hooks`).

    Calling a pipeline inside another pipeline makes it a sub-pipeline; calling it as plain Python
    runs it on the embedded local runner and returns its output.
    """
    unknown = set(options) - {"name", "schedule", "triggers", "tags", "policies", "on_failure", "on_success"}
    if unknown:
        raise StratoError(f"{caller_location()}: @pipeline got unknown option(s) {', '.join(sorted(unknown))}")
    if fn is not None:
        return PipelineDefinition(fn, **options)
    return lambda f: PipelineDefinition(f, **options)


def _default_json(value: Any, timezone: str) -> Any:
    """A pipeline parameter's default as JSON: a secret is its reference; ``strato.scheduled_date()`` and
    ``scheduled_time()`` are ``{"$strato_scheduled": ...}`` with the schedule's timezone filled in."""
    from ..run_context import ScheduledValue, with_timezone

    if isinstance(value, ScheduledValue):
        return with_timezone(value.to_json(), timezone)
    return as_json(value)


def _definition_location(fn: Callable[..., object]) -> Location | None:
    code = getattr(fn, "__code__", None)
    if code is None:
        return caller_location()
    # point at the decorator line when there is one, as a reader looks there for options
    return Location(code.co_filename, code.co_firstlineno)
