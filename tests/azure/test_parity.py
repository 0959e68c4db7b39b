"""`strato emulate --target azure` gives what `strato run` gives, through the real CLI."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("azure.functions")
pytest.importorskip("azure.durable_functions")

CASES = [
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-01"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-2024-03-01.csv"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-bad.csv"}),
    ("examples/revenue_report.py:revenue_report", {"day": "2024-03-01"}),
]


@pytest.mark.parametrize(("ref", "input"), CASES)
def test_emulate_matches_run(cli: Any, ref: str, input: dict) -> None:
    code, local = cli.json("run", ref, "--input", json.dumps(input), "--json")
    assert code == 0, local
    code, emulated = cli.json("emulate", ref, "--target", "azure", "--input", json.dumps(input), "--json")
    assert code == 0, emulated
    assert emulated.keys() == {"run_id", "status", "output", "error"}
    assert (emulated["status"], emulated["output"], emulated["error"]) == (local["status"], local["output"], None)


def test_a_failed_run_fails_the_same_way(cli: Any) -> None:
    ref = "tests/pipelines/failing.py:failing"
    code, local = cli.json("run", ref, "--json")
    emulated_code, emulated = cli.json("emulate", ref, "--target", "azure", "--json")
    assert (code, emulated_code) == (1, 1)
    assert emulated["status"] == "FAILED" and emulated["error"] == local["error"]
    assert emulated["error"]["error"] == "ZeroDivisionError"


def test_unknown_backend_is_a_usage_error(cli: Any) -> None:
    done = cli("emulate", "examples/daily_sales.py:daily_sales", "--target", "azure", "--backend", "nope")
    assert done.returncode == 2
    assert "unknown --backend 'nope' for target 'azure'; choose one of replay" in done.stderr
    assert "Traceback" not in done.stderr
    done = cli("emulate", "examples/daily_sales.py:daily_sales", "--target", "azure", "--backend", "replay",
               "--input", '{"day": "2024-03-01"}')
    assert done.returncode == 0, done.stderr
