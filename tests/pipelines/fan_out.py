"""Twelve calls at once, merged after a Parallel state: intrinsic functions nest at most 10 deep on AWS."""

from strato import pipeline, task


@task
def part(i: int) -> int:
    return i * i

@task
def total(values: list) -> int:
    return sum(values)

@pipeline
def fan12():
    parts = [part(i) for i in range(12)]
    return total(parts)
