"""Tracing: run a pipeline body once with handles, record every call as an IR node.

Calls are first recorded as drafts; ids are assigned when tracing ends (explicit names first, then
``task``, ``task_2``, ... in call order), so a later explicit name never renames an earlier call.
Mistakes are collected as diagnostics, so one trace reports all of them.
"""

from __future__ import annotations

import inspect
import os
import traceback
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .. import ir
from .._gc import paused_gc
from ..errors import Diagnostic, DiagnosticSink, Location, StratoError, TraceError, caller_location
from ..governance import classification_problems
from .handles import Condition, Handle

if TYPE_CHECKING:
    from .definitions import PipelineDefinition, TaskDefinition

_current: ContextVar[Tracer | None] = ContextVar("strato_tracer", default=None)
_FRAMEWORK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def current_tracer() -> Tracer | None:
    return _current.get()


@dataclass(eq=False)
class Draft:
    """A call recorded during tracing, before ids are final."""

    kind: str  # task | map | wait | pipeline
    base: str  # name the automatic id derives from
    explicit: str | None
    location: Location | None
    guard: ir.Guard | None
    args: dict[str, Any] = field(default_factory=dict)  # IR values whose Refs still point at drafts
    after: list[Any] = field(default_factory=list)  # drafts, or explicit names (str) resolved at the end
    task: str | None = None
    pipeline: str | None = None
    items: Any = None
    item_param: str | None = None
    max_concurrency: int | None = None
    seconds: float = 0.0
    id: str = ""

    @property
    def display(self) -> str:
        return f"{self.kind if self.kind != 'map' else 'map of'} {self.explicit or self.base!r}"


