"""Ingest a CSV file as soon as it lands in a bucket: parse, validate, normalise, load as JSON lines.

A file that fails validation is not an error of the pipeline: the validation task's ``Catch`` turns
the ``ValueError`` into a quarantine record, and the pipeline copies the file aside instead of
loading it. The run still succeeds, and its output says why the file was held back.

On a cloud, ``ObjectCreated`` starts a run for each new ``incoming/*.csv`` object in the ``landing``
bucket. Locally, a bucket is a directory: ``<storage_root>/<bucket>/<key>``, by default the data
shipped next to this file (``examples/data/landing/``). Try it::

    strato run examples/file_ingestion.py:ingest_file \\
        --input '{"bucket": "landing", "key": "incoming/orders-2024-03-01.csv"}' --json
    strato run examples/file_ingestion.py:ingest_file \\
        --input '{"bucket": "landing", "key": "incoming/orders-bad.csv"}' --json

Loaded files go to ``$STRATO_HOME/ingested/loaded/`` (default ``~/.strato``), quarantined ones to
``$STRATO_HOME/ingested/quarantine/``; pass ``out_dir`` to write elsewhere.
"""

import csv
import json
import os
import re
import shutil
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from strato import Catch, ObjectCreated, otherwise, pipeline, task, when

DATA_DIR = Path(__file__).parent / "data"
COLUMNS = ("order_id", "customer", "email", "country", "sku", "quantity", "unit_price", "currency", "ordered_at")
CENT = Decimal("0.01")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# ------------------------------------------------------------------------------------- paths
def _storage_root(storage_root: str) -> Path:
    """Where buckets live: the shipped sample data unless the caller points elsewhere."""
    return Path(storage_root).expanduser() if storage_root else DATA_DIR


def _out_root(out_dir: str) -> Path:
    """Output goes under $STRATO_HOME (like the run store), so the repository stays clean."""
    if out_dir:
        return Path(out_dir).expanduser()
    return Path(os.environ.get("STRATO_HOME") or Path.home() / ".strato") / "ingested"


def _object_path(root: Path, bucket: str, key: str) -> Path:
    """Resolve ``bucket/key`` under ``root``, refusing keys such as ``../../etc/passwd``."""
    bucket_dir = (root / bucket).resolve()
    path = (bucket_dir / key).resolve()
    if not path.is_relative_to(bucket_dir):
        raise ValueError(f"key {key!r} points outside bucket {bucket!r}")
    return path


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a retried or resumed task never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------------- tasks
@task(tags={"stage": "extract"})
def read_csv(bucket: str, key: str, storage_root: str = "") -> dict[str, Any]:
    """Parse the object as CSV. Only parsing here: rules live in ``validate_orders`` so they can be caught."""
    path = _object_path(_storage_root(storage_root), bucket, key)
    if not path.is_file():
        raise FileNotFoundError(f"no object {key!r} in bucket {bucket!r} (looked for {path})")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        rows = [{"line": reader.line_num, "cells": cells} for cells in reader if any(c.strip() for c in cells)]
    return {"source": f"{bucket}/{key}", "columns": [c.strip() for c in header], "rows": rows}


def _row_problems(values: dict[str, str]) -> list[str]:
    """Every rule a row breaks, so one message lists them all."""
    problems = []
    for name in ("order_id", "customer", "sku"):
        if not values[name].strip():
            problems.append(f"{name} is empty")
    if not _EMAIL.match(values["email"].strip()):
        problems.append(f"email {values['email']!r} is not an address")
    if not re.fullmatch(r"[A-Za-z]{2}", values["country"].strip()):
        problems.append(f"country must be a 2-letter code, got {values['country']!r}")
    if not re.fullmatch(r"[A-Za-z]{3}", values["currency"].strip()):
        problems.append(f"currency must be a 3-letter code, got {values['currency']!r}")
    quantity = values["quantity"].strip()
    if not re.fullmatch(r"[0-9]+", quantity) or int(quantity) < 1:
        problems.append(f"quantity must be a whole number >= 1, got {values['quantity']!r}")
    try:
        price = Decimal(values["unit_price"].strip())
        if not price.is_finite() or price < 0 or price != price.quantize(CENT):
            raise InvalidOperation
    except InvalidOperation:
        problems.append(f"unit_price must be an amount >= 0 with at most 2 decimals, got {values['unit_price']!r}")
    try:
        if datetime.fromisoformat(values["ordered_at"].strip()).tzinfo is None:
            problems.append(f"ordered_at {values['ordered_at']!r} has no timezone")
    except ValueError:
        problems.append(f"ordered_at must be an ISO-8601 timestamp, got {values['ordered_at']!r}")
    return problems


def quarantine(error: dict[str, str]) -> dict[str, Any]:
    """Catch handler: a bad file is quarantined, not a failed run. Its result stands in for the validation's."""
    return {"status": "quarantined", "quarantined": True, "error": error["error"], "reason": error["cause"]}


