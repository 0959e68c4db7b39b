"""The Cloud Function (2nd gen, HTTP) that runs a task for a workflow.

Deployed once per task with the entry point ``handler`` (``main.py``: ``from adapters.gcp.shim import
handler``). The workflow posts the task's arguments as IR values plus the results they reference
and the params; the shim resolves them with the local runner's code and calls the task through
``framework.runtime.invoke``. A failure answers HTTP 500 with ``{"error": ClassName, "cause": message}``
so the workflow's retry predicate and ``except`` read the class name from ``e.body.error``.

A result larger than a workflow can hold (``STRATO_GCP_MAX_RESULT_BYTES``, default 256 KiB of the
512 KB variable budget) fails clearly as ``ResultTooLarge`` instead of failing the execution later.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from framework import ir
from framework.runtime.invoke import error_of, invoke

Loader = Callable[[str, str], Callable[..., Any]]
DEFAULT_MAX_RESULT_BYTES = 256 * 1024


class ResultTooLarge(Exception):
    """A task's result is over what a workflow variable may hold."""


def _import(name: str, target: str) -> Callable[..., Any]:
    from framework.runtime import import_task

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


def max_result_bytes() -> int:
    return int(os.environ.get("STRATO_GCP_MAX_RESULT_BYTES", DEFAULT_MAX_RESULT_BYTES))


def run(payload: dict[str, Any], load: Loader | None = None) -> Any:
    """Run one task (or catch handler) described by the workflow's request body; raises on failure."""
    load = load or _loader
    name = payload["task"]
    fn = load(name, payload["fn"])
    if "error" in payload:
        result = invoke(name, fn, {payload["handler_param"]: payload["error"]})
    else:
        params, refs = payload.get("params") or {}, payload.get("refs") or {}
        encoded = payload.get("args") or {}
        args = {k: ir.resolve_value(ir.value_from_dict(v), refs, params) for k, v in encoded.items()}
        if "item_param" in payload:
            args[payload["item_param"]] = payload.get("item")
        result = invoke(name, fn, args)
    size = len(json.dumps(result, separators=(",", ":")).encode())
    if size > max_result_bytes():
        raise ResultTooLarge(f"task {name!r} returned {size:,} bytes of JSON, over the {max_result_bytes():,}-byte "
                             "limit for a Cloud Workflows result (variables hold at most 512 KB); return a reference "
                             "(a gs:// URI or a path) to the data instead")
    return result


def handle(payload: Any, load: Loader | None = None) -> tuple[int, Any]:
    """``(status, JSON body)`` for a request body: 200 with the result, or 500 with the error object."""
    if not isinstance(payload, dict) or "task" not in payload or "fn" not in payload:
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
