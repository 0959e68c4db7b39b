"""The IR: serialisable, round-trips exactly, hashes stably, and defines the shared semantics."""

from __future__ import annotations

import json

import pytest

from strato import ir as IR
from strato.loader import load

from .conftest import ROOT


@pytest.fixture(scope="module")
def sales() -> IR.PipelineIR:
    return load(str(ROOT / "examples" / "daily_sales.py") + ":daily_sales").definition.ir


def test_round_trip_is_exact(sales: IR.PipelineIR) -> None:
    text = sales.to_json()
    back = IR.from_json(text)
    assert back == sales
    assert back.to_json() == text
    assert back.hash == sales.hash
    assert json.loads(text)["schema_version"] == IR.SCHEMA_VERSION


def test_round_trip_with_subpipelines_and_branches() -> None:
    from strato import otherwise, pipeline, wait, when
    from tests.test_dsl import child, fetch, stamp

    @pipeline
    def p(day: str):
        raw = fetch(day)
        with when((raw["count"] >= 1) | (raw["files"][0] != "z")):
            a = stamp.map(raw["files"], max_concurrency=2)
        with otherwise():
            wait(1)
        return {"a": a, "c": child(day)}

    graph = p.ir
    assert IR.from_json(graph.to_json(indent=2)) == graph


def test_hash_ignores_locations_but_not_semantics(sales: IR.PipelineIR) -> None:
    from dataclasses import replace

    moved = replace(sales, location=IR.Location("/elsewhere.py", 1),
                    nodes=tuple(replace(n, location=None) for n in sales.nodes))
    assert moved.hash == sales.hash
    changed = replace(sales, tags={**sales.tags, "owner": "someone-else"})
    assert changed.hash != sales.hash


def test_unknown_schema_version_is_refused(sales: IR.PipelineIR) -> None:
    data = json.loads(sales.to_json())
    data["schema_version"] = 99
    with pytest.raises(ValueError, match="schema version 99"):
        IR.from_dict(data)


@pytest.mark.parametrize(("left", "op", "right", "expected"), [
    (1, "==", 1.0, True), (True, "==", 1, False), (None, "==", None, True), ({"a": [1]}, "==", {"a": [1.0]}, True),
    (None, ">", 0, False), ("b", ">", "a", True), ("1", "<", 2, False), (3, ">=", 3, True), (None, "!=", 0, True),
    (False, "<", 1, False),
])
def test_comparison_rule(left: object, op: str, right: object, expected: bool) -> None:
    assert IR.compare(left, op, right) is expected


def test_addressing_into_missing_values_is_null() -> None:
    assert IR.address({"a": [1, 2]}, ("a", 1)) == 2
    assert IR.address({"a": [1, 2]}, ("a", 5)) is None
    assert IR.address(None, ("a",)) is None
    assert IR.address([1], ("a",)) is None


def test_options_read_from_json_have_no_made_up_location(sales: IR.PipelineIR) -> None:
    back = IR.from_json(sales.to_json())
    assert sales.schedule is not None and sales.schedule.location is not None  # where the author wrote it
    assert back.schedule is not None and back.schedule.location is None
    assert back.schedule == sales.schedule


def test_the_ir_module_does_not_import_the_dsl() -> None:
    """The IR is self-contained: option classes belong to the DSL, which converts them into IR specs."""
    import ast

    source = (ROOT / "framework" / "ir.py").read_text()
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            imported.add(module)
            imported.update(f"{module}.{alias.name}".replace("..", ".") for alias in node.names)
    assert not {m for m in imported if "options" in m or "dsl" in m}, sorted(imported)


def test_specs_are_ir_data_and_round_trip_exactly() -> None:
    from strato import Http, ObjectCreated, Retry, Schedule, pipeline, task

    @task(retry=Retry(max_retries=2, delay=1, backoff=3.0, max_delay=5, jitter=True, on=(IOError, "ValueError")))
    def flaky(x: int) -> int:
        return x

    @pipeline(schedule=Schedule(every="15m", input={"x": 1}),
              triggers=[ObjectCreated(bucket="landing", prefix="in/", input={"x": 2}),
                        Http(path="/go", auth="none", public=True)])
    def p(x: int = 0):
        return flaky(x)

    graph = p.ir
    retry = graph.tasks["flaky"].retry
    assert retry == IR.RetrySpec(2, 1, 3.0, 5, True, ("OSError", "ValueError"))
    assert [retry.delay_for(n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]
    assert retry.matches("FileNotFoundError") and not retry.matches("KeyError")
    assert graph.schedule == IR.ScheduleSpec(None, "UTC", "15m", {"x": 1}) and graph.schedule.every_seconds == 900
    assert graph.triggers == (IR.ObjectCreatedSpec("landing", "in/", "", {"x": 2}), IR.HttpSpec("/go", "none"))
    assert all(t.location is not None for t in graph.triggers)  # located for diagnostics, not serialised
    back = IR.from_json(graph.to_json())
    assert back == graph and back.to_json() == graph.to_json() and back.hash == graph.hash
    assert isinstance(back.tasks["flaky"].retry, IR.RetrySpec)
    assert [type(t) for t in back.triggers] == [IR.ObjectCreatedSpec, IR.HttpSpec]
    data = json.loads(graph.to_json())
    assert data["tasks"]["flaky"]["retry"] == {"max_retries": 2, "delay": 1, "backoff": 3.0, "max_delay": 5,
                                               "jitter": True, "on": ["OSError", "ValueError"]}
    assert data["triggers"][1] == {"type": "http", "path": "/go", "auth": "none"}
    with pytest.raises(ValueError, match="unknown trigger type"):
        IR.trigger_from_dict({"type": "carrier-pigeon"})


def test_json_hash_and_dependencies_are_computed_once(sales: IR.PipelineIR) -> None:
    from strato.graph import dependencies

    assert sales.to_json() is sales.to_json()
    assert sales.to_json(indent=2) is sales.to_json(indent=2)
    assert sales.hash is sales.hash
    assert dependencies(sales) is dependencies(sales) is sales.dependencies
