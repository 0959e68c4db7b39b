"""A condition on an element of a list result, evaluated by the state machine itself."""

from typing import Any

from strato import pipeline, task, when


@task
def rows(n: int) -> list[dict[str, Any]]:
    return [{"ok": i % 2 == 0, "blob": "x" * 200} for i in range(n)]


@task
def note(text: str) -> str:
    return text


@pipeline
def element_condition(n: int = 40):
    listed = rows(n)
    with when(listed[0]["ok"] == True):  # noqa: E712 - a comparison the state machine evaluates
        first = note("first row ok")
    with when(listed[1]["ok"] == True):  # noqa: E712
        second = note("second row ok")
    return {"first": first, "second": second, "count": n}
