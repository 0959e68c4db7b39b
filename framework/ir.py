"""The intermediate representation: the only thing that crosses from the DSL to a backend.

A :class:`PipelineIR` is frozen, serialises to versioned JSON (``to_json``/``from_json`` round-trip
exactly) and has a stable content hash that ignores source locations. Runners and compilers consume
the IR, never the user's Python function: a task is found by its module and qualname. The IR is
self-contained: retries, schedules and triggers are IR specs (:class:`RetrySpec`,
:class:`ScheduleSpec`, :data:`TriggerSpec`) that the DSL builds from its options, with the behaviour
backends share (:meth:`RetrySpec.delay_for`, :func:`error_matches`, :func:`expand_error_names`).

Graph model: a pipeline is a flat list of nodes. A node depends on the nodes its arguments refer to
(:class:`Ref`), on the nodes in ``after`` (``wait_for``), and on the nodes its guard's conditions read.
``when``/``otherwise`` blocks are :class:`Branch` objects; a node inside one carries a :class:`Guard`
naming the innermost branch and arm. A node whose guard is false is *skipped*: its result is ``null``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from dataclasses import field
from functools import cached_property
from typing import Any, ClassVar, Union

from ._gc import paused_gc
from ._record import record
from .errors import Location

SCHEMA_VERSION = 1
PathItem = Union[str, int]


# --------------------------------------------------------------------------------------- values
@record(slots=True)
class Literal:
    """A JSON value written in the pipeline."""

    value: Any


@record(slots=True)
class Ref:
    """A node's result, addressed by ``path`` (``handle["files"][0]`` -> ``("files", 0)``)."""

    node: str
    path: tuple[PathItem, ...] = ()


@record(slots=True)
class Param:
    """A pipeline parameter, addressed by ``path``."""

    name: str
    path: tuple[PathItem, ...] = ()


@record(slots=True)
class ListOf:
    """A list with at least one non-literal element."""

    items: tuple[Value, ...]


@record(slots=True)
class DictOf:
    """A dict with at least one non-literal value."""

    entries: tuple[tuple[str, Value], ...]


Value = Union[Literal, Ref, Param, ListOf, DictOf]


def value_refs(value: Value) -> Iterator[str]:
    """Node ids a value reads."""
    if isinstance(value, Ref):
        yield value.node
    elif isinstance(value, ListOf):
        for item in value.items:
            yield from value_refs(item)
    elif isinstance(value, DictOf):
        for _, item in value.entries:
            yield from value_refs(item)


def value_params(value: Value) -> Iterator[str]:
    """Pipeline parameters a value reads."""
    if isinstance(value, Param):
        yield value.name
    elif isinstance(value, ListOf):
        for item in value.items:
            yield from value_params(item)
    elif isinstance(value, DictOf):
        for _, item in value.entries:
            yield from value_params(item)


def address(value: Any, path: tuple[PathItem, ...]) -> Any:
    """Follow ``path`` into a JSON value; a missing key, index or a ``null`` gives ``null``.

    This is the one addressing rule of every backend: a handle of a skipped node is ``null``
    and addressing into ``null`` stays ``null``.
    """
    for key in path:
        if isinstance(key, str) and isinstance(value, dict):
            value = value.get(key)
        elif isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


def resolve_value(value: Value, results: dict[str, Any], params: dict[str, Any]) -> Any:
    """Replace references by their JSON values."""
    if isinstance(value, Literal):
        return value.value
    if isinstance(value, Ref):
        return address(results.get(value.node), value.path)
    if isinstance(value, Param):
        return address(params.get(value.name), value.path)
    if isinstance(value, ListOf):
        return [resolve_value(v, results, params) for v in value.items]
    return {k: resolve_value(v, results, params) for k, v in value.entries}


