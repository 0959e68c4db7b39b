"""Pipelines that exercise every DSL feature on the Azure replay host (and, for parity, locally)."""

from __future__ import annotations

import threading
import time
from typing import Any

from strato import Catch, Http, ObjectCreated, Retry, Schedule, otherwise, pipeline, task, wait, when

CALLS: dict[str, int] = {}  # tag -> calls so far: tasks that fail a given number of times


def _call(tag: str) -> int:
    CALLS[tag] = CALLS.get(tag, 0) + 1
    return CALLS[tag]


# ------------------------------------------------------------------------------------ retries
@task(retry=Retry(max_retries=3, delay=2.0, backoff=3.0, max_delay=10.0, on=("OSError",)))
def flaky(tag: str, fail: int) -> dict:
    """Fails its first ``fail`` calls per tag with ConnectionError (an OSError)."""
    count = _call(tag)
    if count <= fail:
        raise ConnectionError(f"call {count} for {tag} failed")
    return {"calls": count}


@task(retry=Retry(max_retries=3, delay=1.0, on=("ConnectionError",)))
def picky(tag: str) -> dict:
    """Raises ValueError, which its retry does not cover."""
    raise ValueError(f"bad value for {tag} (call {_call(tag)})")


@pipeline
def retrying(tag: str, fail: int = 2):
    return {"flaky": flaky(tag, fail)}


@pipeline
def not_retried(tag: str):
    return picky(tag)


# ------------------------------------------------------------------------------- catch, timeout
def fallback(error: dict) -> dict:
    return {"caught": error}


@task(catch=Catch(handler=fallback, on=("ValueError",)))
def parse(text: str) -> int:
    return int(text)


@pipeline
def catching(text: str):
    return {"parsed": parse(text)}


def on_timeout(error: dict) -> dict:
    return {"timed_out": error}


@task(timeout=5, retry=Retry(max_retries=1, delay=1.0, on=("TaskTimeout",)),
      catch=Catch(handler=on_timeout, on=("TaskTimeout",)))
def slow(seconds: float) -> str:
    """The replay host's ``durations`` says how long this takes on its virtual clock."""
    return f"done after {seconds:g}s"


@pipeline
def timing_out(seconds: float):
    return slow(seconds)


# --------------------------------------------------------------------------------------- fan-out
@task
def numbers(n: int) -> list[int]:
    return list(range(n))


@task
def square(x: int, offset: int = 0) -> int:
    return x * x + offset


@pipeline
def mapping(n: int, offset: int = 0):
    items = numbers(n)
    return square.map(items, max_concurrency=3, offset=offset)


@task
def not_a_list() -> dict:
    return {"a": 1}


@pipeline
def bad_map():
    return square.map(not_a_list())


# -------------------------------------------------------------------------------------- branches
@task
def echo(value: Any) -> Any:
    return value


@task
def label(text: str) -> str:
    return text


@pipeline
def branching(value: dict):
    got = echo(value)
    with when(got["n"] == 1):
        one = label("n is 1")
    with otherwise():
        other = label("n is not 1")
    with when((got["s"] > "m") & ~(got["flag"] == 1)):
        after_m = label("s after m and flag is not 1")
    with when(got["missing"] > 0):
        positive = label("missing > 0")
    with otherwise():
        with when(got["missing"] == None):  # noqa: E711 - a condition on a handle, not a Python test
            null = label("missing is null")
    return {"one": one, "other": other, "after_m": after_m, "positive": positive, "null": null}


# ------------------------------------------------------------------------------------ wait, DAG
@pipeline
def pausing(x: int):
    first = echo(x)
    pause = wait(seconds=30, wait_for=[first])
    second = label.alias("after_pause")("after the pause", wait_for=[pause])
    return {"first": first, "second": second}


@task
def node(name: str, inputs: list | None = None) -> str:
    return name + (f"({','.join(inputs)})" if inputs else "")


@pipeline
def diamond():
    """a -> c, b -> c, b -> d: not series-parallel; each node starts when its own inputs are ready."""
    a = node.alias("a")("a")
    b = node.alias("b")("b")
    c = node.alias("c")("c", [a, b])
    d = node.alias("d")("d", [b])
    return {"c": c, "d": d}


# ---------------------------------------------------------------------------------- sub-pipeline
@task(retry=Retry(max_retries=2, delay=4.0, backoff=2.0, jitter=True, on=("ConnectionError",)))
def jittery(tag: str, fail: int) -> int:
    count = _call(tag)
    if count <= fail:
        raise ConnectionError(f"call {count} for {tag} failed")
    return count


@pipeline
def child(tag: str, fail: int = 1):
    calls = jittery(tag, fail)
    return {"calls": calls, "echo": echo(tag)}


@pipeline
def parent(tag: str):
    result = child(tag)
    other = label("sibling")
    return {"child": result, "other": other}


@task
def explode(tag: str) -> int:
    raise RuntimeError(f"child failed for {tag}")


@pipeline
def failing_child(tag: str):
    return {"value": explode(tag)}


@pipeline
def failing_parent(tag: str):
    return failing_child(tag)


# ---------------------------------------------------------------------------------- large payloads
@task
def big(n: int) -> dict:
    return {"count": n, "items": [f"item-{i:04d}-" + "x" * 100 for i in range(n)]}


