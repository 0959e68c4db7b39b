"""The file-ingestion and revenue-report examples, end to end through the CLI and task by task.

Expected values are worked out by hand from the shipped data:
``examples/data/landing/incoming/orders-2024-03-01.csv`` (6 orders) and
``examples/data/rates/2024-03-01.json`` (1 EUR = 1.25 USD = 0.8 GBP).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from examples.file_ingestion import (
    COLUMNS,
    ingest_file,
    normalise_orders,
    quarantine,
    quarantine_file,
    read_csv,
    validate_orders,
    write_jsonl,
)
from examples.revenue_report import build_report, check_rates, fetch_rates, read_sales, revenue_report, session_tag
from strato.ir import ObjectCreatedSpec
from strato.runtime import RunStore, VirtualClock, run_pipeline

from .conftest import ROOT, Cli

EXAMPLES = ROOT / "examples"
LANDING = EXAMPLES / "data" / "landing"
INGEST = f"{EXAMPLES / 'file_ingestion.py'}:ingest_file"
REPORT = f"{EXAMPLES / 'revenue_report.py'}:revenue_report"
GOOD_KEY, BAD_KEY = "incoming/orders-2024-03-01.csv", "incoming/orders-bad.csv"

# line totals: EUR 39.80 + 13.50 + 49.00; USD 120.00 + 32.50; GBP 75.00
TOTALS = {"EUR": 102.3, "GBP": 75.0, "USD": 152.5}
BAD_CAUSE = ("landing/incoming/orders-bad.csv: 2 invalid row(s): "
             "line 3 (order_id 'B-2002'): quantity must be a whole number >= 1, got 'two' | "
             "line 4 (order_id 'B-2003'): unit_price must be an amount >= 0 with at most 2 decimals, got '-4.50'")


def loaded_summary(out_dir: Path) -> dict[str, Any]:
    """What ingesting the good file returns, given where it writes."""
    return {"status": "loaded", "quarantined": False, "source": f"landing/{GOOD_KEY}", "rows": 6, "quantity": 25,
            "totals": TOTALS, "output": str(out_dir / "loaded" / "landing" / "incoming" / "orders-2024-03-01.jsonl")}


def report(rates_calls: int) -> dict[str, Any]:
    """The 2024-03-01 report: USD 152.50 / 1.25 = 122.00, GBP 75.00 / 0.8 = 93.75, plus EUR 102.30."""
    return {
        "day": "2024-03-01", "currency": "EUR", "orders": 6, "revenue": 318.05,
        "by_currency": {"EUR": {"orders": 3, "amount": 102.3, "rate": 1.0, "converted": 102.3},
                        "GBP": {"orders": 1, "amount": 75.0, "rate": 0.8, "converted": 93.75},
                        "USD": {"orders": 2, "amount": 152.5, "rate": 1.25, "converted": 122.0}},
        # US 120.00 / 1.25, CA 32.50 / 1.25, FR 39.80 + 13.50, DE 49.00, GB 75.00 / 0.8
        "by_country": {"CA": 26.0, "DE": 49.0, "FR": 53.3, "GB": 93.75, "US": 96.0},
        "sources": {"sales": "landing/incoming/orders-2024-03-01.csv", "rates": "2024-03-01.json",
                    "rates_calls": rates_calls},
    }


def outage(call: int, fail_times: int) -> dict[str, str]:
    """The error of the rates service's ``call``-th call during an outage of ``fail_times`` calls."""
    cause = f"rates service unavailable for 2024-03-01 (simulated outage: call {call} of {fail_times} failing)"
    return {"error": "ConnectionError", "cause": cause}


def attempts_of(cli: Cli, run_id: str, key: str) -> list[tuple[int, str, dict | None]]:
    code, shown = cli.json("runs", "show", run_id, "--json")
    assert code == 0
    return [(a["attempt"], a["status"], a["error"]) for a in shown["attempts"] if a["key"] == key]


