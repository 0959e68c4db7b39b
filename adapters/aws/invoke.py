"""Starting and following a run of a deployed state machine (``strato invoke --target aws``).

``StartExecution`` of the root state machine (found by its name from :mod:`.naming`, or given by ARN),
``DescribeExecution`` polled with a growing interval until the execution leaves ``RUNNING``, and the
result reported as the emulator reports it: the failure decoded by the shim's
:func:`~strato.adapters.aws.shim.error_of_states`, an offloaded output read back from the payload bucket.
Plain boto3: ``endpoint`` (LocalStack, a moto server) is passed as ``endpoint_url``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from strato.errors import StratoError
from strato.runtime import RunResult

from ..common.envelopes import REF, is_ref
from ..common.stores import split_uri
from .naming import machine_name
from .payloads import S3Store
from .shim import error_of_states

FIRST_POLL = 0.05  # seconds; doubled after each describe up to the caller's poll interval


def find_state_machine(sfn: Any, pipeline: str) -> str:
    """The ARN of the deployed root state machine of ``pipeline`` (named as the compiler names it)."""
    name = machine_name(pipeline, pipeline)
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page.get("stateMachines", []):
            if machine.get("name") == name:
                return str(machine["stateMachineArn"])
    raise StratoError(f"no state machine named {name!r} in this account and region; deploy the pipeline first "
                      "(pulumi up, or strato deploy --local), or pass --state-machine-arn")


def _refs(value: Any) -> list[str]:
    if is_ref(value):
        return [value[REF]]
    if isinstance(value, list):
        return [item[REF] for item in value if is_ref(item)]
    return []


def materialise_output(value: Any, s3: Any) -> Any:
    """An output too large for the execution comes back as envelopes into the payload bucket: read them."""
    from ..common.offload import materialise

    uris = _refs(value)
    if not uris:
        return value
    return materialise(value, S3Store(split_uri(uris[0], "s3")[0], client=s3))


def _output(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # moto (5.2) gives a bare string output unquoted
        return text


def invoke(pipeline: str, params: dict[str, Any], *, endpoint: str | None = None, region: str | None = None,
           state_machine_arn: str | None = None, session: Any = None, poll_seconds: float = 2.0,
           timeout: float | None = None, sleep: Callable[[float], None] = time.sleep,
           on_start: Callable[[str], None] | None = None) -> RunResult:
    """Start an execution of the deployed root state machine of ``pipeline`` and wait for its end.

    ``timeout`` (seconds) gives up waiting, not the run; the run id is the execution's name.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    session = session or boto3.session.Session(region_name=region)
    args: dict[str, Any] = {"endpoint_url": endpoint} if endpoint else {}
    if region:
        args["region_name"] = region
    try:
        sfn = session.client("stepfunctions", **args)
        arn = state_machine_arn or find_state_machine(sfn, pipeline)
        name = f"strato-{uuid.uuid4().hex[:20]}"
        execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(params))["executionArn"]
        if on_start is not None:
            on_start(execution)
        waited, interval = 0.0, min(FIRST_POLL, poll_seconds)
        while True:
            described = sfn.describe_execution(executionArn=execution)
            if described["status"] != "RUNNING":
                break
            if timeout is not None and waited >= timeout:
                raise TimeoutError(f"execution {execution} is still RUNNING after {timeout:g}s; follow it with "
                                   "`aws stepfunctions describe-execution`")
            sleep(interval)
            waited += interval
            interval = min(interval * 2, poll_seconds)
        if described["status"] == "SUCCEEDED":
            output = materialise_output(_output(described.get("output")), session.client("s3", **args))
            return RunResult(name, "SUCCEEDED", output, None)
    except (BotoCoreError, ClientError) as exc:
        raise StratoError(f"aws: {exc}") from None
    if described["status"] in ("ABORTED", "TIMED_OUT"):
        error = {"ABORTED": {"error": "Cancelled", "cause": "the execution was stopped"},
                 "TIMED_OUT": {"error": "TaskTimeout", "cause": "the execution timed out"}}[described["status"]]
        if described.get("error"):
            error = error_of_states({"Error": described.get("error"), "Cause": described.get("cause")})
        return RunResult(name, "FAILED", None, error)
    return RunResult(name, "FAILED", None,
                     error_of_states({"Error": described.get("error"), "Cause": described.get("cause")}))
