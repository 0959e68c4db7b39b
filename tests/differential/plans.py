"""Random valid pipelines as plans (plain data, so Hypothesis can shrink them) and how to build one.

A plan is a list of steps; a step reads earlier steps' results by position. Steps: ``make`` a record
(sometimes large enough to be offloaded), ``combine`` two results, call a ``fragile`` task (failing on
multiples of 3, with or without a catch), ``map`` over a literal list (maybe empty) or a computed one,
and ``when`` blocks with ``otherwise``, nested, on conditions combined with ``& | ~`` that read keys of
any characters.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from strato import otherwise, when
from strato.dsl.definitions import PipelineDefinition

from .fuzz_tasks import ODD, combine, fragile, fragile_caught, make, square

SIZES = (0, 0, 0, 12, 90_000, 230_000)  # bytes of padding: most small, some to offload

Step = tuple


def _condition(refs: int) -> st.SearchStrategy[Any]:
    compare = st.tuples(st.just("cmp"), st.integers(0, refs - 1),
                        st.sampled_from([("n", ">", 300), ("n", "<=", 600), (ODD, "==", True), ("s", "==", "")]))
    return st.recursive(compare, lambda inner: st.one_of(
        st.tuples(st.just("and"), inner, inner), st.tuples(st.just("or"), inner, inner),
        st.tuples(st.just("not"), inner)), max_leaves=3)


@st.composite
def plans(draw: st.DrawFn, max_steps: int = 8, depth: int = 0, refs: int = 0) -> list[Step]:
    steps: list[Step] = []
    count = draw(st.integers(1 if depth else 2, max_steps))
    for _ in range(count):
        available = refs + _produced(steps)
        kinds = ["make"] + (["combine", "fragile", "map"] if available else []) + (
            ["when"] if available and depth < 2 else [])
        kind = draw(st.sampled_from(kinds))
        ref = st.integers(0, max(available - 1, 0))
        if kind == "make":
            steps.append(("make", draw(st.integers(0, 999)), draw(st.sampled_from(SIZES))))
        elif kind == "combine":
            steps.append(("combine", draw(ref), draw(ref)))
        elif kind == "fragile":
            steps.append(("fragile", draw(ref), draw(st.booleans())))
        elif kind == "map":
            items = draw(st.one_of(st.lists(st.integers(0, 50), max_size=5), ref.map(lambda i: ("of", i))))
            steps.append(("map", items, draw(st.integers(0, 3))))
        else:
            cond = draw(_condition(available))
            then = draw(plans(max_steps=3, depth=depth + 1, refs=available))
            orelse = draw(st.one_of(st.none(), plans(max_steps=2, depth=depth + 1,
                                                     refs=available + _produced(then))))
            steps.append(("when", cond, then, orelse))
    return steps


def _produced(steps: list[Step]) -> int:
    total = 0
    for step in steps:
        if step[0] == "when":
            total += _produced(step[2]) + (_produced(step[3]) if step[3] is not None else 0)
        else:
            total += 1
    return total


def build(plan: list[Step], name: str = "fuzzed") -> PipelineDefinition:
    """The pipeline a plan describes; its output names every result (keys of any characters)."""

    def body() -> Any:
        handles: list[Any] = []
        _run(plan, handles)
        return {f"r{i} {ODD}": h for i, h in enumerate(handles)}

    return PipelineDefinition(body, name=name)


def _run(steps: list[Step], handles: list[Any]) -> None:
    for step in steps:
        kind = step[0]
        if kind == "make":
            handles.append(make(step[1], step[2]))
        elif kind == "combine":
            handles.append(combine(handles[step[1]], handles[step[2]]))
        elif kind == "fragile":
            handles.append((fragile_caught if step[2] else fragile)(handles[step[1]]))
        elif kind == "map":
            items = handles[step[1][1]]["items"] if isinstance(step[1], tuple) else step[1]
            handles.append(square.map(items, bias=step[2]))
        else:
            with when(_cond(step[1], handles)):
                _run(step[2], handles)
            if step[3] is not None:
                with otherwise():
                    _run(step[3], handles)


def _cond(cond: Any, handles: list[Any]) -> Any:
    if cond[0] == "cmp":
        key, op, literal = cond[2]
        value = handles[cond[1]][key]
        return {">": value > literal, "<=": value <= literal, "==": value == literal}[op]
    if cond[0] == "and":
        return _cond(cond[1], handles) & _cond(cond[2], handles)
    if cond[0] == "or":
        return _cond(cond[1], handles) | _cond(cond[2], handles)
    return ~_cond(cond[1], handles)
