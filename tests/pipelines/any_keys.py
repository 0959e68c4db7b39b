"""Conditions on keys that are not identifiers: hyphens, spaces, non-ASCII letters, dots."""

from strato import pipeline, task, when


@task
def order() -> dict:
    return {"order-id": "A-1", "total amount": 12, "é": True, "a.b": "dot"}

@task
def note(text: str) -> str:
    return text

@pipeline
def keys():
    o = order()
    with when((o["order-id"] == "A-1") & (o["total amount"] > 10) & (o["é"] == True) & (o["a.b"] == "dot")):  # noqa: E712
        hit = note("all keys matched")
    return {"hit": hit}
