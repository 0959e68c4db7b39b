"""Every DSL feature, compiled to a Durable Functions app and run by the replay host on a virtual clock."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

pytest.importorskip("azure.functions")
pytest.importorskip("azure.durable_functions")

from tests.azure import pipelines
from tests.azure.conftest import T0, run_locally

SCHEDULED, COMPLETED, FAILED, TIMER_CREATED, TIMER_FIRED = 4, 5, 6, 10, 11


def instant(name: str, value: Any) -> float:
    return 0.0


def starts(emulated: Any, name: str) -> list[float]:
    return [run.started - T0 for run in emulated.runs(name)]


def test_retries_wait_exactly_the_backoff_on_the_virtual_clock(emulated: Any) -> None:
    app = emulated(pipelines.retrying, durations=instant)
    wall = time.monotonic()
    result = app.run({"tag": "retry-exact", "fail": 3})
    assert time.monotonic() - wall < 15  # 2 + 6 + 10 = 18 virtual seconds: nothing slept for real
    assert (result.status, result.output) == ("SUCCEEDED", {"flaky": {"calls": 4}})
    # delay 2, backoff 3, max_delay 10: retry n waits min(2 * 3 ** (n - 1), 10)
    assert starts(app, "flaky") == [0.0, 2.0, 8.0, 18.0]
    assert [run.ok for run in app.runs("flaky")] == [False, False, False, True]
    fires = [e["FireAt"] for e in app.history() if e["EventType"] == TIMER_CREATED]
    assert len(fires) == 3


def test_retries_are_spent_then_the_error_is_the_tasks(emulated: Any) -> None:
    app = emulated(pipelines.retrying, durations=instant)
    result = app.run({"tag": "retry-spent", "fail": 9})
    assert result.status == "FAILED"
    assert result.error == {"error": "ConnectionError", "cause": "call 4 for retry-spent failed"}
    assert starts(app, "flaky") == [0.0, 2.0, 8.0, 18.0]  # 1 + max_retries attempts
    local = run_locally(pipelines.retrying, {"tag": "retry-spent-local", "fail": 9})
    assert local.error == {"error": "ConnectionError", "cause": "call 4 for retry-spent-local failed"}


def test_only_errors_matching_on_are_retried(emulated: Any) -> None:
    app = emulated(pipelines.not_retried, durations=instant)
    result = app.run({"tag": "picky"})
    assert result.error == {"error": "ValueError", "cause": "bad value for picky (call 1)"}
    assert len(app.runs("picky")) == 1


def test_catch_hands_the_error_class_and_message_to_the_handler(emulated: Any) -> None:
    app = emulated(pipelines.catching, durations=instant)
    result = app.run({"text": "x1"})
    expected = {"parsed": {"caught": {"error": "ValueError", "cause": "invalid literal for int() with base 10: 'x1'"}}}
    assert (result.status, result.output) == ("SUCCEEDED", expected)
    assert run_locally(pipelines.catching, {"text": "x1"}).output == expected
    assert app.run({"text": "42"}, run_id="run-2").output == {"parsed": 42}


def test_timeouts_race_a_durable_timer_and_are_retried_and_caught(emulated: Any) -> None:
    app = emulated(pipelines.timing_out, durations=lambda name, value: value.get("seconds", 0.0))
    result = app.run({"seconds": 10})
    cause = "task 'slow' did not finish within its timeout of 5s"  # the local runner's words
    assert result.output == {"timed_out": {"error": "TaskTimeout", "cause": cause}}
    # attempt 1 at 0 times out at 5; retry after 1s; attempt 2 at 6 times out at 11; the handler runs at 11
    assert starts(app, "slow") == [0.0, 6.0]
    assert starts(app, "on_timeout") == [11.0]


def test_a_timeout_timer_that_lost_the_race_is_cancelled(emulated: Any) -> None:
    app = emulated(pipelines.timing_out, durations=lambda name, value: value.get("seconds", 0.0))
    assert app.run({"seconds": 1}).output == "done after 1s"
    assert app.host.now == T0 + 1  # the 5 s timer never fired
    assert not [e for e in app.history() if e["EventType"] == TIMER_FIRED]


def test_map_fans_out_with_max_concurrency_and_keeps_order(emulated: Any) -> None:
    app = emulated(pipelines.mapping, durations=lambda name, value: value["x"] % 3 + 1 if name == "square" else 0)
    result = app.run({"n": 7, "offset": 1})
    assert result.output == [x * x + 1 for x in range(7)]
    assert result.output == run_locally(pipelines.mapping, {"n": 7, "offset": 1}).output
    runs = app.runs("square")
    moments = sorted({t for r in runs for t in (r.started, r.ended)})
    in_flight = [sum(r.started <= t < r.ended for r in runs) for t in moments]
    assert max(in_flight) == 3  # max_concurrency=3, and it is used
    assert starts(app, "square") == [0.0, 0.0, 0.0, 1.0, 2.0, 2.0, 3.0]  # a slot is refilled as soon as it frees


def test_map_over_a_non_list_fails_like_the_local_runner(emulated: Any) -> None:
    result = emulated(pipelines.bad_map, durations=instant).run()
    assert result.error == {"error": "TypeError", "cause": "map 'square' needs a list to fan out over, got an object"}
    assert run_locally(pipelines.bad_map).error == result.error


@pytest.mark.parametrize("value", [
    {"n": 1.0, "s": "z", "flag": True},  # 1 == 1.0; true is not 1
    {"n": True, "s": 5, "flag": 1},  # true is not 1; a number is not ordered against a string
    {"n": 2, "s": "a", "missing": 3},
    {"n": None, "s": None, "missing": None},  # null orders against nothing
])
def test_when_otherwise_use_the_ir_comparison_rules(emulated: Any, value: dict) -> None:
    result = emulated(pipelines.branching, durations=instant).run({"value": value})
    assert result.status == "SUCCEEDED"
    assert result.output == run_locally(pipelines.branching, {"value": value}).output
    skipped = [k for k, v in result.output.items() if v is None]
    assert skipped  # a node whose guard is false yields null


def test_wait_is_a_durable_timer(emulated: Any) -> None:
    app = emulated(pipelines.pausing, durations=instant)
    wall = time.monotonic()
    assert app.run({"x": 3}).output == {"first": 3, "second": "after the pause"}
    assert time.monotonic() - wall < 15  # a 30-second timer: nothing slept for real
    assert starts(app, "label") == [30.0]
    assert app.host.now == T0 + 30


def test_each_node_starts_when_its_own_inputs_are_ready(emulated: Any) -> None:
    """a -> c, b -> c, b -> d: d must not wait for the slow a (no level barrier)."""
    took = {"a": 10.0, "b": 1.0, "c": 1.0, "d": 1.0}
    app = emulated(pipelines.diamond, durations=lambda name, value: took[value["name"]])
    assert app.run().output == {"c": "c(a,b)", "d": "d(b)"}
    started = {run.input["name"]: run.started - T0 for run in app.runs("node")}
    assert started == {"a": 0.0, "b": 0.0, "d": 1.0, "c": 10.0}


def test_sub_pipeline_is_a_sub_orchestration_with_the_runners_jitter(emulated: Any) -> None:
    app = emulated(pipelines.parent, durations=instant)
    result = app.run({"tag": "sub-jitter"}, run_id="run-7")
    assert result.output == {"child": {"calls": 2, "echo": "sub-jitter"}, "other": "sibling"}
    child = app.host.instances["run-7:child"]
    assert child.status == "Completed" and child.parent[0].id == "run-7"
    assert [e["EventType"] for e in app.history("run-7") if e["EventType"] in (7, 8)] == [7, 8]
    # jitter: uniform(0, delay) seeded with "{run id}/{key}/{attempt}", the local runner's key "child/jittery"
    expected = random.Random("run-7/child/jittery/1").uniform(0, 4.0)
    assert starts(app, "jittery") == [0.0, pytest.approx(expected, abs=1e-6)]
    local = run_locally(pipelines.parent, {"tag": "sub-jitter-local"})
    assert local.output == {"child": {"calls": 2, "echo": "sub-jitter-local"}, "other": "sibling"}


def test_a_failing_sub_pipeline_fails_the_parent_with_its_error(emulated: Any) -> None:
    result = emulated(pipelines.failing_parent, durations=instant).run({"tag": "boom"})
    assert result.error == {"error": "RuntimeError", "cause": "child failed for boom"}
    assert run_locally(pipelines.failing_parent, {"tag": "boom"}).error == result.error


def test_large_results_travel_by_reference(emulated: Any) -> None:
    app = emulated(pipelines.large, durations=instant, offload_bytes=1024)
    result = app.run({"n": 40})
    assert result.status == "SUCCEEDED"
    assert result.output == run_locally(pipelines.large, {"n": 40}).output
    blobs = list((app.work_dir / "blobs").rglob("*.json"))
    assert len(blobs) == 1 and len(blobs[0].read_bytes()) > 4000
    completed = {e["TaskScheduledId"]: e["Result"] for e in app.history() if e["EventType"] == COMPLETED}
    scheduled = {e["EventId"]: (e["Name"], e["Input"]) for e in app.history() if e["EventType"] == SCHEDULED}
    big = next(i for i, (name, _) in scheduled.items() if name == "big")
    assert json.loads(completed[big]).keys() == {"$strato_ref", "bytes"}  # the common envelope
    # the map reads only the list's length; each item activity gets a reference to its element
    items = [json.loads(data) for name, data in scheduled.values() if name == "prefix"]
    assert len(items) == 40 and all(len(json.dumps(i)) < 300 for i in items)
    assert max(len(e.get("Input") or "") for e in app.history() if e["EventType"] == SCHEDULED) < 1024


@pytest.mark.parametrize(("ref", "input"), [
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-01"}),
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-02"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-bad.csv"}),
    ("tests/pipelines/contract.py:daily_sales", {"day": "bad"}),
    ("tests/pipelines/failing.py:failing", {}),
])
def test_examples_match_the_local_runner_in_process(emulated: Any, ref: str, input: dict) -> None:
    import os

    from strato.loader import load
    from tests.conftest import ROOT

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        definition = load(ref).definition
    finally:
        os.chdir(cwd)
    result = emulated(definition, durations=instant).run(input)
    local = run_locally(definition, input)
    assert (result.status, result.output, result.error) == (local.status, local.output, local.error)


def test_a_catch_handlers_own_catch_does_not_apply_when_it_handles(emulated: Any) -> None:
    result = emulated(pipelines.handled, durations=instant).run()
    local = run_locally(pipelines.handled)
    assert (result.status, result.error) == (local.status, local.error) == (
        "FAILED", {"error": "RuntimeError", "cause": "handler failed on KeyError"})
