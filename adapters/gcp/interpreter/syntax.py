"""Workflow source -> a checked program, before anything runs.

Workflows checks a definition when it is deployed; this module plays that part. It parses YAML or
JSON, parses every ``${}`` expression, and rejects what the engine does not implement or the
reference forbids, naming the step: ``step 'x' of 'main': ...``. The result is a tree of
:class:`Step` objects with pre-parsed expressions that the engine walks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import conformance
from .expressions import (
    Call,
    ExpressionSyntaxError,
    Node,
    Target,
    expression_text,
    parse_expression,
    parse_target,
    walk,
)
from .stdlib import FUNCTIONS, refusal

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
RESERVED_NEXT = ("end", "break", "continue")
STEP_ACTIONS = ("assign", "call", "switch", "for", "parallel", "raise", "return", "try", "steps")
STEP_KEYS = {*STEP_ACTIONS, "args", "result", "next", "retry", "except"}
# Deploy-time limits of the quotas page (https://cloud.google.com/workflows/quotas), kept in one place
# with the check that finds every one of them (strato.adapters.gcp.conformance).
MAX_ASSIGNMENTS = conformance.MAX_ASSIGNMENTS  # per assign step
MAX_BRANCHES = conformance.MAX_BRANCHES  # per parallel step
MAX_CONDITIONS = conformance.MAX_CONDITIONS  # per switch
MAX_EXPRESSION_CHARS = conformance.MAX_EXPRESSION_CHARS  # per ${} expression
MAX_PARALLEL_DEPTH = conformance.MAX_PARALLEL_DEPTH  # parallel steps inside parallel steps
MAX_SOURCE_BYTES = conformance.MAX_SOURCE_BYTES  # the definition as deployed
HTTP_CALLS = ("http.get", "http.post", "http.put", "http.patch", "http.delete", "http.request")
UNSUPPORTED_HTTP_ARGS = ("private_service_name", "ca_certificate")


class WorkflowSyntaxError(ValueError):
    """A definition Workflows would refuse to deploy, or that this engine does not support."""

    def __init__(self, detail: str, *, subworkflow: str | None = None, step: str | None = None):
        self.detail, self.subworkflow, self.step = detail, subworkflow, step
        if step is not None:
            where = f"step {step!r} of {subworkflow!r}: "
        elif subworkflow is not None:
            where = f"subworkflow {subworkflow!r}: "
        else:
            where = "workflow: "
        super().__init__(where + detail)


# --------------------------------------------------------------------------------------------- program


@dataclass(frozen=True, slots=True)
class Expr:
    """A parsed ``${...}`` inside a value template."""

    node: Node
    text: str


@dataclass
class Condition:
    condition: Any  # template: Expr or a literal boolean
    next: str | None
    body: Step | None  # embedded step (steps, assign, call, return, raise...)


@dataclass
class ForLoop:
    value: str
    index: str | None
    items: Any  # template for `in`, or None
    range: Any  # template for `range`, or None
    steps: list[Step]


@dataclass
class Parallel:
    shared: list[str]
    concurrency_limit: Any  # template or None
    branches: list[Step] | None  # each branch is a `steps` step
    loop: ForLoop | None


@dataclass
class Retry:
    policy: Any  # template: an expression giving a default policy, or None
    predicate: Any  # template
    max_retries: Any
    initial_delay: Any
    max_delay: Any
    multiplier: Any


@dataclass
class Except:
    as_name: str | None
    steps: list[Step]


@dataclass
class Step:
    name: str
    kind: str  # one of STEP_ACTIONS, or "jump" for a step with only `next`
    next: str | None = None
    assign: list[tuple[Target, Any]] = field(default_factory=list)
    call: str | None = None
    args: Any = None
    result: str | None = None
    conditions: list[Condition] = field(default_factory=list)
    loop: ForLoop | None = None
    parallel: Parallel | None = None
    value: Any = None  # raise / return template
    body: Step | None = None  # try body
    retry: Retry | None = None
    except_: Except | None = None
    steps: list[Step] = field(default_factory=list)


@dataclass
class Param:
    name: str
    has_default: bool
    default: Any


@dataclass
class Subworkflow:
    name: str
    params: list[Param]
    steps: list[Step]


@dataclass
class Program:
    subworkflows: dict[str, Subworkflow]
    source: Any  # the parsed YAML/JSON document

    @property
    def main(self) -> Subworkflow:
        return self.subworkflows["main"]


# ---------------------------------------------------------------------------------------------- loading


def load_source(source: str | bytes | dict | list) -> Any:
    """YAML or JSON text -> a document; dicts and lists pass through (a deep copy is not needed)."""
    if isinstance(source, dict | list):
        return source
    if isinstance(source, bytes):
        source = source.decode("utf-8")
    if not isinstance(source, str):
        raise WorkflowSyntaxError(f"the definition must be YAML or JSON text, or a parsed document, not "
                                  f"{type(source).__name__}")
    try:
        import yaml
    except ModuleNotFoundError:  # pragma: no cover - PyYAML comes with the gcp extra
        import json

        try:
            return json.loads(source)
        except ValueError as exc:
            raise WorkflowSyntaxError(f"not JSON, and PyYAML is not installed to read YAML: {exc}") from None
    try:
        return yaml.load(source, Loader=_loader())
    except yaml.YAMLError as exc:
        raise WorkflowSyntaxError(f"invalid YAML: {exc}") from None


_LOADER: Any = None


def _loader() -> Any:
    """A safe loader with YAML 1.2 core booleans (true/True/TRUE only, like Workflows) and no timestamps.

    PyYAML's default (YAML 1.1) would turn ``on``/``yes`` into booleans and ``2024-03-01`` into a date.
    """
    global _LOADER
    if _LOADER is None:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        resolvers = {k: [(tag, rx) for tag, rx in v if tag not in ("tag:yaml.org,2002:bool",
                                                                   "tag:yaml.org,2002:timestamp")]
                     for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
        Loader.yaml_implicit_resolvers = resolvers
        Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                     list("tTfF"))
        _LOADER = Loader
    return _LOADER


# ------------------------------------------------------------------------------------------- validation


@dataclass
class _Guard:
    """Inside a parallel branch: names of the parent scope, and which of them are writable (shared)."""

    parent_names: frozenset[str]
    shared: frozenset[str]


@dataclass
class _Ctx:
    """Where the validator is: for error messages, jump scoping and the parallel write rule."""

    sub: str
    visible: list[set[str]]  # step names a `next` may target, innermost last (reset at for/parallel)
    in_for: bool = False
    in_parallel_for: bool = False
    in_branch: bool = False
    guard: _Guard | None = None
    defined: set[str] = field(default_factory=set)  # names assigned so far in the enclosing scopes
    parallel_depth: int = 0  # parallel steps around this point of its subworkflow

    def child(self, **changes: Any) -> _Ctx:
        values: dict[str, Any] = {"sub": self.sub, "visible": self.visible, "in_for": self.in_for,
                  "in_parallel_for": self.in_parallel_for, "in_branch": self.in_branch, "guard": self.guard,
                  "defined": self.defined, "parallel_depth": self.parallel_depth}
        values.update(changes)
        return _Ctx(**values)


class Compiler:
    def __init__(self, document: Any):
        self.document = document
        self.params: dict[str, list[Param]] = {}

    def compile(self) -> Program:
        doc = self.document
        if isinstance(doc, list):
            doc = {"main": {"steps": doc}}
        if not isinstance(doc, dict):
            raise WorkflowSyntaxError("the definition must be a list of steps or a map of subworkflows")
        if "main" not in doc:
            raise WorkflowSyntaxError("there is no 'main' workflow")
        for name, body in doc.items():
            if not isinstance(name, str) or not IDENTIFIER.match(name):
                raise WorkflowSyntaxError(f"invalid subworkflow name {name!r}")
            if not isinstance(body, dict):
                raise WorkflowSyntaxError("a subworkflow must be a map with 'params' and 'steps'", subworkflow=name)
            extra = sorted(set(body) - {"params", "steps"})
            if extra:
                raise WorkflowSyntaxError(f"unsupported keyword {extra[0]!r}", subworkflow=name)
            self.params[name] = self.compile_params(name, body.get("params"))
        if len(self.params["main"]) > 1:
            raise WorkflowSyntaxError("main takes at most one parameter (the execution argument)", subworkflow="main")
        if any(p.has_default for p in self.params["main"]):
            raise WorkflowSyntaxError("main's parameter cannot have a default", subworkflow="main")
        subs = {}
        for name, body in doc.items():
            raw_steps = body.get("steps")
            ctx = _Ctx(sub=name, visible=[], defined={p.name for p in self.params[name]})
            subs[name] = Subworkflow(name, self.params[name], self.compile_steps(raw_steps, ctx, None))
        return Program(subs, self.document)

    def compile_params(self, sub: str, raw: Any) -> list[Param]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise WorkflowSyntaxError("params must be a list", subworkflow=sub)
        params: list[Param] = []
        for item in raw:
            if isinstance(item, str):
                param = Param(item, False, None)
            elif isinstance(item, dict) and len(item) == 1:
                (name, value), = item.items()
                if expression_text(value) is not None:
                    raise WorkflowSyntaxError(f"the default of parameter {name!r} must be a literal", subworkflow=sub)
                param = Param(name, True, value)
            else:
                raise WorkflowSyntaxError(f"invalid parameter {item!r}", subworkflow=sub)
            if not isinstance(param.name, str) or not IDENTIFIER.match(param.name):
                raise WorkflowSyntaxError(f"invalid parameter name {param.name!r}", subworkflow=sub)
            if param.name in {p.name for p in params}:
                raise WorkflowSyntaxError(f"duplicate parameter {param.name!r}", subworkflow=sub)
            params.append(param)
        return params

    # ---------------------------------------------------------------------------------------- steps

    def compile_steps(self, raw: Any, ctx: _Ctx, owner: str | None) -> list[Step]:
        def fail(detail: str) -> WorkflowSyntaxError:
            if owner is None:
                return WorkflowSyntaxError(detail, subworkflow=ctx.sub)
            return WorkflowSyntaxError(detail, subworkflow=ctx.sub, step=owner)

        if not isinstance(raw, list) or not raw:
            raise fail("'steps' must be a non-empty list of steps")
        names: list[str] = []
        for item in raw:
            if not isinstance(item, dict) or len(item) != 1:
                raise fail("each step must be a map with exactly one key, the step's name")
            (name,) = item
            if not isinstance(name, str) or not name:
                raise fail(f"invalid step name {name!r}")
            if name in RESERVED_NEXT:
                raise fail(f"{name!r} is reserved and cannot name a step")
            if name in names:
                raise WorkflowSyntaxError("duplicate step name in the same list", subworkflow=ctx.sub, step=name)
            names.append(name)
        inner = ctx.child(visible=[*ctx.visible, set(names)])
        return [self.compile_step(name, body, inner) for item in raw for name, body in item.items()]

    def compile_step(self, name: str, body: Any, ctx: _Ctx) -> Step:
        def fail(detail: str) -> WorkflowSyntaxError:
            return WorkflowSyntaxError(detail, subworkflow=ctx.sub, step=name)

        if not isinstance(body, dict) or not body:
            raise fail("a step must be a non-empty map")
        unknown = sorted(set(body) - STEP_KEYS, key=str)
        if unknown:
            raise fail(f"unsupported keyword {unknown[0]!r}")
        actions = [k for k in STEP_ACTIONS if k in body]
        if len(actions) > 1:
            raise fail(f"a step can do only one thing, found {' and '.join(actions)}")
        kind = actions[0] if actions else "jump"
        if kind == "jump" and "next" not in body:
            raise fail("the step does nothing")
        for key, needs in (("args", "call"), ("result", "call"), ("retry", "try"), ("except", "try")):
            if key in body and kind != needs:
                raise fail(f"{key!r} is only valid with {needs!r}")
        step = Step(name, kind, next=self.check_next(body.get("next"), ctx, fail))
        if kind == "assign":
            step.assign = self.compile_assign(body["assign"], ctx, fail)
        elif kind == "call":
            self.compile_call(step, body, ctx, fail)
        elif kind == "switch":
            step.conditions = self.compile_switch(name, body["switch"], ctx, fail)
        elif kind == "for":
            step.loop = self.compile_for(name, body["for"], ctx, fail, parallel=False)
        elif kind == "parallel":
            step.parallel = self.compile_parallel(name, body["parallel"], ctx, fail)
        elif kind == "raise":
            step.value = self.template(body["raise"], ctx, fail)
        elif kind == "return":
            if ctx.in_branch:
                raise fail("'return' inside a parallel branch is not supported")
            step.value = self.template(body["return"], ctx, fail)
        elif kind == "try":
            self.compile_try(step, body, ctx, fail)
        elif kind == "steps":
            step.steps = self.compile_steps(body["steps"], ctx, name)
        return step

    def check_next(self, target: Any, ctx: _Ctx, fail: Any) -> str | None:
        if target is None:
            return None
        if not isinstance(target, str):
            raise fail("'next' must be a step name")
        if target == "end":
            if ctx.in_branch:
                raise fail("'next: end' inside a parallel branch is not supported")
            return target
        if target == "break":
            if not ctx.in_for or ctx.in_parallel_for:
                raise fail("'next: break' is only valid inside a (non-parallel) for loop")
            return target
        if target == "continue":
            if not ctx.in_for:
                raise fail("'next: continue' is only valid inside a for loop")
            return target
        if not any(target in names for names in ctx.visible):
            raise fail(f"'next: {target}' names no step of this block or an enclosing one in the same loop or "
                       "branch (jumps into nested steps or out of for/parallel bodies are not supported)")
        return target

    def check_write(self, root: str, ctx: _Ctx, fail: Any) -> None:
        """The reference: in a parallel branch, a parent variable may be assigned only if it is ``shared``."""
        guard = ctx.guard
        if guard is not None and root in guard.parent_names and root not in guard.shared:
            raise fail(f"variable {root!r} belongs to the scope outside the parallel step and is not listed "
                       "in 'shared'")
        ctx.defined.add(root)

    def compile_assign(self, raw: Any, ctx: _Ctx, fail: Any) -> list[tuple[Target, Any]]:
        if not isinstance(raw, list) or not raw:
            raise fail("'assign' must be a non-empty list of single-key maps")
        if len(raw) > MAX_ASSIGNMENTS:
            raise fail(f"'assign' is limited to {MAX_ASSIGNMENTS} assignments")
        out = []
        for item in raw:
            if not isinstance(item, dict) or len(item) != 1:
                raise fail("each assignment must be a map with exactly one key")
            ((lhs, rhs),) = item.items()
            if not isinstance(lhs, str):
                raise fail(f"invalid assignment target {lhs!r}")
            try:
                target = parse_target(lhs)
            except ExpressionSyntaxError as exc:
                raise fail(f"invalid assignment target {lhs!r}: {exc}") from None
            for node in target.path:
                self.check_expression(node, lhs, ctx, fail)
            value = self.template(rhs, ctx, fail)
            self.check_write(target.name, ctx, fail)
            out.append((target, value))
        return out

    def compile_call(self, step: Step, body: dict, ctx: _Ctx, fail: Any) -> None:
        target = body["call"]
        if not isinstance(target, str):
            raise fail("'call' must name a function or a subworkflow")
        args = body.get("args")
        if args is not None and not isinstance(args, dict):
            raise fail("'args' must be a map")
        args = args or {}
        for key in args:
            if not isinstance(key, str):
                raise fail(f"invalid argument name {key!r}")
        if target in self.params:
            params = self.params[target]
            unknown = sorted(set(args) - {p.name for p in params})
            if unknown:
                raise fail(f"subworkflow {target!r} has no parameter {unknown[0]!r}")
            missing = [p.name for p in params if not p.has_default and p.name not in args]
            if missing:
                raise fail(f"subworkflow {target!r} needs argument {missing[0]!r}")
        elif target in FUNCTIONS:
            func = FUNCTIONS[target]
            unknown = sorted(set(args) - set(func.params))
            if unknown:
                raise fail(f"{target} has no argument {unknown[0]!r}")
            if target in HTTP_CALLS:
                for key in UNSUPPORTED_HTTP_ARGS:
                    if key in args:
                        raise fail(f"{target} argument {key!r} is not supported by this engine")
                required: tuple[str, ...] = ("method", "url") if target == "http.request" else ("url",)
            elif target == "sys.log":
                required = ()
                if "data" not in args and "text" not in args:
                    raise fail("sys.log needs 'data' or 'text'")
            else:
                required = tuple(sorted(func.required()))
            for key in required:
                if key not in args:
                    raise fail(f"{target} needs argument {key!r}")
        else:
            raise fail(f"call {target!r}: {refusal(target)}")
        step.call = target
        step.args = self.template(args, ctx, fail)
        result = body.get("result")
        if result is not None:
            if not isinstance(result, str) or not IDENTIFIER.match(result):
                raise fail("'result' must be a variable name")
            self.check_write(result, ctx, fail)
            step.result = result

    def compile_switch(self, name: str, raw: Any, ctx: _Ctx, fail: Any) -> list[Condition]:
        if not isinstance(raw, list) or not raw:
            raise fail("'switch' must be a non-empty list of conditions")
        if len(raw) > MAX_CONDITIONS:
            raise fail(f"'switch' is limited to {MAX_CONDITIONS} conditions")
        conditions = []
        for item in raw:
            if not isinstance(item, dict) or "condition" not in item:
                raise fail("each switch entry must be a map with a 'condition'")
            cond = item["condition"]
            if not isinstance(cond, bool) and expression_text(cond) is None:
                raise fail(f"a condition must be an expression ${{...}} or a boolean, got {cond!r}")
            rest = {k: v for k, v in item.items() if k not in ("condition", "next")}
            nxt = self.check_next(item.get("next"), ctx, fail)
            body = self.compile_step(name, rest, ctx) if rest else None
            conditions.append(Condition(self.template(cond, ctx, fail), nxt, body))
        return conditions

    def compile_for(self, name: str, raw: Any, ctx: _Ctx, fail: Any, *, parallel: bool) -> ForLoop:
        if not isinstance(raw, dict):
            raise fail("'for' must be a map")
        unknown = sorted(set(raw) - {"value", "index", "in", "range", "steps"})
        if unknown:
            raise fail(f"unsupported keyword {unknown[0]!r} in 'for'")
        value, index = raw.get("value"), raw.get("index")
        if not isinstance(value, str) or not IDENTIFIER.match(value):
            raise fail("'for' needs 'value', a variable name")
        if index is not None and (not isinstance(index, str) or not IDENTIFIER.match(index)):
            raise fail("'index' must be a variable name")
        if ("in" in raw) == ("range" in raw):
            raise fail("'for' needs exactly one of 'in' and 'range'")
        items = rng = None
        if "in" in raw:
            if not isinstance(raw["in"], list) and expression_text(raw["in"]) is None:
                raise fail("'in' must be a list or an expression")
            items = self.template(raw["in"], ctx, fail)
        else:
            r = raw["range"]
            if not ((isinstance(r, list) and len(r) == 2) or expression_text(r) is not None):
                raise fail("'range' must be a list of two numbers or expressions")
            rng = self.template(r, ctx, fail)
        loop_names = {value} | ({index} if index else set())
        inner = ctx.child(visible=[], in_for=True, in_parallel_for=parallel,
                          defined=set(ctx.defined) | loop_names)
        if parallel:  # each iteration is a branch: the loop variables are its own
            inner.guard = _Guard(frozenset(ctx.defined) - loop_names, ctx.guard.shared if ctx.guard else frozenset())
            inner.in_branch = True
        steps = self.compile_steps(raw.get("steps"), inner, name)
        return ForLoop(value, index, items, rng, steps)

    def compile_parallel(self, name: str, raw: Any, ctx: _Ctx, fail: Any) -> Parallel:
        if not isinstance(raw, dict):
            raise fail("'parallel' must be a map")
        unknown = sorted(set(raw) - {"shared", "concurrency_limit", "exception_policy", "branches", "for"})
        if unknown:
            raise fail(f"unsupported keyword {unknown[0]!r} in 'parallel'")
        policy = raw.get("exception_policy", "continueAll")
        if policy != "continueAll":
            raise fail("exception_policy: only 'continueAll' exists")
        shared = raw.get("shared", [])
        if not isinstance(shared, list) or not all(isinstance(s, str) and IDENTIFIER.match(s) for s in shared):
            raise fail("'shared' must be a list of variable names")
        for s in shared:
            if s not in ctx.defined:
                raise fail(f"shared variable {s!r} must be assigned before the parallel step")
        limit = raw.get("concurrency_limit")
        if limit is not None and not (isinstance(limit, int) and not isinstance(limit, bool) and limit > 0) \
                and expression_text(limit) is None:
            raise fail("'concurrency_limit' must be a positive integer or an expression")
        if ("branches" in raw) == ("for" in raw):
            raise fail("'parallel' needs exactly one of 'branches' and 'for'")
        depth = ctx.parallel_depth + 1  # the limit is checked by conformance.check_workflow after the syntax
        guard = _Guard(frozenset(ctx.defined), frozenset(shared))
        parallel = Parallel(list(shared), self.template(limit, ctx, fail) if limit is not None else None, None, None)
        if "for" in raw:
            parallel.loop = self.compile_for(name, raw["for"], ctx.child(guard=guard, parallel_depth=depth), fail,
                                             parallel=True)
            return parallel
        branches = raw["branches"]
        if not isinstance(branches, list) or len(branches) < 2:
            raise fail("'branches' must list at least two branches")
        if len(branches) > MAX_BRANCHES:
            raise fail(f"a parallel step has at most {MAX_BRANCHES} branches")
        parallel.branches = []
        for item in branches:
            if not isinstance(item, dict) or len(item) != 1:
                raise fail("each branch must be a map with exactly one key, the branch's name")
            ((branch, body),) = item.items()
            if not isinstance(body, dict) or set(body) != {"steps"}:
                raise fail(f"branch {branch!r} must contain only 'steps'")
            inner = ctx.child(visible=[], in_for=False, in_parallel_for=False, in_branch=True, guard=guard,
                              defined=set(ctx.defined), parallel_depth=depth)
            parallel.branches.append(Step(str(branch), "steps", steps=self.compile_steps(body["steps"], inner,
                                                                                          str(branch))))
        return parallel

    def compile_try(self, step: Step, body: dict, ctx: _Ctx, fail: Any) -> None:
        raw = body["try"]
        if not isinstance(raw, dict):
            raise fail("'try' must be a map: a step body or 'steps'")
        step.body = self.compile_step(step.name, raw, ctx)
        if "retry" in body:
            step.retry = self.compile_retry(body["retry"], ctx, fail)
        if "except" in body:
            exc = body["except"]
            if not isinstance(exc, dict) or not set(exc) <= {"as", "steps"} or "steps" not in exc:
                raise fail("'except' must be a map with 'steps' and optionally 'as'")
            as_name = exc.get("as")
            local: set[str] = set()
            if as_name is not None:
                if not isinstance(as_name, str) or not IDENTIFIER.match(as_name):
                    raise fail("'as' must be a variable name")
                local.add(as_name)
            # The except block is a scope of its own (syntax reference, "Catch errors" > "Variable scope",
            # https://cloud.google.com/workflows/docs/reference/syntax/catching-errors): its `as` variable and
            # the variables it creates vanish after it, so they are not "defined" for the steps that follow,
            # and inside a parallel branch the `as` variable is the block's own, never the parent's.
            guard = ctx.guard
            if guard is not None and local:
                guard = _Guard(guard.parent_names - local, guard.shared)
            inner = ctx.child(guard=guard, defined=set(ctx.defined) | local)
            step.except_ = Except(as_name, self.compile_steps(exc["steps"], inner, step.name))
        if step.retry is None and step.except_ is None:
            raise fail("'try' needs 'retry' or 'except'")

    def compile_retry(self, raw: Any, ctx: _Ctx, fail: Any) -> Retry:
        if expression_text(raw) is not None:
            return Retry(self.template(raw, ctx, fail), None, None, None, None, None)
        if not isinstance(raw, dict):
            raise fail("'retry' must be a default policy expression or a map")
        unknown = sorted(set(raw) - {"predicate", "max_retries", "backoff"})
        if unknown:
            raise fail(f"unsupported keyword {unknown[0]!r} in 'retry'")
        for key in ("predicate", "max_retries", "backoff"):
            if key not in raw:
                raise fail(f"'retry' needs {key!r} when no default policy is used")
        if expression_text(raw["predicate"]) is None:
            raise fail("'predicate' must be an expression such as ${http.default_retry_predicate}")
        backoff = raw["backoff"]
        if expression_text(backoff) is not None:
            b = self.template(backoff, ctx, fail)
            return Retry(None, self.template(raw["predicate"], ctx, fail), self.template(raw["max_retries"], ctx, fail),
                         b, None, None)
        if not isinstance(backoff, dict) or set(backoff) != {"initial_delay", "max_delay", "multiplier"}:
            raise fail("'backoff' needs exactly 'initial_delay', 'max_delay' and 'multiplier'")
        return Retry(None, self.template(raw["predicate"], ctx, fail), self.template(raw["max_retries"], ctx, fail),
                     self.template(backoff["initial_delay"], ctx, fail), self.template(backoff["max_delay"], ctx, fail),
                     self.template(backoff["multiplier"], ctx, fail))

    # ---------------------------------------------------------------------------------- expressions

    def template(self, value: Any, ctx: _Ctx, fail: Any) -> Any:
        """A value with its ``${}`` strings parsed (checked now, evaluated at run time)."""
        text = expression_text(value)
        if text is not None:
            try:
                node = parse_expression(text)
            except ExpressionSyntaxError as exc:
                raise fail(str(exc)) from None
            self.check_expression(node, text, ctx, fail)
            return Expr(node, text)
        if isinstance(value, list):
            return [self.template(v, ctx, fail) for v in value]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise fail(f"map keys must be strings, got {k!r}")
                out[k] = self.template(v, ctx, fail)
            return out
        if value is None or isinstance(value, bool | int | float | str):
            return value
        raise fail(f"unsupported value {value!r}")

    def check_expression(self, node: Node, text: str, ctx: _Ctx, fail: Any) -> None:
        for n in walk(node):
            if not isinstance(n, Call):
                continue
            count = len(n.args)
            if n.func == "if":
                if count != 3:
                    raise fail(f"if() takes 3 arguments in {text!r}")
            elif n.func in self.params:
                params = self.params[n.func]
                required = sum(1 for p in params if not p.has_default)
                if not required <= count <= len(params):
                    raise fail(f"subworkflow {n.func!r} takes {required} to {len(params)} arguments, got {count}")
            elif n.func in FUNCTIONS:
                func = FUNCTIONS[n.func]
                if func.blocking:
                    raise fail(f"{n.func} is a blocking call and cannot be used in an expression; use a call step")
                if not len(func.required()) <= count <= len(func.params):
                    raise fail(f"{n.func}() takes {len(func.required())} to {len(func.params)} arguments, got {count}")
            else:
                raise fail(f"{refusal(n.func)} (in {text!r})")


def compile_program(source: str | bytes | dict | list) -> Program:
    """Parse and check a workflow definition; raises :class:`WorkflowSyntaxError`.

    After the syntax, the quotas page's deploy-time limits (:func:`conformance.check_workflow`): the
    first one passed is the error, as the service refuses the deployment.
    """
    document = load_source(source)
    program = Compiler(document).compile()
    violations = conformance.check_workflow(source if isinstance(source, str | bytes) else document)
    if violations:
        first = violations[0]
        sub, _, path = first.where.partition(".")
        detail = f"{first.detail} (quotas page, {first.limit.replace('_', ' ')} limit)"
        if first.where == "workflow":
            raise WorkflowSyntaxError(detail)
        raise WorkflowSyntaxError(detail, subworkflow=sub, step=path.rpartition(".")[2] or None)
    return program
