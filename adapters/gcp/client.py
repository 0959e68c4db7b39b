"""Starting and following a run of a deployed workflow (``strato invoke --target gcp``).

Uses the Workflow Executions API through ``google-cloud-workflows``: create an execution with the
run's input as its JSON argument, poll it until it leaves ``ACTIVE``/``QUEUED``, and report it as a
:class:`~strato.runtime.RunResult` with the same ``{"error", "cause"}`` mapping as emulation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from strato.runtime import RunResult

from .naming import workflow_name

FINISHED = ("SUCCEEDED", "FAILED", "CANCELLED", "UNAVAILABLE")


def workflow_path(project: str, location: str, pipeline: str) -> str:
    return f"projects/{project}/locations/{location}/workflows/{workflow_name(pipeline)}"


def _state(execution: Any) -> str:
    state = execution.state
    return getattr(state, "name", str(state))


def _output(value: Any) -> Any:
    """The execution's result; an output too large for the workflow is an envelope read from its bucket."""
    from strato.adapters.common.envelopes import REF, is_ref

    if not is_ref(value):
        return value
    from strato.adapters.common.offload import read_ref
    from strato.adapters.common.stores import split_uri

    from .payloads import GcsStore

    return read_ref(value, GcsStore(split_uri(value[REF], "gs")[0]))


def _error(execution: Any) -> dict[str, str]:
    from .errors import workflow_error

    error = execution.error
    payload = getattr(error, "payload", "") or ""
    try:
        value: Any = json.loads(payload)
    except (TypeError, ValueError):
        value = payload
    if _state(execution) == "CANCELLED":
        return {"error": "Cancelled", "cause": "the execution was cancelled"}
    if not payload and getattr(error, "context", None):
        return {"error": "Error", "cause": error.context}
    return workflow_error(value)


def invoke(pipeline: str, params: dict[str, Any], *, project: str, location: str, client: Any = None,
           poll_seconds: float = 2.0, timeout: float | None = None,
           sleep: Callable[[float], None] = time.sleep, on_start: Callable[[str], None] | None = None) -> RunResult:
    """Start an execution of the deployed workflow of ``pipeline`` and wait for its end.

    ``client`` defaults to ``executions_v1.ExecutionsClient()`` (application default credentials);
    tests pass one built on a fake transport. ``timeout`` (seconds) gives up waiting, not the run.
    """
    from google.cloud.workflows import executions_v1

    client = client or executions_v1.ExecutionsClient()
    execution = client.create_execution(parent=workflow_path(project, location, pipeline),
                                        execution=executions_v1.Execution(argument=json.dumps(params)))
    name = execution.name
    if on_start is not None:
        on_start(name)
    waited = 0.0
    while _state(execution) not in FINISHED:
        if timeout is not None and waited >= timeout:
            raise TimeoutError(f"execution {name} is still {_state(execution)} after {timeout:g}s; follow it with "
                               "`gcloud workflows executions describe`")
        sleep(poll_seconds)
        waited += poll_seconds
        execution = client.get_execution(name=name)
    run_id = name.rsplit("/", 1)[-1]
    if _state(execution) == "SUCCEEDED":
        return RunResult(run_id, "SUCCEEDED", _output(json.loads(execution.result) if execution.result else None),
                         None)
    return RunResult(run_id, "FAILED", None, _error(execution))
