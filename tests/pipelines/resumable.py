"""A pipeline a test kills mid-run: every task execution is logged, one task blocks behind a gate file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from strato import pipeline, task, wait


def _log(entry: str) -> None:
    with open(os.environ["STRATO_TEST_LOG"], "a") as f:
        f.write(entry + "\n")


@task
def source(n: int) -> list[int]:
    _log("source")
    return list(range(1, n + 1))


@task
def square(x: int) -> int:
    _log(f"square:{x}")
    return x * x


@task
def side(n: int) -> str:
    _log("side")
    return f"side-{n}"


@task
def gate(values: list[int]) -> int:
    """Blocks while the gate file exists, so the test can kill the run here."""
    _log("gate")
    gate_file = os.environ.get("STRATO_TEST_GATE")
    while gate_file and Path(gate_file).exists():
        time.sleep(0.02)
    return sum(values)


@task
def label(total: int, prefix: str) -> str:
    _log(f"label:{prefix}")
    return f"{prefix}{total}"


@pipeline
def labelled(total: int, prefix: str = "total="):
    return {"label": label(total, prefix)}


@pipeline
def resumable(n: int = 4):
    values = source(n)
    squares = square.map(values, max_concurrency=2)
    extra = side(n)
    total = gate(squares)
    pause = wait(0.01, wait_for=[total])
    return {"squares": squares, "total": total, "sub": labelled(total, wait_for=[pause]), "side": extra}
