"""The Lambda handler that runs a task (and the state machine's small value-resolving steps).

Deployed once per task: ``strato.adapters.aws.shim.handler``. The state machine sends the task's id
and arguments as IR values plus the results they reference; the shim runs only a task of its own
deployment (:mod:`strato.adapters.common.tasks`: the ``STRATO_TASKS`` catalog the infra component
sets, never a module path from the event), resolves the arguments with the same code as the local
runner, calls the task through ``strato.runtime.invoke`` (type checks, granted secrets from Secrets
Manager, JSON result) and lets a failure escape as its own exception, so Lambda reports the class
name as ``errorType`` and ``Retry``/``Catch`` match it by name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from strato import ir
from strato.adapters.common.emulation import loader_override
from strato.adapters.common.errors import AdapterError
from strato.adapters.common.tasks import granted_secrets, hook_arguments, hook_problem, load_task, run_context
from strato.lineage import shim_attempt
from strato.run_context import RunContext, task_context
from strato.runtime.invoke import invoke

from .payloads import materialise, offload, read_object, state_threshold, store_items

# Every field a compiled state machine sends; anything else is refused before anything runs.
EVENT_FIELDS = frozenset({"op", "task", "args", "args_json", "params", "refs", "keep", "item_param", "item", "error",
                          "handler_param", "value", "value_json", "store_items_for", "inline", "items",
                          "share", "index", "written", "count", "context", "hook"})
ITEM_ERROR = "strato_item_error"  # how a Distributed Map item returns the error its task let escape


class EventError(AdapterError):
    """An event that no compiled state machine sends: refused, nothing run."""


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


def failure_for_fail_state(error: Any) -> dict[str, str]:
    """A caught ``{"Error", "Cause"}`` as the task's own error, for a Fail state's ``ErrorPath`` and
    ``CausePath`` to fail the run with after its ``on_failure`` hook: a sub-pipeline's
    ``States.TaskFailed`` becomes the child's error, ``States.Timeout`` ``TaskTimeout``, and any other
    ``States.`` name loses the prefix, which a Fail state may not raise ("Error names beginning with
    States. are reserved": https://states-language.net/spec.html#error-names)."""
    named = error_of_states(error if isinstance(error, dict) else {})
    name = named["error"]
    return {"Error": name.removeprefix("States.") or "Error", "Cause": named["cause"]}


def _checked(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise EventError(f"a Strato task event is a JSON object, got {type(event).__name__}; nothing was run")
    unknown = sorted(str(k)[:40] for k in event if k not in EVENT_FIELDS)
    if unknown:
        raise EventError(f"the event has fields no Strato state machine sends ({', '.join(unknown[:5])}); "
                         "nothing was run")
    if event.get("op") not in ("resolve", "collect_items", "failure") and not isinstance(event.get("task"), str):
        raise EventError("the event names no task (\"task\": \"<task id>\"); nothing was run")
    return event


def _call(name: str, fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    """The task with its granted secrets, read from Secrets Manager (moto's in emulation, seeded from
    ``STRATO_SECRET_<NAME>``, falling back to the variable itself so a missing one is named)."""
    with shim_attempt(name, fn):  # OpenLineage START and COMPLETE/FAIL, when configured
        return _call_task(name, fn, args)


def _call_task(name: str, fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    secrets = granted_secrets(name)
    if not secrets:
        return invoke(name, fn, args)
    from strato.secrets import SecretUnavailable, from_environment, secret_source

    from .secrets import secrets_manager

    read = secrets_manager()
    emulated = loader_override() is not None

    def source(secret: str) -> str:
        try:
            return read(secret)
        except SecretUnavailable:
            if not emulated:
                raise
            return from_environment(secret)

    with secret_source(source):
        return invoke(name, fn, args, secrets)


class ItemFailed(Exception):
    """Stands for a map item's error; raised under that error's own class name."""


def _raise_as_item_error(error: dict[str, Any]) -> None:
    """Raise a Step Functions error under its own class name and message, so the run fails as it does
    on the local runner (and ``States.Timeout`` is ``TaskTimeout`` again)."""
    named = error_of_states(error)
    raise type(str(named["error"]), (ItemFailed,), {})(named["cause"])


def _collect_items(written: Any, count: Any, keep: list[list[Any]] | None, limit: int | None) -> Any:
    """A Distributed Map's results, read from the files its ``ResultWriter`` wrote, in item order.

    Each child execution's output is ``{"index", "value"}`` or ``{"index", ITEM_ERROR}`` (what its
    task let escape); the first failed item, by index, fails the run with its own error. A child that
    failed outright (a Step Functions error no catcher sees) fails it too.
    https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html
    """
    details = written.get("ResultWriterDetails") if isinstance(written, dict) else None
    if not isinstance(details, dict) or not {"Bucket", "Key"} <= set(details):
        raise EventError("collect_items needs the map's ResultWriterDetails; nothing was run")
    manifest = json.loads(read_object(f"s3://{details['Bucket']}/{details['Key']}"))
    files = manifest.get("ResultFiles") or {}
    listed = [file for status in ("FAILED", "PENDING", "SUCCEEDED") for file in files.get(status) or ()]
    entries = [entry for file in listed
               for entry in json.loads(read_object(f"s3://{manifest['DestinationBucket']}/{file['Key']}"))]
    outputs: dict[int, Any] = {}
    for entry in entries:
        if entry.get("Status") != "SUCCEEDED":
            _raise_as_item_error({"Error": entry.get("Error") or "States.Runtime",
                                  "Cause": entry.get("Cause") or f"a map item ended {entry.get('Status')}"})
        output = json.loads(entry["Output"])
        outputs[int(output["index"])] = output
    if isinstance(count, int) and len(outputs) != count:
        raise _MissingItem(f"the map run wrote results for {len(outputs)} of its {count} items"
                           + ("; its manifest lists no result files (an emulator's ResultWriter that writes none, "
                              "such as LocalStack's: start it with adapters/aws/localstack_main.py)"
                              if not listed else ""))
    values = []
    for index in range(len(outputs)):
        if index not in outputs:
            raise _MissingItem(f"the map's results have no item {index}")
        if ITEM_ERROR in outputs[index]:
            _raise_as_item_error(outputs[index][ITEM_ERROR])
        values.append(materialise(outputs[index]["value"]))
    return offload(values, keep, limit)


class _MissingItem(AdapterError):
    """A map run's result files lack an item: they are incomplete."""


def handle(event: Any) -> Any:
    """Run one step for the state machine: resolve a value, call a catch handler, or run a task.

    Results referenced by the step are materialised from S3 when they were offloaded, and a large
    result is offloaded in turn (see :mod:`strato.adapters.aws.payloads`).
    """
    event = _checked(event)
    share = event.get("share")
    params = event.get("params") or {}
    limit = state_threshold(share, params) if isinstance(share, int) and not isinstance(share, bool) else None
    if event.get("op") == "failure":
        return failure_for_fail_state(event.get("error"))
    if event.get("op") == "collect_items":
        return _collect_items(event.get("written"), event.get("count"), event.get("keep"), limit)
    if event.get("op") == "resolve":
        params = event.get("params") or {}
        refs = {k: materialise(v) for k, v in (event.get("refs") or {}).items()}
        value = event["value"] if "value" in event else json.loads(event["value_json"])
        resolved = ir.resolve_value(ir.value_from_dict(value), refs, params)
        if "store_items_for" in event:  # a Distributed Map reads its items from S3
            if not isinstance(resolved, list):
                raise TypeError(ir.not_a_list(str(event["store_items_for"]), resolved))
            return store_items(resolved)
        return resolved if event.get("inline") else offload(resolved, event.get("keep"))  # a child's input: inline
    name = event["task"]
    fn = load_task(name)  # only a task of this deployment; anything else is refused here
    keep = event.get("keep")
    if "hook" in event:
        _run_hook(name, fn, event)
        return None
    if "error" in event:
        with task_context(_run_context(event.get("context"), name)):
            handled = _call(name, fn, {event["handler_param"]: error_of_states(event["error"])})
        return _item(event, offload(handled, keep, limit))
    refs = {k: materialise(v) for k, v in (event.get("refs") or {}).items()}
    encoded = event["args"] if "args" in event else json.loads(event["args_json"])
    args = {k: ir.resolve_value(ir.value_from_dict(v), refs, params) for k, v in encoded.items()}
    if "item_param" in event:
        args[event["item_param"]] = materialise(event["item"])
    with task_context(_run_context(event.get("context"), name)):
        result = _call(name, fn, args)
    return _item(event, offload(result, keep, limit))


def _run_hook(name: str, fn: Callable[..., Any], event: dict[str, Any]) -> None:
    """The run's ``on_failure``/``on_success`` hook: its outcome built from the execution's context and the
    error caught for it; its other arguments are the literals the state machine holds."""
    hook = event["hook"]
    problem = hook_problem(hook)
    if problem is not None:
        raise EventError(problem)
    ctx = _run_context(event.get("context"), name)
    error = error_of_states(hook["error"]) if isinstance(hook.get("error"), dict) else None  # a failed run's
    with task_context(ctx):
        _call(name, fn, hook_arguments(hook, event.get("args"), ctx, error))


def _run_context(given: Any, task: str) -> RunContext:
    """``strato.context()`` from the context-object fields the state machine sends (data only)."""
    fields: dict[str, Any] = given if isinstance(given, dict) else {}
    retries = fields.get("retries")
    attempt = retries + 1 if isinstance(retries, int) and not isinstance(retries, bool) and retries >= 0 else 1
    return run_context({"ctx": {"run": fields.get("run"), "pipeline": fields.get("pipeline")},
                        "task_id": fields.get("task_id"), "attempt": attempt, "map_index": fields.get("map_index")},
                       task, "aws")


def _item(event: dict[str, Any], result: Any) -> Any:
    """A Distributed Map item's result carries its index; any other result is itself."""
    return {"index": event["index"], "value": result} if "index" in event else result


def handler(event: dict[str, Any], context: Any) -> Any:
    """The AWS Lambda entry point."""
    return handle(event)
