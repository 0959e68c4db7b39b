"""A pipeline written from the public contract alone runs as documented."""

from __future__ import annotations

from .conftest import Cli

REF = "tests/pipelines/contract.py:daily_sales"


def test_contract_example_runs(cli: Cli) -> None:
    code, result = cli.json("run", REF, "--input", '{"day": "2024-05-01", "limit": 9}', "--json")
    assert code == 0, result
    assert result["output"] == {
        "loaded": [{"path": "2024-05-01/a.csv", "rows": 9}, {"path": "2024-05-01/b.csv", "rows": 9}],
        "day": "2024-05-01", "total": 18, "notified": None,
    }


def test_contract_example_catch_and_otherwise(cli: Cli) -> None:
    code, result = cli.json("run", REF, "--input", '{"day": "bad"}', "--json")
    assert code == 0, result
    assert result["output"] == {"loaded": [], "day": "bad", "total": None, "notified": "nothing for bad"}


def test_contract_example_validates_with_warnings_only(cli: Cli) -> None:
    result = cli("validate", REF)
    assert result.returncode == 0
    assert "warning: pipeline 'daily_sales': a run started by the schedule gets no value for" in result.stdout
