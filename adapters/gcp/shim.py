"""The Cloud Function (2nd gen, HTTP) that runs a task for a workflow.

Deployed once per task with the entry point ``handler`` (``main.py``: ``from strato.adapters.gcp.shim import
handler``). The workflow posts the task's id and arguments as IR values plus the results they
reference and the params; the shim runs only a task of its own deployment (the ``STRATO_TASKS``
catalog the infra component sets: :mod:`strato.adapters.common.tasks`), resolves the arguments with
the local runner's code and calls the task through ``strato.runtime.invoke`` (granted secrets from
Secret Manager). A request naming anything else answers HTTP 400 with ``{"error": "UnknownTask" or
"RefusedCall", "cause": ...}`` and runs nothing. A task's failure answers HTTP 500 with
``{"error": ClassName, "cause": message}``, so the workflow's retry predicate and ``except`` read the
class name from ``e.body.error``.

Results referenced by a call (and map items) are materialised when they were offloaded to Cloud
Storage, and a large result is offloaded in turn, keeping inline the paths the workflow reads
(``keep``); see :mod:`strato.adapters.gcp.payloads`. ``{"op": "resolve", ...}`` resolves a value the
workflow needs whole (the output, a sub-pipeline's input) with its envelopes materialised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from strato import ir
from strato.adapters.common import offload as common
from strato.adapters.common.emulation import loader_override
from strato.adapters.common.errors import UnknownTask
from strato.adapters.common.tasks import granted_secrets, hook_arguments, hook_problem, load_task, run_context
from strato.lineage import shim_attempt
from strato.run_context import RunContext, task_context
from strato.runtime.invoke import error_of, invoke

from .payloads import ResultTooLarge, materialise, memory_threshold, offload

__all__ = ["ResultTooLarge", "handle", "handler", "run"]

# Every field a compiled workflow posts; a body with anything else is refused before anything runs.
BODY_FIELDS = frozenset({"op", "task", "args", "params", "refs", "keep", "item_param", "item", "error", "share",
                         "output", "handler_param", "value", "context", "hook"})


class RefusedCall(Exception):
    """A request no compiled workflow sends (unknown fields, no task id): answered 400, nothing run."""


def _call(name: str, fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    """The task with its granted secrets: from the environment in emulation, from Secret Manager deployed."""
    with shim_attempt(name, fn):  # OpenLineage START and COMPLETE/FAIL, when configured
        return _call_task(name, fn, args)


def _call_task(name: str, fn: Callable[..., Any], args: dict[str, Any]) -> Any:
    secrets = granted_secrets(name)
    if not secrets or loader_override() is not None:
        return invoke(name, fn, args, secrets)
    from strato.secrets import secret_source

    from .secrets import secret_manager

    with secret_source(secret_manager()):
        return invoke(name, fn, args, secrets)


def run(payload: dict[str, Any]) -> Any:
    """Run one task (or catch handler, or resolve step) described by the workflow's request body."""
    params = payload.get("params") or {}
    if payload.get("op") == "stash":  # a part's argument over the 32 KB an execution takes: by reference
        return offload("part argument", payload["value"], None, 0)
    if payload.get("op") == "resolve":
        refs = {k: materialise(v) for k, v in (payload.get("refs") or {}).items()}
        resolved = ir.resolve_value(ir.value_from_dict(payload["value"]), refs, params)
        if payload.get("output") is True:  # the execution's result: an envelope only when over what memory holds
            room = memory_threshold(0, params)
            if len(common.encode(resolved)) > room:
                return offload("output", resolved, None, room)
        return resolved
    name = payload["task"]
    fn = load_task(name)  # only a task of this deployment; anything else is refused here
    ctx = run_context(payload.get("context"), name, "gcp")
    if "hook" in payload:
        _run_hook(name, fn, payload, ctx)
        return None
    with task_context(ctx):
        if "error" in payload:
            result = _call(name, fn, {payload["handler_param"]: payload["error"]})
        else:
            refs = {k: materialise(v) for k, v in (payload.get("refs") or {}).items()}
            encoded = payload.get("args") or {}
            args = {k: ir.resolve_value(ir.value_from_dict(v), refs, params) for k, v in encoded.items()}
            if "item_param" in payload:
                args[payload["item_param"]] = materialise(payload.get("item"))
            result = _call(name, fn, args)
    share = payload.get("share")
    limit = memory_threshold(share, params) if isinstance(share, int) and not isinstance(share, bool) else None
    return offload(name, result, payload.get("keep"), limit)


def _run_hook(name: str, fn: Callable[..., Any], payload: dict[str, Any], ctx: RunContext) -> None:
    """The run's ``on_failure``/``on_success`` hook: its outcome from the run's context and the error the
    workflow caught; its other arguments are the literals the workflow holds."""
    from .errors import workflow_error

    hook = payload["hook"]  # its form is checked by _refusal
    error = workflow_error(hook["error"]) if "error" in hook else None  # sent for a failed run only
    with task_context(ctx):
        _call(name, fn, hook_arguments(hook, payload.get("args"), ctx, error))


def _refusal(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "the request body must be a JSON object: a Strato task call (task, args)"
    unknown = sorted(str(k)[:40] for k in payload if k not in BODY_FIELDS)
    if unknown:
        return f"the request has fields no Strato workflow sends ({', '.join(unknown[:5])}); nothing was run"
    if payload.get("op") in ("resolve", "stash"):
        return None if "value" in payload else f"a {payload['op']} request needs a value; nothing was run"
    if not isinstance(payload.get("task"), str):
        return "the request names no task (\"task\": \"<task id>\"); nothing was run"
    return hook_problem(payload["hook"]) if "hook" in payload else None


def handle(payload: Any) -> tuple[int, Any]:
    """``(status, JSON body)`` for a request body: 200 with the result, 500 with the task's error object,
    400 for a request this function refuses (nothing run)."""
    refusal = _refusal(payload)
    if refusal is not None:
        return 400, {"error": "RefusedCall", "cause": refusal}
    try:
        return 200, run(payload)
    except UnknownTask as exc:
        return 400, error_of(exc)
    except BaseException as exc:  # the task's own failure is data for the workflow
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return 500, error_of(exc)


def handler(request: Any) -> Any:
    """The Functions Framework entry point (``def handler(request: flask.Request)``)."""
    from flask import Response

    payload = request.get_json(silent=True)
    code, body = handle(payload)
    return Response(json.dumps(body), status=code, mimetype="application/json")
