"""strato.context() inside tasks, scheduled_at on runs, and parameter defaults derived from it."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import pytest

import strato
from strato import Catch, Retry, Schedule, pipeline, task
from strato.errors import StratoError, UsageError
from strato.runtime import RunStore, VirtualClock, run_pipeline

from .conftest import Cli


def test_context_inside_tasks_names_the_run_task_attempt_and_map_item() -> None:
    seen: list[dict] = []
    lock = threading.Lock()
    flaky_calls: list[int] = []

    @task
    def look(item: int) -> int:
        with lock:
            seen.append(strato.context().to_dict())
        return item

    @task(retry=Retry(max_retries=2, delay=0))
    def flaky() -> int:
        flaky_calls.append(1)
        if len(flaky_calls) < 3:
            raise ConnectionError("not yet")
        ctx = strato.context()
        with lock:
            seen.append(ctx.to_dict())
        return ctx.attempt

    @pipeline
    def child(n: int):
        return look(n)

    @pipeline
    def p():
        return {"items": look.map([10, 20]), "tries": flaky(), "child": child(7)}

    store = RunStore.memory()
    result = run_pipeline(p, store=store, clock=VirtualClock(), scheduled_at="2024-03-02T02:00:00+01:00")
    assert result.output == {"items": [10, 20], "tries": 3, "child": 7}
    by_task = sorted((c["task_id"], c["map_index"], c["attempt"]) for c in seen)
    assert by_task == [("child/look", None, 1), ("flaky", None, 3), ("look", 0, 1), ("look", 1, 1)]
    for c in seen:
        assert c["run_id"] == result.run_id and c["pipeline"] == "p" and c["backend"] == "local"
        assert c["scheduled_at"] == "2024-03-02T01:00:00Z"
    assert {c["task"] for c in seen} == {"look", "flaky"}
    record = store.get_run(result.run_id)
    assert record is not None and record.scheduled_at == datetime(2024, 3, 2, 1, tzinfo=UTC).timestamp()


def test_the_context_is_frozen_plain_and_round_trips() -> None:
    captured: list[strato.RunContext] = []

    @task
    def grab() -> None:
        captured.append(strato.context())

    @pipeline
    def p():
        return grab()

    run_pipeline(p, store=RunStore.memory(), clock=VirtualClock())
    ctx = captured[0]
    assert ctx.scheduled_at is None and ctx.map_index is None and ctx.attempt == 1
    with pytest.raises(AttributeError):
        ctx.attempt = 2  # type: ignore[misc]
    wire = json.loads(json.dumps(ctx.to_dict()))
    assert strato.RunContext.from_dict(wire) == ctx


def test_a_catch_handler_has_a_context_too() -> None:
    seen: list[str] = []

    def handler(error: dict) -> str:
        seen.append(strato.context().task_id)
        return "handled"

    @task(catch=Catch(handler=handler))
    def bad() -> str:
        raise ValueError("no")

    @pipeline
    def p():
        return bad()

    assert run_pipeline(p, store=RunStore.memory(), clock=VirtualClock()).output == "handled"
    assert seen == ["bad#catch"]


def test_outside_a_task_context_is_a_clear_error() -> None:
    with pytest.raises(StratoError, match="only available inside a running task"):
        strato.context()


def test_scheduled_defaults_resolve_from_scheduled_at_in_the_schedules_timezone() -> None:
    @task
    def echo(day: str, at: str) -> dict:
        return {"day": day, "at": at}

    @pipeline(schedule=Schedule(cron="0 2 * * *", timezone="Europe/Paris"))
    def daily(day: str = strato.scheduled_date(offset_days=-1), at: str = strato.scheduled_time(offset_seconds=-60)):
        return echo(day, at)

    spec = {p.name: p.default for p in daily.ir.params}
    assert spec["day"] == {"$strato_scheduled": {"as": "date", "offset_days": -1, "offset_seconds": 0,
                                                 "timezone": "Europe/Paris"}}
    assert daily.ir.to_json() == strato.ir.from_json(daily.ir.to_json()).to_json()  # recorded in the IR
    store, clock = RunStore.memory(), VirtualClock()
    # Paris moves to summer time at 01:00 UTC on 2024-03-31: times are shown in the offset of the moment
    out = run_pipeline(daily, store=store, clock=clock, scheduled_at="2024-03-31T01:00:30Z").output
    assert out == {"day": "2024-03-30", "at": "2024-03-31T01:59:30+01:00"}
    # 23:30 UTC is already the next day in Paris: the date is the schedule's local date
    assert run_pipeline(daily, store=store, clock=clock, scheduled_at="2024-03-31T23:30:00Z").output["day"] == \
        "2024-03-31"
    assert run_pipeline(daily, {"day": "2020-01-01"}, store=store, clock=clock,
                        scheduled_at="2024-03-31T00:30:00Z").output["day"] == "2020-01-01"  # input wins
    may_day = VirtualClock(start=datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp())
    manual = run_pipeline(daily, store=store, clock=may_day)
    assert manual.output["day"] == "2024-04-30"  # a manual run counts from its start
    stored = store.get_run(manual.run_id)
    assert stored is not None and stored.input["day"] == "2024-04-30"  # resolved once, kept for resume/rerun


def test_scheduled_default_mistakes_are_reported_at_the_definition() -> None:
    with pytest.raises(StratoError, match=r"offset_days='1'.*whole number"):
        strato.scheduled_date(offset_days="1")  # type: ignore[arg-type]
    with pytest.raises(StratoError, match="'Mars/Olympus' is not an IANA timezone"):
        strato.scheduled_date(timezone="Mars/Olympus")

    @pipeline
    def p(n: int = 1):
        return None

    with pytest.raises(UsageError, match="scheduled_at: 'yesterday' is not an ISO 8601"):
        run_pipeline(p, store=RunStore.memory(), scheduled_at="yesterday")


def test_scheduled_at_from_the_command_line(cli: Cli, tmp_path) -> None:
    source = tmp_path / "ctx.py"
    source.write_text(
        "import strato\nfrom strato import pipeline, task\n\n"
        "@task\ndef where(day: str) -> dict:\n    c = strato.context()\n"
        "    return {'day': day, 'at': c.scheduled_at.isoformat() if c.scheduled_at else None, 'task': c.task_id}\n\n"
        "@pipeline(schedule='0 2 * * *')\ndef daily(day: str = strato.scheduled_date(offset_days=-1)):\n"
        "    return where(day)\n")
    code, data = cli.json("run", f"{source}:daily", "--scheduled-at", "2024-03-02T02:00:00", "--json")
    assert code == 0, data
    assert data["output"] == {"day": "2024-03-01", "at": "2024-03-02T02:00:00+00:00", "task": "where"}
    _, shown = cli.json("runs", "show", data["run_id"], "--json")
    assert shown["scheduled_at"].startswith("2024-03-02T02:00:00")
    bad = cli("run", f"{source}:daily", "--scheduled-at", "soon")
    assert bad.returncode == 2 and "--scheduled-at: 'soon' is not an ISO 8601" in bad.stderr
