"""A pipeline whose tasks declare object-storage datasets and secrets, deployed by the infra tests."""

from strato import Secret, pipeline, task


@task(reads=["gs://raw-zone/orders/", "s3://raw-zone/orders/", "file://local/orders/"])
def extract(day: str, token: str) -> dict:
    return {"day": day, "token": len(token)}


@task(reads=["gs://reference-data", "s3://reference-data"])
def enrich(rows: dict) -> dict:
    return rows


@task(reads=["gs://curated/daily/"], writes=["gs://curated/daily/", "s3://curated/daily/", "warehouse.sales"])
def publish(rows: dict, password: str) -> dict:
    return rows


@pipeline(tags={"owner": "data-eng", "data-classification": "confidential"})
def datasets(day: str = "2024-03-01"):
    rows = extract(day, Secret("api-token"))
    return publish(enrich(rows), Secret("db-password"))
