"""Large pipelines on the replay host: parts and map chunks keep every history bounded, outputs stay the
local runner's, and keys (so retry jitter) and ``max_concurrency`` mean what they mean locally."""

from __future__ import annotations

import json
from typing import Any

import pytest

from strato import Catch, Retry, otherwise, pipeline, task, when
from strato.dsl.definitions import PipelineDefinition

from .conftest import run_locally
from .pipelines import echo, label, square

pytest.importorskip("azure.durable_functions")

from strato.adapters.azure import compiler, orchestration
from strato.adapters.azure.replay.history import SUB_CREATED, TASK_SCHEDULED


@task
def seed(value: int, part: int) -> int:
    return value + part


@task
def bump(x: int) -> int:
    return x + 1


@task
def join(a: int, b: int) -> int:
    return a + b


def generated(size: int, chain: int = 25) -> PipelineDefinition:
    """A new chain every ``chain`` calls, every third call a fan-in with an earlier result anywhere."""

    def body(value: int = 0) -> Any:
        results: list[Any] = []
        ends: list[Any] = []
        for i in range(size):
            if i % chain == 0:
                if results:
                    ends.append(results[-1])
                handle = seed(value, i)
            elif i % 3 == 0:
                handle = join(results[i - 1], results[(i * 7919) % i])
            else:
                handle = bump(results[i - 1])
            results.append(handle)
        ends.append(results[-1])
        return ends

    return PipelineDefinition(body, name=f"generated_{size}")


def scheduled(history: list[dict[str, Any]]) -> int:
    """Calls an orchestration scheduled itself: activities and sub-orchestrations."""
    return sum(1 for e in history if e["EventType"] in (TASK_SCHEDULED, SUB_CREATED))


def test_a_large_dag_runs_in_parts_with_the_local_output(emulated: Any) -> None:
    definition = generated(450)
    em = emulated(definition)
    result = em.run({"value": 7})
    local = run_locally(definition, {"value": 7})
    assert (result.status, result.output) == ("SUCCEEDED", local.output)
    parts = [i for i in em.host.instances if i.startswith("run-1:part.")]
    assert len(parts) == 5  # 450 nodes, at most 100 per part
    for instance in em.host.instances.values():
        assert scheduled(instance.history) <= orchestration.PART_NODES, instance.id
    assert len(em.runs("seed")) + len(em.runs("bump")) + len(em.runs("join")) == 450  # each node ran once


