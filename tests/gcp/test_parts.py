"""Pipelines over what one workflow's 128 KB of source holds run as parts: workflows of their own that
the root starts through the Workflow Executions connector (``executions.run``), each within every
limit, passing the run's results by reference past the 32 KB an execution's argument may take
(https://cloud.google.com/workflows/quotas). Each is emulated to the local runner's output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("functions_framework")

from strato import task
from strato.adapters.common.stores import LocalBlobStore
from strato.adapters.gcp.compiler import MAX_SOURCE_BYTES, compile_pipeline
from strato.adapters.gcp.interpreter import load_workflow, schema_errors
from strato.dsl.definitions import PipelineDefinition

from ..conftest import Cli
from ..pipelines.generated import dense_dag
from .helpers import failure, result
from .test_emulate import locally, on_gcp, same

RUN = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.run"


def _every_source_fits(compiled: Any) -> None:
    assert compiled.errors == []
    for source in [compiled.source, *compiled.part_sources.values()]:
        assert len(source.encode()) <= MAX_SOURCE_BYTES
        assert schema_errors(source) == []
        load_workflow(source)


def test_a_large_dag_runs_as_parts_to_the_local_output(tmp_path: Path) -> None:
    dag = dense_dag(400)
    compiled = compile_pipeline(dag.ir)
    assert len(compiled.parts) >= 3
    _every_source_fits(compiled)
    assert RUN in compiled.source
    emulated, _ = on_gcp(dag, {}, tmp_path)
    same(emulated, locally(dag, {}))


def test_a_small_pipeline_stays_one_workflow() -> None:
    compiled = compile_pipeline(dense_dag(40).ir)
    assert compiled.parts == {} and RUN not in compiled.source


@task
def piece(i: int) -> str:
    return f"{i:04d}" + "x" * 600


@task
def joined(parts: list[str]) -> int:
    return sum(len(p) for p in parts)


@task
def fragile(i: int, fail_at: int) -> int:
    if i == fail_at:
        raise ValueError(f"piece {i} is broken")
    return i


def _wide(size: int) -> PipelineDefinition:
    """``size`` independent tasks of 600-byte results, read in groups of 50 and summed."""
    def body() -> object:
        pieces = [piece(i) for i in range(size)]
        sums = [joined(pieces[i:i + 50]) for i in range(0, size, 50)]
        return sums
    return PipelineDefinition(body, name=f"wide_{size}")


def test_a_wide_fan_out_is_grouped_into_parallel_parts(tmp_path: Path) -> None:
    wide = _wide(300)
    compiled = compile_pipeline(wide.ir)
    assert len(compiled.parts) >= 3
    _every_source_fits(compiled)
    emulated, _ = on_gcp(wide, {}, tmp_path)
    same(emulated, locally(wide, {}))


@task
def grow(previous: str, extra: str, i: int) -> str:
    return f"{i:04d}{previous[4:8]}{extra[:4]}" + "y" * 600


def test_results_over_an_executions_argument_reach_the_parts_by_reference(tmp_path: Path) -> None:
    def body() -> object:  # a later part reads 80 results of 600 bytes made by earlier ones
        pieces = [piece(i) for i in range(80)]
        last = grow("seed" * 2, "", -1)
        for i in range(200):
            last = grow(last, pieces[(i * 7) % 80], i)
        return last

    chain = PipelineDefinition(body, name="bulky_chain")
    assert len(compile_pipeline(chain.ir).parts) >= 2
    store = LocalBlobStore(tmp_path / "payloads", "gs")
    emulated, _ = on_gcp(chain, {}, tmp_path / "run", store=store)
    same(emulated, locally(chain, {}))
    # 80 results of 600 bytes are more than the 32 KB an execution's argument takes: stored for the parts
    assert [p for p in (tmp_path / "payloads").rglob("*") if p.is_file()]


def _chain(size: int) -> PipelineDefinition:
    def body(fail_at: int = -1) -> object:
        out = [fragile(i, fail_at) for i in range(size)]
        return out[-1]
    return PipelineDefinition(body, name=f"chain_{size}")


@pytest.mark.parametrize("fail_at", [5, 280])
def test_a_task_failing_inside_a_part_fails_the_run_with_its_own_error(tmp_path: Path, fail_at: int) -> None:
    chain = _chain(300)
    assert len(compile_pipeline(chain.ir).parts) >= 2
    emulated, _ = on_gcp(chain, {"fail_at": fail_at}, tmp_path)
    local = locally(chain, {"fail_at": fail_at})
    assert local.error == {"error": "ValueError", "cause": f"piece {fail_at} is broken"}
    same(emulated, local)
    ok, _ = on_gcp(chain, {}, tmp_path / "ok")
    assert ok.output == 299


def test_compiling_for_gcp_writes_every_part(tmp_path: Path, cli: Cli) -> None:
    source = tmp_path / "big.py"
    root = str(Path(__file__).parents[2])
    source.write_text(f"import sys\nsys.path.insert(0, {root!r})\nfrom tests.pipelines.generated import dense_dag\n"
                      "big = dense_dag(300)\n")
    proc = cli("compile", f"{source}:big", "--target", "gcp", "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    files = sorted(p.name for p in (tmp_path / "out").rglob("*.workflow.yaml"))
    assert "dense_300.workflow.yaml" in files and any("-part1.workflow.yaml" in f for f in files)
    assert len(files) == 1 + len(compile_pipeline(dense_dag(300).ir).parts)


# ------------------------------------------------------------------------- the connector in the interpreter
CHILD = {"main": {"params": ["input"], "steps": [
    {"check": {"switch": [{"condition": "${input.n < 0}", "raise": {"error": "Negative", "cause": "below zero"}}]}},
    {"answer": {"return": "${input.n * 2}"}}]}}


def _parent(argument: Any, workflow: str = "child", timeout: int | None = None) -> dict:
    args: dict[str, Any] = {"workflow_id": workflow, "argument": argument}
    if timeout is not None:
        args["connector_params"] = {"timeout": timeout}
    return {"main": {"params": ["input"], "steps": [
        {"run": {"call": RUN, "args": args, "result": "r"}},
        {"done": {"return": "${r}"}}]}}


def test_the_connector_runs_a_deployed_workflow_and_returns_its_result() -> None:
    deployed = {"child": load_workflow(CHILD)}
    assert result(_parent({"n": "${input}"}), 21, deployed=deployed) == 42


def test_a_failed_child_execution_is_an_operation_error() -> None:
    error = failure(_parent({"n": -1}), None, deployed={"child": load_workflow(CHILD)})
    assert error["tags"] == ["OperationError"]
    assert error["operation"]["error"] == {"error": "Negative", "cause": "below zero"}


def test_an_unknown_workflow_and_an_oversized_argument_are_http_errors() -> None:
    deployed = {"child": load_workflow(CHILD)}
    missing = failure(_parent({"n": 1}, workflow="nowhere"), None, deployed=deployed)
    assert missing["tags"] == ["HttpError"] and missing["code"] == 404
    def padded(size: int) -> dict:  # the parent builds the large argument itself (its own input stays small)
        workflow = _parent({"n": 1, "pad": "${pad}"})
        workflow["main"]["steps"].insert(0, {"pad": {"assign": [{"pad": "x" * size}]}})
        return workflow

    big = failure(padded(32 * 1024), None, deployed=deployed)
    assert big["tags"] == ["HttpError"] and big["code"] == 400 and "32,768" in big["message"]
    assert result(padded(32 * 1024 - 100), None, deployed=deployed) == 2


def test_the_connector_timeout_is_checked() -> None:
    error = failure(_parent({"n": 1}, timeout=-5), None, deployed={"child": load_workflow(CHILD)})
    assert error["tags"] == ["ValueError"]
    slow = {"main": {"params": ["input"], "steps": [{"nap": {"call": "sys.sleep", "args": {"seconds": 120}}},
                                                     {"answer": {"return": 1}}]}}
    late = failure(_parent({}, timeout=60), None, deployed={"child": load_workflow(slow)})
    assert late["tags"] == ["TimeoutError"]
    assert json.dumps(result(_parent({}, timeout=600), None, deployed={"child": load_workflow(slow)})) == "1"


def test_a_two_thousand_task_dag_emulates_to_the_local_output(tmp_path: Path) -> None:
    dag = dense_dag(2000)
    compiled = compile_pipeline(dag.ir)
    _every_source_fits(compiled)
    emulated, execution = on_gcp(dag, {}, tmp_path)
    same(emulated, locally(dag, {}))
    assert execution.steps_executed < 100_000  # the root's own steps: the parts run as executions of their own
