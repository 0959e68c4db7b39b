"""A small pipeline for the web UI's tests: a fan-out, a retried load that can fail, a branch."""

from strato import Retry, pipeline, task, when


@task(reads=["s3://raw/orders/"], tags={"layer": "raw"})
def extract(day: str) -> dict:
    return {"day": day, "files": ["a.csv", "b.csv", "c.csv"]}


@task
def clean(path: str) -> dict:
    return {"path": path, "rows": len(path)}


@task(retry=Retry(max_retries=1, delay=0.01), writes=["warehouse.orders"])
def load(batches: list[dict], fail_with: str) -> dict:
    print(f"loading {len(batches)} batches")
    if fail_with:
        raise ValueError(fail_with)
    return {"rows": sum(b["rows"] for b in batches)}


@task
def announce(loaded: dict) -> str:
    return f"loaded {loaded['rows']} rows"


@pipeline(schedule="0 3 * * *", tags={"owner": "data-eng", "data-classification": "internal"})
def ui_orders(day: str = "2024-03-01", fail_with: str = ""):
    raw = extract(day)
    rows = clean.map(raw["files"])
    loaded = load(rows, fail_with)
    with when(loaded["rows"] > 0):
        message = announce(loaded)
    return {"loaded": loaded, "message": message}