# ------------------------------------------------------------------------------ file ingestion, CLI
def test_cli_ingests_the_good_file_from_any_directory(cli: Cli, tmp_path: Path) -> None:
    code, run = cli.json("run", INGEST, "--input", json.dumps({"bucket": "landing", "key": GOOD_KEY}), "--json",
                         cwd=tmp_path)
    assert code == 0
    assert run == {"run_id": run["run_id"], "status": "SUCCEEDED", "output": loaded_summary(cli.home / "ingested"),
                   "error": None}
    lines = Path(run["output"]["output"]).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["order_id"] for r in records] == ["A-1001", "A-1002", "A-1003", "A-1004", "A-1005", "A-1006"]
    assert records[0] == {"order_id": "A-1001", "customer": "Alice Martin", "email": "alice.martin@example.com",
                          "country": "FR", "sku": "SKU-RED", "quantity": 2, "unit_price": 19.9, "currency": "EUR",
                          "total": 39.8, "ordered_at": "2024-03-01T08:15:00Z"}
    assert records[2]["customer"] == "Chloé Durand" and records[2]["ordered_at"] == "2024-03-01T09:30:00Z"
    assert records[4]["ordered_at"] == "2024-03-01T18:05:00Z"  # 13:05-05:00 in UTC
    assert [r["total"] for r in records] == [39.8, 120.0, 13.5, 75.0, 32.5, 49.0]


def test_cli_quarantines_the_bad_file_and_still_succeeds(cli: Cli) -> None:
    code, run = cli.json("run", INGEST, "--input", json.dumps({"bucket": "landing", "key": BAD_KEY}), "--json")
    assert code == 0 and run["status"] == "SUCCEEDED" and run["error"] is None
    held = cli.home / "ingested" / "quarantine" / "landing" / "incoming" / "orders-bad.csv"
    assert run["output"] == {"status": "quarantined", "quarantined": True, "source": f"landing/{BAD_KEY}",
                             "error": "ValueError", "reason": BAD_CAUSE, "output": str(held)}
    assert held.read_bytes() == (LANDING / BAD_KEY).read_bytes()
    note = json.loads(held.with_name("orders-bad.csv.reason.json").read_text())
    assert note == {"source": f"landing/{BAD_KEY}", "error": "ValueError", "reason": BAD_CAUSE}
    assert not (cli.home / "ingested" / "loaded").exists()

    code, shown = cli.json("runs", "show", run["run_id"], "--json")
    assert code == 0
    units = {u["key"]: u["status"] for u in shown["units"]}
    assert units == {"read_csv": "SUCCEEDED", "validate_orders": "SUCCEEDED", "validate_orders#catch": "SUCCEEDED",
                     "normalise_orders": "SKIPPED", "write_jsonl": "SKIPPED", "quarantine_file": "SUCCEEDED",
                     "summarize": "SUCCEEDED"}
    failed = [a for a in shown["attempts"] if a["status"] == "FAILED"]
    assert [(a["key"], a["error"]) for a in failed] == [
        ("validate_orders", {"error": "ValueError", "cause": BAD_CAUSE})]


def test_cli_a_missing_file_fails_the_run_as_the_catch_covers_validation_only(cli: Cli) -> None:
    code, run = cli.json("run", INGEST, "--input", '{"bucket": "landing", "key": "incoming/missing.csv"}', "--json")
    assert code == 1 and run["status"] == "FAILED" and run["output"] is None
    assert run["error"]["error"] == "FileNotFoundError"
    assert run["error"]["cause"].startswith("no object 'incoming/missing.csv' in bucket 'landing'")


# ------------------------------------------------------------------------------ file ingestion, Python
def test_ingestion_tasks_are_plain_functions(tmp_path: Path) -> None:
    table = read_csv("landing", BAD_KEY)
    assert table["source"] == f"landing/{BAD_KEY}" and table["columns"] == list(COLUMNS)
    assert [r["line"] for r in table["rows"]] == [2, 3, 4] and table["rows"][1]["cells"][5] == "two"
    with pytest.raises(ValueError) as caught:
        validate_orders(table)
    assert str(caught.value) == BAD_CAUSE
    assert quarantine({"error": "ValueError", "cause": "bad"}) == {"status": "quarantined", "quarantined": True,
                                                                  "error": "ValueError", "reason": "bad"}

    checked = validate_orders(read_csv("landing", GOOD_KEY))
    assert checked["status"] == "valid" and checked["quarantined"] is False and len(checked["rows"]) == 6
    batch = normalise_orders(checked["rows"])
    assert (batch["rows"], batch["quantity"], batch["totals"]) == (6, 25, TOTALS)

    written = write_jsonl(batch["records"][:2], bucket="landing", key="incoming/x.csv", out_dir=str(tmp_path))
    assert written == {"path": str(tmp_path / "loaded" / "landing" / "incoming" / "x.jsonl"), "rows": 2}
    assert len(Path(written["path"]).read_text().splitlines()) == 2
    held = quarantine_file("landing", BAD_KEY, error="ValueError", reason="why", out_dir=str(tmp_path))
    assert Path(held["path"]).read_bytes() == (LANDING / BAD_KEY).read_bytes()


