"""Deploy-time limits of Cloud Workflows (https://cloud.google.com/workflows/quotas): an expression is at
most 400 characters and parallel steps nest at most two deep. The interpreter refuses what the service
would; the compiler keeps every workflow it writes within them, or says which limit a pipeline passes."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("functions_framework")

from strato import Catch, pipeline, task, when
from strato.adapters.gcp.compiler import MAX_EXPRESSION_LENGTH, _longest_expression, compile_pipeline
from strato.adapters.gcp.interpreter import WorkflowSyntaxError, load_workflow
from strato.errors import DefinitionError

from .test_emulate import locally, on_gcp, same


def _returning(expression: str) -> dict[str, Any]:
    return {"main": {"steps": [{"done": {"return": "${" + expression + "}"}}]}}


def test_an_expression_of_400_characters_loads_and_401_is_refused() -> None:
    at_limit = '"' + "x" * (MAX_EXPRESSION_LENGTH - 5) + '"'  # the whole ${...} string is counted: 400
    load_workflow(_returning(at_limit))
    with pytest.raises(WorkflowSyntaxError, match="expression of 401 characters, over the 400"):
        load_workflow(_returning(at_limit + " "))


def _nested(depth: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"leaf": {"assign": [{"x": 1}]}}]
    for level in range(depth):
        steps = [{f"p{level}": {"parallel": {"branches": [{f"a{level}": {"steps": steps}},
                                                          {f"b{level}": {"steps": [{f"n{level}": {"assign": [
                                                              {"y": 2}]}}]}}]}}}]
    return {"main": {"steps": steps}}


def test_parallel_steps_nest_two_deep_and_no_deeper() -> None:
    load_workflow(_nested(2))
    with pytest.raises(WorkflowSyntaxError, match="parallel steps nest 3 deep, over the 2 levels"):
        load_workflow(_nested(3))
    loop = {"main": {"steps": [{"outer": {"parallel": {"branches": [
        {"a": {"steps": [{"inner": {"parallel": {"for": {"value": "v", "in": [1, 2], "steps": [
            {"deep": {"parallel": {"branches": [{"c": {"steps": [{"s": {"assign": [{"z": 1}]}}]}},
                                                {"d": {"steps": [{"t": {"assign": [{"w": 1}]}}]}}]}}}]}}}}]}},
        {"b": {"steps": [{"u": {"assign": [{"q": 1}]}}]}}]}}}]}}
    with pytest.raises(WorkflowSyntaxError, match="nest 3 deep"):  # a parallel for is a parallel step
        load_workflow(loop)


@task
def part(i: int) -> dict:
    return {"i": i, "ok": i % 3 != 0}


def fallback(error: dict) -> dict:
    return {"i": -1, "ok": False, "caught": error["error"]}


@task(catch=Catch(handler=fallback, on=("Exception",)))
def fragile(i: int) -> dict:
    if i == 4:
        raise KeyError("no such key")
    return {"i": i, "ok": True}


@pipeline
def many_outputs():
    return {f"k{i}": part.alias(f"p{i}")(i) for i in range(40)}


@pipeline
def guarded_deep():
    checks = [part.alias(f"c{i}")(i + 1) for i in range(12)]
    out = [fragile(4)]
    with ExitStack() as nested:  # twelve conditions around one task: its guard is one long condition
        for check in checks:
            nested.enter_context(when(check["i"] > 0))
        out.append(part.alias("inner")(99))
    return out


@pytest.mark.parametrize("definition", [many_outputs, guarded_deep], ids=["output", "guard"])
def test_long_conditions_and_catches_fold_into_short_expressions(definition: Any, tmp_path: Path) -> None:
    compiled = compile_pipeline(definition.ir)
    assert compiled.errors == []
    for source in [compiled.source, *compiled.part_sources.values()]:
        load_workflow(source)  # within every deploy-time limit
    assert len(_longest_expression(compiled.document)) <= MAX_EXPRESSION_LENGTH
    emulated, _ = on_gcp(definition, {}, tmp_path)
    same(emulated, locally(definition, {}))


def test_one_expression_over_the_limit_is_a_located_error() -> None:
    @pipeline
    def chatty():
        first = part(1)
        with when(first["i"] == "x" * 500):
            part.alias("then")(2)
        return first

    compiled = compile_pipeline(chatty.ir)
    (error,) = [e for e in compiled.errors if "expression" in e.message]
    assert "over the 400 Cloud Workflows allows" in error.message and error.location is not None
    from strato.adapters.gcp import Adapter

    with pytest.raises(DefinitionError):
        Adapter().build(chatty.ir)


def _expressions(document: Any) -> list[str]:
    found, todo = [], [document]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            todo.extend(value.values())
            todo.extend(k for k in value if isinstance(k, str))
        elif isinstance(value, list):
            todo.extend(value)
        elif isinstance(value, str) and value.startswith("${") and value.endswith("}"):
            found.append(value[2:-1])
    return found


def _map_literals(node: Any) -> int:
    """Map literals anywhere in an expression's syntax tree."""
    from dataclasses import fields

    from strato.adapters.gcp.interpreter import expressions as ex

    if isinstance(node, tuple):
        return sum(_map_literals(item) for item in node)
    if not isinstance(node, ex.Node):
        return 0
    return int(isinstance(node, ex.MapLit)) + sum(_map_literals(getattr(node, f.name)) for f in fields(node))


