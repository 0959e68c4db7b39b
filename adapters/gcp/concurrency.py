"""Keeping a compiled workflow within Cloud Workflows' concurrent branches and iterations per execution.

Workflows runs at most 20 parallel branches and iterations at once in one execution, across nested
``parallel`` steps and subworkflow calls (``concurrency_limit`` bounds one step and does not
cascade). The compiler's structure nests parallel steps (series-parallel blocks, groups of at most
10 branches) and maps, so the worst case is computed over the emitted document and, where it is over
the limit, bounded by lowering ``concurrency_limit`` on maps and adding it to parallel steps.

The model is conservative: a branch (or iteration) counts as running while it waits for the parallel
steps nested in it, so the bound holds however the service counts a waiting branch, and nested
queues cannot starve their parents. Where even one branch at a time at every level is over the
limit (parallel steps nested deeper than the limit), compiling fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Steps = list[dict[str, Any]]


class ConcurrencyError(Exception):
    """The structure nests parallel steps too deeply to run within the per-execution limit."""


def _body(step: dict[str, Any]) -> dict[str, Any]:
    ((_, body),) = step.items()
    return body


def _sequential(body: dict[str, Any]) -> list[Steps]:
    """The step lists nested in a non-parallel step (they run one after another)."""
    out: list[Steps] = []
    if isinstance(body.get("steps"), list):
        out.append(body["steps"])
    if isinstance(body.get("try"), dict):
        out.append(body["try"].get("steps", []))
    if isinstance(body.get("except"), dict):
        out.append(body["except"].get("steps", []))
    for condition in body.get("switch", ()) or ():
        if isinstance(condition.get("steps"), list):
            out.append(condition["steps"])
    if isinstance(body.get("for"), dict):
        out.append(body["for"].get("steps", []))
    return out


class Planner:
    """Worst-case concurrency of a workflow document, and the limits that keep it under ``limit``."""

    def __init__(self, document: dict[str, Any], limit: int,
                 on_limit: Callable[[dict[str, Any], int, int | None], None] | None = None):
        self.doc, self.limit = document, limit
        self.on_limit = on_limit or (lambda parallel, new, old: None)
        self.required: dict[str, int] = {}
        self._memo: dict[tuple[str, bool], int] = {}

    # ----------------------------------------------------------------------------- measuring
    def demand(self, steps: Steps, floor: bool = False) -> int:
        """Branches and iterations ``steps`` may run at once (``floor``: with every limit at 1)."""
        return max((self._step(_body(step), floor) for step in steps), default=0)

    def subworkflow(self, name: str, floor: bool = False) -> int:
        key = (name, floor)
        if key not in self._memo:
            self._memo[key] = self.demand(self.doc[name].get("steps", []), floor)
        return self._memo[key]

    def _step(self, body: dict[str, Any], floor: bool) -> int:
        parallel = body.get("parallel")
        if isinstance(parallel, dict):
            if "branches" in parallel:
                costs = sorted((1 + self.demand(self._branch(b), floor) for b in parallel["branches"]), reverse=True)
                return sum(costs[:1 if floor else parallel.get("concurrency_limit", len(costs))])
            inner = 1 + self.demand(parallel["for"].get("steps", []), floor)
            return (1 if floor else parallel.get("concurrency_limit", self.limit)) * inner
        call = body.get("call")
        if isinstance(call, str) and call in self.doc:
            return self.subworkflow(call, floor)
        return max((self.demand(steps, floor) for steps in _sequential(body)), default=0)

    @staticmethod
    def _branch(branch: dict[str, Any]) -> Steps:
        ((_, inner),) = branch.items()
        return inner.get("steps", [])

    # ------------------------------------------------------------------------------ bounding
    def plan(self, order: list[str]) -> None:
        """Bound ``main`` to the limit, then each subworkflow (callers first) to what its callers leave."""
        for name in order:
            budget = self.limit if name == "main" else self.required.get(name, self.limit)
            steps = self.doc[name].get("steps", [])
            if self.demand(steps, floor=True) > budget:
                raise ConcurrencyError(name)
            self.bound(steps, budget)
            self._memo.clear()

    def bound(self, steps: Steps, budget: int) -> None:
        for step in steps:
            self._bound_step(_body(step), budget)

    def _bound_step(self, body: dict[str, Any], budget: int) -> None:
        parallel = body.get("parallel")
        call = body.get("call")
        if isinstance(parallel, dict) and "branches" in parallel:
            self._bound_branches(parallel, budget)
        elif isinstance(parallel, dict):
            steps = parallel["for"].get("steps", [])
            per_item = 1 + self.demand(steps, floor=True)
            old = parallel.get("concurrency_limit")
            new = min(old or self.limit, budget // per_item)
            if new != old:
                parallel["concurrency_limit"] = new
                self.on_limit(parallel, new, old)
            self.bound(steps, budget // new - 1)
        elif isinstance(call, str) and call in self.doc:
            self.required[call] = min(self.required.get(call, self.limit), budget)
        else:
            for steps in _sequential(body):
                self.bound(steps, budget)

    def _bound_branches(self, parallel: dict[str, Any], budget: int) -> None:
        branches = [self._branch(b) for b in parallel["branches"]]
        want = [self.demand(b) for b in branches]
        least = [self.demand(b, floor=True) for b in branches]
        count = len(branches)
        if sum(1 + w for w in want) <= budget and "concurrency_limit" not in parallel:
            shares = want
        elif sum(1 + m for m in least) <= budget:  # all branches at once, inner limits shared out fairly
            shares, spare = list(least), budget - sum(1 + m for m in least)
            while spare > 0:
                open_ = [i for i in range(count) if shares[i] < want[i]]
                if not open_:
                    break
                i = min(open_, key=lambda k: (shares[k], k))
                shares[i] += 1
                spare -= 1
        else:  # only some branches at a time
            at_once = min(count, budget // (1 + max(least)))
            old = parallel.get("concurrency_limit")
            parallel["concurrency_limit"] = at_once
            self.on_limit(parallel, at_once, old)
            shares = [min(w, budget // at_once - 1) for w in want]
        for steps, share in zip(branches, shares, strict=True):
            self.bound(steps, share)


def call_order(document: dict[str, Any]) -> list[str]:
    """``main`` and the subworkflows it reaches, every caller before its callees."""
    graph: dict[str, list[str]] = {}

    def calls(steps: Steps, out: list[str]) -> None:
        for step in steps:
            body = _body(step)
            call = body.get("call")
            if isinstance(call, str) and call in document and call not in out:
                out.append(call)
            parallel = body.get("parallel")
            if isinstance(parallel, dict):
                inner = [Planner._branch(b) for b in parallel.get("branches", ())] or [parallel["for"]["steps"]]
            else:
                inner = _sequential(body)
            for steps_ in inner:
                calls(steps_, out)

    for name, sub in document.items():
        graph[name] = []
        calls(sub.get("steps", []), graph[name])
    seen: set[str] = set()
    post: list[str] = []

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for callee in graph.get(name, []):
            visit(callee)
        post.append(name)

    visit("main")
    return list(reversed(post))
