"""Compiling to Amazon States Language: valid, deterministic, faithful to the IR."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("statelint")

from statelint.linter import Linter

from strato.adapters.aws import Adapter
from strato.adapters.aws.compiler import LAMBDA_SERVICE_RETRY, compile_pipeline, error_names
from strato.adapters.aws.emulator import Deployment
from strato.adapters.aws.naming import state_name
from strato.loader import load

from ..conftest import ROOT, Cli
from . import pipelines

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = ["examples/daily_sales.py:daily_sales", "examples/file_ingestion.py:ingest_file",
            "examples/revenue_report.py:revenue_report"]


def lint(definition: str) -> list[str]:
    """statelint's problems, less one false positive: its ReaderConfig knows only MaxItems, while
    Step Functions requires ``InputType`` there to read a JSON array from S3."""
    return [p for p in Linter.validate(definition)
            if not (p.startswith('Field "InputType" not allowed') and p.endswith("ItemReader.ReaderConfig"))]


def _deployed(ir) -> dict[str, str]:
    compiled = Adapter().build(ir)
    deployment = Deployment(ir, compiled.machines, load=None)  # type: ignore[arg-type]
    return {name: deployment.definition_json(name) for name in compiled.machines}


@pytest.mark.parametrize("ref", EXAMPLES + ["tests/pipelines/contract.py:daily_sales",
                                            "tests/pipelines/resumable.py:resumable",
                                            "tests/pipelines/any_keys.py:keys",
                                            "tests/pipelines/map_failures.py:caught_map"])
def test_every_machine_passes_statelint(ref: str) -> None:
    for name, definition in _deployed(load(ref).definition.ir).items():
        assert lint(definition) == [], name


@pytest.mark.parametrize("pipeline", [pipelines.retrying, pipelines.catching, pipelines.timing_out,
                                      pipelines.mapping, pipelines.nested, pipelines.nested_failure,
                                      pipelines.n_shape])
def test_feature_pipelines_pass_statelint(pipeline) -> None:
    for name, definition in _deployed(pipeline.ir).items():
        assert lint(definition) == [], name


@pytest.mark.parametrize("ref", EXAMPLES)
def test_examples_match_golden_files(cli: Cli, tmp_path: Path, ref: str) -> None:
    result = cli("compile", ref, "--target", "aws", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        produced = Path(line)
        golden = GOLDEN / produced.name
        if os.environ.get("STRATO_UPDATE_GOLDEN"):
            golden.write_text(produced.read_text())
        assert produced.read_text() == golden.read_text(), f"{produced.name} differs from its golden file"


def test_compiling_is_deterministic_from_any_directory(cli: Cli, tmp_path: Path) -> None:
    first = cli("compile", str(ROOT / EXAMPLES[2]), "--target", "aws", "--out", str(tmp_path / "a"), cwd=tmp_path)
    second = cli("compile", EXAMPLES[2], "--target", "aws", "--out", str(tmp_path / "b"), cwd=ROOT)
    assert first.returncode == second.returncode == 0
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "revenue_report.asl.json", "revenue_report.exchange_rates.asl.json"]


def test_retry_catch_and_timeout_mapping() -> None:
    states = compile_pipeline(pipelines.retrying.ir).machines["retrying"]["States"]
    assert error_names(("ConnectionError",)) == ["BrokenPipeError", "ConnectionAbortedError", "ConnectionError",
                                                 "ConnectionRefusedError", "ConnectionResetError"]
    service, user = states["flaky"]["Retry"]  # Lambda's transient errors first, in a retrier of their own
    assert service == LAMBDA_SERVICE_RETRY and "Lambda.TooManyRequestsException" in service["ErrorEquals"]
    assert user == {"ErrorEquals": error_names(("ConnectionError",)), "IntervalSeconds": 2, "MaxAttempts": 3,
                    "BackoffRate": 3.0, "MaxDelaySeconds": 10}
    for state in states.values():  # every Lambda call retries them, also the runtime function's
        if state.get("Type") == "Task" and state["Resource"].startswith("${"):
            assert state["Retry"][0] == LAMBDA_SERVICE_RETRY
    states = compile_pipeline(pipelines.timing_out.ir).machines["timing_out"]["States"]
    assert states["slow"]["TimeoutSeconds"] == 1
    assert states["slow"]["Catch"] == [{"ErrorEquals": ["States.Timeout"], "ResultPath": "$.errors.slow",
                                        "Next": "slow catch"}]
    assert error_names(None) == ["States.ALL"]
    assert "FileNotFoundError" in error_names(("OSError",))


def test_a_non_series_parallel_graph_warns_which_task_waits_longer(cli: Cli, tmp_path: Path) -> None:
    result = cli("compile", "tests/aws/pipelines.py:n_shape", "--target", "aws", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and "now also waits for" in result.stderr
    definition = json.loads((tmp_path / "n_shape.asl.json").read_text())
    assert "Parallel" in json.dumps(definition)


def test_long_state_names_are_shortened_deterministically() -> None:
    long = "x" * 120
    assert len(state_name(long)) == 80 and state_name(long) == state_name(long)
    assert state_name(long) != state_name("x" * 119 + "y")
    assert state_name("short") == "short"


def test_aws_tag_rules_are_located_errors(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "tagged.py"
    bad.write_text(
        "from strato import pipeline, task\n\n"
        "@task(tags={'aws:owner': 'me', 'cost': 'a<b'})\ndef t() -> int:\n    return 1\n\n"
        "@pipeline(tags={f'k{i}': 'v' for i in range(51)})\ndef tagged():\n    return t()\n")
    result = cli("compile", f"{bad}:tagged", "--target", "aws", "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "tagged.py:3: task 't' (aws): tag 'aws:owner': the 'aws:' prefix is reserved" in result.stderr
    assert "has '<'" in result.stderr and "51 tags; AWS allows at most 50" in result.stderr
    assert not (tmp_path / "out").exists()


def test_parts_of_a_split_pipeline_are_valid_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    from strato.adapters.aws import limits

    monkeypatch.setattr(limits, "PART_EVENTS", 60)
    deployed = _deployed(pipelines.long_pipeline.ir)
    assert len(deployed) > 3
    for name, definition in deployed.items():
        assert lint(definition) == [], name
    root = json.loads(deployed["long_pipeline"])
    assert "states:startExecution.sync:2" in json.dumps(root) and "__part" in json.dumps(root)


ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"


@pytest.mark.parametrize("ref", EXAMPLES + ["tests/pipelines/resumable.py:resumable", "tests/aws/pipelines.py:mapping",
                                            "tests/aws/pipelines.py:with_worker"])
def test_every_machine_passes_asl_validator(tmp_path: Path, ref: str) -> None:
    import subprocess

    if not ASL_VALIDATOR.exists():
        pytest.skip("asl-validator is not installed (make test runs npm install)")
    for name, definition in _deployed(load(ref).definition.ir).items():
        path = tmp_path / f"{name}.json"
        path.write_text(definition)
        result = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(path)], capture_output=True, text=True)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"


def _intrinsic_depth(expression: str) -> int:
    """How deeply intrinsic functions (``States.X(...)``) nest in one field."""
    best = depth = 0
    opened: list[bool] = []
    i = 0
    while i < len(expression):
        if expression.startswith("States.", i):
            i = expression.index("(", i) + 1
            opened.append(True)
            depth += 1
            best = max(best, depth)
            continue
        if expression[i] == "(":
            opened.append(False)
        elif expression[i] == ")" and opened.pop():
            depth -= 1
        i += 1
    return best


def _fields(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [f for v in value.values() for f in _fields(v)]
    if isinstance(value, list):
        return [f for v in value for f in _fields(v)]
    return [value] if isinstance(value, str) and "States." in value else []


def test_a_wide_fan_out_nests_at_most_ten_intrinsic_functions() -> None:
    ir = load("tests/pipelines/fan_out.py:fan12").definition.ir
    (machine,) = compile_pipeline(ir).machines.values()
    assert max(_intrinsic_depth(f) for f in _fields(machine)) == 4  # ceil(log2(12)); a chain would be 11
    assert _intrinsic_depth("States.JsonMerge(States.JsonMerge($.a, $.b, false), $.c, false)") == 2
