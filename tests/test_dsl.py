"""The DSL as a pipeline author uses it: tasks stay plain functions, pipeline bodies trace into IR."""

from __future__ import annotations

import pytest

from strato import Catch, Retry, StratoError, otherwise, pipeline, task, wait, when
from strato import ir as IR
from strato.errors import TraceError
from strato.ir import error_matches, expand_error_names


@task
def stamp(value: str, suffix: str = "!") -> str:
    return value + suffix


@task(retry=Retry(max_retries=2, delay=0.5, on=("IOError",)), timeout=30, memory=256,
      tags={"cost-center": "42"}, reads=["s3://raw/"], writes=["warehouse.t"])
def fetch(day: str) -> dict:
    return {"files": [day], "count": 1}


def recover(error: dict) -> dict:
    return {"recovered": error["error"]}


@task(catch=Catch(handler=recover, on=(ValueError,)))
def risky(x: int) -> dict:
    raise ValueError("bad")


@pipeline
def child(text: str):
    return {"child": stamp(text)}


def test_task_stays_a_plain_callable() -> None:
    assert stamp("a") == "a!"
    assert stamp("a", suffix="?") == "a?"
    assert fetch("d") == {"files": ["d"], "count": 1}
    assert stamp.__name__ == "stamp" and stamp.__doc__ is None


def test_repeated_calls_get_stable_ids_and_explicit_names_win() -> None:
    @pipeline
    def p(day: str):
        first = stamp.alias("stamp_2")(day)  # explicit name equal to an automatic one
        out = [stamp(day) for _ in range(3)]
        return {"first": first, "out": out}

    graph = p.ir
    assert [n.id for n in graph.nodes] == ["stamp_2", "stamp", "stamp_3", "stamp_4"]
    assert graph.output == IR.DictOf((("first", IR.Ref("stamp_2")),
                                      ("out", IR.ListOf((IR.Ref("stamp"), IR.Ref("stamp_3"), IR.Ref("stamp_4"))))))
    assert p.trace().ir is graph  # traced once, cached


def test_duplicate_explicit_names_are_an_error() -> None:
    @pipeline
    def p(day: str):
        stamp.alias("twice")(day)
        stamp.alias("twice")(day)

    errors = p.trace().errors
    assert len(errors) == 1 and "two calls are named 'twice'" in errors[0].message
    assert errors[0].location.file == __file__


def test_addressing_literals_and_wait_for() -> None:
    @pipeline
    def p(day: str, n: int = 3):
        raw = fetch(day)
        a = stamp(raw["files"][0], suffix="-x")
        b = stamp({"nested": [raw["count"], 1, None]}, wait_for=[a])  # type: ignore[arg-type]
        return [a, b, n, "lit"]

    graph = p.ir
    a, b = graph.node_by_id["stamp"], graph.node_by_id["stamp_2"]
    assert a.args == {"value": IR.Ref("fetch", ("files", 0)), "suffix": IR.Literal("-x")}
    assert b.args["value"] == IR.DictOf((("nested", IR.ListOf((IR.Ref("fetch", ("count",)), IR.Literal(1),
                                                                IR.Literal(None)))),))
    assert b.after == ("stamp",)
    assert graph.params == (IR.ParamSpec("day", "str", True, None), IR.ParamSpec("n", "int", False, 3))
    assert graph.tasks["fetch"].retry.on == ("OSError",)  # IOError is OSError in Python
    assert graph.tasks["fetch"].reads == ("s3://raw/",) and graph.tasks["fetch"].memory == 256


def test_map_when_otherwise_wait_and_subpipeline() -> None:
    @pipeline(tags={"owner": "team"})
    def p(day: str):
        raw = fetch(day)
        stamped = stamp.map(raw["files"], max_concurrency=4, suffix="?")
        with when((raw["count"] > 0) & ~(raw["count"] == 7)):
            loaded = stamp("load")
            with when(raw["files"][0] == "x"):
                stamp("inner")
        with otherwise():
            stamp("none")
        pause = wait(5, wait_for=[stamped])
        sub = child(day, wait_for=[pause])
        return {"loaded": loaded, "sub": sub}

    graph = p.ir
    m = graph.node_by_id["stamp"]
    assert isinstance(m, IR.MapNode) and m.item_param == "value" and m.max_concurrency == 4
    assert m.args == {"suffix": IR.Literal("?")}
    load, inner, none = (graph.node_by_id[i] for i in ("stamp_2", "stamp_3", "stamp_4"))
    assert load.guard == IR.Guard("when_1", True) and none.guard == IR.Guard("when_1", False)
    assert inner.guard == IR.Guard("when_2", True)
    assert graph.branch_by_id["when_2"].guard == IR.Guard("when_1", True)
    cond = graph.branch_by_id["when_1"].condition
    assert cond == IR.AllOf((IR.Compare(IR.Ref("fetch", ("count",)), ">", 0),
                             IR.Not(IR.Compare(IR.Ref("fetch", ("count",)), "==", 7))))
    assert isinstance(graph.node_by_id["wait"], IR.WaitNode) and graph.node_by_id["wait"].after == ("stamp",)
    sub = graph.node_by_id["child"]
    assert isinstance(sub, IR.SubPipelineNode) and sub.after == ("wait",)
    assert set(graph.subpipelines) == {"child"} and graph.subpipelines["child"].tasks["stamp"]
    assert graph.tasks["fetch"].tags == {"owner": "team", "cost-center": "42"}  # task tags extend the pipeline's


