"""Pipelines for `strato serve`: a folder trigger, and a task that blocks until a file appears."""

from __future__ import annotations

import os
import time
from pathlib import Path

from strato import Http, ObjectCreated, Schedule, pipeline, task


@task
def load(bucket: str, key: str, size: int) -> dict:
    return {"bucket": bucket, "key": key, "size": size}


@pipeline(triggers=[ObjectCreated(bucket="landing", prefix="incoming/", suffix=".csv")])
def ingest(bucket: str, key: str, size: int = 0):
    return load(bucket, key, size)


@task
def block() -> str:
    """Waits for $STRATO_TEST_RELEASE to exist (the test decides when the task may end), up to a minute."""
    release = Path(os.environ.get("STRATO_TEST_RELEASE", "/nonexistent"))
    started = os.environ.get("STRATO_TEST_STARTED")
    if started:
        Path(started).write_text("started")
    for _ in range(600):
        if release.exists():
            return "released"
        time.sleep(0.1)
    return "timed out"


@pipeline(schedule=Schedule(every="1m"))
def blocking():
    return block()


@pipeline(triggers=[Http(path="/hold")])
def held():
    return block()


@task
def hello(name: str) -> str:
    return f"hello {name}"


@pipeline(triggers=[Http(path="/greet")])
def greet(name: str):
    return hello(name)