@pytest.mark.parametrize(("rows", "message"), [
    ([["A-1", "Ann", "ann@example.com", "FR", "SKU", "1", "1.00", "EUR"]],
     "t.csv: 1 invalid row(s): line 2: 8 field(s), the header has 9"),
    ([["A-1", "Ann", "ann@example.com", "FR", "SKU", "1", "1.00", "EUR", "2024-03-01T08:00:00Z"],
      ["A-1", "", "nobody", "France", "SKU", "0", "1.005", "euro", "2024-03-01 08:00"]],
     "t.csv: 1 invalid row(s): line 3 (order_id 'A-1'): customer is empty; email 'nobody' is not an address; "
     "country must be a 2-letter code, got 'France'; currency must be a 3-letter code, got 'euro'; "
     "quantity must be a whole number >= 1, got '0'; unit_price must be an amount >= 0 with at most 2 decimals, "
     "got '1.005'; ordered_at '2024-03-01 08:00' has no timezone; order_id repeats line 2"),
    ([], "t.csv: no data rows"),
], ids=["field-count", "every-rule", "empty"])
def test_validation_names_each_bad_row(rows: list[list[str]], message: str) -> None:
    table = {"source": "t.csv", "columns": list(COLUMNS), "rows": [{"line": i + 2, "cells": r} for i, r in
                                                                    enumerate(rows)]}
    with pytest.raises(ValueError) as caught:
        validate_orders(table)
    assert str(caught.value) == message


def test_validation_refuses_a_file_without_the_expected_columns() -> None:
    with pytest.raises(ValueError, match=r"^t\.csv: missing column\(s\) email, ordered_at; expected order_id,"):
        validate_orders({"source": "t.csv", "columns": [c for c in COLUMNS if c not in ("email", "ordered_at")],
                         "rows": []})


def test_keys_cannot_escape_their_bucket() -> None:
    with pytest.raises(ValueError, match="points outside bucket 'landing'"):
        read_csv("landing", "../../file_ingestion.py")


def test_ingestion_reads_and_writes_where_its_parameters_say(tmp_path: Path) -> None:
    root, out = tmp_path / "buckets", tmp_path / "out"
    (root / "landing" / "incoming").mkdir(parents=True)
    shutil.copy(LANDING / GOOD_KEY, root / "landing" / "incoming" / "orders-copy.csv")
    result = run_pipeline(ingest_file, {"bucket": "landing", "key": "incoming/orders-copy.csv",
                                        "storage_root": str(root), "out_dir": str(out)}, store=RunStore.memory())
    assert result.status == "SUCCEEDED", result.error
    assert result.output["totals"] == TOTALS
    assert result.output["output"] == str(out / "loaded" / "landing" / "incoming" / "orders-copy.jsonl")
    # a pipeline called as plain Python runs on the local runner and returns its output
    assert ingest_file("landing", GOOD_KEY, out_dir=str(out)) == loaded_summary(out)


def test_ingestion_is_started_by_new_csv_objects_in_landing() -> None:
    assert ingest_file.ir.triggers == (ObjectCreatedSpec(bucket="landing", prefix="incoming/", suffix=".csv"),)


# ------------------------------------------------------------------------------ revenue report, CLI
def test_cli_revenue_report_recovers_from_the_flaky_source(cli: Cli) -> None:
    code, run = cli.json("run", REPORT, "--input", '{"day": "2024-03-01"}', "--json")
    assert code == 0
    assert run == {"run_id": run["run_id"], "status": "SUCCEEDED", "output": report(rates_calls=3), "error": None}
    assert attempts_of(cli, run["run_id"], "exchange_rates/fetch_rates") == [
        (1, "FAILED", outage(1, 2)), (2, "FAILED", outage(2, 2)), (3, "SUCCEEDED", None)]


def test_cli_revenue_report_fails_when_the_outage_outlasts_the_retries(cli: Cli) -> None:
    code, run = cli.json("run", REPORT, "--input", '{"day": "2024-03-01", "fail_times": 5, "run_tag": "long"}',
                         "--json")
    assert code == 1
    assert run == {"run_id": run["run_id"], "status": "FAILED", "output": None, "error": outage(4, 5)}
    assert attempts_of(cli, run["run_id"], "exchange_rates/fetch_rates") == [
        (n, "FAILED", outage(n, 5)) for n in (1, 2, 3, 4)]
    # the counter lives under STRATO_HOME keyed by run_tag: resuming continues the same outage, which ends at call 6
    assert (cli.home / "revenue_report" / "state" / "long" / "rates-2024-03-01.calls").read_text() == "4"
    code, resumed = cli.json("resume", run["run_id"], "--json")
    assert code == 0
    assert resumed == {"run_id": run["run_id"], "status": "SUCCEEDED", "output": report(rates_calls=6),
                       "error": None}
    # the history keeps every call: attempts number on across the resume
    assert attempts_of(cli, run["run_id"], "exchange_rates/fetch_rates") == [
        *[(n, "FAILED", outage(n, 5)) for n in (1, 2, 3, 4, 5)], (6, "SUCCEEDED", None)]


