"""Pipelines whose results, each well under 256 KiB, would together overflow one Step Functions state."""

from strato import pipeline, task


@task
def text(size: int, fill: str) -> str:
    return fill * size


@task
def measure(value: str, plus: int) -> int:
    return len(value) + plus


@task
def lengths(values: list) -> list:
    return [len(v) for v in values]


@pipeline
def three_readers():
    """One ~99 KB result read by three tasks side by side: each Parallel branch once returned a copy."""
    big = text(99_000, "a")
    return [measure(big, 1), measure(big, 2), measure(big, 3)]


@pipeline
def two_large():
    """Two 150 KB results in the state at once, read together."""
    return lengths([text(150_000, "b"), text(150_000, "c")])


@pipeline
def ten_medium():
    """Ten 60 KB results, about 600 KB together."""
    return lengths([text(60_000, str(i)) for i in range(10)])


@task
def side_effect(size: int) -> str:
    return "d" * size


@pipeline
def unread_results():
    """Results no later state reads are not kept in the state at all."""
    for i in range(4):
        side_effect(200_000 + i)
    return "done"


@task
def count_to(n: int) -> list:
    return list(range(n))


@task
def pad(i: int) -> str:
    return str(i) * 2000


@pipeline
def wide_results(n: int = 150):
    """A map over a computed list whose results total ~450 KB: written to S3 by the map, never in a state."""
    return lengths(pad.map(count_to(n)))
