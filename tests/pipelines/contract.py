"""The DSL contract's own example (DESIGN.md), with task bodies filled in, as a new user writes it."""

from strato import Catch, ObjectCreated, Retry, Schedule, otherwise, pipeline, task, wait, when


def on_bad_rows(error: dict) -> dict:
    return {"files": [], "count": 0, "error": error}


@task(retry=Retry(max_retries=3, delay=1.0, backoff=2.0, max_delay=60, jitter=True, on=("IOError",)),
      timeout=300, memory=512, catch=Catch(handler=on_bad_rows, on=("ValueError",)),
      tags={"cost-center": "42"}, reads=["s3://raw/orders/"], writes=["warehouse.orders"])
def extract(day: str) -> dict:
    if day == "bad":
        raise ValueError(f"no partition for {day}")
    return {"files": [f"{day}/a.csv", f"{day}/b.csv"], "count": 2}


@task
def clean(path: str, limit: int = 100) -> dict:
    return {"path": path, "rows": min(limit, len(path))}


@task
def load(rows: list) -> int:
    return sum(r["rows"] for r in rows)


@task
def notify(day: str) -> str:
    return f"nothing for {day}"


@pipeline(schedule=Schedule(cron="0 2 * * *", timezone="UTC"),
          triggers=[ObjectCreated(bucket="landing", prefix="orders/", suffix=".csv")],
          tags={"owner": "data-eng", "data-classification": "internal"})
def daily_sales(day: str, limit: int = 100):
    raw = extract(day)
    rows = clean.map(raw["files"], max_concurrency=8, limit=limit)
    with when(raw["count"] > 0):
        loaded = load(rows)
    with otherwise():
        notified = notify(day)
    wait(seconds=0.1, wait_for=[rows])
    return {"loaded": rows, "day": day, "total": loaded, "notified": notified}
