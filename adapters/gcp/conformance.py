"""What Cloud Workflows refuses to deploy, checked on a definition before it leaves this machine.

The interpreter (``strato.adapters.gcp.interpreter``) runs the same checks when a definition is
loaded, so an emulated run never accepts what the service would refuse; the compiler can call
:func:`check_workflow` on what it renders.

Limits, from the quotas page's "Resource limits"/"System limits" table
(https://cloud.google.com/workflows/quotas):

* source code size: 128 KB (``MAX_SOURCE_BYTES``, the UTF-8 bytes of the YAML or JSON as deployed);
* expression length: 400 characters (``MAX_EXPRESSION_CHARS``). The page does not say whether the
  ``${`` and ``}`` count; counting the whole ``${...}`` string is the stricter reading;
* parallel nesting depth: 2 (``MAX_PARALLEL_DEPTH``), a parallel step inside a branch or iteration of
  another; a third level is refused. Nesting through a subworkflow call is only known at run time
  (the service raises ``ParallelNestingError`` then); here a call inside a parallel step counts the
  callee's own nesting, following the call graph, so that is refused up front as well;
* branches per parallel step: 10 (``MAX_BRANCHES``);
* assignments per assign step: 50 (``MAX_ASSIGNMENTS``);
* conditions per switch step: 50 (``MAX_CONDITIONS``).

Step names follow the syntax reference (https://cloud.google.com/workflows/docs/reference/syntax/steps):
a step name is a YAML/JSON key made of letters, digits and underscores that does not start with a digit;
the engine refuses any other name, and so does this check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MAX_SOURCE_BYTES = 128 * 1024
MAX_EXPRESSION_CHARS = 400
MAX_PARALLEL_DEPTH = 2
MAX_BRANCHES = 10
MAX_ASSIGNMENTS = 50
MAX_CONDITIONS = 50
STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EXPRESSION = re.compile(r"\$\{.*\}\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Violation:
    """One limit a definition passes: which limit, where (subworkflow/step path), and by how much."""

    limit: str
    where: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.detail}"


def check_workflow(source: dict[str, Any] | list[Any] | str | bytes) -> list[Violation]:
    """Every deploy-time limit the definition passes, in document order (empty when it deploys)."""
    out: list[Violation] = []
    if isinstance(source, str | bytes):
        raw = source.encode("utf-8") if isinstance(source, str) else source
        if len(raw) > MAX_SOURCE_BYTES:
            out.append(Violation("source_size", "workflow", f"the source is {len(raw):,} bytes, over the "
                                                            f"{MAX_SOURCE_BYTES:,} Cloud Workflows deploys"))
        document: Any = _load(raw.decode("utf-8"))
    else:
        document = source
        size = len(json.dumps(source, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_SOURCE_BYTES:  # compact JSON: the smallest source this document can be deployed as
            out.append(Violation("source_size", "workflow", f"the source is at least {size:,} bytes, over "
                                                            f"the {MAX_SOURCE_BYTES:,} Cloud Workflows deploys"))
    if isinstance(document, list):
        document = {"main": {"steps": document}}
    if not isinstance(document, dict):
        return out
    subs = {name: body.get("steps") for name, body in document.items() if isinstance(body, dict)}
    for name, steps in subs.items():
        out.extend(_check_steps(steps, name))
    depths = parallel_depths(subs)
    for name, steps in subs.items():
        for where, depth in _parallel_nesting(steps, name, depths, 0):
            if depth > MAX_PARALLEL_DEPTH:
                out.append(Violation("parallel_nesting", where, f"parallel steps nest {depth} deep, over the "
                                                                f"{MAX_PARALLEL_DEPTH} levels Cloud Workflows allows"))
                break
    return out


def expression_too_long(value: Any) -> int | None:
    """The length of a ``${}`` string over MAX_EXPRESSION_CHARS, else None."""
    if isinstance(value, str) and _EXPRESSION.match(value) and len(value) > MAX_EXPRESSION_CHARS:
        return len(value)
    return None


def parallel_depths(subs: dict[str, Any]) -> dict[str, int]:
    """How deep parallel steps nest inside each subworkflow, callees' nesting included."""
    memo: dict[str, int] = {}

    def depth_of(name: str, visiting: frozenset[str]) -> int:
        if name in memo:
            return memo[name]
        if name not in subs or name in visiting:
            return 0  # a library call, or recursion whose depth is counted on the way in already
        best = 0
        for _, depth in _nesting(subs.get(name), name, lambda callee: depth_of(callee, visiting | {name}), 0):
            best = max(best, depth)
        memo[name] = best
        return best

    for sub in subs:
        depth_of(sub, frozenset())
    return memo


def _parallel_nesting(steps: Any, where: str, depths: dict[str, int], level: int) -> Iterator[tuple[str, int]]:
    return _nesting(steps, where, lambda callee: depths.get(callee, 0), level)


