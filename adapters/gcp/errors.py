"""Errors as a workflow hands them over, read as Strato's ``{"error", "cause"}`` (the emulator, the
client and the function shim's run hooks share this; it imports nothing heavy)."""

from __future__ import annotations

from typing import Any


def workflow_error(value: Any) -> dict[str, str]:
    """A failed execution's error value as Strato's ``{"error", "cause"}``.

    The workflow raises Strato errors itself; a parallel step wraps them in UnhandledBranchError
    (the first branch's error is the one reported); anything else is a Workflows error map.
    """
    if isinstance(value, dict):
        found = value.get("tags")
        tags: list[Any] = found if isinstance(found, list) else []
        if "UnhandledBranchError" in tags and value.get("branches"):
            return workflow_error(value["branches"][0].get("error"))
        if "tags" not in value and isinstance(value.get("error"), str):
            return {"error": value["error"], "cause": str(value.get("cause", ""))}
        if "TimeoutError" in tags:
            return {"error": "TaskTimeout", "cause": str(value.get("message", ""))}
        body = value.get("body")
        if "HttpError" in tags and isinstance(body, dict) and isinstance(body.get("error"), str):
            return {"error": body["error"], "cause": str(body.get("cause", ""))}
        return {"error": str(tags[0]) if tags else "Error", "cause": str(value.get("message", value))}
    return {"error": "Error", "cause": value if isinstance(value, str) else str(value)}
