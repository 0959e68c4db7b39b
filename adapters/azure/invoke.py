"""Starting and following a run of a deployed function app (``strato invoke --target azure``).

The generated app's HTTP starter (``POST /api/<route>``, the pipeline's first ``Http`` trigger or
``pipelines/<name>``) answers 202 with ``create_check_status_response``'s body: the instance ``id`` and
its management URLs. ``statusQueryGetUri`` is then polled as the Durable Functions HTTP API documents
(https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-http-api): 202 while the
instance is Pending or Running, 200 when it has finished, 400/500 with the same status body when it
failed or was terminated, whose ``runtimeStatus`` and ``output`` are read. A failure's ``output`` is the
extension's failure text, decoded as the replay host decodes it (:func:`.orchestration.error_from_text`).
Plain HTTP through the standard library: nothing beyond what the status API needs.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from strato import ir
from strato.errors import StratoError, UsageError
from strato.runtime import RunResult

from .orchestration import error_from_text

FIRST_POLL = 0.05  # seconds; doubled after each status query up to the caller's poll interval
RUNNING = ("Pending", "Running", "ContinuedAsNew", "Suspended")


def starter_url(pipeline: ir.PipelineIR, endpoint: str) -> str:
    """The HTTP starter of the deployed app: Functions' default ``api`` route prefix and the trigger's path."""
    https = [t for t in pipeline.triggers if isinstance(t, ir.HttpSpec)]
    route = ((https[0].path if https else None) or f"/pipelines/{pipeline.name}").lstrip("/")
    return f"{endpoint.rstrip('/')}/api/{route}"


def _request(url: str, *, data: bytes | None = None, key: str | None = None, timeout: float = 60) -> tuple[int, Any]:
    """An HTTP call answered with JSON; an error status is an answer too (the status API uses them)."""
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["x-functions-key"] = key
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise StratoError(f"azure: cannot reach {url.split('?')[0]}: {getattr(exc, 'reason', exc)}") from None
    try:
        return status, json.loads(body) if body else None
    except json.JSONDecodeError:
        return status, body.decode(errors="replace")


def _status_url(started: dict[str, Any], endpoint: str, key: str | None) -> str:
    url = started.get("statusQueryGetUri")
    if isinstance(url, str):
        return url
    if not key:  # a public starter answers with the id only: its status URLs carry the system key
        raise UsageError(f"the starter returned instance {started['id']} without status URLs (an anonymous "
                         "trigger); pass --key with the app's durabletask_extension system key to follow it")
    query = urllib.parse.urlencode({"code": key})
    return f"{endpoint.rstrip('/')}/runtime/webhooks/durabletask/instances/{started['id']}?{query}"


def invoke(pipeline: ir.PipelineIR, params: dict[str, Any], *, endpoint: str, key: str | None = None,
           poll_seconds: float = 2.0, timeout: float | None = None, sleep: Callable[[float], None] = time.sleep,
           on_start: Callable[[str], None] | None = None) -> RunResult:
    """POST ``params`` to the app's HTTP starter and follow the instance's status to its end.

    ``timeout`` (seconds) gives up waiting, not the run; the run id is the orchestration's instance id.
    """
    url = starter_url(pipeline, endpoint)
    status, started = _request(url, data=json.dumps(params).encode(), key=key)
    if status in (401, 403):
        raise UsageError(f"azure: {url} refused the request ({status}); pass the function's key with --key")
    if status != 202 or not isinstance(started, dict) or not isinstance(started.get("id"), str):
        detail = started.get("error") if isinstance(started, dict) else started
        raise StratoError(f"azure: {url} answered {status} instead of starting a run: {str(detail)[:300]}")
    instance = started["id"]
    if on_start is not None:
        on_start(instance)
    status_url = _status_url(started, endpoint, key)
    waited, interval = 0.0, min(FIRST_POLL, poll_seconds)
    while True:
        code, body = _request(status_url)
        if not isinstance(body, dict) or "runtimeStatus" not in body:
            raise StratoError(f"azure: the status of instance {instance} answered {code}: {str(body)[:300]}")
        if body["runtimeStatus"] not in RUNNING:
            break
        if timeout is not None and waited >= timeout:
            raise TimeoutError(f"instance {instance} is still {body['runtimeStatus']} after {timeout:g}s; follow "
                               f"it at its statusQueryGetUri")
        sleep(interval)
        waited += interval
        interval = min(interval * 2, poll_seconds)
    runtime_status, output = body["runtimeStatus"], body.get("output")
    if runtime_status == "Completed":
        return RunResult(instance, "SUCCEEDED", output, None)
    if runtime_status in ("Terminated", "Canceled"):
        return RunResult(instance, "FAILED", None, {"error": "Cancelled", "cause": str(output or runtime_status)})
    return RunResult(instance, "FAILED", None, error_from_text(output if isinstance(output, str) else
                                                               json.dumps(output), "OrchestrationFailed"))