def _nesting(steps: Any, where: str, callee_depth: Any, level: int) -> Iterator[tuple[str, int]]:
    """(place, nesting depth) for each parallel step and each call made inside one."""
    for name, body in _named_steps(steps):
        here = f"{where}.{name}"
        if not isinstance(body, dict):
            continue
        call = body.get("call")
        if isinstance(call, str) and level > 0:
            yield here, level + callee_depth(call)
        for inner in _inner_step_lists(body):
            yield from _nesting(inner, here, callee_depth, level)
        par = body.get("parallel")
        if isinstance(par, dict):
            yield here, level + 1
            for inner in _parallel_step_lists(par):
                yield from _nesting(inner, here, callee_depth, level + 1)


def _check_steps(steps: Any, where: str) -> Iterator[Violation]:
    for name, body in _named_steps(steps):
        here = f"{where}.{name}"
        if not STEP_NAME.match(name):
            yield Violation("step_name", here, f"{name!r} is not a valid step name (letters, digits and "
                                               f"underscores, not starting with a digit)")
        if not isinstance(body, dict):
            continue
        assign = body.get("assign")
        if isinstance(assign, list) and len(assign) > MAX_ASSIGNMENTS:
            yield Violation("assignments", here, f"{len(assign)} assignments, over the {MAX_ASSIGNMENTS} an "
                                                 f"assign step may hold")
        switch = body.get("switch")
        if isinstance(switch, list) and len(switch) > MAX_CONDITIONS:
            yield Violation("conditions", here, f"{len(switch)} conditions, over the {MAX_CONDITIONS} a switch "
                                                f"may hold")
        par = body.get("parallel")
        if isinstance(par, dict) and isinstance(par.get("branches"), list) and len(par["branches"]) > MAX_BRANCHES:
            yield Violation("branches", here, f"{len(par['branches'])} branches, over the {MAX_BRANCHES} a "
                                              f"parallel step may hold")
        for length in _long_expressions(body, inner_steps=False):
            yield Violation("expression_length", here, f"an expression of {length:,} characters, over the "
                                                       f"{MAX_EXPRESSION_CHARS} Cloud Workflows allows")
        for inner in _inner_step_lists(body):
            yield from _check_steps(inner, here)
        if isinstance(par, dict):
            for inner in _parallel_step_lists(par):
                yield from _check_steps(inner, here)


def _long_expressions(value: Any, *, inner_steps: bool = True) -> Iterator[int]:
    """Lengths of over-long expressions in a step body, not descending into nested step lists."""
    length = expression_too_long(value)
    if length is not None:
        yield length
    elif isinstance(value, dict):
        for key, item in value.items():
            if not inner_steps and key in ("steps", "parallel", "try", "except"):
                if key == "parallel" and isinstance(item, dict):
                    for k in ("concurrency_limit", "shared"):
                        yield from _long_expressions(item.get(k))
                    loop = item.get("for")
                    if isinstance(loop, dict):
                        for k in ("in", "range"):
                            yield from _long_expressions(loop.get(k))
                elif key == "try" and isinstance(item, dict) and "steps" not in item:
                    yield from _long_expressions(item, inner_steps=False)
                continue
            if not inner_steps and key == "switch" and isinstance(item, list):
                for cond in item:
                    if isinstance(cond, dict):
                        yield from _long_expressions({k: v for k, v in cond.items() if k != "steps"},
                                                     inner_steps=False)
                continue
            if not inner_steps and key == "for" and isinstance(item, dict):
                yield from _long_expressions({k: v for k, v in item.items() if k != "steps"})
                continue
            yield from _long_expressions(item)
    elif isinstance(value, list):
        for item in value:
            yield from _long_expressions(item)


def _named_steps(steps: Any) -> Iterator[tuple[str, Any]]:
    if not isinstance(steps, list):
        return
    for item in steps:
        if isinstance(item, dict) and len(item) == 1:
            ((name, body),) = item.items()
            yield str(name), body


def _inner_step_lists(body: dict[str, Any]) -> Iterator[Any]:
    """Step lists nested in a step body, other than a parallel step's."""
    if "steps" in body:
        yield body["steps"]
    loop = body.get("for")
    if isinstance(loop, dict):
        yield loop.get("steps")
    switch = body.get("switch")
    if isinstance(switch, list):
        for cond in switch:
            if isinstance(cond, dict) and "steps" in cond:
                yield cond["steps"]
    tried = body.get("try")
    if isinstance(tried, dict):
        if "steps" in tried:
            yield tried["steps"]
        else:
            yield from _inner_step_lists(tried)
    exc = body.get("except")
    if isinstance(exc, dict):
        yield exc.get("steps")


def _parallel_step_lists(par: dict[str, Any]) -> Iterator[Any]:
    branches = par.get("branches")
    if isinstance(branches, list):
        for branch in branches:
            if isinstance(branch, dict) and len(branch) == 1:
                (body,) = branch.values()
                if isinstance(body, dict):
                    yield body.get("steps")
    loop = par.get("for")
    if isinstance(loop, dict):
        yield loop.get("steps")


def _load(text: str) -> Any:
    try:
        import yaml
    except ModuleNotFoundError:  # pragma: no cover - PyYAML comes with the gcp extra
        return json.loads(text)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return None  # not YAML: the interpreter's loader reports where
