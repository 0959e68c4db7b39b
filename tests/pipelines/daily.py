"""A daily pipeline for backfills: its day comes from scheduled_at; a flag file makes one day fail."""

from __future__ import annotations

import os

import strato
from strato import Schedule, pipeline, task


@task
def report(day: str, region: str) -> dict:
    if day == os.environ.get("STRATO_TEST_BAD_DAY"):
        raise RuntimeError(f"no data for {day}")
    ctx = strato.context()
    assert ctx.scheduled_at is not None
    return {"day": day, "region": region, "tick": ctx.scheduled_at.isoformat()}


@pipeline(schedule=Schedule(cron="0 2 * * *", timezone="Europe/Paris", input={"region": "eu"}))
def daily(region: str, day: str = strato.scheduled_date(offset_days=-1)):
    return report(day, region)


@pipeline(schedule=Schedule(every="15m"))
def quarterly(day: str = strato.scheduled_time()):
    return day


@pipeline
def unscheduled():
    return 1
