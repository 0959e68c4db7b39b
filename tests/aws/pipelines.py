"""Pipelines exercising each DSL feature, run on the local runner and on moto for comparison."""

from __future__ import annotations

import threading
import time
from typing import Any

from strato import Catch, Retry, otherwise, pipeline, task, wait, when

CALLS: dict[str, int] = {}
LOCK = threading.Lock()
BARRIER: dict[str, threading.Barrier] = {}
RELEASE = threading.Event()


def count(key: str) -> int:
    with LOCK:
        CALLS[key] = CALLS.get(key, 0) + 1
        return CALLS[key]


@task(retry=Retry(max_retries=3, delay=2, backoff=3, max_delay=10, on=("ConnectionError",)))
def flaky(tag: str, failures: int) -> str:
    attempt = count(f"flaky:{tag}")
    if attempt <= failures:
        raise ConnectionError(f"attempt {attempt} of {tag} failed")
    return f"{tag} ok after {attempt}"


@pipeline
def retrying(tag: str, failures: int = 2):
    return {"value": flaky(tag, failures)}


def quarantine(error: dict) -> dict:
    return {"quarantined": error}


@task(catch=Catch(handler=quarantine, on=("ValueError",)))
def parse(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number")
    return int(text)


@pipeline
def catching(text: str):
    return {"parsed": parse(text)}


def on_timeout(error: dict) -> str:
    return f"gave up: {error['error']}"


@task(timeout=1, catch=Catch(handler=on_timeout, on=("TaskTimeout",)))
def slow(seconds: float) -> str:
    RELEASE.wait(seconds)
    return "finished"


@pipeline
def timing_out(seconds: float = 5):
    return slow(seconds)


@task
def square(x: int, offset: int = 0) -> int:
    barrier = BARRIER.get("map")
    if barrier is not None:
        barrier.wait()
    with LOCK:
        CALLS["active"] = CALLS.get("active", 0) + 1
        CALLS["peak"] = max(CALLS.get("peak", 0), CALLS["active"])
    time.sleep(0.01)
    with LOCK:
        CALLS["active"] -= 1
    return x * x + offset


@task
def measure(values: list) -> dict:
    return {"count": len(values), "total": sum(values), "first": values[0] if values else None}


@task
def describe(label: str, stats: Any) -> str:
    return f"{label}: {stats}"


@pipeline
def mapping(items: list):
    squares = square.map(items, max_concurrency=2, offset=1)
    stats = measure(squares)
    with when((stats["count"] > 3) & (stats["first"] != None)):  # noqa: E711 - a JSON null literal
        big = describe("many", stats["total"])
    with otherwise():
        small = describe("few", stats["count"])
    pause = wait(30, wait_for=[stats])
    return {"squares": squares, "big": big, "small": small, "after": describe("done", None, wait_for=[pause])}


@task
def add(a: int, b: int) -> int:
    return a + b


@pipeline
def adder(a: int, b: int = 10):
    return {"sum": add(a, b)}


@task
def boom(x: int) -> int:
    raise KeyError(f"no row {x}")


@pipeline
def exploding(x: int):
    return boom(x)


@pipeline
def nested(x: int):
    inner = adder(x)
    return {"inner": inner, "twice": add(inner["sum"], inner["sum"])}


@pipeline
def nested_failure(x: int):
    first = adder(x)
    return {"first": first, "failed": exploding(x)}


@task
def source(name: str) -> str:
    return name


@task
def join(left: str, right: str) -> str:
    return f"{left}+{right}"


@pipeline
def n_shape():
    """a -> c, b -> c, b -> d: not series-parallel."""
    a, b = source("a"), source("b")
    return {"c": join.alias("c")(a, b), "d": join.alias("d")(b, "x")}


@task
def big_table(rows: int) -> dict:
    """A result far over the inline limit, with a small field the state machine branches on."""
    return {"count": rows, "rows": [{"id": i, "payload": "x" * 100} for i in range(rows)]}


@task
def checksum(table: dict) -> dict:
    return {"count": len(table["rows"]), "last": table["rows"][-1]["id"]}


@pipeline
def large_payload(rows: int = 3000):
    table = big_table(rows)
    with when(table["count"] > 1000):
        summary = checksum(table)
    return {"summary": summary, "table": table}


@task(runtime="worker", retry=Retry(max_retries=2, delay=1, on=("ConnectionError",)))
def on_premises(tag: str, failures: int = 0) -> dict:
    """Runs in a worker process (an Activity), not in Lambda."""
    attempt = count(f"worker:{tag}")
    if attempt <= failures:
        raise ConnectionError(f"warehouse busy (attempt {attempt})")
    return {"tag": tag, "attempts": attempt}


@pipeline
def with_worker(tag: str, failures: int = 0):
    return {"worker": on_premises(tag, failures), "lambda": add(1, 2)}


@task
def bump(x: int, by: int = 1) -> int:
    return x + by


@pipeline
def long_pipeline(start: int = 0):
    """Four chains of ten, joined pairwise, then joined: enough states to be split in parts."""
    ends = []
    for chain in range(4):
        value = bump(start, chain)
        for _ in range(9):
            value = bump(value)
        ends.append(value)
    left, right = add(ends[0], ends[1]), add(ends[2], ends[3])
    with when(left > 0):
        total = add(left, right)
    return {"ends": ends, "total": total}
