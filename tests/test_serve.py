"""strato serve: schedules and folder triggers fired on the local runner, state kept in the run store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato.loader import load
from strato.runtime.scheduler import Scheduler, Served
from strato.runtime.store import RunStore

DAILY = "tests/pipelines/daily.py:daily"
INGEST = "tests/pipelines/served.py:ingest"


def served(ref: str) -> Served:
    loaded = load(ref)
    return Served(loaded.definition, loaded.ref, loaded.sys_path)


def at(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "strato.db"


def scheduler(db: Path, *refs: str, **options: object) -> Scheduler:
    return Scheduler([served(r) for r in refs], store_factory=lambda: RunStore(db), **options)  # type: ignore[arg-type]


def test_a_cron_schedule_fires_at_its_ticks_across_a_dst_day(db: Path) -> None:
    sched = scheduler(db, DAILY)
    assert sched.tick(at("2024-03-29T12:00:00+01:00")) == []  # first start: the schedule begins now
    assert sched.tick(at("2024-03-30T01:59:59+01:00")) == []
    fired = sched.tick(at("2024-03-30T02:00:00+01:00"))
    assert [f.detail for f in fired] == ["2024-03-30T01:00:00Z"]
    assert sched.wait(30)
    assert sched.tick(at("2024-03-30T02:00:30+01:00")) == []  # a tick fires once
    # 02:00 does not exist on 2024-03-31 in Paris (clocks jump to 03:00 CEST): it fires at 03:00 CEST
    assert sched.tick(at("2024-03-31T01:30:00+01:00")) == []
    fired += sched.tick(at("2024-03-31T03:00:00+02:00"))
    assert sched.wait(30)
    fired += sched.tick(at("2024-04-01T02:00:05+02:00"))
    assert sched.wait(30)
    assert [f.detail for f in fired] == ["2024-03-30T01:00:00Z", "2024-03-31T01:00:00Z", "2024-04-01T00:00:00Z"]
    store = RunStore(db)
    for f in fired:
        record = store.get_run(f.run_id or "")
        assert record is not None and record.status == "SUCCEEDED", f
        assert record.scheduled_at == f.scheduled_at.timestamp()  # type: ignore[union-attr]
        assert record.output["day"] == (f.scheduled_at.astimezone().date()  # type: ignore[union-attr]
                                        .fromordinal(f.scheduled_at.date().toordinal() - 1).isoformat())  # type: ignore[union-attr]


def test_after_a_restart_only_the_latest_missed_tick_runs_unless_catchup(db: Path, tmp_path: Path) -> None:
    first = scheduler(db, DAILY)
    first.tick(at("2024-03-01T12:00:00+01:00"))
    first.close()
    # down for three days: catchup=False runs the latest missed tick only
    again = scheduler(db, DAILY)
    fired = again.tick(at("2024-03-04T12:00:00+01:00"))
    assert [f.detail for f in fired] == ["2024-03-04T01:00:00Z"]
    assert again.wait(30) and fired[0].status == "SUCCEEDED"
    assert again.tick(at("2024-03-04T13:00:00+01:00")) == []
    again.close()
    # catchup=True runs each missed tick, oldest first
    other = tmp_path / "other.db"
    scheduler(other, DAILY).tick(at("2024-03-01T12:00:00+01:00"))
    caught = scheduler(other, DAILY, catchup=True)
    fired = []
    while step := caught.tick(at("2024-03-04T12:00:00+01:00")):  # one at a time (max one active run)
        fired += step
        assert caught.wait(30)
    assert [f.detail for f in fired] == ["2024-03-02T01:00:00Z", "2024-03-03T01:00:00Z", "2024-03-04T01:00:00Z"]
    assert all(f.status == "SUCCEEDED" for f in fired)


def test_a_folder_trigger_fires_once_per_matching_file_across_a_restart(db: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "incoming").mkdir(parents=True)
    (landing / "incoming" / "a.csv").write_text("x,y\n")
    (landing / "incoming" / "notes.txt").write_text("no")  # suffix does not match
    (landing / "b.csv").write_text("no")  # prefix does not match
    sched = scheduler(db, INGEST, buckets={"landing": landing})
    fired = sched.tick(at("2024-03-01T00:00:00+00:00"))
    assert sched.wait(30)
    assert [f.detail for f in fired] == ["landing/incoming/a.csv"]
    record = RunStore(db).get_run(fired[0].run_id or "")
    assert record is not None and record.output == {"bucket": "landing", "key": "incoming/a.csv", "size": 4}
    assert sched.tick(at("2024-03-01T00:00:01+00:00")) == []
    sched.close()
    (landing / "incoming" / "day2").mkdir()
    (landing / "incoming" / "day2" / "c.csv").write_text("1")
    restarted = scheduler(db, INGEST, buckets={"landing": landing})
    fired = restarted.tick(at("2024-03-01T00:01:00+00:00"))
    assert restarted.wait(30)
    assert [f.detail for f in fired] == ["landing/incoming/day2/c.csv"]
    assert restarted.tick(at("2024-03-01T00:02:00+00:00")) == []


def test_at_most_one_run_per_pipeline_at_a_time(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = tmp_path / "release"
    monkeypatch.setenv("STRATO_TEST_RELEASE", str(release))
    sched = scheduler(db, "tests/pipelines/served.py:blocking")
    minute = 60 * 28_333_333
    sched.tick(minute)
    first = sched.tick(minute + 60)
    assert len(first) == 1 and len(sched.running()) == 1
    assert sched.tick(minute + 120) == [] and sched.tick(minute + 180) == []  # busy: the ticks wait
    release.write_text("go")
    assert sched.wait(30) and first[0].status == "SUCCEEDED"
    later = sched.tick(minute + 200)  # the missed ticks collapse into the latest
    assert [f.scheduled_at.timestamp() for f in later] == [minute + 180]  # type: ignore[union-attr]
    assert sched.wait(30)
