"""A daily revenue report in one currency, with exchange rates from a flaky source.

The rates come from a sub-pipeline, ``exchange_rates``, whose ``fetch_rates`` task reads
``examples/data/rates/<day>.json`` through a simulated rates service that is down for its first
``fail_times`` calls. ``Retry`` absorbs the outage: up to 3 retries, 0.1 s then 0.2 s then 0.4 s
apart, and only for ``ConnectionError`` (a missing rates file is not worth retrying). The parent
pipeline reads the day's orders from the landing bucket in parallel, converts every amount to EUR
and returns the report. Try it::

    strato run examples/revenue_report.py:revenue_report --input '{"day": "2024-03-01"}' --json
    strato runs show RUN_ID          # two failed attempts of exchange_rates/fetch_rates, then success
    strato run examples/revenue_report.py:revenue_report --input '{"day": "2024-03-01", "fail_times": 5}'

The last run fails (4 attempts < 5 failing calls). The service's call counter lives in
``state_dir`` (default ``$STRATO_HOME/revenue_report/state``, keyed by ``run_tag``), so
``strato resume RUN_ID`` continues the same outage and succeeds once it is over.
"""

import csv
import json
import os
import re
import uuid
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from strato import Retry, pipeline, task

DATA_DIR = Path(__file__).parent / "data"
CENT = Decimal("0.01")
_TAG = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _data_root(data_root: str) -> Path:
    """The shipped sample data unless the caller points elsewhere."""
    return Path(data_root).expanduser() if data_root else DATA_DIR


def _check_day(day: str) -> str:
    """A day is a real ISO date; this also keeps it safe to use in file names."""
    try:
        return date.fromisoformat(day).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"day must be a date written YYYY-MM-DD, got {day!r}") from None


def _money(value: Decimal) -> float:
    """Round half-up to cents for the report (the sums themselves stay exact Decimals)."""
    return float(value.quantize(CENT, ROUND_HALF_UP))


# --------------------------------------------------------------------------- rates (sub-pipeline)
@task
def session_tag(run_tag: str = "") -> str:
    """The key of the simulated outage: the given tag, or a fresh one so each run sees its own outage.

    As a task, the generated tag is recorded with the run, so ``strato resume`` reuses it.
    """
    if run_tag and not _TAG.match(run_tag):
        raise ValueError(f"run_tag must be 1-64 letters, digits, '_', '.' or '-', got {run_tag!r}")
    return run_tag or uuid.uuid4().hex[:12]


def _bump_calls(counter: Path) -> int:
    """Count one more call to the service; the count is a file so it outlives retries and restarts."""
    counter.parent.mkdir(parents=True, exist_ok=True)
    calls = (int(counter.read_text()) if counter.exists() else 0) + 1
    tmp = counter.with_name(counter.name + ".tmp")
    tmp.write_text(str(calls))
    tmp.replace(counter)
    return calls


@task(retry=Retry(max_retries=3, delay=0.1, backoff=2.0, on=("ConnectionError",)), timeout=30,
      tags={"source": "rates-service"})
def fetch_rates(day: str, run_tag: str, fail_times: int = 0, state_dir: str = "",
                data_root: str = "") -> dict[str, Any]:
    """Fetch the day's rates from a service that fails its first ``fail_times`` calls with ConnectionError."""
    day = _check_day(day)
    if fail_times < 0:
        raise ValueError(f"fail_times must be >= 0, got {fail_times}")
    if not _TAG.match(run_tag):
        raise ValueError(f"run_tag must be 1-64 letters, digits, '_', '.' or '-', got {run_tag!r}")
    home = Path(os.environ.get("STRATO_HOME") or Path.home() / ".strato")
    state = Path(state_dir).expanduser() if state_dir else home / "revenue_report" / "state"
    calls = _bump_calls(state / run_tag / f"rates-{day}.calls")
    if calls <= fail_times:
        raise ConnectionError(f"rates service unavailable for {day} (simulated outage: call {calls} of "
                              f"{fail_times} failing)")
    path = _data_root(data_root) / "rates" / f"{day}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no exchange rates published for {day} (looked for {path})")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {"day": data.get("day"), "base": data.get("base"), "rates": data.get("rates"), "source": path.name,
            "calls": calls}


