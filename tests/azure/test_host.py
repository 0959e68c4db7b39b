"""The replay host itself: the SDK's history protocol, retries, determinism, errors, and the starters."""

from __future__ import annotations

import json
from typing import Any

import pytest

df = pytest.importorskip("azure.durable_functions")
func = pytest.importorskip("azure.functions")

from strato.adapters.azure.emulator import ReplayHost  # noqa: E402
from tests.azure import pipelines  # noqa: E402
from tests.azure.conftest import T0  # noqa: E402


def events(host: ReplayHost, instance: str) -> list[tuple[int, int]]:
    """(event type, id) for the events that carry one: scheduled/created ids and the ids they complete."""
    out = []
    for e in host.instances[instance].history:
        if e["EventType"] in (4, 7, 10):
            out.append((e["EventType"], e["EventId"]))
        elif e["EventType"] in (5, 6, 8, 9):
            out.append((e["EventType"], e["TaskScheduledId"]))
        elif e["EventType"] == 11:
            out.append((11, e["TimerId"]))
    return out


def test_replay_must_schedule_what_history_has() -> None:
    app = df.DFApp()
    calls = {"n": 0}

    @app.orchestration_trigger(context_name="context")
    def drifting(context: df.DurableOrchestrationContext):  # reads state outside its history: not deterministic
        calls["n"] += 1
        return (yield context.call_activity("hello", f"call {calls['n']}"))

    @app.activity_trigger(input_name="name")
    def hello(name: str) -> str:
        return name

    host = ReplayHost(app, start=T0, durations=lambda name, value: 0.0)
    result = host.result(host.run_orchestration("drifting", None, "nd-1"))
    assert result.status == "FAILED"
    assert result.error["error"] == "NonDeterministicOrchestration"
    assert "action 1 is now activity 'hello' with input \"call 2\"" in result.error["cause"]
    assert "its history has activity 'hello' with input \"call 1\"" in result.error["cause"]


def test_an_orchestrator_error_fails_the_instance_instead_of_looping() -> None:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def broken(context: df.DurableOrchestrationContext):
        value = yield context.call_activity("hello", "x")
        raise ValueError(f"cannot use {value}")

    @app.activity_trigger(input_name="name")
    def hello(name: str) -> str:
        return name

    host = ReplayHost(app, start=T0, durations=lambda name, value: 0.0)
    instance = host.run_orchestration("broken", None, "err-1")
    assert instance.status == "Failed" and instance.episodes == 2
    assert host.result(instance).error == {"error": "OrchestrationFailed", "cause": "cannot use x"}


def test_an_orchestration_waiting_for_nothing_is_reported() -> None:
    from datetime import timedelta

    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def waiting(context: df.DurableOrchestrationContext):
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=5))
        timer.cancel()  # a cancelled timer never fires
        return (yield timer)

    @app.orchestration_trigger(context_name="context")
    def approving(context: df.DurableOrchestrationContext):
        return (yield context.wait_for_external_event("approval"))

    host = ReplayHost(app, start=T0)
    result = host.result(host.run_orchestration("waiting", None, "stuck-1"))
    assert result.error["error"] == "OrchestrationStuck"
    result = host.result(host.run_orchestration("approving", None, "stuck-2"))
    assert result.status == "FAILED" and "not supported by the replay host" in result.error["cause"]


def _retry_app(failures: int, attempts: int) -> tuple[Any, dict[str, int]]:
    app = df.DFApp()
    calls = {"n": 0}

    @app.orchestration_trigger(context_name="context")
    def retried(context: df.DurableOrchestrationContext):
        options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=attempts)
        flaky = context.call_activity_with_retry("flaky", options, "x")
        other = context.call_activity("steady", "y")
        try:
            return (yield context.task_all([flaky, other]))
        except Exception as exc:
            return f"gave up: {str(exc).splitlines()[0]}"

    @app.activity_trigger(input_name="value")
    def flaky(value: str) -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise ConnectionError(f"attempt {calls['n']}")
        return f"{value} after {calls['n']}"

    @app.activity_trigger(input_name="value")
    def steady(value: str) -> str:
        return value

    return app, calls


def test_call_activity_with_retry_gets_the_extensions_retry_shape() -> None:
    app, _ = _retry_app(failures=2, attempts=3)
    host = ReplayHost(app, start=T0, durations=lambda name, value: 0.0)
    assert host.run_orchestration("retried", None, "r-1").output == ["x after 3", "y"]
    # a failed attempt is followed by a timer with the next id, then the attempt again under a new id
    assert events(host, "r-1") == [(4, 0), (4, 1), (6, 0), (5, 1), (10, 2), (11, 2), (4, 3), (6, 3), (10, 4), (11, 4),
                                   (4, 5), (5, 5)]
    assert [run.started - T0 for run in host.activity_runs if run.name == "flaky"] == [0.0, 1.0, 2.0]


