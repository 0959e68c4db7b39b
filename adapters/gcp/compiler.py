"""IR -> Google Cloud Workflows YAML (``main`` plus one subworkflow per sub-pipeline).

Each (sub)workflow keeps ``params`` (the input with defaults applied) and ``results`` (node id ->
result; ``null`` when the node's guard was false). Tasks are ``http.post`` calls to their Cloud
Function with ``auth: OIDC``; the body carries the arguments as IR values plus only the results they
reference and the params, and the shim resolves them with ``strato.ir.resolve_value``, so
addressing means exactly what it means on the local runner. Values the workflow itself needs (map
items, sub-pipeline inputs, the output, condition operands) are read with the ``strato_get`` helper
subworkflow, which gives ``null`` for a missing key or index instead of raising.

The DAG becomes ``parallel`` branches (``shared: [results]``) through :mod:`strato.adapters.structure`;
``map`` a ``parallel for`` collecting into a shared map by index; guards ``switch``; waits
``sys.sleep``; retries ``try``/``retry`` with a predicate subworkflow on the Strato error name;
catches ``except`` calling the handler's function with ``{"error", "cause"}``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from strato import ir
from strato.errors import Diagnostic
from strato.graph import dependencies, guard_chain
from strato.ir import ObjectCreatedSpec, expand_error_names

from ..common.reads import read_inline
from ..structure import Block, Par, Seq, Step, extra_wait_warnings, structure
from .concurrency import ConcurrencyError, Planner, call_order
from .conformance import MAX_ASSIGNMENTS, MAX_BRANCHES, MAX_EXPRESSION_CHARS, MAX_PARALLEL_DEPTH, MAX_SOURCE_BYTES
from .naming import (
    FUNCTIONS_URL_ENV,
    Names,
    function_name,
    function_url_expression,
    part_name,
    subworkflow_name,
    workflow_name,
)
from .payloads import REF
from .triggers import FINALIZED

# The deploy-time limits of the quotas page (https://cloud.google.com/workflows/quotas) live in
# .conformance, which also checks a definition against them; the compiler builds within them.
MAX_EXPRESSION_LENGTH = MAX_EXPRESSION_CHARS  # one ${...} string, counted whole
# The estimated size of a part's own steps: the helpers (about 8 KB) and the sub-pipelines it calls
# come on top, and the rendered sources are checked against MAX_SOURCE_BYTES.
PART_BYTES = 80 * 1024
PART_ARGUMENT_BYTES = 30 * 1024  # under the 32 KB execution argument (quotas page), leaving room for framing
CONNECTOR_TIMEOUT = 31_536_000  # a part may run as long as an execution may (one year)
PAR_INDENT = 10  # columns a parallel branch indents its steps by
# Parallel steps nest at most MAX_PARALLEL_DEPTH deep; a ``parallel for`` (a map) counts as one. Deeper
# parallel blocks run their branches in sequence.
PART_CALL_BYTES = 700  # what calling a part takes in its caller (the call, the merge, the release)
MAX_VARIABLE_BYTES = 512 * 1024
MAX_CONCURRENCY = 20
MAX_HTTP_TIMEOUT = 1800
TIMEOUT_ERROR = "TaskTimeout"
# strato.context()'s run: the root execution's id (https://cloud.google.com/workflows/docs/reference/
# environment-variables) and the sub-pipeline call prefix of its task ids
RUN_CONTEXT = {"run": '${sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")}', "prefix": ""}


@dataclass
class Compiled:
    """The workflow document (main, sub-pipelines, helpers) with compile warnings and errors."""

    document: dict[str, Any]
    source: str = ""
    warnings: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    origins: dict[int, tuple[ir.PipelineIR, ir.Node]] = field(default_factory=dict, repr=False)
    parts: dict[str, dict[str, Any]] = field(default_factory=dict)  # workflow id -> document of each part
    part_sources: dict[str, str] = field(default_factory=dict)  # workflow id -> its YAML

    def sources(self, root_name: str) -> dict[str, str]:
        """Every workflow to deploy, by workflow id: the root's, then its parts."""
        return {workflow_name(root_name): self.source, **self.part_sources}


def compile_pipeline(root: ir.PipelineIR, part_bytes: int = PART_BYTES) -> Compiled:
    """The root workflow and, for a pipeline over what one workflow's source holds, its parts.

    A part is a workflow of its own that the root (or another part) runs with the Workflow Executions
    connector; ``part_bytes`` is the estimated size of a part's own steps. Estimates are checked against
    the rendered sources, and a smaller budget is tried when one came out too large.
    """
    for attempt in range(4):
        out = _compile(root, part_bytes)
        sizes = [len(out.source.encode()), *(len(src.encode()) for src in out.part_sources.values())]
        if not out.parts or max(sizes) <= MAX_SOURCE_BYTES or attempt == 3:
            break
        part_bytes = int(part_bytes * 0.7)
    _check_sizes(root, out)
    return out


def _compile(root: ir.PipelineIR, part_bytes: int) -> Compiled:
    constants: dict[str, Any] = {}
    token = _CONSTANTS.set(constants)
    try:
        return _compile_with(root, part_bytes, constants)
    finally:
        _CONSTANTS.reset(token)


def _compile_with(root: ir.PipelineIR, part_bytes: int, constants: dict[str, Any]) -> Compiled:
    out = Compiled({})
    helpers = _Helpers()
    helpers.constants = constants
    main = _Subworkflow(root, root, out, helpers, part_bytes)
    out.document["main"] = main.build()
    # a sub-pipeline's parallel steps nest inside those around its calls: build callers first
    depths: dict[str, int] = {}
    built: dict[str, dict[str, Any]] = {}

    def called_at(caller: _Subworkflow) -> None:
        for node in caller.p.nodes:
            if isinstance(node, ir.SubPipelineNode):
                depths[node.pipeline] = max(depths.get(node.pipeline, 0), caller._depth.get(node.id, 0))

    called_at(main)
    for name in _callers_first(root):
        sub = _Subworkflow(root.subpipelines[name], root, out, helpers, base_depth=depths.get(name, 0))
        built[name] = sub.build()
        called_at(sub)
    subs = {subworkflow_name(name): built[name] for name in sorted(built)}
    out.document.update(subs)
    if main.parts:
        helpers.part_function = function_name(root.name, sorted(root.tasks)[0])
    helper_doc = helpers.document()
    out.document.update(helper_doc)
    title = f"Strato pipeline {root.name} (IR {root.hash[:12]})"
    for name, (part_main, called) in main.parts.items():
        document = {"main": part_main, **{sub: subs[sub] for sub in sorted(called)}, **helper_doc}
        out.parts[name] = document
    _bound_concurrency(root, out, out.document)
    for document in out.parts.values():
        _bound_concurrency(root, out, document)
    out.source = to_yaml(out.document, title)
    out.part_sources = {name: to_yaml(document, f"{title}: part {name}") for name, document in out.parts.items()}
    return out


def _longest_expression(document: Any) -> str:
    """The longest ``${}`` expression's text in a workflow document (iteratively: documents are deep)."""
    longest, todo = "", [document]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            todo.extend(value.values())
            todo.extend(k for k in value if isinstance(k, str) and k.startswith("${"))
        elif isinstance(value, list):
            todo.extend(value)
        elif (isinstance(value, str) and value.startswith("${") and value.endswith("}")
              and len(value) - 3 > len(longest)):
            longest = value[2:-1]
    return longest


def _callers_first(root: ir.PipelineIR) -> list[str]:
    """Sub-pipeline names, each after every sub-pipeline that calls it."""
    calls = {name: {n.pipeline for n in p.nodes if isinstance(n, ir.SubPipelineNode)}
             for name, p in root.subpipelines.items()}
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:  # depth-first post-order over callees, reversed below
        if name in seen:
            return
        seen.add(name)
        for callee in sorted(calls.get(name, ())):
            visit(callee)
        order.append(name)

    for name in sorted(root.subpipelines):
        visit(name)
    return order[::-1]


