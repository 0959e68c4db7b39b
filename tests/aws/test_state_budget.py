"""The 256 KiB of a Step Functions state is a budget for everything in it, not a limit per result.

Every state's input and output (Parallel and Map results, task payloads, the final output) must fit;
moto does not enforce all of it, so the emulator checks every execution's history as AWS would
(:mod:`strato.adapters.aws.conformance`). Each pipeline here has results well under 256 KiB that
would overflow one state together.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("moto")

from strato.adapters.aws import conformance
from strato.adapters.aws.compiler import compile_pipeline, to_compact_json

from ..conftest import Cli, assert_emulation_matches_run

REF = "tests/pipelines/state_budget.py"


@pytest.mark.parametrize("name", ["three_readers", "two_large", "ten_medium", "unread_results", "wide_results"])
def test_results_that_fit_alone_fit_together(cli: Cli, name: str) -> None:
    assert_emulation_matches_run(cli, f"{REF}:{name}", {}, "--target", "aws")


def test_unread_results_are_not_kept_in_the_state() -> None:
    from tests.pipelines.state_budget import unread_results

    definition = compile_pipeline(unread_results.ir).machines["unread_results"]
    tasks = [s for _, s in conformance.states_of(definition) if "side_effect" in s.get("Resource", "")]
    assert len(tasks) == 4 and all(s["ResultPath"] is None for s in tasks)


def test_a_state_over_256_kib_fails_as_on_aws(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """With offloading switched off, moto would carry two 150 KB results in one state; the emulator
    fails the run with States.DataLimitExceeded, naming the state, as Step Functions does."""
    from strato.adapters.aws import shim

    monkeypatch.setattr(shim, "state_threshold", lambda share, params: 10_000_000)
    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "10000000")
    from strato.adapters.aws.emulator import emulate
    from strato.adapters.base import emulated_loader
    from strato.runtime import resolver_for
    from tests.pipelines.state_budget import two_large

    ir = two_large.ir
    result = emulate(ir, compile_pipeline(ir).machines, {}, emulated_loader(ir, resolver_for(ir)))
    assert result.status == "FAILED" and result.error is not None
    assert result.error["error"] == "States.DataLimitExceeded"
    assert "exceeding the maximum number of bytes service limit" in result.error["cause"]


def _definition(states: dict) -> dict:
    return {"StartAt": next(iter(states)), "States": states}


def test_definitions_aws_would_refuse_are_refused() -> None:
    long_name = "s" * 81
    with pytest.raises(conformance.RejectedDefinition, match="81 characters, over 80"):
        conformance.check_definition("m", _definition({long_name: {"Type": "Succeed"}}))
    nested = "$.a"
    for _ in range(11):
        nested = f"States.JsonMerge({nested}, $.b, false)"
    with pytest.raises(conformance.RejectedDefinition, match="nests 11 intrinsic functions, over 10"):
        conformance.check_definition("m", _definition({"p": {"Type": "Pass", "Parameters": {"x.$": nested},
                                                            "End": True}}))
    ten_deep = nested[len("States.JsonMerge("):-len(", $.b, false)")]
    conformance.check_definition("m", _definition({"p": {"Type": "Pass", "Parameters": {"x.$": ten_deep},
                                                        "End": True}}))
    huge = _definition({f"p{i}": {"Type": "Pass", "Result": "x" * 1000, "Next": f"p{i + 1}"} for i in range(1100)})
    with pytest.raises(conformance.RejectedDefinition, match="over Step Functions' 1,048,576"):
        conformance.check_definition("m", huge)


def test_intrinsic_depth_skips_quoted_text() -> None:
    assert conformance.intrinsic_depth("States.Format('States.Array(((', $.x)") == 1
    assert conformance.intrinsic_depth("$.a") == 0
    assert conformance.intrinsic_depth("States.A(States.B(States.C($.x)), States.D($.y))") == 3


def test_every_compiled_example_passes_the_static_checks() -> None:
    from tests.pipelines.fan_out import fan12

    for name, definition in compile_pipeline(fan12.ir).machines.items():
        conformance.check_definition(name, definition)
        assert len(to_compact_json(definition)) < 1_048_576
        json.dumps(definition)
