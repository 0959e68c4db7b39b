"""Compiled workflows run in the interpreter, every task through the real Cloud Functions shim; the
results must equal the local runner's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("functions_framework")

from strato import ObjectCreated, pipeline, task
from strato.adapters.base import emulated_loader
from strato.adapters.common.emulation import emulating
from strato.adapters.common.stores import LocalBlobStore
from strato.adapters.gcp.compiler import compile_pipeline
from strato.adapters.gcp.emulator import emulate, workflow_error
from strato.adapters.gcp.interpreter import VirtualClock as WorkflowsClock
from strato.runtime import RunResult, RunStore, SystemClock, VirtualClock, prepare_input, resolver_for
from strato.runtime import run_pipeline as run_locally

from ..aws import pipelines
from ..conftest import EXAMPLE_RUNS, Cli, assert_emulation_matches_run


def on_gcp(pipeline: Any, params: dict, tmp_path: Path, backend: str = "wsgi", store: Any = None,
           raw: bool = False) -> tuple[RunResult, Any]:
    """Emulate ``pipeline``; ``raw`` passes ``params`` as the execution argument unchanged (a CloudEvent)."""
    ir = pipeline.ir
    argument = params if raw else prepare_input(ir, params, pipeline.fn)
    compiled = compile_pipeline(ir)
    return emulate(ir, compiled.source, argument, emulated_loader(ir, resolver_for(ir)), tmp_path,
                   backend, WorkflowsClock(), store, parts=compiled.part_sources)


def locally(pipeline: Any, params: dict, clock: Any = None) -> RunResult:
    return run_locally(pipeline, params, store=RunStore.memory(), clock=clock or VirtualClock())


def same(a: RunResult, b: RunResult) -> None:
    assert (a.status, a.output, a.error) == (b.status, b.output, b.error)


def test_retries_back_off_exactly_and_then_give_up(tmp_path: Path) -> None:
    result, execution = on_gcp(pipelines.retrying, {"tag": "gcp-ok", "failures": 2}, tmp_path)
    assert result.status == "SUCCEEDED" and result.output == {"value": "gcp-ok ok after 3"}
    assert execution.sleeps == [2, 6]  # delay 2, backoff 3, on the virtual clock
    assert locally(pipelines.retrying, {"tag": "local-ok", "failures": 2}).output == {"value": "local-ok ok after 3"}

    failed, execution = on_gcp(pipelines.retrying, {"tag": "gcp-bad", "failures": 9}, tmp_path)
    assert execution.sleeps == [2, 6, 10]  # capped at max_delay
    assert failed.error == {"error": "ConnectionError", "cause": "attempt 4 of gcp-bad failed"}
    local = locally(pipelines.retrying, {"tag": "local-bad", "failures": 9})
    assert local.error == {"error": "ConnectionError", "cause": "attempt 4 of local-bad failed"}


@pytest.mark.parametrize("text", ["12", "twelve"])
def test_catch_hands_the_error_to_the_handler(tmp_path: Path, text: str) -> None:
    result, _ = on_gcp(pipelines.catching, {"text": text}, tmp_path)
    same(result, locally(pipelines.catching, {"text": text}))
    if text == "twelve":
        assert result.output == {"parsed": {"quarantined": {"error": "ValueError",
                                                            "cause": "'twelve' is not a number"}}}


def test_timeout_surfaces_as_task_timeout(tmp_path: Path) -> None:
    pipelines.RELEASE.clear()
    try:
        result, _ = on_gcp(pipelines.timing_out, {"seconds": 5}, tmp_path)
        local = locally(pipelines.timing_out, {"seconds": 5}, clock=SystemClock())
    finally:
        pipelines.RELEASE.set()
    assert result.output == "gave up: TaskTimeout"
    same(result, local)


def test_map_concurrency_switch_and_sleep(tmp_path: Path) -> None:
    pipelines.CALLS.clear()
    result, execution = on_gcp(pipelines.mapping, {"items": [1, 2, 3, 4, 5, 6]}, tmp_path)
    assert result.output == {"squares": [2, 5, 10, 17, 26, 37], "big": "many: 97", "small": None,
                             "after": "done: None"}
    assert execution.sleeps == [30]
    same(result, locally(pipelines.mapping, {"items": [1, 2, 3, 4, 5, 6]}))
    few, _ = on_gcp(pipelines.mapping, {"items": [3]}, tmp_path)
    same(few, locally(pipelines.mapping, {"items": [3]}))
    assert few.output["small"] == "few: 1" and few.output["big"] is None
    empty, _ = on_gcp(pipelines.mapping, {"items": []}, tmp_path)
    same(empty, locally(pipelines.mapping, {"items": []}))


def test_map_items_run_at_most_concurrency_limit_at_a_time() -> None:
    """Each item takes 10 virtual seconds: 6 items two at a time start at 0, 0, 10, 10, 20, 20."""
    from strato.adapters.gcp.interpreter import FunctionTransport, run_workflow

    source = compile_pipeline(pipelines.mapping.ir).source
    clock = WorkflowsClock(start=0)
    starts: list[float] = []

    def handler(request: Any) -> Any:
        body = request.json
        if body["task"] == "square":
            starts.append(clock.now())
            clock.sleep(10)
            return body["item"] * body["item"] + 1
        if body["task"] == "measure":
            starts.append(clock.now())
            return {"count": 6, "total": 97, "first": 2}
        return "x"

    execution = run_workflow(source, {"items": [1, 2, 3, 4, 5, 6]}, transport=FunctionTransport(handler),
                             clock=clock, env={"STRATO_FUNCTIONS_URL": "https://f.test"})
    assert execution.state == "SUCCEEDED", execution.error
    assert execution.result["squares"] == [2, 5, 10, 17, 26, 37]
    assert sorted(starts[:6]) == [0, 0, 10, 10, 20, 20] and starts[6] == 30  # measure waits for the whole map


def test_sub_pipelines_and_their_failures(tmp_path: Path) -> None:
    result, _ = on_gcp(pipelines.nested, {"x": 1}, tmp_path)
    same(result, locally(pipelines.nested, {"x": 1}))
    failed, _ = on_gcp(pipelines.nested_failure, {"x": 4}, tmp_path)
    assert failed.error == {"error": "KeyError", "cause": "'no row 4'"}
    same(failed, locally(pipelines.nested_failure, {"x": 4}))


def test_a_non_series_parallel_graph_gives_the_same_result(tmp_path: Path) -> None:
    result, _ = on_gcp(pipelines.n_shape, {}, tmp_path)
    assert result.output == {"c": "a+b", "d": "b+x"}
    same(result, locally(pipelines.n_shape, {}))


def test_large_results_travel_through_cloud_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """~350 KB, over a workflow's 512 KB of variables once held twice: offloaded, ``count`` kept inline."""
    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "10000")
    store = LocalBlobStore(tmp_path / "bucket-root", "gs", "payloads-test")
    result, execution = on_gcp(pipelines.large_payload, {"rows": 3000}, tmp_path, store=store)
    assert result.status == "SUCCEEDED", result.error
    assert result.output["summary"] == {"count": 3000, "last": 2999}
    same(result, locally(pipelines.large_payload, {"rows": 3000}))
    stored = list((tmp_path / "bucket-root" / "payloads-test" / "strato" / "payloads").iterdir())
    assert len(stored) == 1 and stored[0].stat().st_size > 300_000
    assert "strato_offloaded" in compile_pipeline(pipelines.large_payload.ir).document  # the output is resolved
    assert len(json.dumps(execution.result)) > 300_000

    small, _ = on_gcp(pipelines.large_payload, {"rows": 10}, tmp_path, store=store)  # under the threshold: inline
    same(small, locally(pipelines.large_payload, {"rows": 10}))
    assert len(list(stored[0].parent.iterdir())) == 1


