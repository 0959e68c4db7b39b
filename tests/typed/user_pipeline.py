"""A user's pipeline file, type-checked by tests/test_typing.py: it must give mypy no error."""

from __future__ import annotations

from typing import Any

from strato import Catch, ObjectCreated, Retry, Schedule, otherwise, pipeline, task, wait, when


def on_bad_rows(error: dict[str, str]) -> list[dict[str, Any]]:
    return []


@task
def extract(day: str) -> dict[str, Any]:
    return {"files": [f"{day}/a.csv"], "count": 1}


@task(retry=Retry(max_retries=3, delay=1.0, on=("IOError",)), timeout=300, catch=Catch(handler=on_bad_rows),
      tags={"cost-center": "42"})
def clean(path: str, limit: int = 100) -> list[dict[str, Any]]:
    return [{"path": path, "limit": limit}]


@task
def load(rows: list[list[dict[str, Any]]]) -> int:
    return len(rows)


@task
def notify(day: str) -> None:
    print(day)


@pipeline
def child(day: str) -> int:
    return load([clean(day)])


@pipeline(schedule=Schedule(cron="0 2 * * *"), triggers=[ObjectCreated(bucket="landing")], tags={"owner": "me"})
def daily_sales(day: str, limit: int = 100) -> dict[str, Any]:
    raw = extract(day)
    rows = clean.map(raw["files"], max_concurrency=8, limit=limit)
    with when(raw["count"] > 0):
        loaded = load(rows)
    with otherwise():
        notify(day)
    pause = wait(seconds=30, wait_for=[rows])
    eu = extract.alias("extract_eu")(day)
    sub = child(day, wait_for=[pause])
    return {"loaded": loaded, "day": day, "eu": eu["count"], "sub": sub}


# plain Python calls keep the functions' signatures and return types
counted: int = load([clean("x", limit=3)])
files: list[str] = extract("2024-03-01")["files"]
output: dict[str, Any] = daily_sales("2024-03-01", limit=5)
