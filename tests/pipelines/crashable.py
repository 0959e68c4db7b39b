"""A pipeline killed with SIGKILL at a chosen step: chains, a map, a wait and a sub-pipeline.

Every task passes four kill points (``_step``); with ``CRASH_KILL_AT=k`` the k-th one kills the
process. Each task logs its unit key to ``$CRASH_LOG`` when it starts, so a test sees what re-ran.
"""

from __future__ import annotations

import os
import signal
import threading

from strato import pipeline, task, wait

_lock = threading.Lock()
_steps = 0


def _step() -> None:
    global _steps
    with _lock:
        _steps += 1
        if _steps == int(os.environ.get("CRASH_KILL_AT") or 0):
            os.kill(os.getpid(), signal.SIGKILL)


def _run(key: str) -> None:
    _step()
    with open(os.environ["CRASH_LOG"], "a") as f:
        f.write(key + "\n")
    _step()


@task
def source(n: int) -> list[int]:
    _run("source")
    values = list(range(1, n + 1))
    _step()
    _step()
    return values


@task
def double(x: int) -> int:
    _run(f"double[{x - 1}]")
    _step()
    _step()
    return 2 * x


@task
def total_of(values: list[int]) -> int:
    _run("total_of")
    _step()
    _step()
    return sum(values)


@task
def bump(value: int, amount: int) -> int:
    _run("bump" if amount == 1 else "bump_2")
    _step()
    _step()
    return value + amount


@task
def fmt(value: int, prefix: str) -> str:
    _run("report/fmt")
    _step()
    _step()
    return f"{prefix}{value}"


@task
def shout(text: str) -> str:
    _run("report/shout")
    _step()
    _step()
    return text.upper()


@task
def side(n: int) -> str:
    _run("side")
    _step()
    _step()
    return f"side-{n}"


@pipeline
def report(value: int, prefix: str = "v="):
    return {"text": shout(fmt(value, prefix))}


@pipeline
def crashable(n: int = 8):
    doubled = double.map(source(n), max_concurrency=3)
    bumped = bump(bump(total_of(doubled), 1), 2)
    pause = wait(0.02, wait_for=[bumped])
    return {"doubled": doubled, "bumped": bumped, "report": report(bumped, wait_for=[pause]), "side": side(n)}