def test_no_map_literal_inside_an_expression() -> None:
    """The expression reference lists no map literal: maps are YAML data in assign steps, or returned by
    a helper subworkflow (https://cloud.google.com/workflows/docs/reference/syntax/expressions)."""
    from strato.adapters.gcp.interpreter import parse_expression
    from strato.loader import load

    from ..aws import pipelines
    from ..conftest import ROOT

    @pipeline
    def compares_a_map():
        first = part(1)
        with when(first == {"i": 1, "ok": True}):
            part.alias("then")(2)
        return first

    definitions = [load(f"{ROOT}/examples/{ref}").definition for ref in (
        "daily_sales.py:daily_sales", "file_ingestion.py:ingest_file", "revenue_report.py:revenue_report")]
    definitions += [pipelines.retrying, pipelines.catching, pipelines.mapping, pipelines.nested, compares_a_map]
    for definition in definitions:
        compiled = compile_pipeline(definition.ir)
        for text in _expressions(compiled.document):
            assert _map_literals(parse_expression(text)) == 0, text
    assert any(name.startswith("strato_const_") for name in compile_pipeline(compares_a_map.ir).document)


def test_a_condition_on_a_whole_map_still_means_what_it_means_locally(tmp_path: Path) -> None:
    @pipeline
    def compares():
        first = part(1)
        with when(first == {"i": 1, "ok": True}):
            second = part.alias("then")(2)
        return [first, second]

    emulated, _ = on_gcp(compares, {}, tmp_path)
    same(emulated, locally(compares, {}))
    assert emulated.output == [{"i": 1, "ok": True}, {"i": 2, "ok": True}]


def test_an_http_response_over_2_mb_is_a_resource_limit_error() -> None:
    from strato.adapters.gcp.interpreter import FunctionTransport, run_workflow

    def big(request: Any) -> Any:
        return 200, {"Content-Type": "text/plain"}, b"x" * (2 * 1024 * 1024 + 1)

    workflow = {"main": {"steps": [{"get": {"call": "http.get", "args": {"url": "https://big.test/x"},
                                            "result": "r"}}, {"done": {"return": "${len(r.body)}"}}]}}
    execution = run_workflow(workflow, None, transport=FunctionTransport(big))
    assert execution.state == "FAILED" and execution.error["tags"] == ["ResourceLimitError"]
    assert "over the 2,097,152-byte limit" in execution.error["message"]


def test_a_run_input_over_32_kb_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from strato.adapters.gcp import Adapter
    from strato.errors import UsageError
    from strato.runtime import resolver_for

    with pytest.raises(UsageError, match="at most 32,768"):
        Adapter().emulate(many_outputs.ir, {"pad": "x" * 40_000}, resolver_for(many_outputs.ir), work_dir=tmp_path)
    assert not (tmp_path / "gcp").exists()
