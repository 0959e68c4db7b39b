"""IR -> Amazon States Language (JSONPath only).

The state of an execution is ``{"params", "results", "errors", "scratch"}``: every node writes its
result (``null`` when its guard is false) under ``results``. Tasks receive their arguments as IR
values plus the results they reference, and the task shim resolves them with
``strato.ir.resolve_value``, so addressing (a missing key is ``null``) means exactly what it
means on the local runner. The DAG becomes nested ``Parallel`` states through
:mod:`strato.adapters.structure`; guards become ``Choice`` states; each sub-pipeline is its own state
machine started with ``states:startExecution.sync:2``. Guards are in :mod:`.choices`, the limits and
the splitting into child machines in :mod:`.limits`.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from strato import ir
from strato.errors import Diagnostic
from strato.graph import data_inputs, dependencies, guard_reads
from strato.ir import RetrySpec, expand_error_names

from ..common.errors import CompileError
from ..common.reads import refs_in
from ..structure import Block, Par, Seq, Step, extra_wait_warnings, structure
from .choices import Choices, dotted
from .limits import (
    MAX_DEFINITION_BYTES,
    MAX_INTRINSIC_NESTING,
    Limits,
    PartCall,
    branch_nodes,
    chunked,
    in_run_order,
    to_compact_json,
    to_json,
)
from .naming import PAYLOAD_BUCKET_REF, RUNTIME_FUNCTION, activity_ref, function_ref, machine_ref, state_name

TIMEOUT_ERROR = "States.Timeout"
ITEM_ERROR = "strato_item_error"  # a Distributed Map item's escaped error, raised again after the map
MAP_RESULTS = "strato/payloads/maps"  # where Distributed Maps write their results, in the payload bucket
# Transient Lambda service errors are retried on every function call, in a retrier of their own, so they
# never use up the attempts of the task's Retry (a retrier counts only the errors it matches):
# https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html
LAMBDA_SERVICE_RETRY: dict[str, Any] = {
    "ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                    "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0, "JitterStrategy": "FULL"}

__all__ = ["Compiled", "compile_pipeline", "error_names", "to_compact_json", "to_json"]


@dataclass
class Compiled:
    """One ASL definition per pipeline (root and sub-pipelines), with compile warnings."""

    machines: dict[str, dict[str, Any]]
    warnings: list[Diagnostic] = field(default_factory=list)
    errors: list[Diagnostic] = field(default_factory=list)
    root: str = ""  # the root pipeline's name (strato.context().pipeline in every machine)


FAILURE_KEY = "strato_failure"  # where a failure caught for the on_failure hook is kept in the state


def compile_pipeline(root: ir.PipelineIR) -> Compiled:
    out = Compiled({}, root=root.name)
    for pipeline in (root, *(root.subpipelines[name] for name in sorted(root.subpipelines))):
        builder = _Machine(pipeline, out)
        out.machines[pipeline.name] = builder.build()
    for name, definition in out.machines.items():
        size = len(to_compact_json(definition).encode())
        if size > MAX_DEFINITION_BYTES and not out.errors:
            out.errors.append(Diagnostic(f"state machine {name!r} would be {size:,} bytes, over Step Functions' 1 MB, "
                                         "even split in parts; split the pipeline into sub-pipelines", root.location,
                                         f"pipeline {root.name!r} (aws)"))
    return out


def error_names(on: tuple[str, ...] | None) -> list[str]:
    """``ErrorEquals`` for an ``on=`` filter: class names with built-in subclasses, timeouts as States.Timeout."""
    if on is None:
        return ["States.ALL"]
    return sorted(TIMEOUT_ERROR if name == "TaskTimeout" else name for name in expand_error_names(on))


class _Machine(Limits, Choices):
    """Builds one pipeline's state machine: blocks to states, tasks, maps and sub-pipelines."""

    def __init__(self, pipeline: ir.PipelineIR, out: Compiled):
        self.p, self.out = pipeline, out
        self.keys = {node.id: self._result_key(i, node.id) for i, node in enumerate(pipeline.nodes)}
        self.keep = _read_by_choices(pipeline)  # paths Choice states read: kept inline when offloaded
        self.stored = _read_later(pipeline)
        # The state holds every stored result at once: each may use 1/share of the 256 KiB
        # (a map over a literal list stores one result per item), so they fit together.
        self.share = max(1, sum(len(n.items.value) if isinstance(n, ir.MapNode) and isinstance(n.items, ir.Literal)
                                and isinstance(n.items.value, list) else 1
                                for n in pipeline.nodes if n.id in self.stored))
        self.events = 0
        self._costs: dict[int, tuple[Block, tuple[int, int]]] = {}
        self.operands: list[tuple[str, ir.Value]] = []

    def _result_path(self, node_id: str) -> str | None:
        """Where a node's result goes in the state: nowhere (``ResultPath: null``) when nothing reads it."""
        return f"$.results.{self.keys[node_id]}" if node_id in self.stored else None

    @staticmethod
    def _result_key(index: int, node_id: str) -> str:
        return node_id if dotted(node_id) else f"n{index}_{re.sub(r'[^A-Za-z0-9_]', '_', node_id)}"

    # ------------------------------------------------------------------------------ machine
    def build(self) -> dict[str, Any]:
        p = self.p
        order = [n.id for n in p.nodes]
        block, extra = structure(order, dependencies(p))
        joins = "Step Functions joins parallel branches only at their end"
        for node_id, message in extra_wait_warnings(extra, joins):
            self.out.warnings.append(Diagnostic(message, p.node_by_id[node_id].location,
                                                f"pipeline {p.name!r} (aws)", "warning"))
        states: dict[str, Any] = {}
        defaults = {param.name: param.default for param in p.params if not param.required}
        states["Start"] = {"Type": "Pass", "Comment": "the run's input, with parameter defaults",
                           "Parameters": {"input.$": "$", "defaults": defaults}, "Next": "Parameters"}
        first = self._emit_within_limits(block, states, "Output") if p.nodes else "Output"
        states["Parameters"] = {"Type": "Pass", "Parameters": {
            "params.$": "States.JsonMerge($.defaults, $.input, false)", "results": {}, "errors": {}, "scratch": {}},
            "Next": first}
        states["Output"] = {"Type": "Task", "Comment": "the pipeline's output, resolved from results",
                            "Resource": RUNTIME_FUNCTION, "Parameters": self._resolve_payload(p.output),
                            "Retry": [LAMBDA_SERVICE_RETRY], "End": True}
        if p.hooks:
            self._hooks(states)
        definition = {"Comment": f"Strato pipeline {p.name} (IR {p.hash[:12]})", "StartAt": "Start",
                      "States": in_run_order(states, "Start")}
        self._check_limits(definition)
        return definition

    def _hooks(self, states: dict[str, Any]) -> None:
        """The run's hooks. ``on_failure``: every top-level state that can fail (a task, map, parallel or
        part) gets a last catcher of ``States.ALL`` leading to the hook, then to a Fail state that fails
        the execution with the original error again (``ErrorPath``/``CausePath``:
        https://docs.aws.amazon.com/step-functions/latest/dg/state-fail.html). ``on_success`` follows
        the output. A hook's own failure is caught and leaves the outcome as it was."""
        failure, success = self.p.hooks.get("on_failure"), self.p.hooks.get("on_success")
        if failure is not None:
            named, hook, failed = state_name("Failure"), state_name("On failure"), state_name("Failed")
            for state in states.values():
                if state["Type"] in ("Task", "Map", "Parallel"):
                    state.setdefault("Catch", []).append(
                        {"ErrorEquals": ["States.ALL"], "ResultPath": f"$.{FAILURE_KEY}", "Next": named})
            states[named] = {"Type": "Task", "Comment": "the caught error as the task's own, for the Fail state",
                             "Resource": RUNTIME_FUNCTION,
                             "Parameters": {"op": "failure", "error.$": f"$.{FAILURE_KEY}"},
                             "ResultPath": f"$.{FAILURE_KEY}", "Retry": [LAMBDA_SERVICE_RETRY], "Next": hook}
            states[hook] = self._hook_state("on_failure", failure, failed)
            states[failed] = {"Type": "Fail", "Comment": "the run fails with its own error, after its hook",
                              "ErrorPath": f"$.{FAILURE_KEY}.Error", "CausePath": f"$.{FAILURE_KEY}.Cause"}
        if success is not None:
            hook, succeeded = state_name("On success"), state_name("Succeeded")
            del states["Output"]["End"]
            states["Output"]["Next"] = hook
            states[hook] = self._hook_state("on_success", success, succeeded)
            states[succeeded] = {"Type": "Succeed"}

    def _hook_state(self, kind: str, hook: ir.HookSpec, then: str) -> dict[str, Any]:
        spec, key = self.p.tasks[hook.task], ir.hook_key(kind)
        node = ir.TaskNode(key, spec.name, {}, location=self.p.location)
        status: dict[str, Any] = {"status": "SUCCEEDED", "param": hook.param}
        if kind == "on_failure":
            status = {"status": "FAILED", "param": hook.param, "error.$": f"$.{FAILURE_KEY}"}
        parameters = {"task": spec.name, "args": {k: ir.value_to_dict(v) for k, v in sorted(hook.args.items())},
                      "hook": status, "context": {**self._context(node), "task_id": key}}
        state = self._task_state(spec, parameters, None, node)  # the state passes through: ResultPath null
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": then}]
        state["Next"] = then
        return state

    # ------------------------------------------------------------------------------- blocks
    def _emit(self, block: Block, states: dict[str, Any], next_state: str | None) -> str:
        """Add the states of ``block`` to ``states``, ending at ``next_state`` (None: End). Returns the entry."""
        if isinstance(block, PartCall):
            return self._call_part(block.machine, states, next_state)
        if isinstance(block, Step):
            return self._node(self.p.node_by_id[block.node], states, next_state)
        if isinstance(block, Seq):
            entry = next_state
            for item in reversed(block.items):
                entry = self._emit(item, states, entry)
            return entry  # type: ignore[return-value]
        return self._parallel(block, states, next_state)

    def _parallel(self, block: Par, states: dict[str, Any], next_state: str | None) -> str:
        """Branches side by side, each returning only the results it added, merged into the state after.

        A branch starts from the whole state, but returning it whole would put one copy of every
        earlier result per branch into the Parallel state's output, which Step Functions caps at
        256 KiB like any state's (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html).
        More than MAX_BRANCHES branches run as parallels of parallels, so the merge stays within the
        10 nested intrinsic functions a field may hold.
        """
        block = chunked(block)
        name, frame, ends = self._parallel_frame(block, next_state)
        for (inner, end), branch in zip(ends, block.branches, strict=True):
            if isinstance(branch, PartCall):  # the child machine returns only its own results
                start = self._call_part(branch.machine, inner, None)
            else:
                start = self._emit(branch, inner, end)
            frame[name]["Branches"].append({"StartAt": start, "States": in_run_order(inner, start)})
        states.update(frame)
        self.events += 4 + 2 * len(block.branches)
        return name

    def _parallel_frame(self, block: Par, next_state: str | None
                        ) -> tuple[str, dict[str, Any], list[tuple[dict[str, Any], str | None]]]:
        """The states a Parallel adds around its branches: itself (branches empty), the merge after it,
        and per branch its states so far (the Pass returning the branch's results) and where it ends."""
        firsts = [branch.machine if isinstance(branch, PartCall) else branch_nodes(branch)[0]
                  for branch in block.branches]
        name = state_name("Parallel " + " ".join(firsts))
        ends: list[tuple[dict[str, Any], str | None]] = []
        for first, branch in zip(firsts, block.branches, strict=True):
            if isinstance(branch, PartCall):
                ends.append(({}, None))
                continue
            added = state_name(f"{name} {first} results")
            ends.append(({added: self._own_results(branch_nodes(branch))}, added))
        selector = {f"b{i}.$": f"States.ArrayGetItem($, {i})" for i in range(len(block.branches))}
        merged = _merge_tree(["$.results", *(f"$.scratch.branches.b{i}.results" for i in range(len(block.branches)))])
        merge = state_name(f"{name} merge")
        frame = {name: {"Type": "Parallel", "Branches": [], "ResultSelector": selector,
                        "ResultPath": "$.scratch.branches", "Next": merge},
                 merge: self._then({"Type": "Pass", "Parameters": {
                     "params.$": "$.params", "results.$": merged, "errors": {}, "scratch": {}}}, next_state)}
        return name, frame, ends

    def _own_results(self, nodes: list[str]) -> dict[str, Any]:
        """A Pass ending a branch (or a part run as one): the results of ``nodes`` and nothing else."""
        return {"Type": "Pass", "Comment": "this branch's own results, all it returns",
                "Parameters": {"results": {f"{self.keys[n]}.$": f"$.results.{self.keys[n]}" for n in nodes
                                           if n in self.stored}},
                "End": True}

    @staticmethod
    def _then(state: dict[str, Any], next_state: str | None) -> dict[str, Any]:
        if next_state is None:
            state["End"] = True
        else:
            state["Next"] = next_state
        return state

    # -------------------------------------------------------------------------------- nodes
    def _node(self, node: ir.Node, states: dict[str, Any], next_state: str | None) -> str:
        key = self.keys[node.id]
        if isinstance(node, ir.TaskNode):
            entry = self._task(node, states, next_state)
        elif isinstance(node, ir.MapNode):
            entry = self._map(node, states, next_state)
        elif isinstance(node, ir.WaitNode):
            entry = state_name(node.id)
            seconds = max(0, math.ceil(node.seconds))
            if seconds != node.seconds:
                self._round_warning(node, f"wait({node.seconds:g}) waits {seconds}s: Step Functions waits whole "
                                          "seconds")
            done = state_name(f"{node.id} done")
            states[entry] = {"Type": "Wait", "Seconds": seconds, "Next": done}
            states[done] = self._then({"Type": "Pass", "Result": None, "ResultPath": f"$.results.{key}"}, next_state)
            self.events += 4
        else:
            entry = self._subpipeline(node, states, next_state)
        if node.guard is None:
            return entry
        when, skip = state_name(f"{node.id} when"), state_name(f"{node.id} skip")
        self.operands = []
        states[when] = {"Type": "Choice", "Choices": [{**self._guard(node.guard), "Next": entry}], "Default": skip}
        states[skip] = self._then({"Type": "Pass", "Comment": "its block did not run: the result is null",
                                   "Result": None, "ResultPath": f"$.results.{key}"}, next_state)
        self.events += 4
        first = when
        for index, (scratch, value) in reversed(list(enumerate(self.operands))):
            name = state_name(f"{node.id} operand {index}")
            states[name] = {"Type": "Task", "Comment": "a value the Choice reads, addressed as the local runner does",
                            "Resource": RUNTIME_FUNCTION,
                            "Parameters": {**self._resolve_payload(value), "inline": True},
                            "ResultPath": f"$.scratch.{scratch}", "Retry": [LAMBDA_SERVICE_RETRY], "Next": first}
            first = name
            self.events += 5
        return first

    def _payload(self, spec: ir.TaskSpec, args: dict[str, ir.Value], extra_values: tuple[ir.Value, ...] = ()) -> dict:
        refs: set[str] = set()
        for value in [*args.values(), *extra_values]:
            refs.update(ir.value_refs(value))
        encoded = {k: ir.value_to_dict(v) for k, v in args.items()}
        payload: dict[str, Any] = {"task": spec.name}  # an id: the function's catalog says where its code is
        if _has_dollar_key(encoded):  # a literal key ending in ".$" would be read as a path
            payload["args_json"] = json.dumps(encoded, sort_keys=True)
        else:
            payload["args"] = encoded
        payload["refs"] = {f"{ref}.$": f"$.results.{self.keys[ref]}" for ref in sorted(refs)}
        payload["params.$"] = "$.params"
        payload["share"] = self.share
        return payload

    def _resolve_payload(self, value: ir.Value) -> dict:
        encoded = ir.value_to_dict(value)
        refs = sorted(set(ir.value_refs(value)))
        payload: dict[str, Any] = {"op": "resolve"}
        if _has_dollar_key(encoded):
            payload["value_json"] = json.dumps(encoded, sort_keys=True)
        else:
            payload["value"] = encoded
        payload["refs"] = {f"{ref}.$": f"$.results.{self.keys[ref]}" for ref in refs}
        payload["params.$"] = "$.params"
        return payload

    def _task_state(self, spec: ir.TaskSpec, parameters: dict | None, result_path: str | None,
                    node: ir.Node) -> dict[str, Any]:
        resource = activity_ref(spec.name) if spec.runtime == "worker" else function_ref(spec.name)
        state: dict[str, Any] = {"Type": "Task", "Resource": resource}
        if parameters is not None:
            state["Parameters"] = parameters
        state["ResultPath"] = result_path
        if spec.timeout:
            seconds = max(1, math.ceil(spec.timeout))
            if seconds != spec.timeout:
                self._round_warning(node, f"task {spec.name!r} timeout {spec.timeout:g}s becomes {seconds}s: "
                                          "Step Functions times out in whole seconds")
            state["TimeoutSeconds"] = seconds
        retriers = [] if spec.runtime == "worker" else [LAMBDA_SERVICE_RETRY]
        if spec.retry is not None and spec.retry.max_retries > 0:
            retriers.append(self._retrier(spec.retry, spec, node))
        if retriers:
            state["Retry"] = retriers
        self.events += 5 + (2 * spec.retry.max_retries if spec.retry else 0)
        return state

    def _retrier(self, retry: RetrySpec, spec: ir.TaskSpec, node: ir.Node) -> dict[str, Any]:
        interval = max(1, math.ceil(retry.delay))
        if interval != retry.delay:
            self._round_warning(node, f"task {spec.name!r} retry delay {retry.delay:g}s becomes {interval}s: "
                                      "Step Functions retries after whole seconds (at least 1)")
        retrier: dict[str, Any] = {"ErrorEquals": error_names(retry.on), "IntervalSeconds": interval,
                                   "MaxAttempts": retry.max_retries, "BackoffRate": float(retry.backoff)}
        if retry.max_delay is not None:
            retrier["MaxDelaySeconds"] = max(1, math.ceil(retry.max_delay))
        if retry.jitter:
            retrier["JitterStrategy"] = "FULL"
        return retrier

    def _with_catch(self, state: dict[str, Any], spec: ir.TaskSpec, node: ir.Node, states: dict[str, Any],
                    base: str, error_path: str, result_path: str | None, next_state: str | None,
                    keep: list[list[Any]] | None = None, index: bool = False) -> None:
        if spec.catch is None:
            return
        handler = self.p.tasks[spec.catch.handler]
        name = state_name(f"{base} catch")
        state["Catch"] = [{"ErrorEquals": error_names(spec.catch.on), "ResultPath": error_path, "Next": name}]
        parameters: dict[str, Any] = {"task": handler.name, "error.$": error_path,
                                      "handler_param": handler.params[0].name, "share": self.share,
                                      "context": {**self._context(node), "task_id": f"{node.id}#catch"}}
        if isinstance(node, ir.MapNode):  # a map item's handler: the index from the item's selected payload
            parameters["context"]["map_index.$"] = "$.context.map_index"
        if keep:
            parameters["keep"] = keep
        if index:  # a Distributed Map item: its result carries its index
            parameters["index.$"] = "$.index"
        states[name] = self._then(self._task_state(handler, parameters, result_path, node), next_state)

    def _task(self, node: ir.TaskNode, states: dict[str, Any], next_state: str | None) -> str:
        spec, key = self.p.tasks[node.task], self.keys[node.id]
        name = state_name(node.id)
        payload = self._payload(spec, node.args)
        if node.id in self.keep:
            payload["keep"] = self.keep[node.id]
        payload["context"] = self._context(node)
        state = self._task_state(spec, payload, self._result_path(node.id), node)
        self._with_catch(state, spec, node, states, node.id, f"$.errors.{key}", self._result_path(node.id),
                         next_state, self.keep.get(node.id))
        states[name] = self._then(state, next_state)
        return name

    def _map(self, node: ir.MapNode, states: dict[str, Any], next_state: str | None) -> str:
        spec, key = self.p.tasks[node.task], self.keys[node.id]
        distributed = not isinstance(node.items, ir.Literal)
        name = state_name(node.id)
        item_state = state_name(f"{node.id} item")
        selector = self._payload(spec, node.args)
        selector["item_param"] = node.item_param
        selector["item.$"] = "$$.Map.Item.Value"
        selector["context"] = {**self._context(node), "map_index.$": "$$.Map.Item.Index"}
        if distributed:  # each result carries its index: a map run's result files are in no set order
            selector["index.$"] = "$$.Map.Item.Index"
        inner: dict[str, Any] = {}
        task_state = self._task_state(spec, None, "$", node)  # the selected item object is the payload
        self._with_catch(task_state, spec, node, inner, f"{node.id} item", "$.error", "$", None,
                         index=distributed)
        inner[item_state] = self._then(task_state, None)
        state: dict[str, Any] = {"Type": "Map"}
        entry = state_name(f"{node.id} items")
        if isinstance(node.items, ir.Literal):  # known now: inline, every item in this history
            states[entry] = {"Type": "Pass", "Result": node.items.value, "ResultPath": f"$.scratch.{key}",
                             "Next": name}
            state["ItemsPath"] = f"$.scratch.{key}"
            self.events += 2 + 6 * (len(node.items.value) if isinstance(node.items.value, list) else 0)
            result_path = self._result_path(node.id)
            after = next_state
        else:  # computed: the shim writes the list to S3, a Distributed Map reads it from there and writes
            # its results there too, so neither the items nor their results pass through this execution
            payload = self._resolve_payload(node.items)
            payload["store_items_for"] = node.id
            states[entry] = {"Type": "Task", "Resource": RUNTIME_FUNCTION, "Parameters": payload,
                             "ResultPath": f"$.scratch.{key}", "Retry": [LAMBDA_SERVICE_RETRY], "Next": name}
            state["ItemReader"] = {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                                   "Parameters": {"Bucket.$": f"$.scratch.{key}.Bucket",
                                                  "Key.$": f"$.scratch.{key}.Key"}}
            state["ResultWriter"] = {"Resource": "arn:aws:states:::s3:putObject",
                                     "Parameters": {"Bucket": PAYLOAD_BUCKET_REF, "Prefix": MAP_RESULTS}}
            self.events += 5
            result_path = f"$.scratch.{key}__run"
            after = self._collect_items(node, inner, states, next_state)
        state.update({"ItemSelector": selector,
                      "ItemProcessor": {"ProcessorConfig": _processor(node), "StartAt": item_state,
                                        "States": in_run_order(inner, item_state)},
                      "MaxConcurrency": node.max_concurrency or 0, "ResultPath": result_path})
        states[name] = self._then(state, after)
        self.events += 4
        return entry

    def _collect_items(self, node: ir.MapNode, inner: dict[str, Any], states: dict[str, Any],
                       next_state: str | None) -> str:
        """Read a Distributed Map's results back from the files its ``ResultWriter`` wrote, in item order,
        failing the run with the first failed item's own error, as on every other backend.

        A Distributed Map whose child execution fails would itself fail as
        ``States.ExceedToleratedFailureThreshold``, losing the item's error
        (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-distributed.html). So each item
        catches what its task (and catch handler) let escape and returns it as ``{ITEM_ERROR: {Error,
        Cause}}``; the runtime function raises the first one under its own name. The results themselves
        are written to S3 (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html),
        so a wide map's results never pass through this execution's state; they come back as one value
        (offloaded when over its share of the state) only when a later state reads them.
        """
        failed = state_name(f"{node.id} item failed")
        for state in inner.values():
            catchers = state.setdefault("Catch", []) if state.get("Type") == "Task" else None
            if catchers is not None and not any("States.ALL" in c["ErrorEquals"] for c in catchers):
                catchers.append({"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": failed})
        inner[failed] = {"Type": "Pass", "Parameters": {f"{ITEM_ERROR}.$": "$.failure", "index.$": "$.index"},
                         "End": True}
        collect = state_name(f"{node.id} results")
        key = self.keys[node.id]
        parameters: dict[str, Any] = {"op": "collect_items", "written.$": f"$.scratch.{key}__run",
                                      "count.$": f"$.scratch.{key}.count", "params.$": "$.params",
                                      "share": self.share}
        if node.id in self.keep:
            parameters["keep"] = self.keep[node.id]
        states[collect] = self._then({
            "Type": "Task", "Comment": "the map's results in item order; the first failed item's error fails the run",
            "Resource": RUNTIME_FUNCTION, "Parameters": parameters,
            "ResultPath": self._result_path(node.id), "Retry": [LAMBDA_SERVICE_RETRY]}, next_state)
        self.events += 5
        return collect

    def _subpipeline(self, node: ir.SubPipelineNode, states: dict[str, Any], next_state: str | None) -> str:
        key = self.keys[node.id]
        entry, run, output = (state_name(f"{node.id} input"), state_name(node.id), state_name(f"{node.id} output"))
        states[entry] = {"Type": "Task", "Resource": RUNTIME_FUNCTION,
                         "Parameters": {**self._resolve_payload(ir.DictOf(tuple(node.args.items()))), "inline": True},
                         "ResultPath": f"$.scratch.{key}", "Retry": [LAMBDA_SERVICE_RETRY], "Next": run}
        states[run] = {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                       "Parameters": {"StateMachineArn": machine_ref(node.pipeline), "Input.$": f"$.scratch.{key}",
                                      "Name.$": "States.UUID()"},
                       "ResultPath": f"$.scratch.{key}", "Next": output}
        states[output] = self._then({"Type": "Pass", "Comment": "the sub-pipeline's output",
                                     "InputPath": f"$.scratch.{key}.Output",
                                     "ResultPath": self._result_path(node.id)},
                                    next_state)
        self.events += 12
        return entry

    def _context(self, node: ir.Node) -> dict[str, Any]:
        """What ``strato.context()`` needs from the execution (its context object:
        https://docs.aws.amazon.com/step-functions/latest/dg/input-output-contextobject.html): the execution's
        name as the run id and the state's retry count (0 on the first attempt)."""
        return {"run.$": "$$.Execution.Name", "pipeline": self.out.root, "task_id": node.id,
                "retries.$": "$$.State.RetryCount"}

    def _round_warning(self, node: ir.Node, message: str) -> None:
        self.out.warnings.append(Diagnostic(message, node.location, f"pipeline {self.p.name!r} (aws)", "warning"))