def _check_sizes(root: ir.PipelineIR, out: Compiled) -> None:
    for name, source in [("main", out.source), *out.part_sources.items()]:
        size = len(source.encode())
        if size > MAX_SOURCE_BYTES:
            what = "the workflow source" if name == "main" else f"part {name}"
            out.errors.append(Diagnostic(
                f"{what} is {size:,} bytes, over Cloud Workflows' 128 KB (https://cloud.google.com/workflows/quotas)"
                "; reduce literal arguments or split a sub-pipeline that is this large into smaller ones",
                root.location, f"pipeline {root.name!r} (gcp)"))
    for name, document in [("main", out.document), *out.parts.items()]:
        longest = _longest_expression(document)
        if len(longest) + 3 > MAX_EXPRESSION_LENGTH:  # counted as the whole ${...} string (conformance.py)
            where = "" if name == "main" else f" (part {name})"
            out.errors.append(Diagnostic(
                f"an expression of the workflow{where} is {len(longest):,} characters, over the "
                f"{MAX_EXPRESSION_LENGTH} Cloud Workflows allows (https://cloud.google.com/workflows/quotas): "
                f"{longest[:80]}...; compare a shorter field or a smaller literal", root.location,
                f"pipeline {root.name!r} (gcp)"))
    literal_bytes = _literal_bytes(root)
    if literal_bytes > MAX_VARIABLE_BYTES // 2:
        out.errors.append(Diagnostic(
            f"defaults and literal arguments alone take about {literal_bytes:,} bytes of workflow variables; "
            "Cloud Workflows holds at most 512 KB: pass large data by reference (a file path or URI)",
            root.location, f"pipeline {root.name!r} (gcp)"))


def _bound_concurrency(root: ir.PipelineIR, out: Compiled, document: dict[str, Any]) -> None:
    """At most 20 branches and iterations at once per execution, across nested parallel steps and
    subworkflows: lower map limits and limit parallel steps where needed (see :mod:`.concurrency`)."""
    pipelines = {"main": root, **{subworkflow_name(n): p for n, p in root.subpipelines.items()}}
    limited: list[int] = []

    def on_limit(parallel: dict[str, Any], new: int, old: int | None) -> None:
        origin = out.origins.get(id(parallel))
        if origin is not None:
            pipeline, node = origin
            asked = node.max_concurrency if isinstance(node, ir.MapNode) else None
            if asked is not None and new < asked:
                out.warnings.append(Diagnostic(
                    f"map {node.id!r} runs at most {new} items at a time instead of max_concurrency={asked}: "
                    f"Cloud Workflows runs at most {MAX_CONCURRENCY} parallel branches and iterations at once per "
                    "execution, and other branches may run beside it", node.location,
                    f"pipeline {pipeline.name!r} (gcp)", "warning"))
            return
        limited.append(new)

    planner = Planner(document, MAX_CONCURRENCY, on_limit)
    try:
        planner.plan(call_order(document))
    except ConcurrencyError as exc:
        pipeline = pipelines.get(str(exc), root)
        out.errors.append(Diagnostic(
            f"parallel steps nest too deeply: even one branch at a time at every level needs "
            f"{planner.subworkflow(str(exc), floor=True)} concurrent branches, over Cloud Workflows' "
            f"{MAX_CONCURRENCY} per execution; run part of the pipeline in sequence or as a separate workflow",
            pipeline.location, f"pipeline {pipeline.name!r} (gcp)"))
        return
    if limited:
        out.warnings.append(Diagnostic(
            f"{len(limited)} parallel step(s) run only {min(limited)} to {max(limited)} of their branches at a time "
            f"(concurrency_limit): Cloud Workflows runs at most {MAX_CONCURRENCY} parallel branches and iterations "
            "at once per execution", root.location, f"pipeline {root.name!r} (gcp)", "warning"))


def to_yaml(document: dict[str, Any], title: str) -> str:
    """Deterministic YAML: insertion order, block style, no aliases, fixed width."""
    body = yaml_dump(document)
    return f"# {title}\n{body}"


def yaml_dump(document: Any) -> str:
    """PyYAML's C emitter when built with libyaml (the same bytes, several times faster), else its own."""
    import yaml

    base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class _Dumper(base):  # type: ignore[misc, valid-type]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=10_000, indent=2)


def _literal_bytes(root: ir.PipelineIR) -> int:
    """What literals hold in a workflow's variables at once: the defaults (``params`` for the whole run),
    plus the largest call's literal arguments (its request body while it runs) or map's literal items."""
    total, largest = 0, 0
    for p in (root, *root.subpipelines.values()):
        total += len(json.dumps(p.defaults()))
        for node in p.nodes:
            values = [v for v in getattr(node, "args", {}).values() if isinstance(v, ir.Literal)]
            if isinstance(node, ir.MapNode) and isinstance(node.items, ir.Literal):
                values.append(node.items)
            largest = max(largest, sum(len(json.dumps(v.value)) for v in values))
    return total + largest


@dataclass
class _Unit:
    """Steps of a workflow that run some nodes (usually by calling a part), and their estimated size."""

    steps: list[dict[str, Any]]
    nodes: list[str]
    cost: int
    # the merge assignments of its part calls, (assign list, key variable, answer variable), and the
    # ``shared`` lists of its parallel steps: a part of parts extends them to collect what it added
    puts: list[tuple[list[dict[str, Any]], str, str]] = field(default_factory=list)
    shared: list[list[str]] = field(default_factory=list)


def _nodes(block: Block) -> list[str]:
    if isinstance(block, Step):
        return [block.node]
    return [n for item in (block.items if isinstance(block, Seq) else block.branches) for n in _nodes(item)]


def error_names(on: tuple[str, ...] | None) -> list[str] | None:
    """The Strato error names an ``on=`` filter selects (None: any)."""
    return None if on is None else list(expand_error_names(on))


# ------------------------------------------------------------------------------------ expressions
def expr_literal(value: Any) -> str:
    """A JSON value as ``${}`` expression text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(expr_literal(v) for v in value) + "]"
    constants = _CONSTANTS.get()
    if constants is not None:  # no map literal inside ${}: a helper subworkflow returns it as YAML data
        name = "strato_const_" + hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]
        constants[name] = value
        return f"{name}()"
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {expr_literal(v)}" for k, v in value.items()) + "}"


# The map literals of the workflow being compiled, by helper name (see expr_literal).
_CONSTANTS: ContextVar[dict[str, Any] | None] = ContextVar("strato_gcp_constants", default=None)


def literal_data(value: Any) -> Any:
    """A JSON value as YAML data; a string that Workflows would read as ``${...}`` is quoted inside one."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return "${" + json.dumps(value, ensure_ascii=False) + "}"
        return value
    if isinstance(value, (list, tuple)):
        return [literal_data(v) for v in value]
    if isinstance(value, dict):
        return {k: literal_data(v) for k, v in value.items()}
    return value


def _address(base: str, path: tuple[ir.PathItem, ...]) -> str:
    """Null-safe addressing as an expression (``strato.ir.address``): runs of keys through strato_get."""
    expr, run = base, list[str | int]()
    for part in path:
        if isinstance(part, int) and part < 0:
            if run:
                expr, run = f"strato_get({expr}, {expr_literal(run)})", []
            expr = f"strato_index({expr}, {part})"
        else:
            run.append(part)
    if run:
        expr = f"strato_get({expr}, {expr_literal(run)})"
    return expr


def value_expr(value: ir.Value) -> str:
    """An IR value as expression text over ``results`` and ``params``."""
    if isinstance(value, ir.Literal):
        return expr_literal(value.value)
    if isinstance(value, ir.Ref):
        return _address(f"results[{expr_literal(value.node)}]", value.path)
    if isinstance(value, ir.Param):
        return _address(f"map.get(params, {expr_literal(value.name)})", value.path)
    if isinstance(value, ir.ListOf):
        return "[" + ", ".join(value_expr(v) for v in value.items) + "]"
    return "{" + ", ".join(f"{expr_literal(k)}: {value_expr(v)}" for k, v in value.entries) + "}"