@dataclass
class Traced:
    """What tracing a pipeline produced: its IR (when no errors), diagnostics and task definitions."""

    ir: ir.PipelineIR  # built even when there are errors, so later checks can still report theirs
    diagnostics: list[Diagnostic]
    definitions: dict[str, TaskDefinition]  # every task of the pipeline and of its sub-pipelines

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class Tracer:
    def __init__(self, pipeline: PipelineDefinition, stack: tuple[PipelineDefinition, ...]):
        self.pipeline = pipeline
        self.stack = stack + (pipeline,)
        self.sink = DiagnosticSink()
        self.drafts: list[Draft] = []
        self.tasks: dict[str, TaskDefinition] = {}
        self.definitions: dict[str, TaskDefinition] = {}
        self.subpipelines: dict[str, ir.PipelineIR] = {}
        self.sub_sources: dict[str, PipelineDefinition] = {}
        self.branches: list[ir.Branch] = []
        self.guards: list[ir.Guard] = []
        self.closed_when: dict[int, ir.Branch | None] = {}
        self.subject = f"pipeline {pipeline.name!r}"

    # ---------------------------------------------------------------------------------- tracing
    def run(self) -> Traced:
        with paused_gc():
            return self._run()

    def _run(self) -> Traced:
        token = _current.set(self)
        output: Any = None
        try:
            params = {p.name: Handle(self, param=p.name) for p in self.pipeline.param_specs}
            output = self.pipeline.fn(**params)
        except TraceError as exc:
            self.sink.error(str(exc), _user_frame(exc), self.subject)
        except StratoError:
            raise
        except Exception as exc:  # the user's pipeline body raised: report where
            self.sink.error(f"the pipeline body raised {type(exc).__name__}: {exc}", _user_frame(exc), self.subject)
        finally:
            _current.reset(token)
        out_value = self.to_value(output, "the returned output", self.pipeline.location, self.subject)
        return self.finish(out_value)

    def add(self, draft: Draft) -> Handle:
        self.drafts.append(draft)
        self.closed_when[len(self.guards)] = None
        return Handle(self, draft)

    # ------------------------------------------------------------------------------- values
    def to_value(self, obj: Any, where: str, loc: Location | None, subject: str) -> ir.Value:
        """Turn an argument (handles, literals, nested lists/dicts) into an IR value."""
        if isinstance(obj, Handle):
            if obj._tracer is not self:
                self.sink.error(f"{where} uses {obj.describe()}, which belongs to pipeline "
                                f"{obj._tracer.pipeline.name!r}; pass it as an argument of this pipeline instead",
                                loc, subject)
                return ir.Literal(None)
            if obj._draft is not None:
                return ir.Ref(obj._draft, obj._path)  # type: ignore[arg-type]  # fixed up in finish()
            return ir.Param(obj._param, obj._path)  # type: ignore[arg-type]
        if obj is None or isinstance(obj, (str, bool, int)):
            return ir.Literal(obj)
        if isinstance(obj, float):
            problem = ir.json_problem(obj, where)
            if problem:
                self.sink.error(problem, loc, subject)
            return ir.Literal(obj)
        if isinstance(obj, (list, tuple)):
            items = tuple(self.to_value(v, f"{where}[{i}]", loc, subject) for i, v in enumerate(obj))
            if all(isinstance(v, ir.Literal) for v in items):
                return ir.Literal([v.value for v in items])  # type: ignore[union-attr]
            return ir.ListOf(items)
        if isinstance(obj, dict):
            entries = []
            for key, v in obj.items():
                if not isinstance(key, str):
                    self.sink.error(f"{where} has a non-string key {key!r}; JSON object keys are strings", loc, subject)
                    continue
                entries.append((key, self.to_value(v, f"{where}[{key!r}]", loc, subject)))
            if all(isinstance(v, ir.Literal) for _, v in entries):
                return ir.Literal({k: v.value for k, v in entries})  # type: ignore[union-attr]
            return ir.DictOf(tuple(entries))
        if isinstance(obj, Condition):
            self.sink.error(f"{where} is a condition; conditions belong in `with when(...)`. To pass a flag, compute "
                            "it in a task", loc, subject)
        elif _is_definition(obj):
            self.sink.error(f"{where} is the task or pipeline {getattr(obj, 'name', obj)!r} itself; call it to get a "
                            "result handle", loc, subject)
        else:
            self.sink.error(f"{where} is a {type(obj).__name__}, which is not JSON (use str, int, float, bool, None, "
                            "list, dict or a task's result)", loc, subject)
        return ir.Literal(None)

    def wait_for(self, wait_for: Any, loc: Location | None, subject: str) -> list[Any]:
        if wait_for is None:
            return []
        if isinstance(wait_for, (Handle, str)):
            wait_for = [wait_for]
        if not isinstance(wait_for, (list, tuple)):
            self.sink.error(f"wait_for must be a list of task results (or call names), got {wait_for!r}", loc, subject)
            return []
        out: list[Any] = []
        for item in wait_for:
            if isinstance(item, Handle) and item._tracer is self and item._draft is not None:
                out.append(item._draft)
            elif isinstance(item, str):
                out.append(item)
            elif isinstance(item, Handle) and item._draft is None:
                pass  # a parameter is always ready
            else:
                self.sink.error(f"wait_for accepts results of tasks in this pipeline or call names, got {item!r}",
                                loc, subject)
        return out

    # ------------------------------------------------------------------------------- branches
    def open_when(self, condition: Any, loc: Location | None) -> ir.Branch:
        cond = self.to_condition(condition, loc)
        branch = ir.Branch(f"when_{len(self.branches) + 1}", cond, self.guards[-1] if self.guards else None, loc)
        self.branches.append(branch)
        self.closed_when[len(self.guards)] = None
        self.guards.append(ir.Guard(branch.id, True))
        return branch

    def close_when(self, branch: ir.Branch) -> None:
        self.guards.pop()
        self.closed_when[len(self.guards)] = branch

    def open_otherwise(self, loc: Location | None) -> ir.Branch | None:
        branch = self.closed_when.get(len(self.guards))
        if branch is None:
            self.sink.error("otherwise() must directly follow a `with when(...)` block at the same level", loc,
                            self.subject)
            return None
        self.closed_when[len(self.guards)] = None
        self.guards.append(ir.Guard(branch.id, False))
        return branch

    def close_otherwise(self) -> None:
        self.guards.pop()
        self.closed_when[len(self.guards)] = None

    def to_condition(self, cond: Any, loc: Location | None) -> ir.Condition:
        invalid = ir.Compare(ir.Literal(None), "==", None)  # type: ignore[arg-type]
        if isinstance(cond, Handle):
            self.sink.error(f"when() needs a comparison with a JSON literal, such as `when(result['count'] > 0)` or "
                            f"`when(result == True)`, not a bare result ({cond.describe()})", loc, self.subject)
            return invalid
        if not isinstance(cond, Condition):
            self.sink.error(f"when() needs a comparison of a task result with a JSON literal, got {cond!r}", loc,
                            self.subject)
            return invalid
        if cond.problem:
            self.sink.error(cond.problem, cond.location or loc, self.subject)
            return invalid
        if cond.op == "all":
            return ir.AllOf(tuple(self.to_condition(c, loc) for c in cond.items))
        if cond.op == "any":
            return ir.AnyOf(tuple(self.to_condition(c, loc) for c in cond.items))
        if cond.op == "not":
            return ir.Not(self.to_condition(cond.items[0], loc))
        left = self.to_value(cond.left, "the condition", cond.location or loc, self.subject)
        problem = ir.json_problem(cond.right, "the compared value")
        if problem:
            self.sink.error(f"when() compares with a JSON literal: {problem}", cond.location or loc, self.subject)
        return ir.Compare(left, cond.op, cond.right)  # type: ignore[arg-type]

    # ------------------------------------------------------------------------------- tasks
    def register_task(self, definition: TaskDefinition, loc: Location | None) -> str:
        existing = self.tasks.get(definition.name)
        if existing is not None and existing is not definition and existing.fn is definition.fn:
            if existing.implicit and not definition.implicit:  # the @task with its options wins
                self.tasks[definition.name] = definition
                self.sink.extend(definition.problems())
            return definition.name
        if existing is not None and existing.fn is not definition.fn:
            self.sink.error(f"two different functions are both named task {definition.name!r} "
                            f"({existing.location} and {definition.location}); give one of them @task(name=...)",
                            loc, self.subject)
        elif existing is None:
            self.tasks[definition.name] = definition
            self.sink.extend(definition.problems())
            if definition.catch is not None:
                handler = definition.catch_handler()
                if handler is not None:
                    self.register_task(handler, definition.catch.location)
        return definition.name

    def register_pipeline(self, definition: PipelineDefinition, loc: Location | None) -> str | None:
        if definition in self.stack:
            chain = " -> ".join(p.name for p in self.stack + (definition,))
            self.sink.error(f"pipeline {definition.name!r} calls itself ({chain}); sub-pipelines cannot recurse",
                            loc, self.subject)
            return None
        known = self.sub_sources.get(definition.name)
        if known is not None:
            if known is not definition:
                self.sink.error(f"two different pipelines are named {definition.name!r}; rename one with "
                                "@pipeline(name=...)", loc, self.subject)
            return definition.name
        traced = definition.trace(self.stack)
        self.sink.extend(traced.diagnostics)
        self.sub_sources[definition.name] = definition
        self.definitions.update(traced.definitions)
        for name, child in (*traced.ir.subpipelines.items(), (definition.name, _without_children(traced.ir))):
            self.subpipelines.setdefault(name, child)
        return definition.name

    # ------------------------------------------------------------------------------- finish
    def finish(self, output: ir.Value) -> Traced:
        ids = self._assign_ids()
        nodes = [self._node(d, ids) for d in self.drafts]
        branches = [replace(b, condition=_fix_condition(b.condition)) for b in self.branches]
        output = _fix(output)
        pipe = self.pipeline
        specs = {}
        pipeline_tags = pipe.tags if isinstance(pipe.tags, dict) else {}  # a non-dict is reported already
        for name, definition in sorted(self.tasks.items()):
            spec = definition.spec()
            self.sink.extend(classification_problems(pipeline_tags, spec.tags, f"task {name!r}", spec.location))
            specs[name] = replace(spec, tags={**pipeline_tags, **spec.tags})  # task tags extend the pipeline's
        self.definitions.update(self.tasks)
        subpipelines = {name: self.subpipelines[name] for name in sorted(self.subpipelines)}
        result = ir.PipelineIR(
            name=pipe.name, module=pipe.fn.__module__, qualname=pipe.fn.__qualname__, params=pipe.param_specs,
            nodes=tuple(nodes), output=output, tasks=specs, branches=tuple(branches), subpipelines=subpipelines,
            schedule=pipe.schedule_spec(), triggers=pipe.trigger_specs(), tags=dict(pipe.tags or {}),
            doc=inspect.getdoc(pipe.fn), location=pipe.location,
        )
        return Traced(result, self.sink.items, self.definitions)

    def _assign_ids(self) -> dict[str, Draft]:
        taken: dict[str, Draft] = {}
        for d in self.drafts:
            if d.explicit is None:
                continue
            if d.explicit in taken:
                self.sink.error(f"two calls are named {d.explicit!r} (the other at {taken[d.explicit].location}); "
                                "explicit names must be unique in a pipeline", d.location, self.subject)
                d.explicit = None
                continue
            d.id = d.explicit
            taken[d.id] = d
        counters: dict[str, int] = {}
        for d in self.drafts:
            if d.explicit is not None:
                continue
            n = counters.get(d.base, 0)
            candidate = d.base if n == 0 else f"{d.base}_{n + 1}"
            while candidate in taken:
                n += 1
                candidate = f"{d.base}_{n + 1}"
            counters[d.base] = n + 1
            d.id = candidate
            taken[candidate] = d
        return taken

    def _node(self, d: Draft, ids: dict[str, Draft]) -> ir.Node:
        after: list[str] = []
        for item in d.after:
            if isinstance(item, Draft):
                after.append(item.id)
            elif item in ids:
                after.append(item)
            else:
                self.sink.error(f"wait_for names {item!r}, but no call in pipeline {self.pipeline.name!r} has "
                                "that name",
                                d.location, f"{d.display}")
        after_t = tuple(dict.fromkeys(after))
        args = {k: _fix(v) for k, v in d.args.items()}
        if d.kind == "task":
            return ir.TaskNode(d.id, d.task, args, after_t, d.guard, d.location)  # type: ignore[arg-type]
        if d.kind == "map":
            return ir.MapNode(d.id, d.task, _fix(d.items), d.item_param, args, d.max_concurrency,  # type: ignore[arg-type]
                              after_t, d.guard, d.location)
        if d.kind == "wait":
            return ir.WaitNode(d.id, d.seconds, after_t, d.guard, d.location)
        return ir.SubPipelineNode(d.id, d.pipeline, args, after_t, d.guard, d.location)  # type: ignore[arg-type]


