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
    assert back.schedule is not None and back.schedule.location is None
    assert all(spec.retry is None or spec.retry.location is None for spec in back.tasks.values())