def value_template(value: ir.Value) -> Any:
    """An IR value as YAML data with ``${}`` leaves (readable where the structure is static)."""
    if isinstance(value, ir.Literal):
        return literal_data(value.value)
    if isinstance(value, ir.ListOf):
        return [value_template(v) for v in value.items]
    if isinstance(value, ir.DictOf):
        return {k: value_template(v) for k, v in value.entries}
    return "${" + value_expr(value) + "}"


def condition_expr(cond: ir.Condition) -> str:
    """A condition with ``strato.ir.compare``'s meaning; never raises on a missing value or null."""
    if isinstance(cond, ir.AllOf):
        return " and ".join(f"({condition_expr(c)})" for c in cond.items)
    if isinstance(cond, ir.AnyOf):
        return " or ".join(f"({condition_expr(c)})" for c in cond.items)
    if isinstance(cond, ir.Not):
        return f"not ({condition_expr(cond.item)})"
    left, op, right = value_expr(cond.left), cond.op, cond.right
    if op in ("==", "!="):  # Workflows equality is JSON equality: 1 == 1.0, true is not 1, deep for lists/maps
        return f"{left} {op} {expr_literal(right)}"
    if isinstance(right, bool) or not isinstance(right, (int, float, str)):
        return "false"  # ordering holds only between two numbers or two strings
    test = "strato_is_string" if isinstance(right, str) else "strato_is_number"
    return f"{test}({left}) and {left} {op} {expr_literal(right)}"


# ------------------------------------------------------------------------------------- helpers
def _step(name: str, body: dict[str, Any]) -> dict[str, Any]:
    return {name: body}


def _ret(value: Any) -> dict[str, Any]:
    return {"return": value}


class _Helpers:
    """Helper subworkflows shared by the whole file: addressing, type tests, error mapping, predicates."""

    def __init__(self) -> None:
        self.predicates: dict[tuple[str, ...], str] = {}
        self.calls: dict[float, str] = {}
        self.offloaded = False  # strato_offloaded, strato_cloud_event, strato_json_type: only when used
        self.cloud_event = False
        self.json_type = False
        self.part_function: str | None = None  # strato_part, strato_unpack: when the pipeline has parts
        self.constants: dict[str, Any] = {}  # strato_const_*: map literals returned as YAML data

    def call(self, timeout: float) -> str:
        """The ``strato_call`` helper for a timeout (``http.post`` takes its timeout as a number, not an expression)."""
        if timeout not in self.calls:
            suffix = "" if timeout == MAX_HTTP_TIMEOUT else "_" + f"{float(timeout):g}".replace(".", "_")
            self.calls[timeout] = f"strato_call{suffix}"
        return self.calls[timeout]

    def predicate(self, names: list[str]) -> str:
        key = tuple(names)
        if key not in self.predicates:
            digest = hashlib.sha256("\n".join(key).encode()).hexdigest()[:8]
            self.predicates[key] = f"strato_retry_{digest}"
        return self.predicates[key]

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "strato_get": {"params": ["value", "path"], "steps": [
                _step("walk", {"for": {"value": "key", "in": "${path}", "steps": [
                    _step("down", {"try": {"steps": [_step("read", {"assign": [{"value": "${value[key]}"}]})]},
                                   "except": {"as": "missing", "steps": [_step("absent", _ret(None))]}})]}}),
                _step("found", _ret("${value}"))]},
            "strato_index": {"params": ["value", "index"], "steps": [
                _step("read", {"try": {"steps": [_step("at", _ret("${value[len(value) + index]}"))]},
                               "except": {"as": "missing", "steps": [_step("absent", _ret(None))]}})]},
            # Type tests from the + conversion table (https://cloud.google.com/workflows/docs/reference/syntax/
            # datatypes): a number plus 0 is itself, a string plus 0 is another string ("a0"); a string plus ""
            # is itself, a number or boolean plus "" is a string (not equal to it); anything else fails.
            # Failures of a task call that are not the task's: the function's answer to a task error is a 500
            # whose body names the error (adapters/gcp/shim.py), never retried here.
            "strato_transient": {"params": ["e"], "steps": [
                _step("read", {"assign": [{"tags": '${default(map.get(e, "tags"), [])}'},
                                          {"code": '${default(map.get(e, "code"), 0)}'},
                                          {"body": '${map.get(e, "body")}'}]}),
                _step("decide", {"switch": [
                    {"condition": '${"ConnectionError" in tags or "ConnectionFailedError" in tags}', "return": True},
                    {"condition": "${code == 429 or code == 502 or code == 503 or code == 504}", "return": True},
                    {"condition": '${code == 500 and map.get(body, "error") == null}', "return": True}]}),
                _step("task_error", _ret(False))]},
            "strato_is_number": {"params": ["value"], "steps": [
                _step("probe", {"try": {"steps": [_step("add", {"assign": [{"same": "${value + 0 == value}"}]})]},
                                "except": {"as": "other", "steps": [_step("other_type", _ret(False))]}}),
                _step("number", _ret("${same}"))]},
            "strato_is_string": {"params": ["value"], "steps": [
                _step("probe", {"try": {"steps": [_step("concat", {"assign": [{"same": '${value + "" == value}'}]})]},
                                "except": {"as": "other", "steps": [_step("other_type", _ret(False))]}}),
                _step("string", _ret("${same}"))]},
            "strato_error": {"params": ["e", "timeout_cause"], "steps": [
                _step("mapped", {"switch": [{  # already Strato's {"error", "cause"}: a task call's failure
                    "condition": '${map.get(e, "tags") == null and map.get(e, "error") != null}', "return": "${e}"}]}),
                _step("read", {"assign": [{"tags": '${default(map.get(e, "tags"), [])}'},
                                          {"body": '${map.get(e, "body")}'},
                                          {"message": '${default(map.get(e, "message"), "")}'}]}),
                _step("timeout", {"switch": [{"condition": '${"TimeoutError" in tags}',
                                              "return": {"error": TIMEOUT_ERROR, "cause": "${timeout_cause}"}}]}),
                _step("task_error", {"try": {"steps": [_step("structured", {"switch": [{
                    "condition": '${"HttpError" in tags and "error" in body}',
                    "return": {"error": "${body.error}", "cause": '${default(map.get(body, "cause"), "")}'}}]})]},
                    "except": {"as": "unstructured", "steps": [_step("as_workflows_error", {"assign": [
                        {"body": None}]})]}}),
                _step("named", {"switch": [{"condition": "${len(tags) > 0}",
                                            "return": {"error": "${tags[0]}", "cause": "${message}"}}]}),
                _step("unnamed", _ret({"error": "Error", "cause": "${message}"}))]},
        }
        if self.cloud_event:
            doc["strato_cloud_event"] = {"params": ["value"], "steps": [
                _step("probe", {"try": {"steps": [_step("check", _ret(
                    f'${{value.type == {expr_literal(FINALIZED)} and "bucket" in value.data}}'))]},
                    "except": {"as": "other", "steps": [_step("not_an_event", _ret(False))]}})]}
        if self.offloaded:
            doc["strato_offloaded"] = _offloaded_helper()
        if self.part_function is not None:
            doc.update(_part_helpers(self.part_function))
        for name, value in sorted(self.constants.items()):
            doc[name] = {"steps": [_step("value", _ret(literal_data(value)))]}
        if self.json_type:  # a value's kind in the words of strato.ir.json_type, for the same messages
            doc["strato_json_type"] = {"params": ["value"], "steps": [
                _step("simple", {"switch": [{"condition": "${value == null}", "return": "null"},
                                            {"condition": "${value == true or value == false}", "return": "a boolean"},
                                            {"condition": "${strato_is_number(value)}", "return": "a number"},
                                            {"condition": "${strato_is_string(value)}", "return": "a string"}]}),
                _step("probe", {"try": {"steps": [_step("object", {"assign": [{"names": "${keys(value)}"}]})]},
                                "except": {"as": "other", "steps": [_step("list", _ret("a list"))]}}),
                _step("an_object", _ret("an object"))]}
        for timeout, name in sorted(self.calls.items(), key=lambda item: item[1]):
            doc[name] = _call_helper(timeout)
        for names, name in sorted(self.predicates.items(), key=lambda item: item[1]):
            doc[name] = {"params": ["e"], "steps": [  # the names as data: a long list fits no expression
                _step("classify", {"assign": [{"error": '${strato_error(e, "")}'}, {"names": list(names)}]}),
                _step("decide", _ret("${error.error in names}"))]}
        return doc


