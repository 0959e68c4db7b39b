"""A pipeline to rerun: every task execution is logged; ``transform`` fails while a flag file exists."""

from __future__ import annotations

import os
from pathlib import Path

import strato
from strato import pipeline, task


def _log(entry: str) -> None:
    with open(os.environ["STRATO_TEST_LOG"], "a") as f:
        f.write(entry + "\n")


@task
def extract(day: str) -> list[int]:
    _log("extract")
    return [1, 2, 3]


@task
def double(x: int) -> int:
    _log(f"double:{x}")
    return 2 * x


@task
def transform(values: list[int]) -> int:
    _log("transform")
    if Path(os.environ["STRATO_TEST_FLAG"]).exists():
        raise RuntimeError("transform is broken")
    return sum(values)


@task
def load(total: int, day: str) -> dict:
    _log("load")
    ctx = strato.context()
    return {"total": total, "day": day, "scheduled": ctx.scheduled_at.isoformat() if ctx.scheduled_at else None}


@task
def audit(day: str) -> str:
    _log("audit")
    return f"audited {day}"


@pipeline
def rerunnable(day: str = strato.scheduled_date()):
    doubled = double.map(extract(day))
    return {"load": load(transform(doubled), day), "audit": audit(day)}