def _merge_tree(paths: list[str]) -> str:
    """``States.JsonMerge`` of ``paths`` as a balanced tree: nested ceil(log2(n)) deep, within the 10
    nested intrinsic functions a field may hold. Each branch adds keys of its own, so the order of
    merging does not matter."""
    depth = math.ceil(math.log2(len(paths))) if len(paths) > 1 else 0
    if depth > MAX_INTRINSIC_NESTING:
        raise CompileError(f"a step runs {len(paths)} branches at once, more than Step Functions can merge in one "
                           f"state ({2 ** MAX_INTRINSIC_NESTING}); group the calls into sub-pipelines")

    def tree(items: list[str]) -> str:
        if len(items) == 1:
            return items[0]
        middle = len(items) // 2
        return f"States.JsonMerge({tree(items[:middle])}, {tree(items[middle:])}, false)"

    return tree(paths)


def _processor(node: ir.MapNode) -> dict[str, str]:
    """How a Map runs its items. A list known at compile time runs inline; a list computed at run time
    may be of any length, so it runs as a Distributed Map: each item is a child execution, and the
    parent's history stays small however wide the map gets (Step Functions allows 25,000 events)."""
    if isinstance(node.items, ir.Literal):
        return {"Mode": "INLINE"}
    return {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}


def _read_by_choices(pipeline: ir.PipelineIR) -> dict[str, list[list[Any]]]:
    """The paths of each result a ``Choice`` state reads itself, kept in its envelope when offloaded.

    Only paths of object keys: an operand through a list index is resolved by the runtime function
    (:class:`.choices.Choices`), so a large list read by a condition can still be offloaded. Map items
    need nothing kept: the runtime function resolves a computed list before a Distributed Map reads it.
    """
    found: dict[str, set[tuple[Any, ...]]] = {}
    for branch in pipeline.branches:
        for operand in ir.condition_operands(branch.condition):
            for ref in refs_in(operand):
                if all(isinstance(part, str) for part in ref.path):
                    found.setdefault(ref.node, set()).add(tuple(ref.path))
    return {node: [list(path) for path in sorted(paths, key=repr)] for node, paths in sorted(found.items())}


def _read_later(pipeline: ir.PipelineIR) -> set[str]:
    """Nodes whose result a later state reads: in arguments, map items, conditions or the output. The
    others' results are not kept in the state."""
    read = set(ir.value_refs(pipeline.output))
    for node in pipeline.nodes:
        read |= data_inputs(node) | guard_reads(pipeline, node.guard)
    return read


def _has_dollar_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any(k.endswith(".$") or _has_dollar_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_dollar_key(v) for v in value)
    return False