def _call_helper(timeout: float) -> dict[str, Any]:
    """A task's call: the POST to its function (``function``), transient failures retried apart from the task's
    Retry (whose attempts they never use), any failure raised as Strato's ``{"error", "cause"}``."""
    cause = expr_literal(f"' did not finish within its timeout of {float(timeout):g}s")
    return {"params": ["function", "body"], "steps": [
        _step("post", {"try": {"steps": [_step("request", {
            "call": "http.post", "result": "response", "args": {
                "url": f'${{sys.get_env("{FUNCTIONS_URL_ENV}") + "/" + function}}', "auth": {"type": "OIDC"},
                "timeout": timeout, "body": "${body}"}})]},
            "retry": TRANSIENT_RETRY, "except": {"as": "e", "steps": [_step("failed", {
                "raise": f"""${{strato_error(e, "task '" + body.task + {cause})}}"""})]}}),
        _step("answer", _ret("${response.body}"))]}


RUN_EXECUTION = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run"


def _part_helpers(function: str) -> dict[str, Any]:
    """``strato_part`` runs a part with the run's params and results so far and returns the results it
    added; a part's failure comes back as data (``{"failed": error}``) and is raised again here, so the
    run fails with the task's own error. Over the 32 KB an execution's argument may take, the argument
    goes by reference: a function stores it (``op: stash``) and the part's ``strato_unpack`` reads it back."""
    url = f'${{sys.get_env("{FUNCTIONS_URL_ENV}") + "/{function}"}}'
    payload = {"params": "${params}", "results": "${results}", "ctx": "${ctx}"}

    def run(name: str, argument: Any) -> dict[str, Any]:
        return _step(name, {"call": RUN_EXECUTION, "result": "answer", "args": {
            "workflow_id": "${workflow}", "argument": argument, "connector_params": {"timeout": CONNECTOR_TIMEOUT}}})

    def post(name: str, body: dict[str, Any], result: str) -> dict[str, Any]:
        return _step(name, {"try": {"steps": [_step(f"{name}_call", {
            "call": "http.post", "result": result, "args": {"url": url, "auth": {"type": "OIDC"},
                                                            "timeout": MAX_HTTP_TIMEOUT, "body": body}})]},
            "retry": TRANSIENT_RETRY})

    stashed = ir.value_to_dict(ir.Ref("stashed", ()))
    return {
        "strato_part": {"params": ["workflow", "params", "results", "ctx"], "steps": [
            _step("measure", {"assign": [{"size": "${len(json.encode(params)) + len(json.encode(results))}"}]}),
            _step("route", {"switch": [
                {"condition": f"${{size > {PART_ARGUMENT_BYTES}}}", "steps": [
                    post("stash", {"op": "stash", "value": payload}, "reference"),
                    run("run_by_reference", {"stashed": "${reference.body}"})]},
                {"condition": True, "steps": [run("run_inline", payload)]}]}),
            _step("check", {"switch": [{"condition": '${"failed" in answer}', "raise": "${answer.failed}"}]}),
            _step("added", _ret("${answer.results}"))]},
        "strato_unpack": {"params": ["input"], "steps": [
            _step("route", {"switch": [{"condition": '${"stashed" in input}', "steps": [
                post("fetch", {"op": "resolve", "value": stashed, "refs": {"stashed": "${input.stashed}"},
                               "params": {}}, "fetched"),
                _step("by_reference", _ret("${fetched.body}"))]}]}),
            _step("inline", _ret("${input}"))]},
    }


def _offloaded_helper() -> dict[str, Any]:
    """``strato_offloaded(value)``: is ``value`` an envelope, or a list (a map's result) holding one?"""
    probe = '${"' + REF + '" in value}'
    element = '${"' + REF + '" in item}'
    return {"params": ["value"], "steps": [
        _step("whole", {"try": {"steps": [_step("envelope", {"switch": [{"condition": probe, "return": True}]})]},
                        "except": {"as": "scalar", "steps": [_step("plain", _ret(False))]}}),
        _step("elements", {"try": {"steps": [_step("each", {"for": {"value": "item", "in": "${value}", "steps": [
            _step("element", {"try": {"steps": [_step("element_envelope", {"switch": [
                {"condition": element, "return": True}]})]},
                "except": {"as": "other", "steps": [_step("not_an_envelope", {"assign": [{"skipped": True}]})]}}),
        ]}})]}, "except": {"as": "not_a_list", "steps": [_step("a_map", _ret(False))]}}),
        _step("inline", _ret(False))]}