def json_problem(value: Any, where: str = "value") -> str | None:
    """Why ``value`` is not plain JSON, or ``None`` when it is."""
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value!r}, which JSON cannot represent"
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            problem = json_problem(item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a non-string key {key!r}; JSON object keys are strings"
            problem = json_problem(item, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__name__}, which is not JSON (use str, int, float, bool, None, list or dict)"


# ----------------------------------------------------------------------------------- conditions
COMPARATORS = ("==", "!=", "<", "<=", ">", ">=")


@record(slots=True)
class Compare:
    """``left <op> right`` where ``left`` reads a node or parameter and ``right`` is a JSON literal."""

    left: Ref | Param
    op: str
    right: Any


@record(slots=True)
class AllOf:
    items: tuple[Condition, ...]


@record(slots=True)
class AnyOf:
    items: tuple[Condition, ...]


@record(slots=True)
class Not:
    item: Condition


Condition = Union[Compare, AllOf, AnyOf, Not]


def json_type(value: Any) -> str:
    """A JSON value's kind as a message names it: the same words on every backend."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def not_a_list(node_id: str, value: Any) -> str:
    """The cause of the ``TypeError`` a map over something other than a list fails with, everywhere."""
    return f"map {node_id!r} needs a list to fan out over, got {json_type(value)}"


def compare(left: Any, op: str, right: Any) -> bool:
    """The comparison rule every backend implements.

    ``==``/``!=`` are JSON equality (``1 == 1.0``; ``true`` is not ``1``). Ordering compares two
    numbers or two strings; any other pair (``null`` included) is false.
    """
    if op in ("==", "!="):
        equal = _json_equal(left, right)
        return equal if op == "==" else not equal
    both_numbers = _is_number(left) and _is_number(right)
    both_strings = isinstance(left, str) and isinstance(right, str)
    if not (both_numbers or both_strings):
        return False
    if op == "<":
        return left < right
    if op == "<=":
        return left <= right
    if op == ">":
        return left > right
    return left >= right


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def evaluate(condition: Condition, results: dict[str, Any], params: dict[str, Any]) -> bool:
    if isinstance(condition, Compare):
        return compare(resolve_value(condition.left, results, params), condition.op, condition.right)
    if isinstance(condition, AllOf):
        return all(evaluate(c, results, params) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, results, params) for c in condition.items)
    return not evaluate(condition.item, results, params)


def condition_operands(condition: Condition) -> Iterator[Ref | Param]:
    if isinstance(condition, Compare):
        yield condition.left
    elif isinstance(condition, Not):
        yield from condition_operands(condition.item)
    else:
        for item in condition.items:
            yield from condition_operands(item)


# ------------------------------------------------------------------------------ branches, nodes
@record(slots=True)
class Guard:
    """Run only when branch ``branch`` took arm ``arm`` (True: the ``when`` block, False: ``otherwise``)."""

    branch: str
    arm: bool


@record
class Branch:
    """A ``when(condition)`` block (and its ``otherwise``), itself possibly inside another guard."""

    id: str
    condition: Condition
    guard: Guard | None = None
    location: Location | None = field(default=None, compare=False)


@record
class TaskNode:
    """One call of a task."""

    id: str
    task: str
    args: dict[str, Value]
    after: tuple[str, ...] = ()
    guard: Guard | None = None
    location: Location | None = field(default=None, compare=False)
    kind = "task"


@record
class MapNode:
    """A task called once per element of ``items`` (as ``item_param``); results in input order."""

    id: str
    task: str
    items: Value
    item_param: str
    args: dict[str, Value]
    max_concurrency: int | None = None
    after: tuple[str, ...] = ()
    guard: Guard | None = None
    location: Location | None = field(default=None, compare=False)
    kind = "map"


@record
class WaitNode:
    """A timer; its result is ``null``."""

    id: str
    seconds: float
    after: tuple[str, ...] = ()
    guard: Guard | None = None
    location: Location | None = field(default=None, compare=False)
    kind = "wait"


@record
class SubPipelineNode:
    """A call of another pipeline; its result is the child's output."""

    id: str
    pipeline: str
    args: dict[str, Value]
    after: tuple[str, ...] = ()
    guard: Guard | None = None
    location: Location | None = field(default=None, compare=False)
    kind = "pipeline"


Node = Union[TaskNode, MapNode, WaitNode, SubPipelineNode]


# ------------------------------------------------------------------------------------ specs
@record
class ParamSpec:
    """A parameter of a task or pipeline. ``default`` is meaningful only when ``required`` is False."""

    name: str
    annotation: str | None = None
    required: bool = True
    default: Any = None


@record
class CatchSpec:
    handler: str  # name of a task in PipelineIR.tasks
    on: tuple[str, ...] | None = None


HOOK_KINDS = ("on_failure", "on_success")


@record
class HookSpec:
    """A task called once a root run has ended (``@pipeline(on_failure=..., on_success=...)``).

    The task's first parameter receives the run's outcome (:func:`strato.hooks.outcome`); ``args``
    are literal values for its other parameters (a webhook's URL as a secret reference, say).
    """

    task: str  # name of a task in PipelineIR.tasks
    args: dict[str, Value] = field(default_factory=dict)
    param: str = "run"  # the parameter that receives the outcome


def hook_key(kind: str) -> str:
    """The run-store unit of a hook: ``#on_failure`` or ``#on_success`` (no node id starts with ``#``)."""
    return f"#{kind}"


def expand_error_names(on: tuple[str, ...]) -> tuple[str, ...]:
    """The names an ``on=`` filter matches: each name plus its built-in subclasses.

    ``on=("OSError",)`` matches ``FileNotFoundError`` and ``ConnectionError`` as ``except OSError``
    would. Matching is by class name on every backend, so a user-defined subclass must be named
    itself. Sorted, so compiled artifacts are deterministic.
    """
    import builtins

    found = set(on)
    for name in on:
        cls = getattr(builtins, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            stack: list[type[BaseException]] = [cls]
            while stack:
                current = stack.pop()
                for sub in current.__subclasses__():
                    if getattr(builtins, sub.__name__, None) is sub:
                        found.add(sub.__name__)
                        stack.append(sub)
    return tuple(sorted(found))


def error_matches(error: str, on: tuple[str, ...] | None) -> bool:
    """Whether an error of class name ``error`` is selected by an ``on=`` filter (None: any)."""
    return on is None or error in expand_error_names(on)


@record
class RetrySpec:
    """How a task is retried: ``max_retries`` retries after the first attempt.

    The n-th retry waits ``min(delay * backoff**(n-1), max_delay)`` seconds; with ``jitter`` a
    uniformly random part of that ("full jitter", as Step Functions does). ``on`` names the
    exception classes retried (``None``: any error; ``"TaskTimeout"`` for timeouts).
    """

    max_retries: int = 3
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float | None = None
    jitter: bool = False
    on: tuple[str, ...] | None = None

    def delay_for(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based), before jitter."""
        seconds = float(self.delay) * float(self.backoff) ** (retry_number - 1)
        return min(seconds, float(self.max_delay)) if self.max_delay is not None else seconds

    def matches(self, error: str) -> bool:
        return error_matches(error, self.on)

    def to_dict(self) -> dict[str, Any]:
        return {"max_retries": self.max_retries, "delay": self.delay, "backoff": self.backoff,
                "max_delay": self.max_delay, "jitter": self.jitter,
                "on": list(self.on) if self.on is not None else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrySpec:
        on = data.get("on")
        return cls(data["max_retries"], data["delay"], data["backoff"], data.get("max_delay"),
                   data.get("jitter", False), tuple(on) if on is not None else None)


_EVERY = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def every_seconds(every: str | None) -> int | None:
    """Seconds in an interval such as ``"15m"``, ``"2h"`` or ``"1d"``; None when it is not one."""
    match = _EVERY.match(every) if isinstance(every, str) else None
    return int(match.group(1)) * _EVERY_UNITS[match.group(2)] if match else None


@record
class ScheduleSpec:
    """When a pipeline starts by itself: a 5-field unix ``cron`` in ``timezone`` (IANA), or ``every``.

    ``input`` holds parameter values for scheduled runs. ``location`` is for diagnostics only: it
    is neither serialised nor compared.
    """

    cron: str | None = None
    timezone: str = "UTC"
    every: str | None = None
    input: dict[str, Any] | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    @property
    def every_seconds(self) -> int | None:
        return every_seconds(self.every)

    def to_dict(self) -> dict[str, Any]:
        return {"cron": self.cron, "timezone": self.timezone, "every": self.every, "input": self.input}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScheduleSpec:
        return cls(data.get("cron"), data.get("timezone", "UTC"), data.get("every"), data.get("input"))


@record
class ObjectCreatedSpec:
    """Start a run when an object whose key has ``prefix`` and ``suffix`` is created in ``bucket``.

    The run's input gets the event fields (:attr:`EVENT_FIELDS`) for parameters of those names and
    ``input`` for the others.
    """

    bucket: str
    prefix: str = ""
    suffix: str = ""
    input: dict[str, Any] | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    EVENT_FIELDS: ClassVar[tuple[str, ...]] = ("bucket", "key", "size")
    KIND: ClassVar[str] = "object_created"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.KIND, "bucket": self.bucket, "prefix": self.prefix, "suffix": self.suffix,
                "input": self.input}


@record
class HttpSpec:
    """Start a run with an HTTPS request whose JSON body is the input; ``auth`` is "iam" or "none"."""

    path: str | None = None
    auth: str = "iam"
    location: Location | None = field(default=None, compare=False, repr=False)

    KIND: ClassVar[str] = "http"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.KIND, "path": self.path, "auth": self.auth}


TriggerSpec = Union[ObjectCreatedSpec, HttpSpec]


def trigger_from_dict(data: dict[str, Any]) -> TriggerSpec:
    kind = data["type"]
    if kind == ObjectCreatedSpec.KIND:
        return ObjectCreatedSpec(data["bucket"], data.get("prefix", ""), data.get("suffix", ""), data.get("input"))
    if kind == HttpSpec.KIND:
        return HttpSpec(data.get("path"), data.get("auth", "iam"))
    raise ValueError(f"unknown trigger type {kind!r}")


@record
class CheckSpec:
    """A data-quality check of a task (its code stays with the task: :mod:`strato.checks`)."""

    name: str
    severity: str = "error"  # "error" fails the attempt with CheckFailed; "warn" records only
    description: str | None = None


@record
class TaskSpec:
    """What a backend needs to run a task: where its code is and how to treat failures."""

    name: str
    module: str
    qualname: str
    params: tuple[ParamSpec, ...]
    returns: str | None = None
    retry: RetrySpec | None = None
    timeout: float | None = None
    memory: int | None = None
    catch: CatchSpec | None = None
    tags: dict[str, str] = field(default_factory=dict)  # effective: pipeline tags extended by the task's
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    runtime: str = "function"  # "function" (serverless) | "worker" (long-running worker process)
    doc: str | None = None
    location: Location | None = field(default=None, compare=False)
    secrets: tuple[str, ...] = ()  # names of the secrets the task is given (strato.secrets), sorted
    checks: tuple[CheckSpec, ...] = ()  # data-quality checks on its result, in order
    pool: str | None = None  # a shared limit on how many of its attempts run at once (local runner)


@record
class PipelineIR:
    name: str
    module: str
    qualname: str
    params: tuple[ParamSpec, ...]
    nodes: tuple[Node, ...]
    output: Value
    tasks: dict[str, TaskSpec]
    branches: tuple[Branch, ...] = ()
    subpipelines: dict[str, PipelineIR] = field(default_factory=dict)
    schedule: ScheduleSpec | None = None
    triggers: tuple[TriggerSpec, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    doc: str | None = None
    location: Location | None = field(default=None, compare=False)
    schema_version: int = SCHEMA_VERSION
    hooks: dict[str, HookSpec] = field(default_factory=dict)  # "on_failure"/"on_success": the root run's hooks

    @cached_property
    def node_by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    @cached_property
    def branch_by_id(self) -> dict[str, Branch]:
        return {branch.id: branch for branch in self.branches}

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if not p.required}

    # Derived once per IR: the IR is frozen, and runners, compilers and the run store ask often.
    @cached_property
    def _json_texts(self) -> dict[int | None, str]:
        return {}

    def to_json(self, indent: int | None = None) -> str:
        texts = self._json_texts
        if indent not in texts:
            texts[indent] = to_json(self, indent)
        return texts[indent]

    @cached_property
    def hash(self) -> str:
        return content_hash(self)

    @cached_property
    def dependencies(self) -> dict[str, tuple[str, ...]]:
        """Every node's direct dependencies (see :func:`strato.graph.dependencies`); shared, do not mutate."""
        from .graph import compute_dependencies

        return compute_dependencies(self)


# ------------------------------------------------------------------------------ serialisation
def _path(path: tuple[PathItem, ...]) -> list:
    return list(path)


def value_to_dict(value: Value) -> dict:
    if isinstance(value, Literal):
        return {"literal": value.value}
    if isinstance(value, Ref):
        return {"ref": value.node, "path": _path(value.path)}
    if isinstance(value, Param):
        return {"param": value.name, "path": _path(value.path)}
    if isinstance(value, ListOf):
        return {"list": [value_to_dict(v) for v in value.items]}
    return {"dict": [[k, value_to_dict(v)] for k, v in value.entries]}  # pairs: keeps the author's key order


def _path_from_json(path: Any) -> tuple[str | int, ...]:
    """A path as JSON carried it: an index may come back as ``-1.0`` from a JSON reader that makes
    every number with a sign a float; JSON itself does not tell 1 from 1.0."""
    return tuple(int(p) if isinstance(p, float) and p.is_integer() else p for p in path)


def value_from_dict(data: dict) -> Value:
    if "literal" in data:
        return Literal(data["literal"])
    if "ref" in data:
        return Ref(data["ref"], _path_from_json(data.get("path", ())))
    if "param" in data:
        return Param(data["param"], _path_from_json(data.get("path", ())))
    if "list" in data:
        return ListOf(tuple(value_from_dict(v) for v in data["list"]))
    return DictOf(tuple((k, value_from_dict(v)) for k, v in data["dict"]))


def condition_to_dict(condition: Condition) -> dict:
    if isinstance(condition, Compare):
        return {"compare": condition.op, "left": value_to_dict(condition.left), "right": condition.right}
    if isinstance(condition, AllOf):
        return {"all": [condition_to_dict(c) for c in condition.items]}
    if isinstance(condition, AnyOf):
        return {"any": [condition_to_dict(c) for c in condition.items]}
    return {"not": condition_to_dict(condition.item)}


def condition_from_dict(data: dict) -> Condition:
    if "compare" in data:
        return Compare(value_from_dict(data["left"]), data["compare"], data["right"])  # type: ignore[arg-type]
    if "all" in data:
        return AllOf(tuple(condition_from_dict(c) for c in data["all"]))
    if "any" in data:
        return AnyOf(tuple(condition_from_dict(c) for c in data["any"]))
    return Not(condition_from_dict(data["not"]))


def _loc(location: Location | None, with_locations: bool) -> dict:
    return {"location": location.to_dict() if location else None} if with_locations else {}


def _guard(guard: Guard | None) -> dict | None:
    return {"branch": guard.branch, "arm": guard.arm} if guard else None


def _guard_from(data: dict | None) -> Guard | None:
    return Guard(data["branch"], data["arm"]) if data else None


def _args(args: dict[str, Value]) -> dict:
    return {k: value_to_dict(v) for k, v in args.items()}


def _args_from(data: dict) -> dict[str, Value]:
    return {k: value_from_dict(v) for k, v in data.items()}


def node_to_dict(node: Node, with_locations: bool = True) -> dict:
    out: dict[str, Any] = {"kind": node.kind, "id": node.id}
    if isinstance(node, TaskNode):
        out.update(task=node.task, args=_args(node.args))
    elif isinstance(node, MapNode):
        out.update(task=node.task, items=value_to_dict(node.items), item_param=node.item_param,
                   args=_args(node.args), max_concurrency=node.max_concurrency)
    elif isinstance(node, WaitNode):
        out.update(seconds=node.seconds)
    else:
        out.update(pipeline=node.pipeline, args=_args(node.args))
    out.update(after=list(node.after), guard=_guard(node.guard), **_loc(node.location, with_locations))
    return out


def node_from_dict(data: dict[str, Any]) -> Node:
    after: tuple[str, ...] = tuple(data.get("after", ()))
    guard, location = _guard_from(data.get("guard")), Location.from_dict(data.get("location"))
    kind = data["kind"]
    if kind == "task":
        return TaskNode(data["id"], data["task"], _args_from(data["args"]), after, guard, location)
    if kind == "map":
        return MapNode(data["id"], data["task"], value_from_dict(data["items"]), data["item_param"],
                       _args_from(data["args"]), data.get("max_concurrency"), after, guard, location)
    if kind == "wait":
        return WaitNode(data["id"], data["seconds"], after, guard, location)
    if kind == "pipeline":
        return SubPipelineNode(data["id"], data["pipeline"], _args_from(data["args"]), after, guard, location)
    raise ValueError(f"unknown node kind {kind!r}")


def _param_to_dict(p: ParamSpec) -> dict:
    return {"name": p.name, "annotation": p.annotation, "required": p.required, "default": p.default}


def _param_from(d: dict) -> ParamSpec:
    return ParamSpec(d["name"], d.get("annotation"), d.get("required", True), d.get("default"))


def task_to_dict(spec: TaskSpec, with_locations: bool = True) -> dict:
    return {
        "name": spec.name, "module": spec.module, "qualname": spec.qualname,
        "params": [_param_to_dict(p) for p in spec.params], "returns": spec.returns,
        "retry": spec.retry.to_dict() if spec.retry else None, "timeout": spec.timeout, "memory": spec.memory,
        "catch": {"handler": spec.catch.handler, "on": list(spec.catch.on) if spec.catch.on is not None else None}
        if spec.catch else None,
        "tags": dict(sorted(spec.tags.items())), "reads": list(spec.reads), "writes": list(spec.writes),
        "runtime": spec.runtime, "doc": spec.doc, **_loc(spec.location, with_locations),
        **({"secrets": list(spec.secrets)} if spec.secrets else {}),
        **({"checks": [{"name": c.name, "severity": c.severity, "description": c.description}
                       for c in spec.checks]} if spec.checks else {}),
        **({"pool": spec.pool} if spec.pool else {}),
    }


def task_from_dict(d: dict) -> TaskSpec:
    catch = d.get("catch")
    return TaskSpec(
        d["name"], d["module"], d["qualname"], tuple(_param_from(p) for p in d["params"]), d.get("returns"),
        RetrySpec.from_dict(d["retry"]) if d.get("retry") else None, d.get("timeout"), d.get("memory"),
        CatchSpec(catch["handler"], tuple(catch["on"]) if catch.get("on") is not None else None) if catch else None,
        dict(d.get("tags", {})), tuple(d.get("reads", ())), tuple(d.get("writes", ())), d.get("runtime", "function"),
        d.get("doc"), Location.from_dict(d.get("location")), tuple(d.get("secrets", ())),
        tuple(CheckSpec(c["name"], c.get("severity", "error"), c.get("description")) for c in d.get("checks", ())),
        d.get("pool"),
    )


def to_dict(ir: PipelineIR, with_locations: bool = True) -> dict:
    return {
        "schema_version": ir.schema_version,
        "name": ir.name, "module": ir.module, "qualname": ir.qualname, "doc": ir.doc,
        "params": [_param_to_dict(p) for p in ir.params],
        "nodes": [node_to_dict(n, with_locations) for n in ir.nodes],
        "branches": [{"id": b.id, "condition": condition_to_dict(b.condition), "guard": _guard(b.guard),
                      **_loc(b.location, with_locations)} for b in ir.branches],
        "output": value_to_dict(ir.output),
        "tasks": {name: task_to_dict(ir.tasks[name], with_locations) for name in sorted(ir.tasks)},
        "subpipelines": {name: to_dict(ir.subpipelines[name], with_locations) for name in sorted(ir.subpipelines)},
        "schedule": ir.schedule.to_dict() if ir.schedule else None,
        "triggers": [t.to_dict() for t in ir.triggers],
        "tags": dict(sorted(ir.tags.items())),
        **_loc(ir.location, with_locations),
        **({"hooks": {kind: {"task": h.task, "param": h.param,
                             "args": {k: value_to_dict(v) for k, v in sorted(h.args.items())}}
                      for kind, h in sorted(ir.hooks.items())}} if ir.hooks else {}),
    }


def from_dict(d: dict) -> PipelineIR:
    version = d.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"IR schema version {version!r} is not supported (this Strato reads version {SCHEMA_VERSION})")
    return PipelineIR(
        name=d["name"], module=d["module"], qualname=d["qualname"],
        params=tuple(_param_from(p) for p in d["params"]),
        nodes=tuple(node_from_dict(n) for n in d["nodes"]),
        output=value_from_dict(d["output"]),
        tasks={k: task_from_dict(v) for k, v in d["tasks"].items()},
        branches=tuple(Branch(b["id"], condition_from_dict(b["condition"]), _guard_from(b.get("guard")),
                              Location.from_dict(b.get("location"))) for b in d.get("branches", ())),
        subpipelines={k: from_dict(v) for k, v in d.get("subpipelines", {}).items()},
        schedule=ScheduleSpec.from_dict(d["schedule"]) if d.get("schedule") else None,
        triggers=tuple(trigger_from_dict(t) for t in d.get("triggers", ())),
        tags=dict(d.get("tags", {})), doc=d.get("doc"), location=Location.from_dict(d.get("location")),
        schema_version=version,
        hooks={kind: HookSpec(h["task"], {k: value_from_dict(v) for k, v in h.get("args", {}).items()},
                              h.get("param", "run"))
               for kind, h in d.get("hooks", {}).items()},
    )


def to_json(ir: PipelineIR, indent: int | None = None, with_locations: bool = True) -> str:
    """Canonical JSON: sorted keys, so the same pipeline always gives the same bytes."""
    separators = (",", ":") if indent is None else (",", ": ")
    with paused_gc():
        return json.dumps(to_dict(ir, with_locations), sort_keys=True, indent=indent, separators=separators)


def from_json(text: str) -> PipelineIR:
    with paused_gc():
        return from_dict(json.loads(text))


def content_hash(ir: PipelineIR) -> str:
    """SHA-256 of the canonical JSON without source locations: moving code around keeps the hash."""
    return hashlib.sha256(to_json(ir, with_locations=False).encode()).hexdigest()