@task(catch=Catch(handler=quarantine, on=("ValueError",)), tags={"stage": "validate"})
def validate_orders(table: dict[str, Any]) -> dict[str, Any]:
    """Check the header and every row against the orders schema; raise ValueError naming each bad row."""
    source, columns = table["source"], table["columns"]
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
    if not table["rows"]:
        raise ValueError(f"{source}: no data rows")
    rows, problems, seen = [], [], {}
    for row in table["rows"]:
        cells = row["cells"]
        if len(cells) != len(columns):
            problems.append(f"line {row['line']}: {len(cells)} field(s), the header has {len(columns)}")
            continue
        values = dict(zip(columns, cells, strict=True))
        order_id = values["order_id"].strip()
        found = _row_problems(values)
        if order_id in seen:
            found.append(f"order_id repeats line {seen[order_id]}")
        seen.setdefault(order_id, row["line"])
        if found:
            problems.append(f"line {row['line']} (order_id {order_id!r}): {'; '.join(found)}")
        rows.append({c: values[c] for c in COLUMNS})
    if problems:
        raise ValueError(f"{source}: {len(problems)} invalid row(s): " + " | ".join(problems))
    return {"status": "valid", "quarantined": False, "rows": rows}


@task(tags={"stage": "transform"})
def normalise_orders(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Trim and case-fold fields, convert times to UTC, compute line totals and totals per currency.

    Money is computed with ``Decimal`` (rounded half-up to cents), so 3 x 4.50 is exactly 13.50.
    """
    records: list[dict[str, Any]] = []
    totals: dict[str, Decimal] = {}
    for row in rows:
        quantity, price = int(row["quantity"]), Decimal(row["unit_price"].strip())
        total = (price * quantity).quantize(CENT, ROUND_HALF_UP)
        currency = row["currency"].strip().upper()
        ordered_at = datetime.fromisoformat(row["ordered_at"].strip()).astimezone(UTC)
        records.append({
            "order_id": row["order_id"].strip(),
            "customer": " ".join(row["customer"].split()),
            "email": row["email"].strip().lower(),
            "country": row["country"].strip().upper(),
            "sku": row["sku"].strip().upper(),
            "quantity": quantity,
            "unit_price": float(price),
            "currency": currency,
            "total": float(total),
            "ordered_at": ordered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
        totals[currency] = totals.get(currency, Decimal(0)) + total
    return {"records": records, "rows": len(records), "quantity": sum(r["quantity"] for r in records),
            "totals": {c: float(totals[c]) for c in sorted(totals)}}


@task(tags={"stage": "load"})
def write_jsonl(records: list[dict[str, Any]], bucket: str, key: str, out_dir: str = "") -> dict[str, Any]:
    """Load the records as JSON lines; the whole file is replaced, so re-ingesting a file is idempotent."""
    path = _out_root(out_dir) / "loaded" / bucket / Path(key).with_suffix(".jsonl")
    _write_atomically(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return {"path": str(path), "rows": len(records)}


@task(tags={"stage": "quarantine"})
def quarantine_file(bucket: str, key: str, error: str, reason: str, storage_root: str = "",
                    out_dir: str = "") -> dict[str, Any]:
    """Copy the rejected file aside with the reason next to it, so someone can fix and re-drop it."""
    source = _object_path(_storage_root(storage_root), bucket, key)
    target = _out_root(out_dir) / "quarantine" / bucket / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    note = target.with_name(target.name + ".reason.json")
    record = {"source": f"{bucket}/{key}", "error": error, "reason": reason}
    _write_atomically(note, json.dumps(record, indent=2) + "\n")
    return {"path": str(target), "error": error, "reason": reason}


@task
def summarize(source: str, batch: dict[str, Any] | None, written: dict[str, Any] | None,
              held: dict[str, Any] | None) -> dict[str, Any]:
    """One summary for either branch: the results of the branch that did not run are ``None``."""
    if held is not None:
        return {"status": "quarantined", "quarantined": True, "source": source, "error": held["error"],
                "reason": held["reason"], "output": held["path"]}
    if batch is None or written is None:
        raise RuntimeError(f"{source}: neither loaded nor quarantined")
    return {"status": "loaded", "quarantined": False, "source": source, "rows": written["rows"],
            "quantity": batch["quantity"], "totals": batch["totals"], "output": written["path"]}


# ---------------------------------------------------------------------------------- pipeline
@pipeline(triggers=[ObjectCreated(bucket="landing", prefix="incoming/", suffix=".csv")],
          tags={"owner": "data-eng", "data-classification": "confidential"})  # e-mail addresses are personal data
def ingest_file(bucket: str, key: str, storage_root: str = "", out_dir: str = ""):
    """Load one landed orders file, or quarantine it when it breaks the schema."""
    table = read_csv(bucket, key, storage_root=storage_root)
    checked = validate_orders(table)
    with when(checked["status"] == "valid"):
        batch = normalise_orders(checked["rows"])
        written = write_jsonl(batch["records"], bucket=bucket, key=key, out_dir=out_dir)
    with otherwise():
        held = quarantine_file(bucket, key, error=checked["error"], reason=checked["reason"],
                               storage_root=storage_root, out_dir=out_dir)
    return summarize(table["source"], batch, written, held)