@task
def check_rates(fetched: dict[str, Any], day: str) -> dict[str, Any]:
    """Refuse rates for another day, another base or with non-positive values before anyone uses them."""
    day = _check_day(day)
    base, rates = fetched.get("base"), fetched.get("rates")
    if fetched.get("day") != day:
        raise ValueError(f"{fetched['source']}: rates are for {fetched.get('day')!r}, not {day!r}")
    if not isinstance(base, str) or not isinstance(rates, dict) or rates.get(base) != 1:
        raise ValueError(f"{fetched['source']}: needs a 'base' currency whose rate is 1, got {base!r}")
    bad = {c: r for c, r in rates.items()
           if isinstance(r, bool) or not isinstance(r, (int, float)) or not r > 0}
    if bad:
        raise ValueError(f"{fetched['source']}: rates must be numbers > 0, got {bad}")
    return {"day": day, "base": base, "rates": {c: rates[c] for c in sorted(rates)}, "source": fetched["source"],
            "calls": fetched["calls"]}


@pipeline(tags={"owner": "finance", "data-classification": "internal"})
def exchange_rates(day: str, run_tag: str, fail_times: int = 0, state_dir: str = "", data_root: str = ""):
    """Fetched and checked rates for one day, as a reusable sub-pipeline."""
    fetched = fetch_rates(day, run_tag=run_tag, fail_times=fail_times, state_dir=state_dir, data_root=data_root)
    return check_rates(fetched, day)


# ----------------------------------------------------------------------------------- the report
@task
def read_sales(day: str, data_root: str = "") -> dict[str, Any]:
    """The day's orders as ``{order_id, country, currency, amount}``, from the landing bucket's CSV."""
    day = _check_day(day)
    path = _data_root(data_root) / "landing" / "incoming" / f"orders-{day}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no orders file for {day} (looked for {path})")
    orders = []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            amount = Decimal(row["unit_price"].strip()) * int(row["quantity"])
            orders.append({"order_id": row["order_id"].strip(), "country": row["country"].strip().upper(),
                           "currency": row["currency"].strip().upper(), "amount": str(amount)})
    return {"day": day, "source": f"landing/incoming/{path.name}", "orders": orders}


@task
def build_report(sales: dict[str, Any], rates: dict[str, Any]) -> dict[str, Any]:
    """Convert each order to the base currency (amount / rate) and total by currency and country.

    Amounts travel as decimal strings and are summed as ``Decimal``; only the report rounds to cents.
    """
    base, table = rates["base"], rates["rates"]
    by_currency: dict[str, dict[str, Any]] = defaultdict(lambda: {"orders": 0, "amount": Decimal(0),
                                                                  "converted": Decimal(0)})
    by_country: dict[str, Decimal] = defaultdict(Decimal)
    for order in sales["orders"]:
        currency = order["currency"]
        if currency not in table:
            raise ValueError(f"order {order['order_id']}: no {base} rate for {currency} in {rates['source']}")
        amount = Decimal(order["amount"])
        converted = amount / Decimal(str(table[currency]))
        line = by_currency[currency]
        line["orders"] += 1
        line["amount"] += amount
        line["converted"] += converted
        by_country[order["country"]] += converted
    return {
        "day": sales["day"],
        "currency": base,
        "orders": len(sales["orders"]),
        "revenue": _money(sum((v["converted"] for v in by_currency.values()), Decimal(0))),
        "by_currency": {c: {"orders": v["orders"], "amount": _money(v["amount"]), "rate": table[c],
                            "converted": _money(v["converted"])} for c, v in sorted(by_currency.items())},
        "by_country": {c: _money(v) for c, v in sorted(by_country.items())},
        "sources": {"sales": sales["source"], "rates": rates["source"], "rates_calls": rates["calls"]},
    }


@pipeline(tags={"owner": "finance", "data-classification": "internal"})
def revenue_report(day: str, fail_times: int = 2, run_tag: str = "", state_dir: str = "", data_root: str = ""):
    """The day's revenue in EUR; ``fail_times`` sets how long the rates service is down (retries cover 3)."""
    tag = session_tag(run_tag)
    rates = exchange_rates(day, run_tag=tag, fail_times=fail_times, state_dir=state_dir, data_root=data_root)
    sales = read_sales(day, data_root=data_root)
    return build_report(sales, rates)