def test_the_shim_offloads_and_keeps_what_the_workflow_reads(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from strato.adapters.gcp.payloads import REF
    from strato.adapters.gcp.shim import handle

    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "1000")
    load = lambda name: getattr(pipelines, name).fn  # noqa: E731
    call = {"task": "big_table", "args": {"rows": {"literal": 50}}, "refs": {}, "params": {}, "keep": [["count"]]}
    with emulating(loader=load, store=LocalBlobStore(tmp_path, "gs")):
        code, envelope = handle(call)
        assert code == 200 and envelope["count"] == 50 and envelope[REF].startswith("gs://strato-payloads/")
        assert "rows" not in envelope and envelope["bytes"] > 1000
        code, summary = handle({"task": "checksum", "args": {"table": {"ref": "t"}}, "refs": {"t": envelope},
                                "params": {}})
        assert (code, summary) == (200, {"count": 50, "last": 49})
        code, whole = handle({"op": "resolve", "value": {"ref": "t", "path": ["rows", -1]}, "refs": {"t": envelope},
                              "params": {}})
        assert (code, whole) == (200, {"id": 49, "payload": "x" * 100})
        code, inline = handle({**call, "keep": [[]]})  # read whole by the workflow: never offloaded
        assert code == 200 and len(inline["rows"]) == 50


