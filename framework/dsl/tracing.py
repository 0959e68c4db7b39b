"""Tracing: run a pipeline body once with handles, record every call as an IR node.

A call is recorded as a :class:`Draft` numbered in call order; handles and values refer to calls by
that number (:class:`PendingRef`). Node ids are assigned when tracing ends (explicit names first,
then ``task``, ``task_2``, ... in call order, so a later explicit name never renames an earlier
call), and only then are IR values built, each once, with final ids. Mistakes are collected as
diagnostics, so one trace reports all of them.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import field, replace
from typing import TYPE_CHECKING, Any, Union

from .. import ir
from .._gc import paused_gc
from .._record import record
from ..errors import Diagnostic, DiagnosticSink, Location, StratoError, TraceError, caller_location
from ..governance import classification_problems
from ..secrets import Secret, with_grants
from .handles import Condition, Handle

if TYPE_CHECKING:
    from .definitions import PipelineDefinition, TaskDefinition

_current: ContextVar[Tracer | None] = ContextVar("strato_tracer", default=None)
_FRAMEWORK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def current_tracer() -> Tracer | None:
    return _current.get()


# ------------------------------------------------------------------ values before ids are final
@record(slots=True)
class PendingRef:
    """A call's result, by the call's number in trace order (its id is not known yet)."""

    call: int
    path: tuple[ir.PathItem, ...] = ()


@record(slots=True)
class PendingList:
    items: tuple[PendingValue, ...]


@record(slots=True)
class PendingDict:
    entries: tuple[tuple[str, PendingValue], ...]


PendingValue = Union[ir.Literal, ir.Param, PendingRef, PendingList, PendingDict]


@record(slots=True)
class PendingCompare:
    left: PendingRef | ir.Param
    op: str
    right: Any


@record(slots=True)
class PendingAll:
    items: tuple[PendingCondition, ...]


@record(slots=True)
class PendingAny:
    items: tuple[PendingCondition, ...]


@record(slots=True)
class PendingNot:
    item: PendingCondition


PendingCondition = Union[PendingCompare, PendingAll, PendingAny, PendingNot]
ALWAYS: PendingCondition = PendingAll(())  # stands in for a condition already reported as invalid
NEVER: PendingCondition = PendingAny(())
NULL = ir.Literal(None)


def lower_value(value: PendingValue, ids: Sequence[str]) -> ir.Value:
    """The IR value, with each call number replaced by the call's final id."""
    if isinstance(value, PendingRef):
        return ir.Ref(ids[value.call], value.path)
    if isinstance(value, PendingList):
        return ir.ListOf(tuple(lower_value(v, ids) for v in value.items))
    if isinstance(value, PendingDict):
        return ir.DictOf(tuple((k, lower_value(v, ids)) for k, v in value.entries))
    return value


def lower_condition(cond: PendingCondition, ids: Sequence[str]) -> ir.Condition:
    if isinstance(cond, PendingCompare):
        left = cond.left if isinstance(cond.left, ir.Param) else ir.Ref(ids[cond.left.call], cond.left.path)
        return ir.Compare(left, cond.op, cond.right)
    if isinstance(cond, PendingAll):
        return ir.AllOf(tuple(lower_condition(c, ids) for c in cond.items))
    if isinstance(cond, PendingAny):
        return ir.AnyOf(tuple(lower_condition(c, ids) for c in cond.items))
    return ir.Not(lower_condition(cond.item, ids))


@record
class PendingBranch:
    id: str
    condition: PendingCondition
    guard: ir.Guard | None
    location: Location | None


