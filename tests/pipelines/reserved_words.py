"""Names a JSONPath parser may take for operators: a call and a parameter called ``where`` and a result key
``wherenot`` read by a condition."""

from strato import otherwise, pipeline, task, when


@task
def lookup(x: int) -> dict:
    return {"wherenot": x + 1, "n": x}


@task
def show(v: int, label: str) -> dict:
    return {"value": v * 2, "label": label}


@pipeline
def reserved_words(n: int = 1, where: str = "here"):
    found = lookup.alias("where")(n)
    with when(found["wherenot"] > 1):
        shown = show(found["wherenot"], where)
    with otherwise():
        shown = show(found["n"], "none")
    return {"shown": shown, "where": where}
