"""Daily sales ETL: fan out over the day's CSV drops, load the clean rows into a SQLite warehouse.

Run it locally:

    strato run examples/daily_sales.py:daily_sales --input '{"day": "2024-03-01"}'

``2024-03-02`` has no files: the ``otherwise`` branch raises an alert instead of loading.
"""

from __future__ import annotations

import csv
import os
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from strato import Retry, Schedule, otherwise, pipeline, task, when

SALES_DIR = Path(__file__).parent / "data" / "sales"


def _warehouse_path(warehouse: str) -> Path:
    if warehouse:
        return Path(warehouse)
    home = Path(os.environ.get("STRATO_HOME") or Path.home() / ".strato")
    home.mkdir(parents=True, exist_ok=True)
    return home / "warehouse.sqlite"


@task(reads=["file://examples/data/sales/"], tags={"layer": "raw"})
def extract(day: str, source: str = "") -> dict:
    """List the CSV files dropped for ``day`` (yesterday, UTC, when empty: the scheduled case)."""
    day = day or (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    date.fromisoformat(day)  # a malformed day is an error, not an empty day
    folder = Path(source or SALES_DIR) / day
    files = sorted(str(p) for p in folder.glob("*.csv")) if folder.is_dir() else []
    return {"day": day, "files": files, "count": len(files)}


@task(timeout=60, tags={"layer": "staging"})
def clean(path: str, limit: int = 100) -> dict:
    """Parse one file, keep valid and first-seen orders (at most ``limit``), count what was dropped."""
    rows, seen, dropped = [], set(), 0
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            try:
                quantity, price = int(record["quantity"]), float(record["unit_price"])
            except (TypeError, ValueError):
                dropped += 1
                continue
            if quantity <= 0 or price < 0 or record["order_id"] in seen or len(rows) >= limit:
                dropped += 1
                continue
            seen.add(record["order_id"])
            rows.append({"order_id": record["order_id"], "region": record["region"], "product": record["product"],
                         "quantity": quantity, "revenue": round(quantity * price, 2)})
    return {"file": Path(path).name, "rows": rows, "dropped": dropped}


@task(retry=Retry(max_retries=3, delay=0.5, backoff=2.0, on=("OperationalError",)),
      writes=["sqlite://warehouse/sales"], tags={"layer": "warehouse"})
def load(batches: list[dict], day: str, warehouse: str = "") -> dict:
    """Replace the day's rows in the warehouse table (idempotent: a retried or re-run load is safe)."""
    rows = [row for batch in batches for row in batch["rows"]]
    with sqlite3.connect(_warehouse_path(warehouse), timeout=5) as db:
        db.execute("CREATE TABLE IF NOT EXISTS sales (day TEXT, order_id TEXT, region TEXT, product TEXT, "
                   "quantity INTEGER, revenue REAL, PRIMARY KEY (day, order_id))")
        db.execute("DELETE FROM sales WHERE day = ?", (day,))
        db.executemany("INSERT INTO sales VALUES (?, ?, ?, ?, ?, ?)",
                       [(day, r["order_id"], r["region"], r["product"], r["quantity"], r["revenue"]) for r in rows])
    return {"table": "sales", "rows": len(rows)}


@task
def summarize(batches: list[dict]) -> dict:
    """Revenue per region and the best-selling product by units."""
    by_region: dict[str, float] = {}
    units: dict[str, int] = {}
    for batch in batches:
        for row in batch["rows"]:
            by_region[row["region"]] = round(by_region.get(row["region"], 0.0) + row["revenue"], 2)
            units[row["product"]] = units.get(row["product"], 0) + row["quantity"]
    top = max(sorted(units), key=units.__getitem__) if units else None
    return {"revenue_by_region": dict(sorted(by_region.items())), "total_revenue": round(sum(by_region.values()), 2),
            "top_product": top, "dropped_rows": sum(b["dropped"] for b in batches)}


@task
def alert(day: str) -> dict:
    """No files arrived: say so (a real team would page or post to chat here)."""
    return {"alert": f"no sales files arrived for {day}"}


@pipeline(schedule=Schedule(cron="0 2 * * *", timezone="UTC"),
          tags={"owner": "data-eng", "data-classification": "internal"})
def daily_sales(day: str = "", limit: int = 100, warehouse: str = ""):
    """Load one day of sales into the warehouse and summarise it."""
    raw = extract(day)
    batches = clean.map(raw["files"], max_concurrency=8, limit=limit)
    with when(raw["count"] > 0):
        loaded = load(batches, raw["day"], warehouse)
        summary = summarize(batches)
    with otherwise():
        missing = alert(raw["day"])
    return {"day": raw["day"], "files": raw["count"], "loaded": loaded, "summary": summary, "alert": missing}
