"""Compiled state machines executed by moto, every task through the real Lambda shim; the results
must equal the local runner's."""

from __future__ import annotations

import threading
from typing import Any

import pytest

pytest.importorskip("moto")

from strato.adapters.aws.compiler import compile_pipeline
from strato.adapters.aws.emulator import VirtualTimers, emulate
from strato.adapters.base import emulated_loader
from strato.runtime import RunResult, RunStore, SystemClock, VirtualClock, prepare_input, resolver_for
from strato.runtime import run_pipeline as run_locally

from ..conftest import EXAMPLE_RUNS, Cli, assert_emulation_matches_run
from . import pipelines


def on_aws(pipeline: Any, params: dict, timers: VirtualTimers | None = None, backend: str = "moto") -> RunResult:
    ir = pipeline.ir
    return emulate(ir, compile_pipeline(ir).machines, prepare_input(ir, params, pipeline.fn),
                   emulated_loader(ir, resolver_for(ir)), backend, timers)


def locally(pipeline: Any, params: dict, clock: Any = None) -> RunResult:
    return run_locally(pipeline, params, store=RunStore.memory(), clock=clock or VirtualClock())


def same(a: RunResult, b: RunResult) -> None:
    assert (a.status, a.output, a.error) == (b.status, b.output, b.error)


def test_retries_back_off_exactly_and_then_give_up() -> None:
    timers = VirtualTimers()
    result = on_aws(pipelines.retrying, {"tag": "aws-ok", "failures": 2}, timers)
    assert result.status == "SUCCEEDED" and result.output == {"value": "aws-ok ok after 3"}
    assert timers.delays == [2.0, 6.0]  # delay 2, backoff 3
    assert locally(pipelines.retrying, {"tag": "local-ok", "failures": 2}).output == {"value": "local-ok ok after 3"}

    timers = VirtualTimers()
    failed = on_aws(pipelines.retrying, {"tag": "aws-bad", "failures": 9}, timers)
    assert timers.delays == [2.0, 6.0, 10.0]  # capped at max_delay
    assert failed.status == "FAILED"
    assert failed.error == {"error": "ConnectionError", "cause": "attempt 4 of aws-bad failed"}
    local = locally(pipelines.retrying, {"tag": "local-bad", "failures": 9})
    assert local.error == {"error": "ConnectionError", "cause": "attempt 4 of local-bad failed"}


@pytest.mark.parametrize("text", ["12", "twelve"])
def test_catch_hands_the_error_to_the_handler(text: str) -> None:
    result = on_aws(pipelines.catching, {"text": text})
    same(result, locally(pipelines.catching, {"text": text}))
    if text == "twelve":
        assert result.output == {"parsed": {"quarantined": {"error": "ValueError",
                                                            "cause": "'twelve' is not a number"}}}


def test_timeout_surfaces_as_task_timeout() -> None:
    pipelines.RELEASE.clear()
    try:
        result = on_aws(pipelines.timing_out, {"seconds": 5})
        local = locally(pipelines.timing_out, {"seconds": 5}, clock=SystemClock())
    finally:
        pipelines.RELEASE.set()
    assert result.output == "gave up: TaskTimeout"
    same(result, local)


def test_map_concurrency_branches_and_wait() -> None:
    pipelines.CALLS.clear()
    pipelines.BARRIER["map"] = threading.Barrier(2, timeout=10)  # items must run two at a time
    try:
        timers = VirtualTimers()
        result = on_aws(pipelines.mapping, {"items": [1, 2, 3, 4, 5, 6]}, timers)
        assert pipelines.CALLS["peak"] == 2
        pipelines.CALLS.clear()
        local = locally(pipelines.mapping, {"items": [1, 2, 3, 4, 5, 6]})
    finally:
        pipelines.BARRIER.clear()
    assert result.output == {"squares": [2, 5, 10, 17, 26, 37], "big": "many: 97", "small": None,
                             "after": "done: None"}
    assert timers.delays == [30.0]
    same(result, local)
    few = on_aws(pipelines.mapping, {"items": [3]})
    same(few, locally(pipelines.mapping, {"items": [3]}))
    assert few.output["small"] == "few: 1" and few.output["big"] is None


def test_sub_pipelines_and_their_failures() -> None:
    same(on_aws(pipelines.nested, {"x": 1}), locally(pipelines.nested, {"x": 1}))
    failed = on_aws(pipelines.nested_failure, {"x": 4})
    assert failed.error == {"error": "KeyError", "cause": "'no row 4'"}
    same(failed, locally(pipelines.nested_failure, {"x": 4}))


def test_a_non_series_parallel_graph_gives_the_same_result() -> None:
    result = on_aws(pipelines.n_shape, {})
    assert result.output == {"c": "a+b", "d": "b+x"}
    same(result, locally(pipelines.n_shape, {}))


def test_threaded_moto_server_over_http() -> None:
    same(on_aws(pipelines.catching, {"text": "nope"}, backend="moto-server"),
         locally(pipelines.catching, {"text": "nope"}))


@pytest.mark.parametrize(("ref", "payload"), EXAMPLE_RUNS)
def test_examples_give_the_same_output_as_strato_run(cli: Cli, ref: str, payload: dict) -> None:
    assert_emulation_matches_run(cli, ref, payload, "--target", "aws")


def test_large_results_travel_through_s3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "10000")
    result = on_aws(pipelines.large_payload, {"rows": 3000})  # ~350 KB: over Step Functions' 256 KiB
    assert result.status == "SUCCEEDED", result.error
    assert result.output["summary"] == {"count": 3000, "last": 2999}
    same(result, locally(pipelines.large_payload, {"rows": 3000}))


