"""A pipeline whose task is given a secret, deployed by the infra tests."""

from strato import Secret, pipeline, task


@task
def connect(dsn: str, password: str) -> int:
    return len(password)


@pipeline
def secured(dsn: str = "postgres://db/sales"):
    return connect(dsn, Secret("db-password"))