# ------------------------------------------------------------------------------ revenue report, Python
def test_retries_back_off_and_each_run_tag_has_its_own_outage() -> None:
    clock = VirtualClock()
    store = RunStore.memory()
    first = run_pipeline(revenue_report, {"day": "2024-03-01", "run_tag": "shared"}, store=store, clock=clock)
    assert first.status == "SUCCEEDED" and first.output == report(rates_calls=3)
    assert clock.slept == pytest.approx([0.1, 0.2])  # delay 0.1, then backoff 2.0
    again = run_pipeline(revenue_report, {"day": "2024-03-01", "run_tag": "shared"}, store=store, clock=clock)
    assert again.output == report(rates_calls=4)  # that tag's outage is over: first call succeeds
    assert [a["status"] for a in store.attempts(again.run_id) if a["key"] == "exchange_rates/fetch_rates"] == [
        "SUCCEEDED"]
    for _ in range(2):  # without a run_tag every run gets a fresh one, and so its own outage
        fresh = run_pipeline(revenue_report, {"day": "2024-03-01"}, store=store, clock=VirtualClock())
        assert fresh.output == report(rates_calls=3)


def test_revenue_pipeline_called_as_plain_python(tmp_path: Path) -> None:
    assert revenue_report("2024-03-01", fail_times=0, state_dir=str(tmp_path)) == report(rates_calls=1)


def test_revenue_tasks_are_plain_functions(tmp_path: Path) -> None:
    state = str(tmp_path)
    with pytest.raises(ConnectionError, match=r"call 1 of 1 failing"):
        fetch_rates("2024-03-01", run_tag="a", fail_times=1, state_dir=state)
    fetched = fetch_rates("2024-03-01", run_tag="a", fail_times=1, state_dir=state)
    assert fetched == {"day": "2024-03-01", "base": "EUR", "source": "2024-03-01.json", "calls": 2,
                       "rates": {"EUR": 1.0, "USD": 1.25, "GBP": 0.8, "JPY": 160.0}}
    with pytest.raises(ConnectionError):  # another tag, another outage
        fetch_rates("2024-03-01", run_tag="b", fail_times=1, state_dir=state)
    with pytest.raises(FileNotFoundError, match="no exchange rates published for 2024-03-09"):
        fetch_rates("2024-03-09", run_tag="a", state_dir=state)
    with pytest.raises(ValueError, match="day must be a date written YYYY-MM-DD, got '2024-02-30'"):
        fetch_rates("2024-02-30", run_tag="a", state_dir=state)

    rates = check_rates(fetched, "2024-03-01")
    assert rates["rates"] == {"EUR": 1.0, "GBP": 0.8, "JPY": 160.0, "USD": 1.25}
    with pytest.raises(ValueError, match="rates are for '2024-03-01', not '2024-03-02'"):
        check_rates(fetched, "2024-03-02")
    with pytest.raises(ValueError, match="rates must be numbers > 0"):
        check_rates({**fetched, "rates": {"EUR": 1, "USD": 0}}, "2024-03-01")

    sales = read_sales("2024-03-01")
    assert len(sales["orders"]) == 6
    assert sales["orders"][0] == {"order_id": "A-1001", "country": "FR", "currency": "EUR", "amount": "39.80"}
    assert build_report(sales, rates) == report(rates_calls=2)
    jpy = {"day": "d", "source": "s", "orders": [{"order_id": "J-1", "country": "JP", "currency": "JPY",
                                                  "amount": "1600"}]}
    assert build_report(jpy, rates)["revenue"] == 10.0  # 1600 JPY / 160
    with pytest.raises(ValueError, match="order J-1: no EUR rate for JPY"):
        build_report(jpy, {**rates, "rates": {"EUR": 1.0}})

    assert session_tag("nightly") == "nightly"
    generated = {session_tag() for _ in range(3)}
    assert len(generated) == 3 and all(re.fullmatch(r"[0-9a-f]{12}", t) for t in generated)
    with pytest.raises(ValueError, match="run_tag must be"):
        session_tag("../escape")
