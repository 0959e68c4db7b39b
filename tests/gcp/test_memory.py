"""A workflow's variables hold at most 512 KB (https://cloud.google.com/workflows/quotas#resource_limits):
the interpreter fails an execution that passes it, as the service does, and compiled pipelines keep
their results within it by offloading against the whole budget, not per result."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("functions_framework")

from strato.adapters.common.stores import LocalBlobStore
from strato.adapters.gcp.payloads import memory_threshold

from ..conftest import Cli, assert_emulation_matches_run
from .helpers import failure, result
from .test_emulate import on_gcp


def _filling(chunks: int) -> dict:
    return {"main": {"params": ["input"], "steps": [
        {"init": {"assign": [{"parts": []}]}},
        {"fill": {"for": {"value": "i", "range": [1, chunks], "steps": [
            {"add": {"assign": [{"parts": "${list.concat(parts, input.chunk)}"}]}}]}}},
        {"done": {"return": "${len(parts)}"}}]}}


def test_variables_over_512_kb_fail_the_execution() -> None:
    chunk = {"chunk": "x" * 30_000}  # an execution argument is at most 32 KB
    assert result(_filling(16), chunk) == 16  # the argument and sixteen copies: 510 KB, within
    error = failure(_filling(18), chunk)  # 570 KB
    assert "ResourceLimitError" in error["tags"] and "Memory usage limit exceeded" in error["message"]


def test_each_result_gets_a_share_of_the_memory() -> None:
    assert memory_threshold(1, {}) == (512 * 1024 - 16 * 1024 - 2) // 2
    assert memory_threshold(10, {}) < 50_000 and memory_threshold(10, {"p": "y" * 100_000}) < 41_000


def test_ten_medium_results_fit_together(cli: Cli) -> None:
    """Ten 60 KB results (~600 KB) each fit under the per-result threshold, not together: offloaded
    against the whole budget, the run succeeds as locally."""
    assert_emulation_matches_run(cli, "tests/pipelines/state_budget.py:ten_medium", {}, "--target", "gcp")


def test_a_large_output_is_returned_from_the_response(tmp_path: Path) -> None:
    """The resolved output goes straight from the response to the execution's result: held once."""
    from ..aws import pipelines

    store = LocalBlobStore(tmp_path / "root", "gs", "payloads-test")
    res, _ = on_gcp(pipelines.large_payload, {"rows": 3000}, tmp_path, store=store)
    assert res.status == "SUCCEEDED", res.error
