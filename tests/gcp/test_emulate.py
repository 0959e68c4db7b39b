"""Compiled workflows run in the interpreter, every task through the real Cloud Functions shim; the
results must equal the local runner's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("functions_framework")

from adapters.gcp.compiler import compile_pipeline
from adapters.gcp.emulator import emulate, workflow_error
from adapters.gcp.interpreter import VirtualClock as WorkflowsClock
from framework.runtime import RunResult, RunStore, SystemClock, VirtualClock, prepare_input, resolver_for
from framework.runtime import run_pipeline as run_locally

from ..aws import pipelines
from ..conftest import Cli


def on_gcp(pipeline: Any, params: dict, tmp_path: Path, backend: str = "wsgi") -> tuple[RunResult, Any]:
    ir = pipeline.ir
    resolver = resolver_for(pipeline.trace().definitions)
    specs = {name: spec for p in (ir, *ir.subpipelines.values()) for name, spec in p.tasks.items()}
    return emulate(ir, compile_pipeline(ir).source, prepare_input(ir, params, pipeline.fn),
                   lambda name, _: resolver(specs[name]), tmp_path, backend, WorkflowsClock())


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
    from adapters.gcp.interpreter import FunctionTransport, run_workflow

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


def test_a_result_too_large_for_a_workflow_fails_clearly(tmp_path: Path) -> None:
    result, _ = on_gcp(pipelines.large_payload, {"rows": 3000}, tmp_path)
    assert result.status == "FAILED" and result.error["error"] == "ResultTooLarge"
    assert "over the 262,144-byte limit" in result.error["cause"]
    small, _ = on_gcp(pipelines.large_payload, {"rows": 10}, tmp_path)
    same(small, locally(pipelines.large_payload, {"rows": 10}))


def test_real_http_to_functions_framework_on_localhost(tmp_path: Path) -> None:
    result, _ = on_gcp(pipelines.catching, {"text": "nope"}, tmp_path, backend="http")
    same(result, locally(pipelines.catching, {"text": "nope"}))
    retried, execution = on_gcp(pipelines.retrying, {"tag": "gcp-http", "failures": 1}, tmp_path, backend="http")
    assert retried.output == {"value": "gcp-http ok after 2"} and execution.sleeps == [2]


def test_the_shim_answers_failures_as_structured_json() -> None:
    import functions_framework  # noqa: F401 - the shim's entry point runs under it
    from flask import Flask

    from adapters.gcp.shim import handler, using_loader

    app = Flask("shim-test")
    with using_loader(lambda name, _: pipelines.parse.fn), app.test_request_context(
            json={"task": "parse", "fn": "x:parse", "args": {"text": {"literal": "x"}}, "refs": {}, "params": {}}):
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


@pytest.mark.parametrize(("ref", "payload"), [
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-01"}),
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-02"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-2024-03-01.csv"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-bad.csv"}),
    ("examples/revenue_report.py:revenue_report", {"day": "2024-03-01", "run_tag": "parity"}),
    ("tests/pipelines/failing.py:failing", {}),
])
def test_examples_give_the_same_output_as_strato_run(cli: Cli, ref: str, payload: dict) -> None:
    args = ["--input", json.dumps(payload), "--json"]
    code, emulated = cli.json("emulate", ref, "--target", "gcp", *args)
    if "run_tag" in payload:  # the flaky source's outage is per run_tag: give the local run its own
        args = ["--input", json.dumps({**payload, "run_tag": "parity-local"}), "--json"]
    local_code, local = cli.json("run", ref, *args)
    assert code == local_code
    assert (emulated["status"], emulated["output"], emulated["error"]) == (
        local["status"], local["output"], local["error"])