def test_parts_nest_when_there_are_more_than_fit_one_orchestration(emulated: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """With 3 per orchestration, 40 nodes make a tree three levels deep; every level stays within 3."""
    monkeypatch.setattr(compiler, "PART_NODES", 3)
    definition = generated(40, chain=7)
    em = emulated(definition)
    result = em.run({"value": 1})
    assert (result.status, result.output) == ("SUCCEEDED", run_locally(definition, {"value": 1}).output)
    depth = max(i.count(":part.") for i in em.host.instances)
    assert depth == 3
    for instance in em.host.instances.values():
        assert scheduled(instance.history) <= 3, instance.id


def fallback(error: dict) -> dict:
    return {"caught": error["error"]}


CALLED: dict[str, int] = {}


@task(retry=Retry(max_retries=2, delay=4.0, backoff=2.0, jitter=True, on=("ConnectionError",)))
def wobbly(tag: str) -> int:
    CALLED[tag] = CALLED.get(tag, 0) + 1
    if CALLED[tag] == 1:
        raise ConnectionError(f"first call for {tag}")
    return CALLED[tag]


@task(catch=Catch(handler=fallback, on=("ValueError",)))
def strict(text: str) -> int:
    return int(text)


@pipeline
def mixed(n: int = 12, text: str = "x"):
    """Every kind of node, spread over parts of 3: branches, a map, a catch, a jittered retry."""
    first = echo({"n": n})
    chain = first
    for _ in range(5):
        chain = echo(chain)
    with when(chain["n"] > 10):
        big = label("big")
    with otherwise():
        small = label("small")
    squares = square.map([1, 2, 3, 4], offset=n)
    parsed = strict(text)
    tried = wobbly("mixed")
    return {"chain": chain, "big": big, "small": small, "squares": squares, "parsed": parsed, "tried": tried}


def test_every_kind_of_node_behaves_the_same_across_parts(emulated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "PART_NODES", 3)
    CALLED.clear()
    em = emulated(mixed)
    result = em.run({"n": 12})
    CALLED.clear()
    local = run_locally(mixed, {"n": 12})
    assert (result.status, result.output) == ("SUCCEEDED", local.output)
    assert result.output["parsed"] == {"caught": "ValueError"} and result.output["small"] is None
    assert any(":part." in i for i in em.host.instances)
    # the retry waited the local runner's jittered delay: its key is "wobbly" in whichever part it ran
    from strato.ir import RetrySpec

    runs = em.runs("wobbly")
    spec = RetrySpec(max_retries=2, delay=4.0, backoff=2.0, jitter=True, on=("ConnectionError",))
    delay = orchestration.retry_delay(orchestration.Run({}, "run-1"), "wobbly", 1, spec)
    assert runs[1].started - runs[0].ended == pytest.approx(delay)


def test_a_failure_in_a_late_part_fails_the_run_with_the_tasks_error(emulated: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "PART_NODES", 3)
    em = emulated(mixed)
    result = em.run({"n": 12, "text": "oops"})  # caught: still fine
    assert result.status == "SUCCEEDED"

    @task
    def boom(x: Any) -> int:
        raise ZeroDivisionError("late failure")

    @pipeline
    def failing_late():
        handle = echo(1)
        for _ in range(8):
            handle = echo(handle)
        return boom(handle)

    em = emulated(failing_late)
    result = em.run()
    local = run_locally(failing_late)
    assert result.status == "FAILED" and result.error == local.error
    assert result.error["error"] == "ZeroDivisionError"


@pipeline
def wide(items: list[int], limit: int = 0):
    return square.map(items, offset=limit)


@pipeline
def wide_limited(items: list[int]):
    return square.map(items, max_concurrency=7, offset=1)


def test_a_large_map_runs_in_chunks_with_the_local_output(emulated: Any) -> None:
    items = list(range(250))
    em = emulated(wide)
    result = em.run({"items": items, "limit": 2})
    assert result.output == run_locally(wide, {"items": items, "limit": 2}).output
    chunks = sorted(i for i in em.host.instances if i != "run-1")
    assert chunks == ["run-1:square.0", "run-1:square.100", "run-1:square.200"]
    for instance in em.host.instances.values():
        assert scheduled(instance.history) <= orchestration.MAP_CHUNK
    inputs = [json.loads(e["Input"]) for e in em.history("run-1:square.200") if e["EventType"] == TASK_SCHEDULED]
    context = {"run": "run-1", "pipeline": "wide", "key": "square[200]", "attempt": 1}  # strato.context()
    assert inputs[0] == {"x": 200, "offset": 2, "strato.context": context} and len(inputs) == 50


def test_a_chunked_map_keeps_max_concurrency_across_chunks(emulated: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orchestration, "MAP_CHUNK", 4)  # 60 items: chunks of 16, then of 4
    em = emulated(wide_limited, durations=lambda name, value: 1.0 if name == "square" else 0.0)
    result = em.run({"items": list(range(60))})
    assert result.output == [x * x + 1 for x in range(60)]
    spans = [(r.started, r.ended) for r in em.runs("square")]
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most <= 7
    for instance in em.host.instances.values():
        assert scheduled(instance.history) <= 4, instance.id
    assert any(i.count(":square.") == 2 for i in em.host.instances)  # chunks of chunks


def test_small_pipelines_compile_as_before() -> None:
    """At most PART_NODES nodes: one orchestrator, no parts."""
    from tests.azure.pipelines import diamond

    source = compiler.generate_function_app(diamond.ir)
    assert "run_parts" not in source and "_part_1" not in source


def test_a_large_pipeline_compiles_to_parts_within_the_bound() -> None:
    ir = generated(2_000).ir
    parts = compiler.partition(ir)
    assert len(parts) == 20 and all(len(p.nodes) <= orchestration.PART_NODES for p in parts)
    source = compiler.generate_function_app(ir)
    compile(source, "function_app.py", "exec")
    assert source.count("@app.orchestration_trigger") == 21  # the pipeline and its 20 parts (no map)

