"""strato backfill: one run per schedule tick in [start, end), each with its scheduled_at."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from strato.ir import ScheduleSpec
from strato.runtime.ticks import ticks

from .conftest import Cli

REF = "tests/pipelines/daily.py:daily"


def test_cron_ticks_follow_the_timezone_across_dst_and_every_aligns_to_the_epoch() -> None:
    paris = ZoneInfo("Europe/Paris")
    found = ticks(ScheduleSpec(cron="0 2 * * *", timezone="Europe/Paris"),
                  datetime(2024, 3, 29, tzinfo=paris), datetime(2024, 4, 2, tzinfo=paris))
    # 02:00 does not exist on 2024-03-31 in Paris: that day fires at 03:00 CEST
    assert [t.isoformat() for t in found] == ["2024-03-29T01:00:00+00:00", "2024-03-30T01:00:00+00:00",
                                              "2024-03-31T01:00:00+00:00", "2024-04-01T00:00:00+00:00"]
    every = ticks(ScheduleSpec(every="15m"), datetime(2024, 1, 1, 0, 5, tzinfo=UTC),
                  datetime(2024, 1, 1, 1, 0, tzinfo=UTC))
    assert [t.strftime("%H:%M") for t in every] == ["00:15", "00:30", "00:45"]
    assert ticks(ScheduleSpec(cron="0 * * * *"), datetime(2024, 1, 1, 1, tzinfo=UTC),
                 datetime(2024, 1, 1, 3, tzinfo=UTC))[0].hour == 1  # start is included, end is not


def test_a_three_day_backfill_makes_three_runs_then_skips_them(cli: Cli) -> None:
    code, summary = cli.json("backfill", REF, "--start", "2024-03-01", "--end", "2024-03-04", "--max-active", "2",
                             "--json")
    assert code == 0, summary
    assert (summary["ticks"], summary["succeeded"], summary["failed"], summary["skipped"]) == (3, 3, 0, 0)
    ticks_ = [r["scheduled_at"] for r in summary["runs"]]
    assert ticks_ == ["2024-03-01T01:00:00Z", "2024-03-02T01:00:00Z", "2024-03-03T01:00:00Z"]  # 02:00 in Paris
    for run in summary["runs"]:
        _, shown = cli.json("runs", "show", run["run_id"], "--json")
        assert shown["status"] == "SUCCEEDED" and shown["scheduled_at"].startswith(run["scheduled_at"][:19])
        day = run["scheduled_at"][:10]
        expected_day = f"2024-02-{29:02d}" if day == "2024-03-01" else f"2024-03-{int(day[-2:]) - 1:02d}"
        assert shown["output"] == {"day": expected_day, "region": "eu",
                                   "tick": run["scheduled_at"].replace("Z", "+00:00")}

    again = cli("backfill", REF, "--start", "2024-03-01", "--end", "2024-03-05")
    assert again.returncode == 0
    assert again.stderr.count("skipped (run ") == 3 and "[4/4] 2024-03-04T01:00:00Z SUCCEEDED run" in again.stderr
    assert "4 tick(s), 1 succeeded, 0 failed, 3 skipped" in again.stderr
    code, forced = cli.json("backfill", REF, "--start", "2024-03-01", "--end", "2024-03-02", "--rerun", "--json",
                            "--input", '{"region": "us"}')
    assert code == 0 and forced["succeeded"] == 1 and forced["skipped"] == 0
    assert cli.json("runs", "show", forced["runs"][0]["run_id"], "--json")[1]["output"]["region"] == "us"


def test_a_failed_tick_fails_the_backfill_and_is_retried_next_time(cli: Cli) -> None:
    code, summary = cli.json("backfill", REF, "--start", "2024-03-01", "--end", "2024-03-03", "--json",
                             STRATO_TEST_BAD_DAY="2024-03-01")
    assert code == 1
    assert [(r["scheduled_at"][:10], r["status"]) for r in summary["runs"]] == [("2024-03-01", "SUCCEEDED"),
                                                                               ("2024-03-02", "FAILED")]
    assert summary["runs"][1]["error"] == {"error": "RuntimeError", "cause": "no data for 2024-03-01"}
    code, retry = cli.json("backfill", REF, "--start", "2024-03-01", "--end", "2024-03-03", "--json")
    assert code == 0 and (retry["skipped"], retry["succeeded"]) == (1, 1)


def test_every_schedules_and_mistakes(cli: Cli) -> None:
    code, summary = cli.json("backfill", "tests/pipelines/daily.py:quarterly", "--start", "2024-01-01T00:00:00Z",
                             "--end", "2024-01-01T00:31:00Z", "--json")
    assert code == 0 and [r["scheduled_at"] for r in summary["runs"]] == [
        "2024-01-01T00:00:00Z", "2024-01-01T00:15:00Z", "2024-01-01T00:30:00Z"]
    for args, message in [
        (("tests/pipelines/daily.py:unscheduled", "--start", "2024-01-01", "--end", "2024-01-02"),
         "pipeline 'unscheduled' has no schedule to backfill"),
        ((REF, "--start", "2024-01-02", "--end", "2024-01-01"), "is not before --end"),
        ((REF, "--start", "someday", "--end", "2024-01-01"), "--start 'someday' is not an ISO 8601"),
        ((REF, "--start", "2024-01-01", "--end", "2024-01-02", "--input", '{"regio": 1}'), "unknown parameter(s)"),
        ((REF, "--start", "1990-01-01", "--end", "2024-01-01"), "more than 10000 ticks"),
    ]:
        result = cli("backfill", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert len(json.loads(cli("runs", "list", "--json").stdout)) == 3  # nothing was run for the mistakes