def test_catch_handler_becomes_a_task() -> None:
    @pipeline
    def p():
        return risky(1)

    graph = p.ir
    assert graph.tasks["risky"].catch == IR.CatchSpec("recover", ("ValueError",))
    assert "recover" in graph.tasks


def test_handles_outside_a_pipeline_are_refused() -> None:
    leaked = []

    @pipeline
    def p(day: str):
        leaked.append(fetch(day))

    p.trace()
    with pytest.raises(TraceError, match="outside a pipeline"):
        stamp(leaked[0])
    with pytest.raises(TraceError, match="inside a @pipeline"):
        stamp.map(["a"])
    with pytest.raises(TraceError):
        wait(3)


def test_python_control_flow_on_handles_is_located_error() -> None:
    @pipeline
    def p(day: str):
        raw = fetch(day)
        if raw["count"] > 0:
            stamp(day)

    errors = p.trace().errors
    assert len(errors) == 1
    assert "& | ~" in errors[0].message and errors[0].location.line == p.fn.__code__.co_firstlineno + 3


def test_iterating_a_handle_suggests_map() -> None:
    @pipeline
    def p(day: str):
        for f in fetch(day)["files"]:
            stamp(f)

    assert "task.map" in p.trace().errors[0].message


def test_unknown_option_is_reported() -> None:
    with pytest.raises(StratoError, match="unknown option"):
        task(retries=3)(lambda: None)


def test_error_name_matching_follows_builtin_hierarchy() -> None:
    assert error_matches("FileNotFoundError", ("OSError",))
    assert error_matches("ConnectionResetError", ("ConnectionError",))
    assert not error_matches("ValueError", ("OSError",))
    assert error_matches("Anything", None)
    assert "TimeoutError" in expand_error_names(("OSError",))
    assert expand_error_names(("TaskTimeout",)) == ("TaskTimeout",)


def test_schedule_string_and_pipeline_called_as_python() -> None:
    @pipeline(schedule="*/5 * * * *")
    def p(text: str = "hi"):
        return {"out": stamp(text)}

    assert p.ir.schedule.cron == "*/5 * * * *" and p.ir.schedule.timezone == "UTC"
    assert p() == {"out": "hi!"}
    assert p("yo") == {"out": "yo!"}


def test_otherwise_without_when() -> None:
    @pipeline
    def p():
        with otherwise():
            stamp("x")

    assert "must directly follow" in p.trace().errors[0].message


@task(retry=Retry(max_retries=1, delay=0))
def fallback(error: dict) -> str:
    return "fallback"


@task(catch=Catch(handler=fallback.fn))
def fragile() -> str:
    raise ValueError("no")


def test_a_tasks_function_used_as_a_plain_handler_keeps_the_tasks_options() -> None:
    @pipeline
    def p():
        return {"a": fallback({"error": "x"}), "b": fragile()}

    @pipeline
    def q():
        return {"b": fragile(), "a": fallback({"error": "x"})}

    for definition in (p, q):
        assert definition.ir.tasks["fallback"].retry is not None


def test_traced_refs_hold_final_ids_only() -> None:
    """Values are built once, after ids are final: every Ref names a node of the pipeline by its id."""
    from strato import ir as IR
    from strato import otherwise, pipeline, when

    @pipeline
    def p(day: str):
        first = stamp(day)
        named = stamp.alias("stamp")(first)  # an explicit name takes "stamp"; the earlier call becomes stamp_2
        with when(first["n"] > 1):
            later = stamp.map([first, named["x"]])
        with otherwise():
            stamp({"nested": [first, {"deep": named}]}, wait_for=[named])
        return {"a": later, "b": [named]}

    graph = p.ir
    ids = [n.id for n in graph.nodes]
    assert ids == ["stamp_2", "stamp", "stamp_3", "stamp_4"]
    refs: list[IR.Ref] = []

    def collect(value: IR.Value) -> None:
        if isinstance(value, IR.Ref):
            refs.append(value)
        for child in getattr(value, "items", ()):
            collect(child)
        for _, child in getattr(value, "entries", ()):
            collect(child)

    for node in graph.nodes:
        for value in getattr(node, "args", {}).values():
            collect(value)
        if isinstance(node, IR.MapNode):
            collect(node.items)
    collect(graph.output)
    refs.extend(op for b in graph.branches for op in IR.condition_operands(b.condition) if isinstance(op, IR.Ref))
    assert refs and all(type(r.node) is str and r.node in ids for r in refs)
    assert graph.node_by_id["stamp_4"].after == ("stamp",)