@task
def total_length(items: list[str]) -> int:
    return sum(len(i) for i in items)


@task
def prefix(item: str) -> str:
    return item[:9]


@pipeline
def large(n: int = 40):
    data = big(n)
    with when(data["count"] > 5):
        length = total_length(data["items"])
        heads = prefix.map(data["items"], max_concurrency=4)
    return {"length": length, "heads": heads, "first": data["items"][0], "data": data}


# ------------------------------------------------------------------------------------- triggers
@pipeline(schedule=Schedule(cron="30 6 * * 1-5", input={"bucket": "landing", "key": "nightly.csv"}),
          triggers=[ObjectCreated(bucket="landing", prefix="incoming/", suffix=".csv", input={"note": "event"})],
          tags={"owner": "data-eng"})
def triggered(bucket: str, key: str, size: int = 0, note: str = ""):
    return {"seen": echo({"bucket": bucket, "key": key, "size": size, "note": note})}


@task(timeout=900)
def patient() -> str:
    return "ok"


@pipeline(triggers=[Http(path="/sales/daily", auth="none", public=True)])
def public(x: int = 1):
    return patient()


def last_resort(error: dict) -> str:
    return f"last resort for {error['error']}"


@task(catch=Catch(handler=last_resort))
def strict_handler(error: dict) -> str:
    """A handler that fails; its own catch does not apply when it runs as a handler."""
    raise RuntimeError(f"handler failed on {error['error']}")


@task(catch=Catch(handler=strict_handler))
def fragile() -> int:
    raise KeyError("k")


@pipeline
def handled():
    return {"fragile": fragile(), "direct": strict_handler({"error": "X", "cause": "y"})}


# ---------------------------------------------------------------------------------- concurrency
BARRIER = threading.Barrier(2, timeout=5)  # both parties must be running at the same time
RELEASE = threading.Event()  # lets a task that "never returns" go at the end of its test
GAUGE_LOCK = threading.Condition()
GAUGE = {"now": 0, "peak": 0, "target": 2}
FINISHED: list[int] = []  # the real order in which ``nap`` calls returned


def reset_concurrency(target: int = 2) -> None:
    BARRIER.reset()
    RELEASE.clear()
    with GAUGE_LOCK:
        GAUGE.update(now=0, peak=0, target=target)
        FINISHED.clear()


@task
def meet(name: str) -> str:
    """Waits for a second party: completes only if another ``meet`` runs at the same time."""
    BARRIER.wait()
    return f"{name} met"


@pipeline
def rendezvous():
    return {"a": meet.alias("meet_a")("a"), "b": meet.alias("meet_b")("b")}


@task
def gauged(x: int) -> int:
    """Records how many calls run at once (real threads, not the virtual clock).

    The first calls wait (up to a second) until ``target`` of them overlap, so a loaded machine
    cannot hide concurrency; each then stays a little longer, so more than ``target`` would show.
    """
    with GAUGE_LOCK:
        GAUGE["now"] += 1
        GAUGE["peak"] = max(GAUGE["peak"], GAUGE["now"])
        GAUGE_LOCK.notify_all()
        GAUGE_LOCK.wait_for(lambda: GAUGE["peak"] >= GAUGE["target"], timeout=1.0)
    time.sleep(0.02)
    with GAUGE_LOCK:
        GAUGE["now"] -= 1
    return x * 10


@pipeline
def gauged_map(n: int):
    return gauged.map(numbers(n), max_concurrency=2)


@pipeline
def gauged_wide(n: int):
    return gauged.map(numbers(n))


@task
def nap(x: int, n: int) -> int:
    """Returns only after every later item has (up to a second each): threads finish in reverse order."""
    with GAUGE_LOCK:
        GAUGE_LOCK.wait_for(lambda: set(range(x + 1, n)) <= set(FINISHED), timeout=1.0)
        FINISHED.append(x)
        GAUGE_LOCK.notify_all()
    return x


@pipeline
def napping(n: int):
    return nap.map(numbers(n), n=n)


def stuck_fallback(error: dict) -> dict:
    return {"gave_up": error["error"]}


@task(timeout=5, catch=Catch(handler=stuck_fallback, on=("TaskTimeout",)))
def stuck() -> str:
    """Never returns within its test (the test releases it at the end)."""
    RELEASE.wait(30)
    return "released"


@pipeline
def hanging():
    return {"stuck": stuck(), "other": label("independent")}


@task(timeout=1, catch=Catch(handler=stuck_fallback, on=("TaskTimeout",)))
def stuck_briefly() -> str:
    """Like ``stuck``, with a timeout short enough to wait for in real time."""
    RELEASE.wait(30)
    return "released"


@pipeline
def hanging_briefly():
    return {"stuck": stuck_briefly(), "other": label("independent")}


# ------------------------------------------------------------------------------- shim security
RAN: dict[str, int] = {"counted": 0, "bystander": 0}  # how often each task really ran


@task
def counted(x: int) -> int:
    RAN["counted"] += 1
    return x + 1


@task
def bystander(x: int) -> int:
    """A task of the same app that crafted input to ``counted``'s activity tries to reach."""
    RAN["bystander"] += 1
    return -x


@pipeline
def guarded(x: int = 1):
    return {"counted": counted(x), "bystander": bystander(x)}