def _re2_escape(text: str) -> str:
    """Literal text inside an RE2 pattern (``text.match_regex``)."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}" else c for c in text)


# ---------------------------------------------------------------------------------- subworkflow
class _Subworkflow:
    def __init__(self, pipeline: ir.PipelineIR, root: ir.PipelineIR, out: Compiled, helpers: _Helpers,
                 part_bytes: int | None = None, base_depth: int = 0):
        self.p, self.root, self.out, self.helpers = pipeline, root, out, helpers
        self.base_depth = base_depth  # parallel steps around this subworkflow's deepest call
        self.part_bytes = part_bytes  # split into parts past this estimate (the root pipeline only)
        self.parts: dict[str, tuple[dict[str, Any], set[str]]] = {}  # id -> (main, sub-pipelines it calls)
        self._rendered: dict[str, list[dict[str, Any]]] = {}
        self._depth: dict[str, int] = {}  # node -> parallel steps around it
        self._serialised = 0
        self._sizes: dict[int, tuple[int, int]] = {}
        self.steps = Names()
        self.vars = Names()
        for reserved in ("input", "defaults", "params", "results"):
            self.vars(reserved)
        self.subject = f"pipeline {pipeline.name!r} (gcp)"
        self.keep = read_inline(pipeline)  # paths switch steps and maps read: kept inline when offloaded
        # The workflow holds every result at once in its 512 KB of variables: each may use 1/share of it
        # (a map over a literal list holds one result per item, twice while they are collected).
        self.share = max(1, sum(2 * len(n.items.value) if isinstance(n, ir.MapNode) and isinstance(n.items, ir.Literal)
                                and isinstance(n.items.value, list) else 1 for n in pipeline.nodes))

    def _offloadable(self, value: ir.Value) -> list[str]:
        """The results ``value`` references that may be envelopes (task and map results not read whole)."""
        out = []
        for ref in sorted(set(ir.value_refs(value))):
            node = self.p.node_by_id[ref]
            if isinstance(node, (ir.TaskNode, ir.MapNode)) and [] not in self.keep.get(ref, []):
                out.append(ref)
        return out

    def _resolved(self, value: ir.Value, target: str | None, hint: str, output: bool = False) -> list[dict[str, Any]]:
        """Steps that assign ``value`` to the variable ``target`` whole (or return it, when ``target`` is
        None): written inline when every result it references is inline, resolved by the shim (envelopes
        materialised) when one was offloaded. Returned straight from the response, a large output is
        held once, not twice, in the workflow's 512 KB of variables."""
        if target is None:
            inline = [_step(self.steps(f"{hint}_inline"), _ret(value_template(value)))]
        else:
            inline = [_step(self.steps(f"{hint}_inline"), {"assign": [{target: value_template(value)}]})]
        offloadable = self._offloadable(value)
        if not offloadable:
            return inline
        self.helpers.offloaded = True
        node = self.p.node_by_id[offloadable[0]]
        spec = self.p.tasks[node.task]  # type: ignore[union-attr]
        refs = sorted(set(ir.value_refs(value)))
        body = {"op": "resolve", "value": literal_data(ir.value_to_dict(value)),
                "refs": {ref: f"${{results[{expr_literal(ref)}]}}" for ref in refs}, "params": "${params}"}
        if output:  # the run's output: offloaded itself when over what the workflow may hold
            body["output"] = True
        response = self.vars(f"r_{hint}")
        call = {"call": "http.post", "args": {"url": function_url_expression(self.root.name, spec.name),
                                              "auth": {"type": "OIDC"}, "timeout": MAX_HTTP_TIMEOUT, "body": body},
                "result": response}
        before, probe = self._combined([f"strato_offloaded(results[{expr_literal(ref)}])" for ref in offloadable],
                                       "or", f"offloaded_{hint}")
        resolve = [_step(self.steps(f"{hint}_resolve"), {"try": {"steps": [_step(self.steps(f"{hint}_call"), call)]},
                                                       "retry": "${http.default_retry}"}),
                   _step(self.steps(f"{hint}_resolved"), _ret(f"${{{response}.body}}") if target is None
                         else {"assign": [{target: f"${{{response}.body}}"}]})]
        return [*before, _step(self.steps(f"{hint}_offloaded"), {"switch": [
            {"condition": probe, "steps": resolve},
            {"condition": True, "steps": inline}]})]

    def build(self) -> dict[str, Any]:
        p = self.p
        triggers = [t for t in p.triggers if isinstance(t, ObjectCreatedSpec)] if p is self.root else []
        # Maps are built as YAML data in assign steps, never as literals inside ${}: the expression
        # reference lists no map literal (https://cloud.google.com/workflows/docs/reference/syntax/expressions;
        # maps: https://cloud.google.com/workflows/docs/reference/syntax/maps).
        merge_input = _step(self.steps("input"), {"switch": [{"condition": "${input != null}", "steps": [
            _step(self.steps("merge_input"), {"assign": [{"params": "${map.merge(defaults, input)}"}]})]}]})
        # the run a task belongs to (strato.context()): the root execution's id, and the call prefix of a
        # sub-pipeline; a subworkflow and a part receive it from their caller
        run_context = [{"ctx": {**RUN_CONTEXT, "pipeline": p.name}}] if p is self.root else []
        if triggers:
            steps: list[dict[str, Any]] = [
                _step(self.steps("init"), {"assign": [{"defaults": literal_data(p.defaults())}]}),
                *self._event_input(triggers),
                _step(self.steps("params"), {"assign": [{"params": "${defaults}"}, {"results": {}}, *run_context]}),
                merge_input]
        else:
            steps = [_step(self.steps("init"), {"assign": [
                {"defaults": literal_data(p.defaults())}, {"params": "${defaults}"}, {"results": {}}, *run_context]}),
                merge_input]
        body: list[dict[str, Any]] = []
        if p.nodes:
            block, extra = structure([n.id for n in p.nodes], dependencies(p))
            block = self._flatten(block, self.base_depth)
            if self._serialised:
                self._warn(None, f"{self._serialised} parallel block(s) nested deeper than Cloud Workflows' "
                                 f"{MAX_PARALLEL_DEPTH} levels of parallel steps run their branches one after another")
            joins = "Cloud Workflows joins parallel branches only at their end"
            for node_id, message in extra_wait_warnings(extra, joins):
                self.out.warnings.append(Diagnostic(message, p.node_by_id[node_id].location, self.subject, "warning"))
            if self.part_bytes is not None and self._size(block)[0] > self.part_bytes:
                body.extend(self._split(block))
            else:
                body.extend(self._block(block))
        if p is self.root and p.hooks:
            steps.extend(self._with_hooks(body))
        else:
            steps.extend(body)
            steps.extend(self._output(None))
        return {"params": ["input"] if p is self.root else ["input", "ctx"], "steps": steps}

    def _output(self, target: str | None) -> list[dict[str, Any]]:
        """Steps returning the pipeline's output (``target`` None) or assigning it to ``target``."""
        p = self.p
        if self._offloadable(p.output):
            return self._resolved(p.output, target, "output", output=True)
        if target is None:
            return [_step(self.steps("output"), _ret(value_template(p.output)))]
        return [_step(self.steps("output"), {"assign": [{target: value_template(p.output)}]})]

    def _with_hooks(self, body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The run's hooks around its steps: a try whose except calls ``on_failure`` and raises the
        original error again, then ``on_success`` before the output is returned
        (https://cloud.google.com/workflows/docs/reference/syntax/catching-errors). A hook's own
        failure is caught and leaves the outcome as it was."""
        failure, success = self.p.hooks.get("on_failure"), self.p.hooks.get("on_success")
        output = self.vars("output") if success is not None else None
        steps = [*body, *self._output(output)]
        if failure is not None:
            error = self.vars("failure")
            steps = [_step(self.steps("run"), {"try": {"steps": steps}, "except": {"as": error, "steps": [
                *self._hook("on_failure", failure, error),
                _step(self.steps("failed"), {"raise": f"${{{error}}}"})]}})]
        if success is not None:
            steps += [*self._hook("on_success", success, None), _step(self.steps("result"), _ret(f"${{{output}}}"))]
        return steps

    def _hook(self, kind: str, hook: ir.HookSpec, error: str | None) -> list[dict[str, Any]]:
        spec, key = self.p.tasks[hook.task], ir.hook_key(kind)
        node = ir.TaskNode(key, spec.name, {}, location=self.p.location)
        status: dict[str, Any] = {"status": "SUCCEEDED", "param": hook.param}
        if error is not None:
            status = {"status": "FAILED", "param": hook.param, "error": f"${{{error}}}"}
        body = {"task": spec.name, "args": literal_data({k: ir.value_to_dict(v) for k, v in sorted(hook.args.items())}),
                "hook": status, "context": {"ctx": "${ctx}", "task_id": key}}
        result, ignored = self.vars(f"{kind}_result"), self.vars(f"{kind}_error")
        return [_step(self.steps(kind), {"try": {"steps": self._call(spec, body, result, kind, node, catch=False)},
                                         "except": {"as": ignored, "steps": [
                                             _step(self.steps(f"{kind}_failed"), {"assign": [{result: None}]})]}})]

    def _event_input(self, triggers: list[ObjectCreatedSpec]) -> list[dict[str, Any]]:
        """Steps turning an Eventarc CloudEvent argument into the run input, as ``triggers.event_input`` does.

        Eventarc starts the workflow with the CloudEvent itself (``type``, ``data.bucket``, ``data.name``,
        ``data.size`` as a string): its fields fill parameters named ``bucket``, ``key`` and ``size`` over
        the matching trigger's static ``input``. Any other argument is the run input as it is.
        """
        self.helpers.cloud_event = True
        names = {param.name for param in self.p.params}
        event, name, size = self.vars("event"), self.vars("object_name"), self.vars("object_size")
        read: list[dict[str, Any]] = [{event: "${input.data}"}, {name: f'${{default(map.get({event}, "name"), "")}}'}]
        fields = {"bucket": f'map.get({event}, "bucket")', "key": f'map.get({event}, "name")', "size": size}
        mapping = [{f"input[{expr_literal(k)}]": f"${{{v}}}"} for k, v in fields.items() if k in names]
        body: list[dict[str, Any]] = [_step(self.steps("event_data"), {"assign": read})]
        if "size" in names:
            body.append(_step(self.steps("event_size"), {"assign": [{size: f'${{map.get({event}, "size")}}'}]}))
            body.append(_step(self.steps("event_size_number"), {"switch": [{
                "condition": f'${{strato_is_string({size}) and text.match_regex({size}, "^[0-9]+$")}}',
                "steps": [_step(self.steps("event_size_int"), {"assign": [{size: f"${{int({size})}}"}]})]}]}))
        choices: list[dict[str, Any]] = []
        for i, trigger in enumerate(triggers):
            tests = [f'map.get({event}, "bucket") == {expr_literal(trigger.bucket)}']
            if trigger.prefix:
                tests.append(f"text.match_regex({name}, {expr_literal('^' + _re2_escape(trigger.prefix))})")
            if trigger.suffix:
                tests.append(f"text.match_regex({name}, {expr_literal(_re2_escape(trigger.suffix) + '$')})")
            merged = [{"input": literal_data(trigger.input or {})}, *mapping]  # the event's fields over its input
            choices.append({"condition": "${" + " and ".join(tests) + "}",
                            "steps": [_step(self.steps(f"event_trigger_{i}"), {"assign": merged})]})
        cause = f"{FINALIZED} event for an object no ObjectCreated trigger of pipeline {self.p.name!r} matches"
        choices.append({"condition": True, "steps": [_step(self.steps("event_unmatched"), {"raise": {
            "error": "ValueError", "cause": cause}})]})
        body.append(_step(self.steps("event_trigger"), {"switch": choices}))
        return [_step(self.steps("event"), {"switch": [{"condition": "${strato_cloud_event(input)}", "steps": body}]})]

    def _warn(self, node: ir.Node | None, message: str) -> None:
        self.out.warnings.append(Diagnostic(message, node.location if node else self.p.location, self.subject,
                                            "warning"))

    # ------------------------------------------------------------------------------ blocks
    def _block(self, block: Block) -> list[dict[str, Any]]:
        if isinstance(block, Step):
            return self._leaf(block.node)
        if isinstance(block, Seq):
            return [step for item in block.items for step in self._block(item)]
        return [self._parallel([self._block(b) for b in block.branches], block)]

    def _flatten(self, block: Block, depth: int) -> Block:
        """``block`` with parallel steps at most MAX_PARALLEL_DEPTH deep and of at most ten branches.

        More than ten branches run as ten lanes, each running its share of the branches in sequence
        (no further nesting); a parallel block at the depth limit runs its branches in sequence. Each
        node's depth is kept, so a map there iterates in sequence too. Results are the same; only what
        runs at once changes.
        """
        if isinstance(block, Step):
            self._depth[block.node] = depth
            return block
        if isinstance(block, Seq):
            return Seq(tuple(self._flatten(item, depth) for item in block.items))
        if depth >= MAX_PARALLEL_DEPTH:
            self._serialised += 1
            return Seq(tuple(self._flatten(branch, depth) for branch in block.branches))
        branches = [self._flatten(branch, depth + 1) for branch in block.branches]
        if len(branches) > MAX_BRANCHES:
            lanes = [branches[i::MAX_BRANCHES] for i in range(MAX_BRANCHES)]
            branches = [lane[0] if len(lane) == 1 else Seq(tuple(lane)) for lane in lanes]
        return Par(tuple(branches))

    def _leaf(self, node_id: str) -> list[dict[str, Any]]:
        """A node's steps, rendered once (sizing a pipeline for parts reads them before placing them)."""
        if node_id not in self._rendered:
            self._rendered[node_id] = self._node(self.p.node_by_id[node_id])
        return self._rendered[node_id]

    # ------------------------------------------------------------------------------ parts
    def _size(self, block: Block) -> tuple[int, int]:
        """(bytes, lines) a block's steps take in YAML at no indentation: an estimate from their compact
        JSON (block-style YAML is about as long, plus indentation), computed once per block, so sizing
        a 20,000-task pipeline stays linear."""
        key = id(block)
        if key not in self._sizes:
            if isinstance(block, Step):
                text = len(json.dumps(self._leaf(block.node), separators=(",", ":"), ensure_ascii=False))
                size = (text * 3 // 2, text // 15 + 1)  # measured: YAML is 1.2-1.5x, a line 15-21 bytes of JSON
            elif isinstance(block, Seq):
                parts = [self._size(item) for item in block.items]
                size = (sum(b for b, _ in parts), sum(n for _, n in parts))
            else:
                parts = [self._size(branch) for branch in block.branches]
                indent = PAR_INDENT * (1 if len(parts) <= MAX_BRANCHES else 2)
                size = (sum(b + n * indent + 40 for b, n in parts) + 80, sum(n + 2 for _, n in parts) + 4)
            self._sizes[key] = size
        return self._sizes[key]

    def _split(self, block: Block) -> list[dict[str, Any]]:
        """Steps running ``block`` as parts, each part's estimated size within ``part_bytes``."""
        return [step for unit in self._units(block) for step in unit.steps]

    def _units(self, block: Block) -> list[_Unit]:
        """``block`` as a sequence of units: steps that call parts, the nodes they run, their size."""
        budget = self.part_bytes or MAX_SOURCE_BYTES
        if isinstance(block, Step) or self._size(block)[0] <= budget:
            return [self._part(self._block(block), _nodes(block))]
        if isinstance(block, Seq):
            units: list[_Unit] = []
            for oversize, group in self._grouped(block.items, lambda item: self._size(item)[0]):
                if oversize:
                    units.extend(self._units(group[0]))
                else:
                    units.append(self._part([step for item in group for step in self._block(item)],
                                            [n for item in group for n in _nodes(item)]))
            return self._fold(units)
        branches: list[_Unit] = []
        for oversize, group in self._grouped(block.branches, self._branch_size):
            if oversize:
                branches.append(self._one(self._units(group[0])))
            elif len(group) == 1:
                branches.append(self._part(self._block(group[0]), _nodes(group[0])))
            else:
                inner = self._parallel([self._block(b) for b in group], Par(tuple(group)))
                branches.append(self._part([inner], [n for b in group for n in _nodes(b)]))
        while len(branches) > MAX_BRANCHES:  # a part of at most ten branches, each one part call
            branches = [chunk[0] if len(chunk) == 1 else self._one([self._parallel_unit(chunk)])
                        for chunk in (branches[i:i + MAX_BRANCHES] for i in range(0, len(branches), MAX_BRANCHES))]
        return branches if len(branches) == 1 else [self._parallel_unit(branches)]

    def _grouped(self, blocks: Sequence[Block], size_of: Callable[[Block], int]) -> Iterator[tuple[bool, list[Block]]]:
        """``blocks`` in order as runs whose sizes add up to within the part budget, each ``(False, run)``;
        a block over the budget on its own comes as ``(True, [block])``, to be split further."""
        budget = self.part_bytes or MAX_SOURCE_BYTES
        group: list[Block] = []
        used = 0
        for block in blocks:
            size = size_of(block)
            if size > budget or (group and used + size > budget):
                if group:
                    yield False, group
                group, used = [], 0
            if size > budget:
                yield True, [block]
                continue
            group.append(block)
            used += size
        if group:
            yield False, group

    def _branch_size(self, branch: Block) -> int:
        """A block's size as a branch of a parallel step: indented one level more, under a branch name."""
        bytes_, lines = self._size(branch)
        return bytes_ + lines * PAR_INDENT + 40

    def _parallel_unit(self, branches: list[_Unit]) -> _Unit:
        step = self._parallel_step([unit.steps for unit in branches])
        shared = next(iter(step.values()))["parallel"]["shared"]
        return _Unit([step], [n for u in branches for n in u.nodes],
                     sum(unit.cost + PART_CALL_BYTES // 2 for unit in branches) + 100,
                     [put for u in branches for put in u.puts], [shared, *(s for u in branches for s in u.shared)])

    def _one(self, units: list[_Unit]) -> _Unit:
        """Units in sequence as one unit: a part of them when they are more than one part call."""
        if len(units) == 1:
            return units[0]
        return self._part([step for unit in units for step in unit.steps], [n for unit in units for n in unit.nodes],
                          units)

    def _fold(self, units: list[_Unit]) -> list[_Unit]:
        """Units in sequence, grouped into parts of parts while they are more than a workflow holds."""
        budget = self.part_bytes or MAX_SOURCE_BYTES
        while sum(unit.cost for unit in units) > budget:
            grouped: list[_Unit] = []
            chunk: list[_Unit] = []
            for unit in units:
                if chunk and sum(u.cost for u in chunk) + unit.cost > budget:
                    grouped.append(self._one(chunk))
                    chunk = []
                chunk.append(unit)
            grouped.append(self._one(chunk))
            units = grouped
        return units

    def _part(self, steps: list[dict[str, Any]], nodes: list[str], inner: list[_Unit] | None = None) -> _Unit:
        """A new part workflow running ``steps`` (the nodes ``nodes``), and the unit that calls it: the
        results it adds that anything outside reads are merged into the caller's ``results``.

        A part that runs nodes returns the results others read by name. A part of parts (``inner``: the
        units of the parts it calls) returns ``added``, where its merges copy what its parts returned:
        naming thousands of results would not fit in its source.
        """
        index = len(self.parts) + 1
        name = part_name(self.root.name, index)
        init: list[dict[str, Any]] = [{"params": "${input.params}"}, {"results": "${input.results}"},
                                      {"ctx": "${input.ctx}"}]
        if inner is None:
            inside = set(nodes)
            readers = self._readers()
            added = [n for n in nodes if any(reader not in inside for reader in readers.get(n, ()))]
            out: Any = {n: f"${{results[{expr_literal(n)}]}}" for n in added}
        else:
            init.append({"added": {}})
            for unit in inner:
                for assign, key, answer in unit.puts:
                    assign.append({f"added[{key}]": f"${{{answer}[{key}]}}"})
                for shared in unit.shared:
                    shared.append("added")
            added, out = [n for unit in inner if unit.puts for n in unit.nodes], "${added}"
        body = [_step("unpack", {"assign": [{"input": "${strato_unpack(input)}"}]}),
                _step("init", {"assign": init}), *steps, _step("added", _ret({"results": out}))]
        main = {"params": ["input"], "steps": [_step("part", {
            "try": {"steps": body}, "except": {"as": "e", "steps": [_step("failed", _ret({"failed": "${e}"}))]}})]}
        self.parts[name] = (main, self._called(nodes))
        answer, key = self.vars(f"part{index}"), self.vars(f"k_part{index}")
        calls = [_step(self.steps(f"run_part{index}"), {"call": "strato_part", "result": answer, "args": {
            "workflow": name, "params": "${params}", "results": "${results}", "ctx": "${ctx}"}})]
        puts = []
        if added:
            assign = [{f"results[{key}]": f"${{{answer}[{key}]}}"}]
            puts.append((assign, key, answer))
            calls.append(_step(self.steps(f"merge_part{index}"), {"for": {
                "value": key, "in": f"${{keys({answer})}}", "steps": [
                    _step(self.steps(f"put_part{index}"), {"assign": assign})]}}))
        calls.append(_step(self.steps(f"release_part{index}"), {"assign": [{answer: None}]}))
        return _Unit(calls, nodes, PART_CALL_BYTES, puts)

    def _readers(self) -> dict[str, set[str]]:
        """Node -> the nodes that read it (``"$output"`` for the run's output)."""
        if not hasattr(self, "_reader_map"):
            readers: dict[str, set[str]] = {}
            for node, deps in dependencies(self.p).items():
                for dep in deps:
                    readers.setdefault(dep, set()).add(node)
            for ref in ir.value_refs(self.p.output):
                readers.setdefault(ref, set()).add("$output")
            self._reader_map = readers
        return self._reader_map

    def _called(self, nodes: list[str]) -> set[str]:
        """The sub-pipeline subworkflows ``nodes`` call, directly or through other sub-pipelines."""
        found: set[str] = set()
        todo = [self.p.node_by_id[n] for n in nodes]
        while todo:
            node = todo.pop()
            if isinstance(node, ir.SubPipelineNode) and subworkflow_name(node.pipeline) not in found:
                found.add(subworkflow_name(node.pipeline))
                todo.extend(self.root.subpipelines[node.pipeline].nodes)
        return found

    def _parallel(self, branches: list[list[dict[str, Any]]], block: Par) -> dict[str, Any]:
        """At most 10 branches per parallel step: more are grouped into nested parallel steps."""
        while len(branches) > MAX_BRANCHES:
            size = math.ceil(len(branches) / MAX_BRANCHES)
            grouped = []
            for i in range(0, len(branches), size):
                chunk = branches[i:i + size]
                grouped.append(chunk[0] if len(chunk) == 1 else [self._parallel_step(chunk)])
            branches = grouped
        return self._parallel_step(branches)

    def _parallel_step(self, branches: list[list[dict[str, Any]]]) -> dict[str, Any]:
        named = [{self.steps("branch"): {"steps": steps}} for steps in branches]
        return _step(self.steps("parallel"), {"parallel": {"shared": ["results"], "branches": named}})

    # ------------------------------------------------------------------------------- nodes
    def _node(self, node: ir.Node) -> list[dict[str, Any]]:
        target = f"results[{expr_literal(node.id)}]"
        if isinstance(node, ir.TaskNode):
            spec = self.p.tasks[node.task]
            body = self._payload(spec, node.args)
            if node.id in self.keep:
                body["keep"] = self.keep[node.id]
            body["context"] = {"ctx": "${ctx}", "task_id": node.id}
            steps = self._call(spec, body, target, node.id, node)
        elif isinstance(node, ir.MapNode):
            steps = self._map(node, target)
        elif isinstance(node, ir.WaitNode):
            seconds: float = node.seconds
            if isinstance(seconds, float) and seconds.is_integer():
                seconds = int(seconds)
            steps = [_step(self.steps(f"wait_{node.id}"), {"call": "sys.sleep", "args": {"seconds": seconds}}),
                     _step(self.steps(f"done_{node.id}"), {"assign": [{target: None}]})]
        else:
            result = self.vars(f"out_{node.id}")
            args = ir.DictOf(tuple(node.args.items()))
            steps = []
            child_input: Any = value_template(args)
            if self._offloadable(args):
                variable = self.vars(f"in_{node.id}")
                steps.extend(self._resolved(args, variable, f"input_{node.id}"))
                child_input = f"${{{variable}}}"
            child_ctx = {"run": "${ctx.run}", "pipeline": "${ctx.pipeline}",
                         "prefix": f"${{ctx.prefix + {expr_literal(node.id + '/')}}}"}
            steps += [_step(self.steps(f"run_{node.id}"), {"call": subworkflow_name(node.pipeline),
                                                           "args": {"input": child_input, "ctx": child_ctx},
                                                           "result": result}),
                      _step(self.steps(f"save_{node.id}"), {"assign": [{target: f"${{{result}}}"}]})]
        if node.guard is None:
            return steps
        before, condition = self._combined(self._guard(node.guard), "and", f"guard_{node.id}")
        return [*before, _step(self.steps(f"when_{node.id}"), {"switch": [
            {"condition": condition, "steps": steps},
            {"condition": True, "steps": [_step(self.steps(f"skip_{node.id}"), {"assign": [{target: None}]})]}]})]

    def _guard(self, guard: ir.Guard) -> list[str]:
        parts = []
        for g in reversed(list(guard_chain(self.p, guard))):
            text = condition_expr(self.p.branch_by_id[g.branch].condition)
            parts.append(f"({text})" if g.arm else f"not ({text})")
        return parts

    def _combined(self, parts: list[str], joiner: str, hint: str) -> tuple[list[dict[str, Any]], str]:
        """``parts`` joined by ``and``/``or`` as a switch condition: one expression when it fits in the 400
        characters an expression may have, else folded into a variable part by part (assign steps of at
        most 50 assignments), each expression short."""
        joined = f" {joiner} ".join(parts)
        if len(joined) + 3 <= MAX_EXPRESSION_LENGTH:  # the whole ${...} string counts
            return [], "${" + joined + "}"
        flag = self.vars(hint)
        assigns: list[dict[str, Any]] = [{flag: joiner == "and"}]
        assigns += [{flag: f"${{{flag} {joiner} {part}}}"} for part in parts]
        steps = [_step(self.steps(f"{hint}_{i // MAX_ASSIGNMENTS}"), {"assign": assigns[i:i + MAX_ASSIGNMENTS]})
                 for i in range(0, len(assigns), MAX_ASSIGNMENTS)]
        return steps, f"${{{flag}}}"

    def _payload(self, spec: ir.TaskSpec, args: dict[str, ir.Value]) -> dict[str, Any]:
        refs: set[str] = set()
        for value in args.values():
            refs.update(ir.value_refs(value))
        return {"task": spec.name,  # an id: the function's catalog says where its code is
                "args": literal_data({k: ir.value_to_dict(v) for k, v in args.items()}),
                "refs": {ref: f"${{results[{expr_literal(ref)}]}}" for ref in sorted(refs)},
                "params": "${params}", "share": self.share}

    def _timeout(self, spec: ir.TaskSpec, node: ir.Node) -> float:
        if spec.timeout is None:
            return MAX_HTTP_TIMEOUT  # the local runner has no timeout; Workflows' default would be 300 s
        timeout = spec.timeout
        return int(timeout) if float(timeout).is_integer() else timeout

    def _call(self, spec: ir.TaskSpec, body: dict[str, Any], target: str, base: str, node: ir.Node,
              catch: bool = True) -> list[dict[str, Any]]:
        """Call ``spec``'s function with ``body`` and assign its result to ``target``, with retry and catch.

        The call itself is the shared ``strato_call`` subworkflow (the POST, its transient retries, the
        error mapped to ``{"error", "cause"}``): each task adds only its body, retry and catch, about a
        third of what inlining the call took, so more tasks fit in a workflow's 128 KB.
        """
        response, error = self.vars(f"r_{base}"), self.vars(f"e_{base}")
        timeout = self._timeout(spec, node)
        call = {"call": self.helpers.call(timeout), "args": {"function": function_name(self.root.name, spec.name),
                                                             "body": body}, "result": response}
        save = _step(self.steps(f"save_{base}"), {"assign": [{target: f"${{{response}}}"}]})
        attempt: dict[str, Any] = {"try": {"steps": [_step(self.steps(f"call_{base}"), call), save]}}
        retry = spec.retry
        counted: list[dict[str, Any]] = []
        if retry is not None and retry.max_retries > 0 and "context" in body:
            # Workflows retries the try block and does not say which attempt it is: count them
            count = self.vars(f"n_{base}")
            body["context"] = {**body["context"], "attempt": f"${{{count}}}"}
            counted = [_step(self.steps(f"attempts_{base}"), {"assign": [{count: 0}]})]
            attempt["try"]["steps"].insert(0, _step(self.steps(f"attempt_{base}"), {"assign": [
                {count: f"${{{count} + 1}}"}]}))
        if retry is not None and retry.max_retries > 0:
            names = error_names(retry.on)
            predicate = "${retry.always}" if names is None else "${" + self.helpers.predicate(names) + "}"
            max_delay = retry.max_delay if retry.max_delay is not None else retry.delay_for(retry.max_retries)
            initial = max(1, math.ceil(retry.delay))
            if initial != retry.delay:
                self._warn(node, f"task {spec.name!r} retry delay {retry.delay:g}s becomes {initial}s: Cloud Workflows "
                                 "backs off in whole seconds (at least 1)")
            attempt["retry"] = {"predicate": predicate, "max_retries": retry.max_retries, "backoff": {
                "initial_delay": initial, "max_delay": max(initial, math.ceil(max_delay)),
                "multiplier": _number(retry.backoff)}}
            if retry.jitter:
                self._warn(node, f"task {spec.name!r}: Cloud Workflows retries cannot jitter; retries wait exactly "
                                 "delay * backoff**n")
        if catch and spec.catch is not None:
            handler = self.p.tasks[spec.catch.handler]
            handler_body = {"task": handler.name, "error": f"${{{error}}}", "handler_param": handler.params[0].name,
                            "share": body.get("share", self.share)}
            if "context" in body:  # the handler's unit, as the local runner keys it: <call>#catch
                handler_body["context"] = {**{k: v for k, v in body["context"].items() if k != "attempt"},
                                           "task_id": f"{body['context']['task_id']}#catch"}
            if "keep" in body:  # the handler's result stands in for the task's: the workflow reads the same paths
                handler_body["keep"] = body["keep"]
            handled = self._call(handler, handler_body, target, f"{base}_catch", node, catch=False)
            names = error_names(spec.catch.on)
            condition: Any = True if names is None else "${" + f"{self.helpers.predicate(names)}({error})" + "}"
            choices: list[dict[str, Any]] = [{"condition": condition, "steps": handled}]
            if names is not None:
                choices.append({"condition": True, "raise": f"${{{error}}}"})
            attempt["except"] = {"as": error, "steps": [_step(self.steps(f"catch_{base}"), {"switch": choices})]}
        if len(attempt) == 1:  # no retry, no catch: the call and the save, without a try around them
            return [_step(self.steps(base), call), save]
        return [*counted, _step(self.steps(base), attempt)]

    def _map(self, node: ir.MapNode, target: str) -> list[dict[str, Any]]:
        spec = self.p.tasks[node.task]
        items, collected = self.vars(f"items_{node.id}"), self.vars(f"m_{node.id}")
        item, index, position = self.vars(f"item_{node.id}"), self.vars(f"i_{node.id}"), self.vars(f"k_{node.id}")
        body = self._payload(spec, node.args)
        if not isinstance(node.items, ir.Literal):  # its items are counted when their number is known
            body["share"] = f"${{{self.share} + 2 * len({items})}}"
        body["item_param"] = node.item_param
        body["item"] = f"${{{item}}}"
        body["context"] = {"ctx": "${ctx}", "task_id": node.id, "map_index": f"${{{index}}}"}
        if node.id in self.keep:
            body["keep"] = self.keep[node.id]
        iteration = self._call(spec, body, f"{collected}[string({index})]", f"{node.id}_item", node)
        loop: dict[str, Any] = {"value": item, "index": index, "in": f"${{{items}}}", "steps": iteration}
        in_sequence = self._depth.get(node.id, 0) >= MAX_PARALLEL_DEPTH
        parallel: dict[str, Any] = {"shared": [collected]}
        parallel["concurrency_limit"] = min(node.max_concurrency or MAX_CONCURRENCY, MAX_CONCURRENCY)
        parallel["for"] = loop
        if in_sequence:
            self._warn(node, f"map {node.id!r} iterates one item at a time: it runs inside "
                             f"{MAX_PARALLEL_DEPTH} levels of parallel steps, as deep as Cloud Workflows nests them")
        else:
            self.out.origins[id(parallel)] = (self.p, node)
        append = _step(self.steps(f"append_{node.id}"), {"assign": [
            {target: f"${{list.concat({target}, {collected}[string({position})])}}"}]})
        collect = {"value": self.vars(f"each_{node.id}"), "index": position, "in": f"${{{items}}}", "steps": [append]}
        checks: list[dict[str, Any]] = []
        if not isinstance(node.items, ir.Literal):  # a computed value may be no list: the same error as locally
            self.helpers.json_type = True
            kind = self.vars(f"kind_{node.id}")
            cause = expr_literal(ir.not_a_list(node.id, []).rsplit(" got ", 1)[0] + " got ")
            checks = [_step(self.steps(f"kind_{node.id}"), {"assign": [{kind: f"${{strato_json_type({items})}}"}]}),
                      _step(self.steps(f"check_{node.id}"), {"switch": [{
                          "condition": f'${{{kind} != "a list"}}',
                          "raise": {"error": "TypeError", "cause": f"${{{cause} + {kind}}}"}}]})]
        return [
            _step(self.steps(f"items_{node.id}"), {"assign": [
                {items: value_template(node.items)}, {collected: {}}, {target: []}]}),
            *checks,
            _step(self.steps(f"map_{node.id}"), {"for": loop} if in_sequence else {"parallel": parallel}),
            _step(self.steps(f"collect_{node.id}"), {"for": collect}),
            _step(self.steps(f"release_{node.id}"), {"assign": [{collected: None}]}),  # one copy of the results
        ]


# The transient failures strato_transient names, retried 5 times from 1 s like http.default_retry
# (https://cloud.google.com/workflows/docs/reference/stdlib/http/default_retry), but doubling (to 60 s)
# rather than x1.25, so an overloaded function gets about a minute to recover instead of about 7 s.
TRANSIENT_RETRY: dict[str, Any] = {"predicate": "${strato_transient}", "max_retries": 5,
                                   "backoff": {"initial_delay": 1, "max_delay": 60, "multiplier": 2}}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)
