"""Nested series/parallel structure for targets that can only join branches in blocks.

Step Functions (``Parallel``) and Cloud Workflows (``parallel``) run branches side by side and join
them all at the end; they have no "start when these two finished" for an arbitrary set. So a DAG
becomes a tree of sequences and parallel blocks:

- independent parts (weakly connected components) run in a :class:`Par`;
- a part splits in series at every cut where *all* nodes before it are ancestors of *all* nodes
  after it: such a cut adds no waiting, so series-parallel graphs come out exact;
- a part with no such cut (e.g. the "N": a->c, b->c, b->d) is cut where the fewest (earlier, later)
  pairs that were independent now wait; each such pair is reported as an :class:`ExtraWait` so the
  compiler can warn which tasks now wait longer.

Reachability is kept in Python ints used as bitsets, so a 10,000-node graph stays fast.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import pairwise
from typing import Union


@dataclass(frozen=True)
class Step:
    node: str


@dataclass(frozen=True)
class Seq:
    items: tuple[Block, ...]


@dataclass(frozen=True)
class Par:
    branches: tuple[Block, ...]


Block = Union[Step, Seq, Par]


NAMED_WAITS = 5  # nodes named per extra wait; a dense graph can add thousands


@dataclass(frozen=True)
class ExtraWait:
    """``node`` now also waits for ``count`` nodes it did not depend on, the first of them ``waits_for``."""

    node: str
    waits_for: tuple[str, ...]
    count: int = 0

    def __post_init__(self) -> None:
        if self.count < len(self.waits_for):
            object.__setattr__(self, "count", len(self.waits_for))


def extra_wait_warnings(extra: list[ExtraWait], joins: str, limit: int = 20) -> list[tuple[str, str]]:
    """(node, message) warnings for the extra waits, at most ``limit`` of them plus one that counts the rest.

    ``joins`` says how the target joins branches, e.g. "Step Functions joins parallel branches only at
    their end".
    """
    out = []
    for wait in extra[:limit]:
        names = ", ".join(map(repr, wait.waits_for))
        more = f" and {wait.count - len(wait.waits_for):,} more" if wait.count > len(wait.waits_for) else ""
        out.append((wait.node, f"{joins}: {wait.node!r} now also waits for {names}{more}, which it does not "
                               "depend on"))
    if len(extra) > limit:
        rest = extra[limit:]
        out.append((rest[0].node, f"{joins}: {len(rest):,} more tasks (from {rest[0].node!r}) now also wait for "
                                  "tasks they do not depend on; `strato graph` shows the dependencies"))
    return out


def structure(order: list[str], deps: dict[str, tuple[str, ...]]) -> tuple[Block, list[ExtraWait]]:
    """Structure the DAG ``deps`` (node -> its dependencies); ``order`` is the declaration order."""
    index = {node: i for i, node in enumerate(order)}
    ancestors = _ancestors(order, deps, index)
    builder = _Builder(order, deps, index, ancestors)
    block = builder.build(list(order))
    return block, sorted(builder.extra, key=lambda e: index[e.node])


def _topological(order: list[str], deps: dict[str, tuple[str, ...]]) -> list[str]:
    remaining = {n: len(deps[n]) for n in order}
    users: dict[str, list[str]] = {n: [] for n in order}
    for n in order:
        for d in deps[n]:
            users[d].append(n)
    ready = deque(n for n in order if remaining[n] == 0)
    out: list[str] = []
    while ready:
        n = ready.popleft()
        out.append(n)
        for u in users[n]:
            remaining[u] -= 1
            if remaining[u] == 0:
                ready.append(u)
    if len(out) != len(order):
        raise ValueError("the graph has a cycle")
    return out


def _ancestors(order: list[str], deps: dict[str, tuple[str, ...]], index: dict[str, int]) -> dict[str, int]:
    anc: dict[str, int] = {}
    for node in _topological(order, deps):
        bits = 0
        for d in deps[node]:
            bits |= anc[d] | (1 << index[d])
        anc[node] = bits
    return anc


class _Builder:
    def __init__(self, order: list[str], deps: dict[str, tuple[str, ...]], index: dict[str, int],
                 ancestors: dict[str, int]):
        self.order, self.deps, self.index, self.anc = order, deps, index, ancestors
        self.extra: list[ExtraWait] = []

    def build(self, nodes: list[str]) -> Block:
        if len(nodes) == 1:
            return Step(nodes[0])
        parts = self._components(nodes)
        if len(parts) > 1:
            return Par(tuple(self.build(part) for part in parts))
        return self._series(nodes)

    def _components(self, nodes: list[str]) -> list[list[str]]:
        """Weakly connected components, each in declaration order, ordered by first node."""
        members = set(nodes)
        parent = {n: n for n in nodes}

        def find(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for n in nodes:
            for d in self.deps[n]:
                if d in members:
                    a, b = find(n), find(d)
                    if a != b:
                        parent[a] = b
        groups: dict[str, list[str]] = {}
        for n in nodes:
            groups.setdefault(find(n), []).append(n)
        return sorted(groups.values(), key=lambda g: self.index[g[0]])

    def _series(self, nodes: list[str]) -> Block:
        """Split a connected part in series: at every free cut, else at the cheapest forced cut.

        Iterates down the "after" side, so a long chain of forced cuts makes a flat sequence
        rather than deep recursion.
        """
        items: list[Block] = []
        rest = nodes
        while True:
            topo, depth = self._levels(rest)
            bit = [1 << self.index[n] for n in topo]
            exact = self._free_cuts(topo, bit)
            if exact:
                bounds = [0, *exact, len(topo)]
                items.extend(self.build(topo[a:b]) for a, b in pairwise(bounds))
                break
            k = self._cheapest_cut(topo, depth, bit)
            items.append(self.build(topo[:k]))
            self._record_extra(topo[:k], topo[k:])
            rest = topo[k:]
            parts = self._components(rest) if len(rest) > 1 else [rest]
            if len(parts) > 1 or len(rest) == 1:
                items.append(self.build(rest))
                break
        flat: list[Block] = []
        for item in items:
            flat.extend(item.items if isinstance(item, Seq) else (item,))
        return Seq(tuple(flat))

    def _levels(self, nodes: list[str]) -> tuple[list[str], dict[str, int]]:
        """A topological order sorted by longest-path level, so level cuts are prefixes too."""
        members = set(nodes)
        local = {n: tuple(d for d in self.deps[n] if d in members) for n in nodes}
        topo = _topological(sorted(nodes, key=self.index.__getitem__), local)
        depth: dict[str, int] = {}
        for n in topo:
            depth[n] = max((depth[d] + 1 for d in local[n]), default=0)
        return sorted(topo, key=lambda n: (depth[n], self.index[n])), depth

    def _free_cuts(self, topo: list[str], bit: list[int]) -> list[int]:
        """Cut positions where everything before is an ancestor of everything after."""
        size = len(topo)
        suffix_and = [0] * (size + 1)
        suffix_and[size] = -1
        for k in range(size - 1, -1, -1):
            suffix_and[k] = suffix_and[k + 1] & self.anc[topo[k]]
        exact, prefix = [], 0
        for k in range(1, size):
            prefix |= bit[k - 1]
            if prefix & ~suffix_and[k] == 0:
                exact.append(k)
        return exact

    def _sinks(self, before: list[str]) -> int:
        """Bits of the nodes of ``before`` none of whose descendants is in ``before``."""
        members = 0
        for n in before:
            members |= 1 << self.index[n]
        has_child = 0
        for n in before:
            has_child |= self.anc[n] & members
        return members & ~has_child

    def _cheapest_cut(self, topo: list[str], depth: dict[str, int], bit: list[int]) -> int:
        """Among level boundaries, the cut adding the fewest direct waits (ties: the most balanced).

        Large parts (over 200 nodes) are cut at the middle level boundary: the search costs
        quadratic time per cut, and a balanced cut keeps the nesting shallow.
        """
        bounds = [k for k in range(1, len(topo)) if depth[topo[k]] != depth[topo[k - 1]]] or [len(topo) // 2]
        middle = len(topo) / 2
        if len(topo) > 200:
            return min(bounds, key=lambda k: abs(k - middle))
        best: tuple[int, float, int] | None = None
        for k in bounds:
            sinks = self._sinks(topo[:k])
            cost = sum((sinks & ~self.anc[n]).bit_count() for n in topo[k:])
            if best is None or (cost, abs(k - middle)) < best[:2]:
                best = (cost, abs(k - middle), k)
        return best[2] if best else bounds[0]

    def _record_extra(self, before: list[str], after: list[str]) -> None:
        sinks = self._sinks(before)
        for n in after:
            missing = sinks & ~self.anc[n]
            if missing:
                count, names = missing.bit_count(), list[str]()
                while missing and len(names) < NAMED_WAITS:
                    low = missing & -missing
                    names.append(self.order[low.bit_length() - 1])
                    missing ^= low
                self.extra.append(ExtraWait(n, tuple(names), count))


def nodes_of(block: Block) -> list[str]:
    if isinstance(block, Step):
        return [block.node]
    children = block.items if isinstance(block, Seq) else block.branches
    return [n for child in children for n in nodes_of(child)]
