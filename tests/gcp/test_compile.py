"""Compiling to Cloud Workflows: valid against the schema, loadable, deterministic, faithful to the IR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("yaml")
pytest.importorskip("jsonschema")

import yaml

from strato import ir
from strato.adapters.gcp import Adapter
from strato.adapters.gcp.compiler import MAX_SOURCE_BYTES, _Helpers, compile_pipeline, condition_expr, value_expr
from strato.adapters.gcp.interpreter import load_workflow, run_workflow, schema_errors
from strato.adapters.gcp.naming import function_name, function_names
from strato.loader import load

from ..aws import pipelines
from ..conftest import ROOT, Cli

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = ["examples/daily_sales.py:daily_sales", "examples/file_ingestion.py:ingest_file",
            "examples/revenue_report.py:revenue_report"]
FEATURES = [pipelines.retrying, pipelines.catching, pipelines.timing_out, pipelines.mapping, pipelines.nested,
            pipelines.nested_failure, pipelines.n_shape, pipelines.large_payload, pipelines.exploding]


@pytest.mark.parametrize("ref", [*EXAMPLES, "tests/pipelines/contract.py:daily_sales",
                                 "tests/pipelines/resumable.py:resumable"])
def test_examples_validate_against_the_schema_and_load(ref: str) -> None:
    source = compile_pipeline(load(ref).definition.ir).source
    assert schema_errors(source) == []
    load_workflow(source)


@pytest.mark.parametrize("pipeline", FEATURES, ids=lambda p: p.name)
def test_feature_pipelines_validate_against_the_schema_and_load(pipeline: Any) -> None:
    compiled = compile_pipeline(pipeline.ir)
    assert compiled.errors == []
    assert schema_errors(compiled.source) == []
    load_workflow(compiled.source)
    assert "cloudfunctions.net" not in compiled.source and "projects/" not in compiled.source


@pytest.mark.parametrize("ref", EXAMPLES)
def test_examples_match_golden_files(cli: Cli, tmp_path: Path, ref: str) -> None:
    result = cli("compile", ref, "--target", "gcp", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        produced = Path(line)
        assert produced.name.endswith(".workflow.yaml")
        golden = GOLDEN / produced.name
        if os.environ.get("STRATO_UPDATE_GOLDEN"):
            golden.write_text(produced.read_text())
        assert produced.read_text() == golden.read_text(), f"{produced.name} differs from its golden file"
        text = produced.read_text()
        assert str(ROOT) not in text and "projects/" not in text  # no absolute paths, no project ids


def test_compiling_is_deterministic_from_any_directory(cli: Cli, tmp_path: Path) -> None:
    first = cli("compile", str(ROOT / EXAMPLES[2]), "--target", "gcp", "--out", str(tmp_path / "a"), cwd=tmp_path)
    second = cli("compile", EXAMPLES[2], "--target", "gcp", "--out", str(tmp_path / "b"), cwd=ROOT)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["revenue_report.workflow.yaml"]
    assert (tmp_path / "a" / "revenue_report.workflow.yaml").read_bytes() == \
        (tmp_path / "b" / "revenue_report.workflow.yaml").read_bytes()
    document = yaml.safe_load((tmp_path / "a" / "revenue_report.workflow.yaml").read_text())
    assert "main" in document and "pipeline_exchange_rates" in document  # one subworkflow per sub-pipeline


def _find(steps: list, key: str) -> dict:
    """The body of the first step (depth first) whose name is ``key``."""
    for step in steps:
        (name, body), = step.items()
        if name == key:
            return body
        for child in _children(body):
            found = _find(child, key)
            if found:
                return found
    return {}


def _children(body: dict) -> list[list]:
    out = []
    for k in ("steps",):
        if isinstance(body.get(k), list):
            out.append(body[k])
    if "try" in body:
        out.append(body["try"]["steps"])
    if "except" in body:
        out.append(body["except"]["steps"])
    for cond in body.get("switch", ()):
        out.append(cond.get("steps", []))
    par = body.get("parallel", {})
    for branch in par.get("branches", ()):
        (_, inner), = branch.items()
        out.append(inner["steps"])
    if "for" in par:
        out.append(par["for"]["steps"])
    if "for" in body:
        out.append(body["for"]["steps"])
    return out


def test_retry_catch_and_timeout_mapping() -> None:
    document = compile_pipeline(pipelines.retrying.ir).document
    flaky = _find(document["main"]["steps"], "flaky")
    assert flaky["retry"]["max_retries"] == 3
    assert flaky["retry"]["backoff"] == {"initial_delay": 2, "max_delay": 10, "multiplier": 3}
    predicate = flaky["retry"]["predicate"][2:-1]
    assert "ConnectionResetError" in document[predicate]["steps"][0]["classify"]["assign"][1]["names"]
    assert document[predicate]["steps"][1]["decide"]["return"] == "${error.error in names}"
    (call,) = [step["call_flaky"] for step in flaky["try"]["steps"] if "call_flaky" in step]  # the shared helper
    assert call["call"] == "strato_call" and call["args"]["function"] == "strato-retrying-flaky"
    helper = document["strato_call"]["steps"][0]["post"]
    assert helper["retry"]["predicate"] == "${strato_transient}" and helper["retry"]["max_retries"] == 5
    post = helper["try"]["steps"][0]["request"]
    assert post["call"] == "http.post" and post["args"]["auth"] == {"type": "OIDC"}
    assert post["args"]["url"] == '${sys.get_env("STRATO_FUNCTIONS_URL") + "/" + function}'

    document = compile_pipeline(pipelines.timing_out.ir).document
    slow = _find(document["main"]["steps"], "slow")
    (helper_name,) = [step["call_slow"]["call"] for step in slow["try"]["steps"] if "call_slow" in step]
    assert document[helper_name]["steps"][0]["post"]["try"]["steps"][0]["request"]["args"]["timeout"] == 1
    assert "did not finish within its timeout of 1s" in str(document[helper_name])
    condition = slow["except"]["steps"][0]["catch_slow"]["switch"][0]["condition"]  # the catch's on=("TaskTimeout",)
    assert document[condition[2:].split("(")[0]]["steps"][0]["classify"]["assign"][1]["names"] == ["TaskTimeout"]


def test_map_becomes_a_parallel_for_with_its_concurrency_limit() -> None:
    document = compile_pipeline(pipelines.mapping.ir).document
    body = _find(document["main"]["steps"], "map_square")
    assert body["parallel"]["concurrency_limit"] == 2
    assert body["parallel"]["shared"] == ["m_square"]
    assert "for" in body["parallel"]


def test_a_non_series_parallel_graph_warns_which_task_waits_longer(cli: Cli, tmp_path: Path) -> None:
    result = cli("compile", "tests/aws/pipelines.py:n_shape", "--target", "gcp", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "now also waits for" in result.stderr
    assert "parallel:" in (tmp_path / "n_shape.workflow.yaml").read_text()


def _parallel_depths(steps: list, depth: int = 0) -> list[tuple[int, int]]:
    """(depth, branches) of every parallel step, ``parallel for`` counted as one branch."""
    out = []
    for step in steps:
        (_, body), = step.items()
        inner = depth
        if "parallel" in body:
            inner = depth + 1
            out.append((inner, len(body["parallel"].get("branches", [None]))))
        for child in _children(body):
            out.extend(_parallel_depths(child, inner))
    return out


def test_wide_graphs_run_as_ten_lanes_of_at_most_two_nested_parallel_steps() -> None:
    from strato import pipeline

    @pipeline
    def wide():
        return {f"k{i}": pipelines.source.alias(f"s{i}")(str(i)) for i in range(25)}

    compiled = compile_pipeline(wide.ir)
    assert schema_errors(compiled.source) == []
    found = _parallel_depths(compiled.document["main"]["steps"])
    assert found == [(1, 10)]  # 25 independent tasks: ten lanes, none nested
    result = run_workflow(compiled.source, {}, transport=_echo_transport(),
                          env={"STRATO_FUNCTIONS_URL": "https://functions.test"})
    assert result.state == "SUCCEEDED", result.error
    assert result.result == {f"k{i}": str(i) for i in range(25)}


def _shim(body: Any) -> Any:
    """The shim answering a call, with this module's pipelines as its tasks (on the caller's thread)."""
    from strato.adapters.common.emulation import emulating
    from strato.adapters.gcp.shim import handle

    with emulating(loader=lambda name: getattr(pipelines, name).fn):
        return handle(body)


def _echo_transport() -> Any:
    from strato.adapters.gcp.interpreter import FunctionTransport

    return FunctionTransport(lambda request: _shim(request.json))


# ------------------------------------------------------------------------------------- conditions
VALUES: list[Any] = [None, 0, 1, 1.0, -2.5, 3, "a", "b", "", "1", True, False, [1], [1.0], [], {"a": 1}, {}]
RIGHTS: list[Any] = [None, 0, 1, 1.0, 2, "a", "b", True, False, [1], {"a": 1}]


def test_conditions_mean_what_framework_ir_compare_means() -> None:
    """Every operator over a grid of JSON values (and a missing key) agrees with ir.compare."""
    cases, expected = [], []
    for i, left in enumerate([*VALUES, "<missing>"]):
        path: tuple[Any, ...] = ("absent",) if left == "<missing>" else ("v",)
        for right in RIGHTS:
            for op in ir.COMPARATORS:
                cases.append(condition_expr(ir.Compare(ir.Ref(f"n{i}", path), op, right)))
                expected.append(ir.compare(None if left == "<missing>" else left, op, right))
    results = {f"n{i}": {"v": v} for i, v in enumerate(VALUES)} | {f"n{len(VALUES)}": {"v": 0}}
    document = {"main": {"params": ["input"], "steps": [
        {"init": {"assign": [{"results": results}, {"out": []}]}},
        *[{f"c{k}": {"assign": [{"out": "${list.concat(out, " + text + ")}"}]}} for k, text in enumerate(cases)],
        {"done": {"return": "${out}"}}]}, **_Helpers().document()}
    execution = run_workflow(document, {}, max_steps=1_000_000)
    assert execution.state == "SUCCEEDED", execution.error
    mismatches = [(cases[k], expected[k]) for k, got in enumerate(execution.result) if got != expected[k]]
    assert mismatches == []


def test_addressing_is_null_safe_like_framework_ir_address() -> None:
    value = {"a": [10, {"b": "x"}], "s": "text", "n": None}
    paths: list[tuple[Any, ...]] = [("a", 0), ("a", 1, "b"), ("a", -1, "b"), ("a", -2), ("a", -3), ("a", 2), ("s", 0),
                                    ("n", "x"), ("missing", "x"), ("a", "b"), ()]
    document = {"main": {"params": ["input"], "steps": [
        {"init": {"assign": [{"results": {"r": value}}]}},
        {"done": {"return": ["${" + value_expr(ir.Ref("r", p)) + "}" for p in paths]}}]},
        **_Helpers().document()}
    execution = run_workflow(document, {})
    assert execution.state == "SUCCEEDED", execution.error
    assert execution.result == [ir.address(value, p) for p in paths]


# ---------------------------------------------------------------------------------------- limits
def test_a_pipeline_over_the_source_limit_is_split_and_one_task_over_it_is_a_clear_error(tmp_path: Path) -> None:
    from strato import pipeline
    from strato.errors import DefinitionError

    @pipeline
    def bloated():
        return {f"k{i}": pipelines.describe.alias(f"d{i}")("x" * 2000, i) for i in range(70)}

    compiled = compile_pipeline(bloated.ir)
    assert compiled.errors == [] and compiled.parts
    assert all(len(s.encode()) <= MAX_SOURCE_BYTES for s in [compiled.source, *compiled.part_sources.values()])

    @pipeline
    def huge():
        return pipelines.describe("x" * 140_000, 1)

    with pytest.raises(DefinitionError) as info:
        Adapter().compile(huge.ir, tmp_path)
    assert "over Cloud Workflows' 128 KB" in str(info.value.diagnostics[0])
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------------------------- labels
def test_gcp_label_rules_are_located_errors(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "labelled.py"
    bad.write_text(
        "from strato import pipeline, task\n\n"
        "@task(tags={'Owner': 'me', 'cost': 'A.B', '9lives': 'x'})\ndef t() -> int:\n    return 1\n\n"
        "@pipeline(tags={f'k{i}': 'v' for i in range(65)})\ndef labelled():\n    return t()\n")
    result = cli("compile", f"{bad}:labelled", "--target", "gcp", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "labelled.py:3: task 't' (gcp): label key 'Owner': GCP label keys start with a lowercase letter" \
        in result.stderr
    assert "label 'cost' value 'A.B'" in result.stderr and "'9lives'" in result.stderr
    assert "65 labels; GCP allows at most 64" in result.stderr
    assert not (tmp_path / "out").exists()


def test_examples_pass_the_gcp_checks() -> None:
    for ref in EXAMPLES:
        assert [d for d in Adapter().check(load(ref).definition.ir) if d.severity == "error"] == []


def test_function_names_are_valid_and_distinct() -> None:
    names = function_names(load(EXAMPLES[0]).definition.ir)
    assert all(len(n) <= 63 and n == n.lower() and n[0].isalpha() for n in names.values())
    assert len(set(names.values())) == len(names)
    assert function_name("p", "Task") != function_name("p", "task")
    assert len(function_name("x" * 80, "y" * 80)) == 63


# ---------------------------------------------------------------------------- concurrent branches
def _peak(source: str, params: dict) -> tuple[Any, int]:
    """Run with every task taking 10 virtual seconds; the most task calls that were in flight at once."""
    from strato.adapters.gcp.interpreter import FunctionTransport
    from strato.adapters.gcp.interpreter import VirtualClock as WorkflowsClock

    clock = WorkflowsClock(start=0)
    spans: list[tuple[float, float]] = []

    def handler(request: Any) -> Any:
        start = clock.now()
        clock.sleep(10)
        spans.append((start, clock.now()))
        return _shim(request.json)

    execution = run_workflow(source, params, transport=FunctionTransport(handler), clock=clock,
                             env={"STRATO_FUNCTIONS_URL": "https://functions.test"})
    assert execution.state == "SUCCEEDED", execution.error
    return execution.result, max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)


@pytest.mark.parametrize("ref", [*EXAMPLES, "tests/pipelines/contract.py:daily_sales"])
def test_examples_are_within_the_concurrency_limit_unchanged(ref: str) -> None:
    from strato.adapters.gcp.concurrency import Planner

    compiled = compile_pipeline(load(ref).definition.ir)
    assert not [w for w in compiled.warnings if "at a time" in w.message]
    assert Planner(compiled.document, 20).subworkflow("main") <= 20


def test_parallel_maps_are_bounded_to_twenty_concurrent_iterations() -> None:
    from strato import pipeline
    from strato.adapters.gcp.concurrency import Planner

    @pipeline
    def fan_out(xs: list):
        return {"a": pipelines.square.map(xs), "b": pipelines.square.map(xs, offset=1),
                "c": pipelines.square.map(xs, offset=2, max_concurrency=15)}

    compiled = compile_pipeline(fan_out.ir)
    assert compiled.errors == [] and schema_errors(compiled.source) == []
    limits = [_find(compiled.document["main"]["steps"], f"map_{n}")["parallel"]["concurrency_limit"]
              for n in ("square", "square_2", "square_3")]
    assert limits == [6, 6, 5]  # shared fairly; each map's own branch counts too: 7 + 7 + 6 = 20
    assert Planner(compiled.document, 20).subworkflow("main") <= 20
    (warning,) = [w for w in compiled.warnings if "max_concurrency=15" in w.message]
    assert "at most 5 items at a time" in warning.message and warning.location is not None
    xs = list(range(30))
    result, peak = _peak(compiled.source, {"xs": xs})
    assert result == {"a": [x * x for x in xs], "b": [x * x + 1 for x in xs], "c": [x * x + 2 for x in xs]}
    assert 3 < peak <= 17  # the three maps run side by side, never over their limits


def _two_levels() -> Any:
    """Five branches, each a task then six tasks reading it: 30 calls at once without a limit."""
    from strato import pipeline

    @pipeline
    def fanned():
        out = {}
        for i in range(5):
            head = pipelines.source.alias(f"s{i}")(str(i))
            for j in range(6):
                out[f"k{i}_{j}"] = pipelines.describe.alias(f"d{i}_{j}")(head, j)
        return out

    return fanned


def test_wide_nested_parallel_steps_get_a_concurrency_limit() -> None:
    from strato.adapters.gcp.concurrency import Planner

    fanned = _two_levels()
    compiled = compile_pipeline(fanned.ir)
    document = compiled.document
    assert Planner(document, 20).subworkflow("main") <= 20
    assert max(depth for depth, _ in _parallel_depths(document["main"]["steps"])) == 2
    (warning,) = [w for w in compiled.warnings if "of their branches at a time" in w.message]
    assert warning.location is not None and "parallel step(s)" in warning.message
    expected = run_workflow(compiled.source, {}, transport=_echo_transport(),
                            env={"STRATO_FUNCTIONS_URL": "https://functions.test"})
    result, peak = _peak(compiled.source, {})
    assert result == expected.result and 1 < peak <= 20


def test_parallel_steps_nested_beyond_the_limit_are_a_located_error(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    from strato.adapters.gcp import compiler
    from strato.errors import DefinitionError

    monkeypatch.setattr(compiler, "MAX_CONCURRENCY", 1)
    with pytest.raises(DefinitionError) as info:
        Adapter().compile(_two_levels().ir, tmp_path)
    (error,) = info.value.diagnostics
    assert "parallel steps nest too deeply" in error.message and "needs 2 concurrent branches" in error.message
    assert error.location is not None and error.location.file.endswith("test_compile.py")
    assert not list(tmp_path.iterdir())
