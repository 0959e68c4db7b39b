"""The Lambda handler that runs a task (and the state machine's small value-resolving steps).

Deployed once per task: ``strato.adapters.aws.shim.handler``. The state machine sends the task's arguments
as IR values plus the results they reference; the shim resolves them with the same code as the
local runner, calls the task through ``strato.runtime.invoke`` (type checks, JSON result) and
lets a failure escape as its own exception, so Lambda reports the class name as ``errorType`` and
``Retry``/``Catch`` match it by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from strato import ir
from strato.runtime.invoke import invoke

from .payloads import materialise, offload, store_items

Loader = Callable[[str, str], Callable[..., Any]]


def _import(name: str, target: str) -> Callable[..., Any]:
    from strato.ir import TaskSpec
    from strato.runtime import import_task

    module, _, qualname = target.partition(":")
    return import_task(TaskSpec(name, module, qualname, ()))


def error_of_states(error: dict[str, Any]) -> dict[str, str]:
    """Step Functions' ``{"Error", "Cause"}`` as Strato's ``{"error", "cause"}``.

    ``States.Timeout`` is ``TaskTimeout``; a Lambda failure's cause is its JSON error payload, whose
    ``errorMessage`` is the exception's message; a failed child execution's cause holds the child's
    own error, which is what the user raised.
    """
    name, cause = error.get("Error") or "Error", error.get("Cause") or ""
    try:
        detail = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
    except json.JSONDecodeError:
        detail = None
    if isinstance(detail, dict):
        if "errorMessage" in detail:
            cause = str(detail["errorMessage"])
            name = detail.get("errorType", name) if name in ("States.TaskFailed", "Exception") else name
        elif "Error" in detail or "error" in detail:  # a sub-pipeline's failure, reported by its execution
            return error_of_states({"Error": detail.get("Error", detail.get("error")),
                                    "Cause": detail.get("Cause", detail.get("cause", ""))})
    if name == "States.Timeout":
        return {"error": "TaskTimeout", "cause": cause or "the task did not finish within its timeout"}
    return {"error": name, "cause": cause}


def handle(event: dict[str, Any], load: Loader = _import) -> Any:
    """Run one step for the state machine: resolve a value, call a catch handler, or run a task.

    Results referenced by the step are materialised from S3 when they were offloaded, and a large
    result is offloaded in turn (see :mod:`strato.adapters.aws.payloads`).
    """
    params = event.get("params") or {}
    refs = {k: materialise(v) for k, v in (event.get("refs") or {}).items()}
    keep = event.get("keep")
    if event.get("op") == "resolve":
        value = event["value"] if "value" in event else json.loads(event["value_json"])
        resolved = ir.resolve_value(ir.value_from_dict(value), refs, params)
        if "store_items_for" in event:  # a Distributed Map reads its items from S3
            if not isinstance(resolved, list):
                raise TypeError(f"map {event['store_items_for']!r} needs a list to fan out over, got "
                                f"{type(resolved).__name__}: {resolved!r}"[:500])
            return store_items(resolved)
        return resolved if event.get("inline") else offload(resolved, keep)  # a child's input stays inline
    name = event["task"]
    fn = load(name, event["fn"])
    if "error" in event:
        return offload(invoke(name, fn, {event["handler_param"]: error_of_states(event["error"])}), keep)
    encoded = event["args"] if "args" in event else json.loads(event["args_json"])
    args = {k: ir.resolve_value(ir.value_from_dict(v), refs, params) for k, v in encoded.items()}
    if "item_param" in event:
        args[event["item_param"]] = materialise(event["item"])
    return offload(invoke(name, fn, args), keep)


def handler(event: dict[str, Any], context: Any) -> Any:
    """The AWS Lambda entry point."""
    return handle(event)