@pytest.mark.parametrize(("pipeline", "params"), [
    (pipelines.mapping, {"items": [1, 2, 3, 4, 5, 6]}), (pipelines.mapping, {"items": [3]}),
    (pipelines.nested, {"x": 1}), (pipelines.catching, {"text": "twelve"}), (pipelines.n_shape, {})],
    ids=lambda v: getattr(v, "name", ""))
def test_every_result_offloaded_gives_the_same_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      pipeline: Any, params: dict) -> None:
    """Map items, conditions, sub-pipeline inputs and catch handlers read envelopes' kept fields."""
    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "1")
    pipelines.CALLS.clear()
    result, _ = on_gcp(pipeline, params, tmp_path)
    same(result, locally(pipeline, params))
    assert list((tmp_path / "payloads").rglob("*.json"))


def test_the_cloud_storage_store_uses_google_cloud_storage() -> None:
    from strato.adapters.gcp.payloads import GcsStore

    class Blob:
        def __init__(self, objects: dict, key: str):
            self.objects, self.key = objects, key

        def upload_from_string(self, data: bytes, content_type: str) -> None:
            self.objects[self.key] = (data, content_type)

        def download_as_bytes(self) -> bytes:
            return self.objects[self.key][0]

    class Client:
        def __init__(self) -> None:
            self.objects: dict = {}

        def bucket(self, name: str) -> Any:
            client = self

            class Bucket:
                def blob(self, key: str) -> Blob:
                    return Blob(client.objects, f"{name}/{key}")
            return Bucket()

    client = Client()
    store = GcsStore("my-bucket", client)
    uri = store.put("strato/payloads/x.json", b'{"a": 1}')
    assert uri == "gs://my-bucket/strato/payloads/x.json"
    assert client.objects["my-bucket/strato/payloads/x.json"] == (b'{"a": 1}', "application/json")
    assert store.get(uri) == b'{"a": 1}'
    assert GcsStore("b")._client is None  # the real client is created on first use, with the function's identity


def test_without_a_payload_bucket_a_result_too_large_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    from strato.adapters.gcp.shim import handle

    monkeypatch.delenv("STRATO_PAYLOAD_BUCKET", raising=False)
    with emulating(loader=lambda name: pipelines.big_table.fn):
        code, error = handle({"task": "big_table", "args": {"rows": {"literal": 3000}}, "refs": {}, "params": {}})
    assert code == 500 and error["error"] == "ResultTooLarge"
    assert "over the 262,144-byte limit" in error["cause"] and "STRATO_PAYLOAD_BUCKET" in error["cause"]


def test_real_http_to_functions_framework_on_localhost(tmp_path: Path) -> None:
    result, _ = on_gcp(pipelines.catching, {"text": "nope"}, tmp_path, backend="http")
    same(result, locally(pipelines.catching, {"text": "nope"}))
    retried, execution = on_gcp(pipelines.retrying, {"tag": "gcp-http", "failures": 1}, tmp_path, backend="http")
    assert retried.output == {"value": "gcp-http ok after 2"} and execution.sleeps == [2]


def test_the_shim_answers_failures_as_structured_json() -> None:
    import functions_framework  # noqa: F401 - the shim's entry point runs under it
    from flask import Flask

    from strato.adapters.gcp.shim import handler

    app = Flask("shim-test")
    with emulating(loader=lambda name: pipelines.parse.fn), app.test_request_context(
            json={"task": "parse", "args": {"text": {"literal": "x"}}, "refs": {}, "params": {}}):
        from flask import request

        response = handler(request)
    assert response.status_code == 500
    assert json.loads(response.get_data()) == {"error": "ValueError", "cause": "'x' is not a number"}


def test_workflow_errors_map_back_to_strato_errors() -> None:
    assert workflow_error({"message": "x", "tags": ["TimeoutError"]})["error"] == "TaskTimeout"
    assert workflow_error({"message": "HTTP 500", "tags": ["HttpError"], "body": {"error": "E", "cause": "c"}}) == \
        {"error": "E", "cause": "c"}
    branch = {"message": "UnhandledBranchError", "tags": ["UnhandledBranchError"],
              "branches": [{"id": "0", "error": {"error": "KeyError", "cause": "'k'"}}]}
    assert workflow_error(branch) == {"error": "KeyError", "cause": "'k'"}
    assert workflow_error({"message": "boom", "tags": ["TypeError"]}) == {"error": "TypeError", "cause": "boom"}
    assert workflow_error("raised text") == {"error": "Error", "cause": "raised text"}


