"""Generated pipelines of any size: a dense random DAG (every task reads two earlier ones)."""

from __future__ import annotations

import random

from strato import task
from strato.dsl.definitions import PipelineDefinition


@task
def source(i: int) -> int:
    return i


@task
def add(a: int, b: int) -> int:
    return (a + b) % 1_000_003


def dense_dag(size: int, seed: int = 1) -> PipelineDefinition:
    """``size`` tasks, each after the first ten adding two results picked at random among all earlier ones."""
    rng = random.Random(seed)
    picks = [(rng.randrange(i), rng.randrange(i)) if i >= 10 else (0, 0) for i in range(size)]

    def body() -> object:
        results: list = []
        for i in range(size):
            results.append(source(i) if i < 10 else add(results[picks[i][0]], results[picks[i][1]]))
        return results[-1]

    return PipelineDefinition(body, name=f"dense_{size}")
