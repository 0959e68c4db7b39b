"""Schedules and events as EventBridge expresses them."""

from __future__ import annotations

import json

import pytest

from strato import ObjectCreated, Schedule
from strato.adapters.aws.triggers import (
    TriggerError,
    event_input,
    input_transformer,
    object_created_rule,
    schedule_expression,
    schedule_spec,
)
from strato.loader import load

from ..conftest import ROOT


@pytest.mark.parametrize(("cron", "expected"), [
    ("0 2 * * *", "cron(0 2 * * ? *)"),
    ("*/15 * * * 1-5", "cron(*/15 * ? * 2-6 *)"),  # Monday-Friday: unix 1-5 is EventBridge 2-6
    ("0 9 1 * *", "cron(0 9 1 * ? *)"),
    ("0 0 * * 0,6", "cron(0 0 ? * 1,7 *)"),
    ("30 8 * * MON", "cron(30 8 ? * MON *)"),
])
def test_cron_becomes_eventbridge_cron(cron: str, expected: str) -> None:
    assert schedule_expression(Schedule(cron=cron)) == expected


def test_intervals_become_rates() -> None:
    assert [schedule_expression(Schedule(every=e)) for e in ("1m", "15m", "2h", "1d", "90m")] == [
        "rate(1 minute)", "rate(15 minutes)", "rate(2 hours)", "rate(1 day)", "rate(90 minutes)"]


def test_day_of_month_and_week_together_cannot_be_expressed(cli, tmp_path) -> None:
    with pytest.raises(TriggerError, match="restricts both"):
        schedule_expression(Schedule(cron="0 0 1 * 1"))
    bad = tmp_path / "both.py"
    bad.write_text("from strato import pipeline\n\n@pipeline(schedule='0 0 1 * 1')\ndef both():\n    return 1\n")
    result = cli("compile", f"{bad}:both", "--target", "aws", "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "both.py:3: pipeline 'both' (aws): cron '0 0 1 * 1'" in result.stderr


def test_schedule_spec_keeps_the_timezone() -> None:
    ir = load(str(ROOT / "examples" / "daily_sales.py") + ":daily_sales").definition.ir
    assert schedule_spec(ir) == {"ScheduleExpression": "cron(0 2 * * ? *)", "ScheduleExpressionTimezone": "UTC",
                                 "Input": "{}"}


def test_object_created_pattern_and_input() -> None:
    ir = load(str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file").definition.ir
    (trigger,) = ir.triggers
    assert object_created_rule(trigger) == {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": {
        "bucket": {"name": ["landing"]}, "object": {"key": [{"wildcard": "incoming/*.csv"}]}}}
    assert object_created_rule(ObjectCreated(bucket="b", prefix="raw/"))["detail"]["object"] == {
        "key": [{"prefix": "raw/"}]}
    event = {"detail": {"bucket": {"name": "landing"}, "object": {"key": "incoming/a.csv", "size": 3}}}
    assert event_input(ir, trigger, event) == {"bucket": "landing", "key": "incoming/a.csv"}
    transformer = input_transformer(ir, trigger)
    assert transformer["InputPathsMap"] == {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key"}
    filled = transformer["InputTemplate"].replace("<bucket>", '"landing"').replace("<key>", '"incoming/a.csv"')
    assert json.loads(filled) == {"bucket": "landing", "key": "incoming/a.csv"}
