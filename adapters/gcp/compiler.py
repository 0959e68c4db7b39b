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
from dataclasses import dataclass, field
from typing import Any

from strato import ir
from strato.errors import Diagnostic
from strato.graph import dependencies, guard_chain
from strato.ir import ObjectCreatedSpec, expand_error_names

from ..common.reads import read_inline
from ..structure import Block, Par, Seq, Step, extra_wait_warnings, structure
from .concurrency import ConcurrencyError, Planner, call_order
from .naming import Names, function_url_expression, subworkflow_name
from .payloads import REF
from .triggers import FINALIZED

MAX_SOURCE_BYTES = 128 * 1024
MAX_VARIABLE_BYTES = 512 * 1024
MAX_BRANCHES = 10
MAX_CONCURRENCY = 20
MAX_HTTP_TIMEOUT = 1800
MAX_EXPRESSION_CHARS = 400  # quotas page, "Expression length" (strato.adapters.gcp.conformance)
TIMEOUT_ERROR = "TaskTimeout"
# The run's parameters: the defaults, overridden by the input when there is one (no map literal in ${}).
PARAMS_EXPRESSION = "${if(input == null, defaults, map.merge(defaults, input))}"


@dataclass
class Compiled:
    """The workflow document (main, sub-pipelines, helpers) with compile warnings and errors."""

    document: dict[str, Any]
    source: str = ""
    warnings: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    origins: dict[int, tuple[ir.PipelineIR, ir.Node]] = field(default_factory=dict, repr=False)


def compile_pipeline(root: ir.PipelineIR) -> Compiled:
    out = Compiled({})
    helpers = _Helpers()
    out.document["main"] = _Subworkflow(root, root, out, helpers).build()
    for name in sorted(root.subpipelines):
        out.document[subworkflow_name(name)] = _Subworkflow(root.subpipelines[name], root, out, helpers).build()
    out.document.update(helpers.document())
    _bound_concurrency(root, out)
    out.source = to_yaml(out.document, f"Strato pipeline {root.name} (IR {root.hash[:12]})")
    size = len(out.source.encode())
    if size > MAX_SOURCE_BYTES:
        out.errors.append(Diagnostic(
            f"the workflow source is {size:,} bytes, over Cloud Workflows' 128 KB; split the pipeline into "
            "sub-pipelines deployed as their own workflows, or reduce literal arguments", root.location,
            f"pipeline {root.name!r} (gcp)"))
    literal_bytes = _literal_bytes(root)
    if literal_bytes > MAX_VARIABLE_BYTES // 2:
        out.errors.append(Diagnostic(
            f"literal arguments and defaults alone take about {literal_bytes:,} bytes of workflow variables; "
            "Cloud Workflows holds at most 512 KB: pass large data by reference (a file path or URI)",
            root.location, f"pipeline {root.name!r} (gcp)"))
    return out


def _bound_concurrency(root: ir.PipelineIR, out: Compiled) -> None:
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

    planner = Planner(out.document, MAX_CONCURRENCY, on_limit)
    try:
        planner.plan(call_order(out.document))
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
    import yaml

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True,
                     width=10_000, indent=2)
    return f"# {title}\n{body}"


def _literal_bytes(root: ir.PipelineIR) -> int:
    total = 0
    for p in (root, *root.subpipelines.values()):
        total += len(json.dumps(p.defaults()))
        for node in p.nodes:
            for value in getattr(node, "args", {}).values():
                total += len(json.dumps(ir.value_to_dict(value)))
    return total


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
    return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {expr_literal(v)}" for k, v in value.items()) + "}"


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
        self.offloaded = False  # strato_offloaded, strato_cloud_event, strato_json_type: only when used
        self.cloud_event = False
        self.json_type = False

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
        if self.json_type:  # a value's kind in the words of strato.ir.json_type, for the same messages
            doc["strato_json_type"] = {"params": ["value"], "steps": [
                _step("simple", {"switch": [{"condition": "${value == null}", "return": "null"},
                                            {"condition": "${value == true or value == false}", "return": "a boolean"},
                                            {"condition": "${strato_is_number(value)}", "return": "a number"},
                                            {"condition": "${strato_is_string(value)}", "return": "a string"}]}),
                _step("probe", {"try": {"steps": [_step("object", {"assign": [{"names": "${keys(value)}"}]})]},
                                "except": {"as": "other", "steps": [_step("list", _ret("a list"))]}}),
                _step("an_object", _ret("an object"))]}
        for names, name in sorted(self.predicates.items(), key=lambda item: item[1]):
            doc[name] = {"params": ["e"], "steps": [
                _step("classify", {"assign": [{"error": '${strato_error(e, "")}'}]}),
                _step("decide", _ret("${error.error in " + expr_literal(list(names)) + "}"))]}
        return doc


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


