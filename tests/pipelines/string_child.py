"""A sub-pipeline whose output is a bare string (and one that looks like a number)."""

from strato import pipeline, task


@task
def greet(name: str) -> str:
    return f"hello {name}"


@pipeline
def child(name: str):
    return greet(name)


@pipeline
def parent(name: str = "ada"):
    return {"greeting": child(name), "again": child("bob")}