def test_call_activity_with_retry_waits_one_more_timer_before_giving_up() -> None:
    app, calls = _retry_app(failures=9, attempts=2)
    host = ReplayHost(app, start=T0, durations=lambda name, value: 0.0)
    output = host.run_orchestration("retried", None, "r-2").output
    # the extension's wording: the worker's "Type: message" after "Exception:" (its leading space kept)
    assert output.startswith("gave up: Activity function 'flaky' failed:  ConnectionError: attempt 2 ")
    assert calls["n"] == 2
    assert [e for e, _ in events(host, "r-2")].count(11) == 2  # after each failure, the last one too
    assert host.now == T0 + 2


# ---------------------------------------------------------------------------------------- starters
@pytest.fixture
def triggered(emulated: Any) -> Any:
    app = emulated(pipelines.triggered, durations=lambda name, value: 0.0)
    with app.emulation.activate():
        yield app


def test_http_starter_starts_a_run_and_answers_with_status_urls(triggered: Any) -> None:
    host = triggered.host
    request = func.HttpRequest("POST", "http://localhost:7071/api/pipelines/triggered", headers={},
                               body=json.dumps({"bucket": "b", "key": "k.csv"}).encode())
    response = host.trigger("triggered_start", request)
    assert response.status_code == 202
    links = json.loads(response.get_body())
    instance = host.instances[links["id"]]
    assert links["statusQueryGetUri"].startswith(f"http://localhost:7071/runtime/webhooks/durabletask/instances/"
                                                 f"{links['id']}")
    assert response.headers["Location"] == links["statusQueryGetUri"]
    host.run(instance)
    assert instance.output == {"seen": {"bucket": "b", "key": "k.csv", "size": 0, "note": ""}}


def test_a_public_starter_answers_the_run_id_only(emulated: Any) -> None:
    """An anonymous endpoint must not hand out the status URLs: they carry the extension's system key."""
    app = emulated(pipelines.public, durations=lambda name, value: 0.0)
    with app.emulation.activate():
        host = app.host
        request = func.HttpRequest("POST", "http://localhost:7071/api/sales/daily", headers={}, body=b"{}")
        response = host.trigger("public_start", request)
        assert response.status_code == 202
        body = json.loads(response.get_body())
        assert set(body) == {"id"} and body["id"] in host.instances
        assert "code=" not in response.get_body().decode() and "Location" not in response.headers


def test_http_starter_refuses_bad_input(triggered: Any) -> None:
    host = triggered.host
    for body, problem in ((b'{"bucket": "b"}', "missing required parameter(s) 'key'"),
                          (b'{"bucket": "b", "key": "k", "colour": 1}', "unknown parameter(s) 'colour'"),
                          (b"[1]", "must be a JSON object"), (b"{", "not JSON")):
        response = host.trigger("triggered_start", func.HttpRequest("POST", "http://x/api/pipelines/triggered",
                                                                    headers={}, body=body))
        assert response.status_code == 400
        assert problem in json.loads(response.get_body())["error"]
    assert host.instances == {}


def test_timer_trigger_starts_a_run_with_the_schedules_input(triggered: Any) -> None:
    host = triggered.host
    host.trigger("triggered_schedule", {"Schedule": {"AdjustForDST": False}, "IsPastDue": False,
                                        "ScheduleStatus": {"Last": "2024-01-01T06:30:00Z"}})
    (instance,) = host.instances.values()
    host.run(instance)
    assert instance.output == {"seen": {"bucket": "landing", "key": "nightly.csv", "size": 0, "note": ""}}


def _blob_event(subject: str, event_type: str = "Microsoft.Storage.BlobCreated") -> dict[str, Any]:
    return {"id": "e1", "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a",
            "subject": subject, "eventType": event_type, "eventTime": "2024-01-01T00:00:00Z", "dataVersion": "",
            "data": {"api": "PutBlob", "contentLength": 1234, "url": "https://a.blob.core.windows.net/x"}}


def test_event_grid_trigger_maps_a_blob_event_to_bucket_key_and_size(triggered: Any) -> None:
    host = triggered.host
    host.trigger("triggered_object_created", _blob_event("/blobServices/default/containers/landing/blobs/"
                                                         "incoming/day/orders.csv"))
    (instance,) = host.instances.values()
    host.run(instance)
    assert instance.output == {"seen": {"bucket": "landing", "key": "incoming/day/orders.csv", "size": 1234,
                                        "note": "event"}}
    for subject, kind in (("/blobServices/default/containers/landing/blobs/incoming/orders.txt", None),
                          ("/blobServices/default/containers/other/blobs/incoming/orders.csv", None),
                          ("/blobServices/default/containers/landing/blobs/archive/orders.csv", None),
                          ("/blobServices/default/containers/landing/blobs/incoming/orders.csv",
                           "Microsoft.Storage.BlobDeleted")):
        host.trigger("triggered_object_created", _blob_event(subject, kind or "Microsoft.Storage.BlobCreated"))
    assert len(host.instances) == 1
