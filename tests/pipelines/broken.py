"""A pipeline with one of each mistake `strato validate` must report (line numbers are asserted)."""

from strato import Retry, Schedule, pipeline, task, when


@task(retry=Retry(max_retries=-1, backoff=0.5, on="ValueError"), timeout=0, memory=64, tags={"env": 3})
def extract(day: str) -> dict:
    return {"day": day}


@task
def load(rows: list, *extra) -> int:
    return len(rows)


@pipeline(schedule=Schedule(cron="0 25 * * *", timezone="Mars/Olympus"), tags={"data-classification": "secret"})
def broken(day: str):
    raw = extract(day, region="eu")
    load(rows={1, 2})
    load(wait_for=["later"])
    with when(raw):
        load(raw)
    with when(raw["count"] > raw["limit"]):
        load(raw)
    first = load.alias("first")(raw, wait_for=["later"])
    load.alias("later")([first])
    return raw