def _or_chunks(terms: list[str], limit: int) -> list[str]:
    """``terms`` joined by ``or`` into as few chunks of at most ``limit`` characters as they fit in."""
    chunks: list[str] = []
    for term in terms:
        if chunks and len(chunks[-1]) + len(" or ") + len(term) <= limit:
            chunks[-1] += " or " + term
        else:
            chunks.append(term)
    return chunks


def _re2_escape(text: str) -> str:
    """Literal text inside an RE2 pattern (``text.match_regex``)."""
    return "".join("\\" + c if c in "\\.^$|?*+()[]{}" else c for c in text)


# ---------------------------------------------------------------------------------- subworkflow
class _Subworkflow:
    def __init__(self, pipeline: ir.PipelineIR, root: ir.PipelineIR, out: Compiled, helpers: _Helpers):
        self.p, self.root, self.out, self.helpers = pipeline, root, out, helpers
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

    def _resolved(self, value: ir.Value, target: str | None, hint: str) -> list[dict[str, Any]]:
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
        if target is None:  # the run's output: offloaded itself when over what the workflow may hold
            body["output"] = True
        response = self.vars(f"r_{hint}")
        call = {"call": "http.post", "args": {"url": function_url_expression(self.root.name, spec.name),
                                              "auth": {"type": "OIDC"}, "timeout": MAX_HTTP_TIMEOUT, "body": body},
                "result": response}
        terms = [f"strato_offloaded(results[{expr_literal(ref)}])" for ref in offloadable]
        chunks = _or_chunks(terms, MAX_EXPRESSION_CHARS - len("${}"))
        probe = chunks[0]
        probes: list[dict[str, Any]] = []
        if len(chunks) > 1:  # one expression is at most 400 characters: OR the chunks into a variable
            flag = self.vars(f"o_{hint}")
            chunks = _or_chunks(terms, MAX_EXPRESSION_CHARS - len("${} or " + flag))
            probes = [_step(self.steps(f"{hint}_probe"), {"assign": [
                {flag: "${" + chunk + ("" if i == 0 else f" or {flag}") + "}"} for i, chunk in enumerate(chunks)]})]
            probe = flag
        resolve = [_step(self.steps(f"{hint}_resolve"), {"try": {"steps": [_step(self.steps(f"{hint}_call"), call)]},
                                                       "retry": "${http.default_retry}"}),
                   _step(self.steps(f"{hint}_resolved"), _ret(f"${{{response}.body}}") if target is None
                         else {"assign": [{target: f"${{{response}.body}}"}]})]
        return [*probes, _step(self.steps(f"{hint}_offloaded"), {"switch": [
            {"condition": "${" + probe + "}", "steps": resolve},
            {"condition": True, "steps": inline}]})]

    def build(self) -> dict[str, Any]:
        p = self.p
        triggers = [t for t in p.triggers if isinstance(t, ObjectCreatedSpec)] if p is self.root else []
        if triggers:
            steps: list[dict[str, Any]] = [
                _step(self.steps("init"), {"assign": [{"defaults": literal_data(p.defaults())}]}),
                *self._event_input(triggers),
                _step(self.steps("params"), {"assign": [{"params": PARAMS_EXPRESSION},
                                                        {"results": {}}]})]
        else:
            steps = [_step(self.steps("init"), {"assign": [
                {"defaults": literal_data(p.defaults())},
                {"params": PARAMS_EXPRESSION},
                {"results": {}}]})]
        if p.nodes:
            block, extra = structure([n.id for n in p.nodes], dependencies(p))
            joins = "Cloud Workflows joins parallel branches only at their end"
            for node_id, message in extra_wait_warnings(extra, joins):
                self.out.warnings.append(Diagnostic(message, p.node_by_id[node_id].location, self.subject, "warning"))
            steps.extend(self._block(block))
        if self._offloadable(p.output):
            steps.extend(self._resolved(p.output, None, "output"))
        else:
            steps.append(_step(self.steps("output"), _ret(value_template(p.output))))
        return {"params": ["input"], "steps": steps}

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
        # Built by assignments, not a map literal inside ${}: the expressions reference lists no map literals.
        mapping = [{f"input.{k}": f"${{{v}}}"} for k, v in fields.items() if k in names]
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
            merged = [{"input": literal_data(trigger.input or {})}, *mapping]
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
            return self._node(self.p.node_by_id[block.node])
        if isinstance(block, Seq):
            return [step for item in block.items for step in self._block(item)]
        return [self._parallel([self._block(b) for b in block.branches], block)]

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
            steps += [_step(self.steps(f"run_{node.id}"), {"call": subworkflow_name(node.pipeline),
                                                           "args": {"input": child_input}, "result": result}),
                      _step(self.steps(f"save_{node.id}"), {"assign": [{target: f"${{{result}}}"}]})]
        if node.guard is None:
            return steps
        return [_step(self.steps(f"when_{node.id}"), {"switch": [
            {"condition": "${" + self._guard(node.guard) + "}", "steps": steps},
            {"condition": True, "steps": [_step(self.steps(f"skip_{node.id}"), {"assign": [{target: None}]})]}]})]

    def _guard(self, guard: ir.Guard) -> str:
        parts = []
        for g in reversed(list(guard_chain(self.p, guard))):
            text = condition_expr(self.p.branch_by_id[g.branch].condition)
            parts.append(f"({text})" if g.arm else f"not ({text})")
        return " and ".join(parts)

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
        """Call ``spec``'s function with ``body`` and assign its result to ``target``, with retry and catch."""
        response, error = self.vars(f"r_{base}"), self.vars(f"e_{base}")
        timeout = self._timeout(spec, node)
        call = {"call": "http.post", "args": {"url": function_url_expression(self.root.name, spec.name),
                                              "auth": {"type": "OIDC"}, "timeout": timeout, "body": body},
                "result": response}
        # Transient failures of the call itself (429, 502-504, a 500 that is not the task's own error,
        # connection errors) are retried here, apart from the task's Retry, whose attempts they never use.
        transient = {"try": {"steps": [_step(self.steps(f"post_{base}"), call)]}, "retry": TRANSIENT_RETRY}
        attempt: dict[str, Any] = {"try": {"steps": [
            _step(self.steps(f"call_{base}"), transient),
            _step(self.steps(f"save_{base}"), {"assign": [{target: f"${{{response}.body}}"}]})]}}
        retry = spec.retry
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
        cause = f"task {spec.name!r} did not finish within its timeout of {float(timeout):g}s"
        mapped = self.vars(f"err_{base}")
        classify = _step(self.steps(f"error_{base}"), {"assign": [
            {mapped: f"${{strato_error({error}, {expr_literal(cause)})}}"}]})
        reraise = _step(self.steps(f"raise_{base}"), {"raise": f"${{{mapped}}}"})
        handler_steps: list[dict[str, Any]] = []
        if catch and spec.catch is not None:
            handler = self.p.tasks[spec.catch.handler]
            handler_body = {"task": handler.name, "error": f"${{{mapped}}}", "handler_param": handler.params[0].name,
                            "share": body.get("share", self.share)}
            if "keep" in body:  # the handler's result stands in for the task's: the workflow reads the same paths
                handler_body["keep"] = body["keep"]
            handled = self._call(handler, handler_body, target, f"{base}_catch", node, catch=False)
            names = error_names(spec.catch.on)
            condition: Any = True if names is None else "${" + f"{mapped}.error in {expr_literal(names)}" + "}"
            handler_steps = [_step(self.steps(f"catch_{base}"), {"switch": [
                {"condition": condition, "steps": handled},
                {"condition": True, "steps": [reraise]}]})]
        attempt["except"] = {"as": error, "steps": [classify, *(handler_steps or [reraise])]}
        return [_step(self.steps(base), attempt)]

    def _map(self, node: ir.MapNode, target: str) -> list[dict[str, Any]]:
        spec = self.p.tasks[node.task]
        items, collected = self.vars(f"items_{node.id}"), self.vars(f"m_{node.id}")
        item, index, position = self.vars(f"item_{node.id}"), self.vars(f"i_{node.id}"), self.vars(f"k_{node.id}")
        body = self._payload(spec, node.args)
        if not isinstance(node.items, ir.Literal):  # its items are counted when their number is known
            body["share"] = f"${{{self.share} + 2 * len({items})}}"
        body["item_param"] = node.item_param
        body["item"] = f"${{{item}}}"
        if node.id in self.keep:
            body["keep"] = self.keep[node.id]
        iteration = self._call(spec, body, f"{collected}[string({index})]", f"{node.id}_item", node)
        loop: dict[str, Any] = {"value": item, "index": index, "in": f"${{{items}}}", "steps": iteration}
        parallel: dict[str, Any] = {"shared": [collected]}
        parallel["concurrency_limit"] = min(node.max_concurrency or MAX_CONCURRENCY, MAX_CONCURRENCY)
        parallel["for"] = loop
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
                {items: "${" + value_expr(node.items) + "}"}, {collected: {}}, {target: []}]}),
            *checks,
            _step(self.steps(f"map_{node.id}"), {"parallel": parallel}),
            _step(self.steps(f"collect_{node.id}"), {"for": collect}),
            _step(self.steps(f"release_{node.id}"), {"assign": [{collected: None}]}),  # one copy of the results
        ]


# As http.default_retry retries, for the transient failures strato_transient names
# (https://cloud.google.com/workflows/docs/reference/stdlib/http/default_retry): 5 retries, 1 s doubling to 60 s.
TRANSIENT_RETRY: dict[str, Any] = {"predicate": "${strato_transient}", "max_retries": 5,
                                   "backoff": {"initial_delay": 1, "max_delay": 60, "multiplier": 2}}


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else float(value)