@record(frozen=False, eq=False)
class Draft:
    """A call recorded during tracing, before ids are final."""

    kind: str  # task | map | wait | pipeline
    base: str  # name the automatic id derives from
    explicit: str | None
    location: Location | None
    guard: ir.Guard | None
    args: dict[str, PendingValue] = field(default_factory=dict)
    after: list[int | str] = field(default_factory=list)  # call numbers, or explicit names resolved at the end
    task: str | None = None
    pipeline: str | None = None
    items: PendingValue = NULL
    item_param: str = ""
    max_concurrency: int | None = None
    seconds: float = 0.0
    index: int = -1  # the call's number, set when recorded
    id: str = ""

    @property
    def display(self) -> str:
        return f"{self.kind if self.kind != 'map' else 'map of'} {self.explicit or self.base!r}"


@record(frozen=False)
class Traced:
    """What tracing a pipeline produced: its IR (built even with errors) and every diagnostic."""

    ir: ir.PipelineIR  # built even when there are errors, so later checks can still report theirs
    diagnostics: list[Diagnostic]
    # check_ir's findings, kept with the trace (a definition caches its trace, and the IR is frozen), so a
    # pipeline run many times in one process (a service, a backfill) is checked once
    checked: list[Diagnostic] | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


class Tracer:
    def __init__(self, pipeline: PipelineDefinition[Any, Any], stack: tuple[PipelineDefinition[Any, Any], ...]):
        self.pipeline = pipeline
        self.stack = stack + (pipeline,)
        self.sink = DiagnosticSink()
        self.drafts: list[Draft] = []
        self.tasks: dict[str, TaskDefinition[Any, Any]] = {}
        self.subpipelines: dict[str, ir.PipelineIR] = {}
        self.sub_sources: dict[str, PipelineDefinition[Any, Any]] = {}
        self.branches: list[PendingBranch] = []
        self.guards: list[ir.Guard] = []
        self.closed_when: dict[int, PendingBranch | None] = {}
        self.subject = f"pipeline {pipeline.name!r}"

    @property
    def guard(self) -> ir.Guard | None:
        """The guard of a call made now: the innermost open block's."""
        return self.guards[-1] if self.guards else None

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
        draft.index = len(self.drafts)
        self.drafts.append(draft)
        self.closed_when[len(self.guards)] = None
        return Handle(self, draft)

    # ------------------------------------------------------------------------------- values
    def to_value(self, obj: Any, where: str, loc: Location | None, subject: str) -> PendingValue:
        """Turn an argument (handles, literals, nested lists/dicts) into a value; JSON is copied now."""
        if isinstance(obj, Handle):
            if obj._tracer is not self:
                self.sink.error(f"{where} uses {obj.describe()}, which belongs to pipeline "
                                f"{obj._tracer.pipeline.name!r}; pass it as an argument of this pipeline instead",
                                loc, subject)
                return ir.Literal(None)
            if obj._draft is not None:
                return PendingRef(obj._draft.index, obj._path)
            return ir.Param(obj._param or "", obj._path)
        if obj is None or isinstance(obj, (str, bool, int)):
            return ir.Literal(obj)
        if isinstance(obj, Secret):
            problem = obj.problem()
            if problem:
                self.sink.error(f"{where}: {problem}", loc, subject)
            return ir.Literal(obj.to_json())
        if isinstance(obj, float):
            problem = ir.json_problem(obj, where)
            if problem:
                self.sink.error(problem, loc, subject)
            return ir.Literal(obj)
        if isinstance(obj, (list, tuple)):
            items = tuple(self.to_value(v, f"{where}[{i}]", loc, subject) for i, v in enumerate(obj))
            literals = [v.value for v in items if isinstance(v, ir.Literal)]
            return ir.Literal(literals) if len(literals) == len(items) else PendingList(items)
        if isinstance(obj, dict):
            entries = []
            for key, v in obj.items():
                if not isinstance(key, str):
                    self.sink.error(f"{where} has a non-string key {key!r}; JSON object keys are strings", loc, subject)
                    continue
                entries.append((key, self.to_value(v, f"{where}[{key!r}]", loc, subject)))
            literal = {k: v.value for k, v in entries if isinstance(v, ir.Literal)}
            return ir.Literal(literal) if len(literal) == len(entries) else PendingDict(tuple(entries))
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

    def wait_for(self, wait_for: Any, loc: Location | None, subject: str) -> list[int | str]:
        if wait_for is None:
            return []
        if isinstance(wait_for, (Handle, str)):
            wait_for = [wait_for]
        if not isinstance(wait_for, (list, tuple)):
            self.sink.error(f"wait_for must be a list of task results (or call names), got {wait_for!r}", loc, subject)
            return []
        out: list[int | str] = []
        for item in wait_for:
            if isinstance(item, Handle) and item._tracer is self and item._draft is not None:
                out.append(item._draft.index)
            elif isinstance(item, str):
                out.append(item)
            elif isinstance(item, Handle) and item._draft is None:
                pass  # a parameter is always ready
            else:
                self.sink.error(f"wait_for accepts results of tasks in this pipeline or call names, got {item!r}",
                                loc, subject)
        return out

    # ------------------------------------------------------------------------------- branches
    def _branch(self, condition: PendingCondition, loc: Location | None) -> PendingBranch:
        branch = PendingBranch(f"when_{len(self.branches) + 1}", condition, self.guard, loc)
        self.branches.append(branch)
        return branch

    def open_when(self, condition: Any, loc: Location | None) -> PendingBranch:
        branch = self._branch(self.to_condition(condition, loc), loc)
        self.closed_when[len(self.guards)] = None
        self.guards.append(ir.Guard(branch.id, True))
        return branch

    def close_when(self, branch: PendingBranch) -> None:
        self.guards.pop()
        self.closed_when[len(self.guards)] = branch

    def open_otherwise(self, loc: Location | None) -> None:
        branch = self.closed_when.get(len(self.guards))
        if branch is None:
            self.sink.error("otherwise() must directly follow a `with when(...)` block at the same level", loc,
                            self.subject)
            branch = self._branch(NEVER, loc)  # reported; the body is traced under a guard that never holds
            self.guards.append(ir.Guard(branch.id, True))
            return
        self.closed_when[len(self.guards)] = None
        self.guards.append(ir.Guard(branch.id, False))

    def close_otherwise(self) -> None:
        self.guards.pop()
        self.closed_when[len(self.guards)] = None

    def to_condition(self, cond: Any, loc: Location | None) -> PendingCondition:
        if isinstance(cond, Handle):
            self.sink.error(f"when() needs a comparison with a JSON literal, such as `when(result['count'] > 0)` or "
                            f"`when(result == True)`, not a bare result ({cond.describe()})", loc, self.subject)
            return ALWAYS
        if not isinstance(cond, Condition):
            self.sink.error(f"when() needs a comparison of a task result with a JSON literal, got {cond!r}", loc,
                            self.subject)
            return ALWAYS
        if cond.problem:
            self.sink.error(cond.problem, cond.location or loc, self.subject)
            return ALWAYS
        if cond.op == "all":
            return PendingAll(tuple(self.to_condition(c, loc) for c in cond.items))
        if cond.op == "any":
            return PendingAny(tuple(self.to_condition(c, loc) for c in cond.items))
        if cond.op == "not":
            return PendingNot(self.to_condition(cond.items[0], loc))
        left = self.to_value(cond.left, "the condition", cond.location or loc, self.subject)
        problem = ir.json_problem(cond.right, "the compared value")
        if problem:
            self.sink.error(f"when() compares with a JSON literal: {problem}", cond.location or loc, self.subject)
        if not isinstance(left, (PendingRef, ir.Param)):  # a foreign handle, reported by to_value
            return ALWAYS
        return PendingCompare(left, cond.op, cond.right)

    # ------------------------------------------------------------------------------- tasks
    def register_task(self, definition: TaskDefinition[Any, Any], loc: Location | None) -> str:
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

    def register_pipeline(self, definition: PipelineDefinition[Any, Any], loc: Location | None) -> str | None:
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
        for name, child in (*traced.ir.subpipelines.items(), (definition.name, _without_children(traced.ir))):
            self.subpipelines.setdefault(name, child)
        return definition.name

    # ------------------------------------------------------------------------------- finish
    def finish(self, output: PendingValue) -> Traced:
        ids = self._assign_ids()
        known = set(ids)
        nodes = [self._node(d, ids, known) for d in self.drafts]
        branches = [ir.Branch(b.id, lower_condition(b.condition, ids), b.guard, b.location) for b in self.branches]
        pipe = self.pipeline
        root = len(self.stack) == 1  # hooks are the run's root pipeline's: a sub-pipeline's are not called
        hooks = pipe.hook_specs() if root else {}
        for definition, _ in (pipe.hook_tasks().values() if root else ()):
            self.register_task(definition, pipe.location)
        specs = {}
        pipeline_tags = pipe.tags if isinstance(pipe.tags, dict) else {}  # a non-dict is reported already
        for name, definition in sorted(self.tasks.items()):
            spec = definition.spec()
            self.sink.extend(classification_problems(pipeline_tags, spec.tags, f"task {name!r}", spec.location))
            specs[name] = replace(spec, tags={**pipeline_tags, **spec.tags})  # task tags extend the pipeline's
        subpipelines = {name: self.subpipelines[name] for name in sorted(self.subpipelines)}
        result = ir.PipelineIR(
            name=pipe.name, module=pipe.fn.__module__, qualname=pipe.fn.__qualname__, params=pipe.param_specs,
            nodes=tuple(nodes), output=lower_value(output, ids), tasks=specs, branches=tuple(branches),
            subpipelines=subpipelines, schedule=pipe.schedule_spec(), triggers=pipe.trigger_specs(),
            tags=dict(pipe.tags or {}), doc=inspect.getdoc(pipe.fn), location=pipe.location, hooks=hooks,
        )
        return Traced(with_grants(result), self.sink.items)

    def _assign_ids(self) -> list[str]:
        """Every call's final id, by call number."""
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
        return [d.id for d in self.drafts]

    def _node(self, d: Draft, ids: list[str], known: set[str]) -> ir.Node:
        after: list[str] = []
        for item in d.after:
            if isinstance(item, int):
                after.append(ids[item])
            elif item in known:
                after.append(item)
            else:
                self.sink.error(f"wait_for names {item!r}, but no call in pipeline {self.pipeline.name!r} has "
                                "that name", d.location, d.display)
        after_t = tuple(dict.fromkeys(after))
        args = {k: lower_value(v, ids) for k, v in d.args.items()}
        if d.kind == "task":
            return ir.TaskNode(d.id, d.task or d.base, args, after_t, d.guard, d.location)
        if d.kind == "map":
            return ir.MapNode(d.id, d.task or d.base, lower_value(d.items, ids), d.item_param, args,
                              d.max_concurrency, after_t, d.guard, d.location)
        if d.kind == "wait":
            return ir.WaitNode(d.id, d.seconds, after_t, d.guard, d.location)
        return ir.SubPipelineNode(d.id, d.pipeline or d.base, args, after_t, d.guard, d.location)


def _without_children(pipeline: ir.PipelineIR) -> ir.PipelineIR:
    """Sub-pipelines live flat in the root's ``subpipelines``; a child keeps only its own graph."""
    return replace(pipeline, subpipelines={}) if pipeline.subpipelines else pipeline


def _user_frame(exc: BaseException) -> Location | None:
    """The innermost traceback frame in the user's code (not in the framework)."""
    import traceback  # only for a pipeline body that raised

    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if not frame.filename.startswith(_FRAMEWORK_DIR) and not frame.filename.startswith("<"):
            found = Location(frame.filename, frame.lineno or 0)
    return found or caller_location()


def _is_definition(obj: Any) -> bool:
    from .definitions import PipelineDefinition, TaskDefinition

    return isinstance(obj, (TaskDefinition, PipelineDefinition))
