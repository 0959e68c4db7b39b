"""Deterministic, total tasks for differential testing: any JSON in, a small JSON value out."""

from __future__ import annotations

from typing import Any

from strato import Catch, task

ODD = "odd key-é.$"  # a key that is no identifier, with a dot, a dollar and non-ASCII


def number(value: Any) -> int:
    """A number standing for any result: a record's ``n``, a list's sum, 0 for null."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return number(value.get("n"))
    if isinstance(value, list):
        return sum(number(v) for v in value) % 1009
    return 0


def record(n: int, size: int = 0) -> dict:
    return {"n": n, "s": "x" * size, ODD: n % 2 == 1, "items": list(range(n % 4))}


@task
def make(seed: int, size: int = 0) -> dict:
    return record(seed, size)


@task
def combine(a: Any, b: Any) -> dict:
    return record((number(a) + 2 * number(b) + 1) % 997)


@task
def square(item: Any, bias: int = 0) -> int:
    return number(item) ** 2 + bias


def recover(error: dict) -> dict:
    return {"n": 500, "s": f"{error['error']}: {error['cause']}", ODD: False, "items": []}


@task
def fragile(value: Any) -> dict:
    n = number(value)
    if n % 3 == 0:
        raise ValueError(f"n={n} is a multiple of 3")
    return record(n + 1)


@task(catch=Catch(handler=recover, on=("ValueError",)))
def fragile_caught(value: Any) -> dict:
    n = number(value)
    if n % 3 == 0:
        raise ValueError(f"n={n} is a multiple of 3")
    return record(n + 1)
