"""Mistakes a type checker must report (tests/test_typing.py checks each line is reported)."""

from __future__ import annotations

from strato import pipeline, task


@task
def extract(day: str) -> dict[str, int]:
    return {"count": len(day)}


@task(timeout=10)
def shout(text: str) -> str:
    return text.upper()


@pipeline
def flow(day: str) -> int:
    return extract(day)["count"]


extract(1)  # error: wrong argument type
shout(txt="hi")  # error: unknown keyword
count: str = flow("2024-03-01")  # error: flow returns int
