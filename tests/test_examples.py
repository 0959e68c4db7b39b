"""The daily sales example: real CSV processing into a real SQLite warehouse."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from examples.daily_sales import clean, daily_sales, extract, summarize
from strato.runtime import RunStore, VirtualClock, run_pipeline

DATA = Path(__file__).resolve().parent.parent / "examples" / "data" / "sales"


def test_tasks_are_plain_functions() -> None:
    listing = extract("2024-03-01")
    assert listing["count"] == 3 and [Path(f).name for f in listing["files"]] == ["north.csv", "south.csv", "west.csv"]
    north = clean(str(DATA / "2024-03-01" / "north.csv"))
    assert north["dropped"] == 2 and [r["order_id"] for r in north["rows"]] == ["N-1001", "N-1002", "N-1003"]
    west = clean(str(DATA / "2024-03-01" / "west.csv"), limit=2)
    assert len(west["rows"]) == 2 and west["dropped"] == 2  # one over the limit, one duplicate order
    assert summarize([north])["revenue_by_region"] == {"north": 207.0}


def test_daily_sales_loads_the_warehouse(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.sqlite"
    store = RunStore(tmp_path / "runs.db")
    result = run_pipeline(daily_sales, {"day": "2024-03-01", "warehouse": str(warehouse)}, store=store,
                          clock=VirtualClock())
    assert result.status == "SUCCEEDED", result.error
    assert result.output == {
        "day": "2024-03-01", "files": 3, "loaded": {"table": "sales", "rows": 9},
        "summary": {"revenue_by_region": {"north": 207.0, "south": 398.5, "west": 118.4}, "total_revenue": 723.9,
                    "top_product": "filter papers", "dropped_rows": 3},
        "alert": None,
    }
    with sqlite3.connect(warehouse) as db:
        assert db.execute("SELECT count(*), round(sum(revenue), 2) FROM sales WHERE day='2024-03-01'").fetchone() == (
            9, 723.9)
    again = run_pipeline(daily_sales, {"day": "2024-03-01", "warehouse": str(warehouse)}, store=store)
    assert again.output == result.output  # idempotent load
    with sqlite3.connect(warehouse) as db:
        assert db.execute("SELECT count(*) FROM sales").fetchone() == (9,)


def test_a_day_without_files_raises_an_alert(tmp_path: Path) -> None:
    result = run_pipeline(daily_sales, {"day": "2024-03-02", "warehouse": str(tmp_path / "w.sqlite")},
                          store=RunStore.memory())
    assert result.output["alert"] == {"alert": "no sales files arrived for 2024-03-02"}
    assert result.output["loaded"] is None and not (tmp_path / "w.sqlite").exists()


def test_a_malformed_day_fails_the_run() -> None:
    result = run_pipeline(daily_sales, {"day": "March 1st"}, store=RunStore.memory())
    assert result.status == "FAILED" and result.error["error"] == "ValueError"