def test_an_s3_upload_starts_the_pipeline_through_eventbridge() -> None:
    from strato.adapters.aws.emulator import Deployment, ObjectCreatedHarness, deployed_on_moto
    from strato.loader import load

    from ..conftest import ROOT

    definition = load(str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file").definition
    ir = definition.ir
    resolver = resolver_for(definition.trace().ir)
    deployment = Deployment(ir, compile_pipeline(ir).machines, emulated_loader(ir, resolver))
    with deployed_on_moto(deployment) as (session, client_args, sfn):
        harness = ObjectCreatedHarness(session, client_args, deployment)
        harness.s3.put_object(Bucket="landing", Key="incoming/orders-2024-03-01.csv", Body=b"id\n")
        harness.s3.put_object(Bucket="landing", Key="incoming/notes.txt", Body=b"ignored: wrong suffix")
        runs = harness.runs(sfn)
    assert [r.status for r in runs] == ["SUCCEEDED"]
    local = locally(definition, {"bucket": "landing", "key": "incoming/orders-2024-03-01.csv"})
    assert runs[0].output == local.output and runs[0].output["status"] == "loaded"


def test_worker_tasks_run_through_the_same_shim_on_moto() -> None:
    """moto cannot serve Activities; the emulator answers a worker task like a function."""
    timers = VirtualTimers()
    result = on_aws(pipelines.with_worker, {"tag": "moto", "failures": 1}, timers)
    assert result.output == {"worker": {"tag": "moto", "attempts": 2}, "lambda": 3} and timers.delays == [1.0]


def test_a_pipeline_too_large_for_one_machine_runs_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    from strato.adapters.aws import limits

    monkeypatch.setattr(limits, "PART_EVENTS", 60)  # as if each state machine held only a dozen tasks
    machines = compile_pipeline(pipelines.long_pipeline.ir).machines
    assert len(machines) > 3 and all(name.startswith("long_pipeline") for name in machines)
    result = on_aws(pipelines.long_pipeline, {"start": 1})
    assert result.output == {"ends": [10, 11, 12, 13], "total": 46}
    same(result, locally(pipelines.long_pipeline, {"start": 1}))


def test_a_wide_map_keeps_the_parent_history_small() -> None:
    """Computed items run as a Distributed Map: each item's events live in its own child execution."""
    from strato.adapters.aws.emulator import REGION, Deployment, deployed_on_moto, run_execution

    definition = pipelines.mapping
    ir = definition.ir
    resolver = resolver_for(definition.trace().ir)
    deployment = Deployment(ir, compile_pipeline(ir).machines, emulated_loader(ir, resolver))
    with deployed_on_moto(deployment) as (_, _, sfn):
        counts = []
        for size in (10, 300):
            result = run_execution(sfn, deployment, {"items": list(range(size))})
            assert result.status == "SUCCEEDED" and len(result.output["squares"]) == size
            arn = sfn.describe_execution(executionArn=f"arn:aws:states:{REGION}:123456789012:execution:"
                                                      f"{deployment.machine_name('mapping')}:{result.run_id}")[
                "executionArn"]
            counts.append(len(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]))
    assert counts[1] - counts[0] < 20, counts  # 290 more items, (almost) no more parent events


def test_conditions_on_any_key_use_bracket_notation(cli: Cli) -> None:
    """`o["order-id"] == "A-1"` and other non-identifier keys compile (``$['order-id']``) and agree."""
    assert_emulation_matches_run(cli, "tests/pipelines/any_keys.py:keys", {}, "--target", "aws")
    code, out = cli.json("emulate", "tests/pipelines/any_keys.py:keys", "--target", "aws", "--json")
    assert (code, out["output"]) == (0, {"hit": "all keys matched"})


@pytest.mark.parametrize("name", ["failing_map", "caught_map", "fine_map"])
def test_a_failed_map_item_fails_the_run_with_its_own_error(cli: Cli, name: str) -> None:
    """A Distributed Map's failed child would fail the map as States.ExceedToleratedFailureThreshold on AWS
    (and moto reports SUCCEEDED with null): the item's own error is raised again after the map."""
    assert_emulation_matches_run(cli, f"tests/pipelines/map_failures.py:{name}", {}, "--target", "aws")


def test_a_wide_fan_out_merges_its_branches(cli: Cli) -> None:
    assert_emulation_matches_run(cli, "tests/pipelines/fan_out.py:fan12", {}, "--target", "aws")


def test_a_sub_pipeline_returning_a_string(cli: Cli) -> None:
    assert_emulation_matches_run(cli, "tests/pipelines/string_child.py:parent", {}, "--target", "aws")


def test_a_condition_on_an_element_of_a_large_list(cli: Cli) -> None:
    """rows[0]["ok"] decides a Choice state while the list itself is offloaded: the runtime function
    resolves the element just before the Choice, so the list never has to stay in the state."""
    ref = "tests/pipelines/element_condition.py:element_condition"
    code, out = cli.json("emulate", ref, "--target", "aws", "--json", STRATO_OFFLOAD_BYTES="1024")
    local_code, local = cli.json("run", ref, "--json")
    assert (code, out["output"]) == (local_code, local["output"]) == (
        0, {"first": "first row ok", "second": None, "count": 40})


def test_conditions_through_negative_indexes_and_quoted_keys(cli: Cli) -> None:
    """A path JSONPath cannot address as the local runner does is resolved by the runtime function just
    before the Choice state, with the local runner's own code."""
    ref = "tests/pipelines/odd_paths.py:odd_paths"
    assert_emulation_matches_run(cli, ref, {}, "--target", "aws")
    code, out = cli.json("emulate", ref, "--target", "aws", "--json")
    assert (code, out["output"]) == (0, {"hit": "every path read as locally", "miss": None,
                                         "out_of_range": "out of range is null", "last": 3})
