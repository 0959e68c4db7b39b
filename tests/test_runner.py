"""The embedded runner, driven on a virtual clock: nothing here sleeps for real."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest

from strato import Catch, Retry, otherwise, pipeline, task, wait, when
from strato.errors import UsageError
from strato.runtime import RunResult, RunStore, VirtualClock, run_pipeline
from tests.aws.pipelines import add, adder, exploding  # the feature pipelines every backend runs


class Harness:
    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.store = RunStore.memory()

    def run(self, p: Any, input: dict | None = None, workers: int = 8) -> RunResult:
        return run_pipeline(p, input or {}, store=self.store, clock=self.clock, workers=workers)

    def attempts(self, result: RunResult) -> list[dict]:
        return self.store.attempts(result.run_id)


@pytest.fixture
def h() -> Harness:
    return Harness()


def failing(times: int, error: type[Exception] = ConnectionError) -> tuple[list[int], Any]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error("source unavailable")
        return f"ok after {len(calls)}"

    return calls, fn


def test_retries_back_off_exponentially_on_the_clock(h: Harness) -> None:
    _, fn = failing(3)
    flaky = task(retry=Retry(max_retries=3, delay=1, backoff=2, on=("ConnectionError",)))(fn)

    @pipeline
    def p():
        return flaky()

    result = h.run(p)
    assert result.status == "SUCCEEDED" and result.output == "ok after 4"
    assert h.clock.slept == [1.0, 2.0, 4.0]
    assert [(a["attempt"], a["status"]) for a in h.attempts(result)] == [
        (1, "FAILED"), (2, "FAILED"), (3, "FAILED"), (4, "SUCCEEDED")]
    assert h.attempts(result)[0]["error"] == {"error": "ConnectionError", "cause": "source unavailable"}


def test_max_delay_caps_backoff_and_exhausted_retries_fail(h: Harness) -> None:
    calls, fn = failing(10)
    flaky = task(retry=Retry(max_retries=4, delay=1, backoff=3, max_delay=5))(fn)

    @pipeline
    def p():
        return flaky()

    result = h.run(p)
    assert result.status == "FAILED"
    assert result.error == {"error": "ConnectionError", "cause": "source unavailable"}
    assert h.clock.slept == [1.0, 3.0, 5.0, 5.0] and len(calls) == 5


def test_jitter_stays_within_the_backoff(h: Harness) -> None:
    _, fn = failing(3)
    flaky = task(retry=Retry(max_retries=3, delay=10, backoff=2, jitter=True))(fn)

    @pipeline
    def p():
        return flaky()

    assert h.run(p).status == "SUCCEEDED"
    assert len(h.clock.slept) == 3
    assert all(0 <= got <= nominal for got, nominal in zip(h.clock.slept, [10, 20, 40], strict=True))
    assert h.clock.slept != [10.0, 20.0, 40.0]


def test_retry_only_the_named_errors(h: Harness) -> None:
    calls, fn = failing(1, ValueError)
    flaky = task(retry=Retry(max_retries=3, delay=1, on=("OSError",)))(fn)

    @pipeline
    def p():
        return flaky()

    result = h.run(p)
    assert result.status == "FAILED" and result.error["error"] == "ValueError" and len(calls) == 1


def test_builtin_subclasses_match_retry_filters(h: Harness) -> None:
    _, fn = failing(1, FileNotFoundError)
    flaky = task(retry=Retry(max_retries=1, delay=1, on=("IOError",)))(fn)

    @pipeline
    def p():
        return flaky()

    assert h.run(p).output == "ok after 2"


def test_catch_handler_result_stands_in(h: Harness) -> None:
    seen: list[dict] = []

    def quarantine(error: dict) -> dict:
        seen.append(error)
        return {"quarantined": True, "why": error["cause"]}

    @task(retry=Retry(max_retries=1, delay=2), catch=Catch(handler=quarantine, on=("ValueError",)))
    def parse(text: str) -> dict:
        raise ValueError(f"row 3 of {text} has no price")

    @task
    def count(parsed: dict) -> bool:
        return parsed["quarantined"]

    @pipeline
    def p(name: str):
        return count(parse(name))

    result = h.run(p, {"name": "orders.csv"})
    assert result.output is True
    assert seen == [{"error": "ValueError", "cause": "row 3 of orders.csv has no price"}]
    assert h.clock.slept == [2.0]  # retries are spent before the catch


def test_catch_does_not_take_other_errors(h: Harness) -> None:
    def handler(error: dict) -> str:
        return "caught"

    @task(catch=Catch(handler=handler, on=("ValueError",)))
    def boom() -> str:
        raise KeyError("k")

    @pipeline
    def p():
        return boom()

    result = h.run(p)
    assert result.status == "FAILED" and result.error == {"error": "KeyError", "cause": "'k'"}


def test_timeout_is_a_retriable_and_catchable_task_timeout(h: Harness) -> None:
    release = threading.Event()
    clock = h.clock
    attempts: list[int] = []

    def give_up(error: dict) -> dict:
        return {"gave_up": error["error"]}

    @task(timeout=300, retry=Retry(max_retries=1, delay=7, on=("TaskTimeout",)), catch=Catch(handler=give_up))
    def slow() -> str:
        attempts.append(1)
        clock.advance(301)  # as if the task ran past its timeout
        release.wait(10)
        return "too late"

    @pipeline
    def p():
        return slow()

    try:
        result = h.run(p)
    finally:
        release.set()
    assert result.output == {"gave_up": "TaskTimeout"}
    assert len(attempts) == 2 and h.clock.slept == [7.0]
    errors = [a["error"] for a in h.attempts(result) if a["key"] == "slow"]
    assert errors[0]["error"] == "TaskTimeout" and "timeout of 300s" in errors[0]["cause"]


def test_independent_tasks_run_concurrently(h: Harness) -> None:
    barrier = threading.Barrier(2, timeout=10)

    @task
    def meet(name: str) -> str:
        barrier.wait()  # both must be running at the same time to pass
        return name

    @pipeline
    def p():
        return [meet("a"), meet("b")]

    assert h.run(p).output == ["a", "b"]


def test_blocked_tasks_get_a_thread_each_up_to_the_pool_size(h: Harness) -> None:
    """The pool grows while queued tasks wait: eight tasks that block until all eight run, on eight threads."""
    barrier = threading.Barrier(8, timeout=10)
    threads: set[str] = set()

    @task
    def gather(x: int) -> int:
        threads.add(threading.current_thread().name)
        barrier.wait()  # passes only once all eight are running at the same time
        return x

    @pipeline
    def p(items: list):
        return gather.map(items)

    assert h.run(p, {"items": list(range(8))}, workers=8).output == list(range(8))
    assert len(threads) == 8


def test_map_honours_max_concurrency_and_keeps_order(h: Harness) -> None:
    lock, active, peak = threading.Lock(), [0], [0]
    barrier = threading.Barrier(2, timeout=10)

    @task
    def square(x: int, offset: int = 0) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        barrier.wait()
        with lock:
            active[0] -= 1
        return x * x + offset

    @pipeline
    def p(items: list):
        return square.map(items, max_concurrency=2, offset=1)

    result = h.run(p, {"items": [5, 4, 3, 2, 1, 0]})
    assert result.output == [26, 17, 10, 5, 2, 1]
    assert peak[0] == 2


def test_map_over_empty_and_non_list(h: Harness) -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    @pipeline
    def p(items: Any):
        return double.map(items)

    assert h.run(p, {"items": []}).output == []
    failed = h.run(p, {"items": {"not": "a list"}})
    assert failed.status == "FAILED" and failed.error["error"] == "TypeError"
    assert "needs a list" in failed.error["cause"]


def test_when_otherwise_and_null_from_skipped_branches(h: Harness) -> None:
    @task
    def measure(n: int) -> dict:
        return {"count": n}

    @task
    def load(n: int) -> str:
        return f"loaded {n}"

    @task
    def alert() -> str:
        return "nothing to load"

    @task
    def report(loaded: Any, alerted: Any) -> dict:
        return {"loaded": loaded, "alerted": alerted}

    @pipeline
    def p(n: int):
        m = measure(n)
        with when((m["count"] > 0) & (m["count"] != 13)):
            loaded = load(m["count"])
        with otherwise():
            alerted = alert()
        return report(loaded, alerted)

    assert h.run(p, {"n": 3}).output == {"loaded": "loaded 3", "alerted": None}
    assert h.run(p, {"n": 0}).output == {"loaded": None, "alerted": "nothing to load"}
    skipped = h.run(p, {"n": 13})
    assert skipped.output == {"loaded": None, "alerted": "nothing to load"}
    statuses = {u["key"]: u["status"] for u in h.store.units(skipped.run_id)}
    assert statuses["load"] == "SKIPPED" and statuses["alert"] == "SUCCEEDED"


def test_wait_uses_the_clock(h: Harness) -> None:
    @task
    def stamp(x: str) -> str:
        return x

    @pipeline
    def p():
        first = stamp("a")
        pause = wait(seconds=30, wait_for=[first])
        return stamp("b", wait_for=[pause])

    start = h.clock.now()
    assert h.run(p).output == "b"
    assert h.clock.now() - start == 30 and h.clock.slept == [30.0]


def test_subpipeline_output_and_failure(h: Harness) -> None:
    @pipeline
    def parent(x: int):
        inner = adder(x)
        return {"inner": inner, "twice": add(inner["sum"], inner["sum"])}

    assert h.run(parent, {"x": 1}).output == {"inner": {"sum": 11}, "twice": 22}
    units = {u["key"] for u in h.store.units(h.store.list_runs()[0].run_id)}
    assert {"adder", "adder/add", "add"} <= units

    @pipeline
    def failing_parent(x: int):
        return exploding(x)

    result = h.run(failing_parent, {"x": 4})
    assert result.status == "FAILED" and result.error == {"error": "KeyError", "cause": "'no row 4'"}


def test_type_hints_are_checked_and_converted_at_task_boundaries(h: Harness) -> None:
    @task
    def weekday(day: date) -> str:
        return day.strftime("%A")

    @task
    def half(n: int) -> int:
        return n // 2

    @task
    def wrong() -> int:
        return "not a number"  # type: ignore[return-value]

    @pipeline
    def ok(day: str):
        return weekday(day)

    @pipeline
    def bad_input(n: Any):
        return half(n)

    @pipeline
    def bad_output():
        return wrong()

    assert h.run(ok, {"day": "2024-03-01"}).output == "Friday"
    failed = h.run(bad_input, {"n": "many"})
    assert failed.error["error"] == "TypeError" and "task 'half', parameter 'n'" in failed.error["cause"]
    failed = h.run(bad_output)
    assert failed.error["error"] == "TypeError" and "return type" in failed.error["cause"]


def test_pipeline_input_is_checked(h: Harness) -> None:
    with pytest.raises(UsageError, match="unknown parameter"):
        h.run(adder, {"a": 1, "c": 2})
    with pytest.raises(UsageError, match="missing required parameter"):
        h.run(adder, {})
    with pytest.raises(UsageError, match="parameter 'a'"):
        h.run(adder, {"a": "x"})
    assert h.run(adder, {"a": "5"}).output == {"sum": 15}  # JSON-compatible conversion, as at task boundaries


def test_the_run_store_records_every_unit(h: Harness) -> None:
    result = h.run(adder, {"a": 1})
    record = h.store.get_run(result.run_id)
    assert record.status == "SUCCEEDED" and record.output == {"sum": 11} and record.input == {"a": 1, "b": 10}
    (unit,) = h.store.units(result.run_id)
    assert unit["key"] == "add" and unit["status"] == "SUCCEEDED" and unit["result"] == 11 and unit["attempts"] == 1


def test_a_running_attempt_is_in_the_store_before_the_task_runs(tmp_path: Any) -> None:
    """What `runs show` and the UI read while a task runs: its attempt, committed before the task started."""
    path = tmp_path / "store.db"
    seen: list[list[tuple]] = []

    def look() -> str:
        other = RunStore(path)  # another connection sees only what was committed
        try:
            (run,) = other.list_runs()
            seen.append([(a["key"], a["attempt"], a["status"]) for a in other.attempts(run.run_id)])
        finally:
            other.close()
        if len(seen) == 1:
            raise ConnectionError("first attempt fails")
        return "looked"

    looking = task(retry=Retry(max_retries=1, delay=0, on=("ConnectionError",)))(look)

    @pipeline
    def watched():
        return looking()

    store = RunStore(path)
    result = run_pipeline(watched, {}, store=store)
    assert result.status == "SUCCEEDED"
    assert seen == [[("look", 1, "RUNNING")], [("look", 1, "FAILED"), ("look", 2, "RUNNING")]]
    assert [(a["attempt"], a["status"]) for a in store.attempts(result.run_id)] == [(1, "FAILED"), (2, "SUCCEEDED")]
    assert store.units(result.run_id)[0]["attempts"] == 2
    store.close()