@pytest.mark.parametrize(("ref", "payload"), EXAMPLE_RUNS)
def test_examples_give_the_same_output_as_strato_run(cli: Cli, ref: str, payload: dict) -> None:
    assert_emulation_matches_run(cli, ref, payload, "--target", "gcp")


# ----------------------------------------------------------------------------- Eventarc CloudEvents
def cloud_event(bucket: str, name: str, size: str = "120") -> dict[str, Any]:
    """What Eventarc passes to a workflow for a finalized Cloud Storage object."""
    return {"specversion": "1.0", "id": "1234", "type": "google.cloud.storage.object.v1.finalized",
            "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}", "subject": f"objects/{name}",
            "time": "2024-03-01T02:00:00Z", "datacontenttype": "application/json",
            "data": {"bucket": bucket, "name": name, "size": size, "contentType": "text/csv"}}


def test_a_cloud_event_argument_becomes_the_pipelines_parameters(tmp_path: Path) -> None:
    from strato.adapters.gcp.triggers import event_input
    from strato.loader import load

    from ..conftest import ROOT

    definition = load(str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file").definition
    for key, status in (("incoming/orders-2024-03-01.csv", "loaded"), ("incoming/orders-bad.csv", "quarantined")):
        event = cloud_event("landing", key)
        result, _ = on_gcp(definition, event, tmp_path, raw=True)
        assert result.status == "SUCCEEDED", result.error
        assert result.output["status"] == status and result.output["source"] == f"landing/{key}"
        same(result, locally(definition, {"bucket": "landing", "key": key}))
        trigger = definition.ir.triggers[0]
        same(result, locally(definition, event_input(definition.ir, trigger, event)))
    unmatched, _ = on_gcp(definition, cloud_event("landing", "incoming/notes.txt"), tmp_path, raw=True)
    assert unmatched.error is not None and unmatched.error["error"] == "ValueError"
    assert "no ObjectCreated trigger" in unmatched.error["cause"]


@task
def describe_drop(bucket: str, key: str, size: int, mode: str, tag: str) -> dict:
    return {"bucket": bucket, "key": key, "size": size, "mode": mode, "tag": tag}


@pipeline(triggers=[ObjectCreated(bucket="drops", prefix="in/a.", suffix=".json", input={"mode": "fast"}),
                    ObjectCreated(bucket="drops", prefix="in/", suffix=".json")])
def on_drop(bucket: str, key: str, size: int = 0, mode: str = "slow", tag: str = "t"):
    return describe_drop(bucket, key, size, mode, tag)


@pytest.mark.parametrize(("name", "size", "mode"), [("in/a.b.json", "2048", "fast"), ("in/x.json", "7", "slow"),
                                                     ("in/aXb.json", "5", "slow")])
def test_the_matching_trigger_s_input_and_the_size_are_applied(tmp_path: Path, name: str, size: str,
                                                                      mode: str) -> None:
    from strato.adapters.gcp.triggers import event_input, event_matches

    event = cloud_event("drops", name, size)
    result, _ = on_gcp(on_drop, event, tmp_path, raw=True)
    trigger = next(t for t in on_drop.ir.triggers if event_matches(t, event))
    expected = event_input(on_drop.ir, trigger, event)
    assert result.output == {"bucket": "drops", "key": name, "size": int(size), "mode": mode, "tag": "t"}
    same(result, locally(on_drop, expected))


def test_transient_call_failures_are_retried_apart_from_the_task_retry(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two 503s from the platform before each call reaches the function: retried by the call's own
    transient retrier (1 s, then 2 s), while the task's Retry still sees exactly its two failures."""
    from strato.adapters.gcp.interpreter import transport

    original = transport.WsgiTransport.request
    refused: list[str] = []

    def flaky_platform(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url.endswith("-flaky") and len(refused) % 3 != 2 and len(refused) < 9:
            refused.append(url)
            return 503, {"Content-Type": "application/json"}, b'{"message": "Service Unavailable"}'
        refused.append("passed")
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(transport.WsgiTransport, "request", flaky_platform)
    result, execution = on_gcp(pipelines.retrying, {"tag": "gcp-ok", "failures": 2}, tmp_path)
    assert (result.status, result.output) == ("SUCCEEDED", {"value": "gcp-ok ok after 3"})
    assert execution.sleeps == [1, 2, 2, 1, 2, 6, 1, 2]  # transient 1, 2 before each attempt; the task's 2, 6
