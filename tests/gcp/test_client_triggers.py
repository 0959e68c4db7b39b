"""`strato invoke --target gcp` against a replaced Executions transport, and trigger/schedule specs."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("google.cloud.workflows")

from google.auth.credentials import AnonymousCredentials
from google.cloud.workflows import executions_v1
from google.cloud.workflows.executions_v1.services.executions.transports.base import (
    DEFAULT_CLIENT_INFO,
    ExecutionsTransport,
)

from strato.adapters.gcp.client import invoke, workflow_path
from strato.adapters.gcp.triggers import (
    TriggerError,
    event_input,
    event_matches,
    schedule_cron,
    scheduler_job,
    trigger_specs,
)
from strato.ir import ObjectCreatedSpec, ScheduleSpec
from strato.loader import load

State = executions_v1.Execution.State


class FakeTransport(ExecutionsTransport):
    """Answers create/get like the Executions API: ACTIVE for ``polls`` reads, then the final state."""

    def __init__(self, final: executions_v1.Execution, polls: int = 2):
        self.final, self.polls, self.requests = final, polls, []
        self._create, self._get, self._unused = self._do_create, self._do_get, self._not_used
        super().__init__(credentials=AnonymousCredentials())
        self._prep_wrapped_messages(DEFAULT_CLIENT_INFO)

    def _do_create(self, request: Any, **kwargs: Any) -> executions_v1.Execution:
        self.requests.append(("create", request))
        return executions_v1.Execution(name=f"{request.parent}/executions/abc123", state=State.ACTIVE)

    def _do_get(self, request: Any, **kwargs: Any) -> executions_v1.Execution:
        self.requests.append(("get", request))
        self.polls -= 1
        if self.polls > 0:
            return executions_v1.Execution(name=request.name, state=State.ACTIVE)
        return executions_v1.Execution(name=request.name, state=self.final.state, result=self.final.result,
                                       error=self.final.error)

    def _not_used(self, request: Any, **kwargs: Any) -> Any:
        raise AssertionError("invoke should only create and get executions")

    @property
    def list_executions(self) -> Any:
        return self._unused

    @property
    def cancel_execution(self) -> Any:
        return self._unused

    @property
    def create_execution(self) -> Any:
        return self._create

    @property
    def get_execution(self) -> Any:
        return self._get

    @property
    def kind(self) -> str:
        return "fake"


def _client(final: executions_v1.Execution) -> tuple[Any, FakeTransport]:
    transport = FakeTransport(final)
    return executions_v1.ExecutionsClient(transport=transport), transport


def test_invoke_starts_and_follows_an_execution() -> None:
    client, transport = _client(executions_v1.Execution(state=State.SUCCEEDED, result=json.dumps({"sum": 3})))
    sleeps: list[float] = []
    result = invoke("adder", {"a": 1, "b": 2}, project="p", location="europe-west1", client=client,
                    sleep=sleeps.append, poll_seconds=1.5)
    assert (result.status, result.output, result.error, result.run_id) == ("SUCCEEDED", {"sum": 3}, None, "abc123")
    kind, create = transport.requests[0]
    assert kind == "create" and create.parent == workflow_path("p", "europe-west1", "adder")
    assert json.loads(create.execution.argument) == {"a": 1, "b": 2}
    assert sleeps == [1.5, 1.5]


def test_invoke_maps_a_failed_execution_to_the_strato_error() -> None:
    payload = json.dumps({"error": "KeyError", "cause": "'no row 4'"})
    client, _ = _client(executions_v1.Execution(state=State.FAILED,
                                                error=executions_v1.Execution.Error(payload=payload)))
    result = invoke("exploding", {"x": 4}, project="p", location="l", client=client, sleep=lambda s: None)
    assert (result.status, result.error) == ("FAILED", {"error": "KeyError", "cause": "'no row 4'"})


def test_invoke_gives_up_waiting_after_its_timeout() -> None:
    client, _ = _client(executions_v1.Execution(state=State.SUCCEEDED, result="1"))
    client.transport.polls = 100
    with pytest.raises(TimeoutError, match="still ACTIVE"):
        invoke("adder", {}, project="p", location="l", client=client, sleep=lambda s: None, timeout=3,
               poll_seconds=1)


def test_schedules_become_cloud_scheduler_cron() -> None:
    assert schedule_cron(ScheduleSpec(cron="0 2 * * 1-5")) == "0 2 * * 1-5"
    assert schedule_cron(ScheduleSpec(every="15m")) == "*/15 * * * *"
    assert schedule_cron(ScheduleSpec(every="2h")) == "0 */2 * * *"
    assert schedule_cron(ScheduleSpec(every="1d")) == "0 0 * * *"
    with pytest.raises(TriggerError, match="divide"):
        schedule_cron(ScheduleSpec(every="7m"))
    ir = load("examples/daily_sales.py:daily_sales").definition.ir
    job = scheduler_job(ir)
    assert job is not None and job["schedule"] == "0 2 * * *" and job["time_zone"] == "UTC"
    assert job["http_target"]["uri"].endswith("/workflows/daily_sales/executions")
    assert "{project}" in job["http_target"]["uri"]  # filled at deploy time


def test_object_created_becomes_an_eventarc_trigger() -> None:
    ir = load("examples/file_ingestion.py:ingest_file").definition.ir
    specs = trigger_specs(ir)
    (event,) = specs["events"]
    assert {"attribute": "type", "value": "google.cloud.storage.object.v1.finalized"} in event["event_filters"]
    assert {"attribute": "bucket", "value": "landing"} in event["event_filters"]
    assert event["path_pattern"] == "/incoming/**/*.csv"
    trigger = ir.triggers[0]
    assert isinstance(trigger, ObjectCreatedSpec)
    cloud_event = {"data": {"bucket": "landing", "name": "incoming/orders-2024-03-01.csv", "size": "120"}}
    assert event_matches(trigger, cloud_event)
    assert not event_matches(trigger, {"data": {"bucket": "landing", "name": "incoming/notes.txt"}})
    assert event_input(ir, trigger, cloud_event) == {"bucket": "landing", "key": "incoming/orders-2024-03-01.csv"}
