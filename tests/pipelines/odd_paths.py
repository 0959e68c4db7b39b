"""Conditions through paths JSONPath cannot write as the local runner reads them: negative indexes and
keys with quotes or brackets."""

from strato import otherwise, pipeline, task, when


@task
def data() -> dict:
    return {"nums": [1, 2, 3], "it's": "quoted", "[x]": 7, "rows": [{"ok": False}, {"ok": True}]}


@task
def note(text: str) -> str:
    return text


@pipeline
def odd_paths():
    d = data()
    with when((d["nums"][-1] == 3) & (d["it's"] == "quoted") & (d["[x]"] >= 7) & (d["rows"][-1]["ok"] == True)):  # noqa: E712
        hit = note("every path read as locally")
    with otherwise():
        miss = note("a path was read differently")
    with when(d["nums"][-4] == None):  # noqa: E711  (out of range: null, as locally)
        out_of_range = note("out of range is null")
    return {"hit": hit, "miss": miss, "out_of_range": out_of_range, "last": d["nums"][-1]}