def _fix(value: ir.Value) -> ir.Value:
    """Replace draft objects in refs by their final ids."""
    if isinstance(value, ir.Ref) and isinstance(value.node, Draft):
        return ir.Ref(value.node.id, value.path)
    if isinstance(value, ir.ListOf):
        return ir.ListOf(tuple(_fix(v) for v in value.items))
    if isinstance(value, ir.DictOf):
        return ir.DictOf(tuple((k, _fix(v)) for k, v in value.entries))
    return value


def _fix_condition(cond: ir.Condition) -> ir.Condition:
    if isinstance(cond, ir.Compare):
        return ir.Compare(_fix(cond.left), cond.op, cond.right)  # type: ignore[arg-type]
    if isinstance(cond, ir.Not):
        return ir.Not(_fix_condition(cond.item))
    return type(cond)(tuple(_fix_condition(c) for c in cond.items))


def _without_children(pipeline: ir.PipelineIR) -> ir.PipelineIR:
    """Sub-pipelines live flat in the root's ``subpipelines``; a child keeps only its own graph."""
    return replace(pipeline, subpipelines={}) if pipeline.subpipelines else pipeline


def _user_frame(exc: BaseException) -> Location | None:
    """The innermost traceback frame in the user's code (not in the framework)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename.startswith(_FRAMEWORK_DIR) and not frame.filename.startswith("<"):
            found = Location(frame.filename, frame.lineno or 0)
    return found or caller_location()


def _is_definition(obj: Any) -> bool:
    from .definitions import PipelineDefinition, TaskDefinition

    return isinstance(obj, (TaskDefinition, PipelineDefinition))
