"""Series-parallel structuring: exact where the graph allows, fewest extra waits otherwise."""

from __future__ import annotations

import random

from strato.adapters.structure import ExtraWait, Par, Seq, Step, nodes_of, structure


def implied_waits(block) -> set[tuple[str, str]]:
    """(later, earlier) pairs the block makes wait: every node of a later sequence item waits for earlier ones."""
    out: set[tuple[str, str]] = set()
    if isinstance(block, Seq):
        seen: list[str] = []
        for item in block.items:
            for n in nodes_of(item):
                out.update((n, e) for e in seen)
            seen.extend(nodes_of(item))
    children = () if isinstance(block, Step) else block.items if isinstance(block, Seq) else block.branches
    for child in children:
        out |= implied_waits(child)
    return out


def closure(deps: dict[str, tuple[str, ...]]) -> set[tuple[str, str]]:
    anc: dict[str, set[str]] = {}

    def visit(n: str) -> set[str]:
        if n not in anc:
            anc[n] = set()
            for d in deps[n]:
                anc[n] |= {d} | visit(d)
        return anc[n]

    return {(n, a) for n in deps for a in visit(n)}


def check(deps: dict[str, tuple[str, ...]]) -> tuple[object, list[ExtraWait], set[tuple[str, str]]]:
    order = list(deps)
    block, extra = structure(order, deps)
    assert sorted(nodes_of(block)) == sorted(order)
    waits, needed = implied_waits(block), closure(deps)
    assert needed <= waits, "a dependency is not respected"
    return block, extra, waits - needed


def test_series_parallel_graphs_are_exact() -> None:
    diamond = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
    block, extra, added = check(diamond)
    assert block == Seq((Step("a"), Par((Step("b"), Step("c"))), Step("d")))
    assert extra == [] and added == set()
    chains = {"a1": (), "a2": ("a1",), "b1": (), "b2": ("b1",), "j": ("a2", "b2")}
    block, extra, added = check(chains)
    assert block == Seq((Par((Seq((Step("a1"), Step("a2"))), Seq((Step("b1"), Step("b2"))))), Step("j")))
    assert added == set()


def test_the_n_shape_gets_one_extra_wait_reported() -> None:
    n_shape = {"a": (), "b": (), "c": ("a", "b"), "d": ("b",)}
    _, extra, added = check(n_shape)
    assert len(added) == 1
    assert extra == [ExtraWait(*next(iter(added))[:1], (next(iter(added))[1],))]


def test_random_dags_respect_dependencies_and_report_every_extra_wait() -> None:
    rng = random.Random(7)
    for _ in range(200):
        size = rng.randint(1, 12)
        names = [f"n{i}" for i in range(size)]
        deps = {n: tuple(sorted({names[j] for j in range(i) if rng.random() < 0.3})) for i, n in enumerate(names)}
        _, extra, added = check(deps)
        reported = {(e.node, w) for e in extra for w in e.waits_for}
        assert reported <= added
        assert {n for n, _ in added} == {e.node for e in extra}


def test_large_graph_is_fast() -> None:
    import time

    deps = {f"n{i}": ((f"n{i - 1}",) if i % 50 else ()) + ((f"n{i - 7}",) if i % 3 == 0 and i > 7 else ())
            for i in range(5000)}
    start = time.perf_counter()
    check_block, _ = structure(list(deps), deps)
    assert time.perf_counter() - start < 30  # a guard against quadratic blow-up; bench/ measures speed
    assert len(nodes_of(check_block)) == 5000
