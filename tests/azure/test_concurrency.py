"""Activities of one replay run at the same time on worker threads; history and virtual time stay exact."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("azure.functions")
pytest.importorskip("azure.durable_functions")

from tests.azure import pipelines
from tests.azure.conftest import T0, run_locally

SCHEDULED, COMPLETED = 4, 5


def instant(name: str, value: Any) -> float:
    return 0.0


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    pipelines.reset_concurrency()
    yield
    pipelines.RELEASE.set()  # a task left hanging by its test may go now


def test_independent_tasks_run_at_the_same_time(emulated: Any) -> None:
    """Each ``meet`` waits on a two-party barrier: run one after the other, both would time out."""
    result = emulated(pipelines.rendezvous, durations=instant).run()
    assert (result.status, result.output) == ("SUCCEEDED", {"a": "a met", "b": "b met"})


def test_a_map_never_runs_more_than_its_max_concurrency(emulated: Any) -> None:
    result = emulated(pipelines.gauged_map, durations=instant).run({"n": 8})
    assert result.output == [x * 10 for x in range(8)]
    assert pipelines.GAUGE["peak"] == 2  # the limit holds, and it is used


def test_the_host_bounds_its_worker_threads(emulated: Any) -> None:
    pipelines.reset_concurrency(target=3)
    result = emulated(pipelines.gauged_wide, durations=instant, concurrency=3).run({"n": 8})
    assert result.output == [x * 10 for x in range(8)]
    assert pipelines.GAUGE["peak"] == 3


def test_completions_enter_the_history_in_schedule_order(emulated: Any) -> None:
    app = emulated(pipelines.napping, durations=instant)
    assert app.run({"n": 6}).output == list(range(6))
    assert pipelines.FINISHED == [5, 4, 3, 2, 1, 0]  # the threads finished in reverse order
    history = app.history()
    naps = [e["EventId"] for e in history if e["EventType"] == SCHEDULED and e["Name"] == "nap"]
    done = [e["TaskScheduledId"] for e in history if e["EventType"] == COMPLETED]
    assert [i for i in done if i in naps] == naps
    # the same input gives the same history, event for event
    app.run({"n": 6}, run_id="run-2")
    assert app.history("run-2") == json.loads(json.dumps(history).replace("run-1", "run-2"))  # its run id aside


def test_a_task_that_never_returns_blocks_neither_the_host_nor_its_siblings(emulated: Any) -> None:
    app = emulated(pipelines.hanging, durations=lambda name, value: math.inf if name == "stuck" else 0.0)
    wall = time.monotonic()
    result = app.run()
    assert time.monotonic() - wall < 30  # a liveness bound (the hung task would block forever), not a speed test
    assert result.output == {"stuck": {"gave_up": "TaskTimeout"}, "other": "independent"}
    assert app.host.now == T0 + 5  # the timeout's timer fired on the virtual clock
    (hung,) = app.runs("stuck")
    assert (hung.ended, hung.ok) == (None, None)  # still running when the run finished


def test_waiting_only_for_a_task_that_never_returns_is_reported(emulated: Any) -> None:
    app = emulated(pipelines.rendezvous, durations=lambda name, value: math.inf)
    result = app.run()
    assert result.error == {"error": "OrchestrationStuck",
                            "cause": "the orchestration waits only for activities that never return (meet)"}


def test_a_measured_task_that_never_returns_loses_to_its_timeout(emulated: Any) -> None:
    """Measured durations: the clock reaches the timer once the task has run that long in reality."""
    app = emulated(pipelines.hanging_briefly)
    wall = time.monotonic()
    result = app.run()
    assert 1.0 <= time.monotonic() - wall < 30  # it waited for real, and it did not hang
    assert result.output == {"stuck": {"gave_up": "TaskTimeout"}, "other": "independent"}
    assert T0 + 1 <= app.host.now < T0 + 10  # the handler's own measured time adds a little, more under load


def test_parallel_results_match_the_local_runner(emulated: Any) -> None:
    result = emulated(pipelines.mapping, durations=lambda name, value: value["x"] % 3 + 1 if name == "square"
                      else 0).run({"n": 9, "offset": 2})
    assert result.output == run_locally(pipelines.mapping, {"n": 9, "offset": 2}).output
