"""The Cloud Function (2nd gen, HTTP) that runs a task for a workflow.

Deployed once per task with the entry point ``handler`` (``main.py``: ``from strato.adapters.gcp.shim import
handler``). The workflow posts the task's arguments as IR values plus the results they reference
and the params; the shim resolves them with the local runner's code and calls the task through
``strato.runtime.invoke``. A failure answers HTTP 500 with ``{"error": ClassName, "cause": message}``
so the workflow's retry predicate and ``except`` read the class name from ``e.body.error``.

Results referenced by a call (and map items) are materialised when they were offloaded to Cloud
Storage, and a large result is offloaded in turn, keeping inline the paths the workflow reads
(``keep``); see :mod:`strato.adapters.gcp.payloads`. ``{"op": "resolve", ...}`` resolves a value the
workflow needs whole (the output, a sub-pipeline's input) with its envelopes materialised.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from strato import ir
from strato.runtime.invoke import error_of, invoke

from .payloads import ResultTooLarge, materialise, offload

__all__ = ["ResultTooLarge", "handle", "handler", "run", "using_loader"]

Loader = Callable[[str, str], Callable[..., Any]]


def _import(name: str, target: str) -> Callable[..., Any]:
    from strato.runtime import import_task

    module, _, qualname = target.partition(":")
    return import_task(ir.TaskSpec(name, module, qualname, ()))


_loader: Loader = _import


@contextmanager
def using_loader(load: Loader) -> Iterator[None]:
    """Let ``handler`` find task code in this process (emulation), then restore the importer."""
    global _loader
    previous, _loader = _loader, load
    try:
        yield
    finally:
        _loader = previous


def run(payload: dict[str, Any], load: Loader | None = None) -> Any:
    """Run one task (or catch handler, or resolve step) described by the workflow's request body."""
    params = payload.get("params") or {}
    refs = {k: materialise(v) for k, v in (payload.get("refs") or {}).items()}
    if payload.get("op") == "resolve":
        return ir.resolve_value(ir.value_from_dict(payload["value"]), refs, params)
    load = load or _loader
    name = payload["task"]
    fn = load(name, payload["fn"])
    if "error" in payload:
        result = invoke(name, fn, {payload["handler_param"]: payload["error"]})
    else:
        encoded = payload.get("args") or {}
        args = {k: ir.resolve_value(ir.value_from_dict(v), refs, params) for k, v in encoded.items()}
        if "item_param" in payload:
            args[payload["item_param"]] = materialise(payload.get("item"))
        result = invoke(name, fn, args)
    return offload(name, result, payload.get("keep"))


def handle(payload: Any, load: Loader | None = None) -> tuple[int, Any]:
    """``(status, JSON body)`` for a request body: 200 with the result, or 500 with the error object."""
    resolve = isinstance(payload, dict) and payload.get("op") == "resolve" and "value" in payload
    if not resolve and (not isinstance(payload, dict) or "task" not in payload or "fn" not in payload):
        return 400, {"error": "ValueError", "cause": "the request body must be a Strato task call (task, fn, args)"}
    try:
        return 200, run(payload, load)
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
