"""DAG algorithms over the IR: dependencies, cycles, order, and rendering as Mermaid or DOT."""

from __future__ import annotations

from collections.abc import Iterable

from . import ir


def guard_chain(pipeline: ir.PipelineIR, guard: ir.Guard | None) -> Iterable[ir.Guard]:
    """The guard and every enclosing guard, innermost first."""
    while guard is not None:
        yield guard
        branch = pipeline.branch_by_id.get(guard.branch)
        guard = branch.guard if branch else None


def guard_reads(pipeline: ir.PipelineIR, guard: ir.Guard | None) -> set[str]:
    """Node ids the conditions of a guard (and its enclosing guards) read."""
    reads: set[str] = set()
    for g in guard_chain(pipeline, guard):
        branch = pipeline.branch_by_id.get(g.branch)
        if branch is not None:
            reads.update(op.node for op in ir.condition_operands(branch.condition) if isinstance(op, ir.Ref))
    return reads


def data_inputs(node: ir.Node) -> set[str]:
    """Node ids whose results a node's arguments read."""
    found: set[str] = set()
    if isinstance(node, ir.MapNode):
        found.update(ir.value_refs(node.items))
    for value in getattr(node, "args", {}).values():
        found.update(ir.value_refs(value))
    return found


def dependencies(pipeline: ir.PipelineIR) -> dict[str, tuple[str, ...]]:
    """Every node's direct dependencies: data it reads, ``wait_for``, and what its guard reads.

    Computed once per IR and shared: callers must not mutate the result.
    """
    return pipeline.dependencies


def compute_dependencies(pipeline: ir.PipelineIR) -> dict[str, tuple[str, ...]]:
    deps = {}
    guard_cache: dict[ir.Guard | None, set[str]] = {None: set()}
    for node in pipeline.nodes:
        if node.guard not in guard_cache:
            guard_cache[node.guard] = guard_reads(pipeline, node.guard)
        found = data_inputs(node) | set(node.after) | guard_cache[node.guard]
        found.discard(node.id)
        deps[node.id] = tuple(sorted(found))
    return deps


def find_cycle(deps: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle as a list of node ids (first repeated at the end), or None."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(deps, white)
    for start in deps:
        if color[start] != white:
            continue
        stack: list[tuple[str, Iterable[str]]] = [(start, iter(deps[start]))]
        path = [start]
        color[start] = grey
        while stack:
            node, children = stack[-1]
            advanced = False
            for child in children:
                if child not in color:
                    continue
                if color[child] == grey:
                    return path[path.index(child):] + [child]
                if color[child] == white:
                    color[child] = grey
                    stack.append((child, iter(deps[child])))
                    path.append(child)
                    advanced = True
                    break
            if not advanced:
                color[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(deps: dict[str, tuple[str, ...]]) -> list[str]:
    """Kahn's algorithm, stable in declaration order. Assumes no cycle."""
    remaining = {n: len([d for d in ds if d in deps]) for n, ds in deps.items()}
    users: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        for d in ds:
            if d in users:
                users[d].append(n)
    ready = [n for n in deps if remaining[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for u in users[n]:
            remaining[u] -= 1
            if remaining[u] == 0:
                ready.append(u)
    return order


# ------------------------------------------------------------------------------------ rendering
def _label(pipeline: ir.PipelineIR, node: ir.Node) -> str:
    if isinstance(node, ir.TaskNode):
        return node.id if node.id == node.task else f"{node.id} ({node.task})"
    if isinstance(node, ir.MapNode):
        limit = f", max {node.max_concurrency}" if node.max_concurrency else ""
        return f"{node.id}: map {node.task}{limit}"
    if isinstance(node, ir.WaitNode):
        return f"{node.id}: wait {node.seconds:g}s"
    return f"{node.id}: pipeline {node.pipeline}"


def _condition_text(cond: ir.Condition) -> str:
    if isinstance(cond, ir.Compare):
        left = cond.left
        base = left.node if isinstance(left, ir.Ref) else left.name
        path = "".join(f"[{p!r}]" for p in left.path)
        import json

        return f"{base}{path} {cond.op} {json.dumps(cond.right)}"
    if isinstance(cond, ir.Not):
        return f"not ({_condition_text(cond.item)})"
    joiner = " and " if isinstance(cond, ir.AllOf) else " or "
    return joiner.join(f"({_condition_text(c)})" for c in cond.items)


def _edges(pipeline: ir.PipelineIR) -> list[tuple[str, str, str]]:
    """(source, target, style) with style data | order (wait_for, or a condition the node's block reads)."""
    edges = []
    for node in pipeline.nodes:
        data = data_inputs(node)
        for dep in sorted(data):
            edges.append((dep, node.id, "data"))
        for dep in sorted((set(node.after) | guard_reads(pipeline, node.guard)) - data):
            edges.append((dep, node.id, "order"))
    return edges


def _guard_text(pipeline: ir.PipelineIR, guard: ir.Guard | None) -> str:
    parts = []
    for g in reversed(list(guard_chain(pipeline, guard))):
        text = _condition_text(pipeline.branch_by_id[g.branch].condition)
        parts.append(text if g.arm else f"not ({text})")
    return " and ".join(parts)


def to_mermaid(pipeline: ir.PipelineIR) -> str:
    lines = ["flowchart TD"]
    ids = {node.id: f"n{i}" for i, node in enumerate(pipeline.nodes)}
    for node in pipeline.nodes:
        label = _label(pipeline, node).replace('"', "'")
        if node.guard is not None:
            label += f"<br/>when {_guard_text(pipeline, node.guard)}".replace('"', "'")
        shape = ("[[", "]]") if isinstance(node, ir.MapNode) else ("([", "])") if isinstance(node, ir.WaitNode) else (
            "[/", "/]") if isinstance(node, ir.SubPipelineNode) else ("[", "]")
        lines.append(f'    {ids[node.id]}{shape[0]}"{label}"{shape[1]}')
    for source, target, style in _edges(pipeline):
        arrow = "-->" if style == "data" else "-.->"
        lines.append(f"    {ids[source]} {arrow} {ids[target]}")
    return "\n".join(lines) + "\n"


def to_dot(pipeline: ir.PipelineIR) -> str:
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [f"digraph {quote(pipeline.name)} {{", "    rankdir=TB;", "    node [shape=box, fontname=Helvetica];"]
    for node in pipeline.nodes:
        label = _label(pipeline, node)
        if node.guard is not None:
            label += f"\\nwhen {_guard_text(pipeline, node.guard)}"
        shape = {"map": "box3d", "wait": "ellipse", "pipeline": "component"}.get(node.kind, "box")
        label = quote(label).replace("\\\\n", "\\n")  # keep DOT's line breaks
        lines.append(f"    {quote(node.id)} [label={label}, shape={shape}];")
    for source, target, style in _edges(pipeline):
        attrs = "" if style == "data" else " [style=dashed]"
        lines.append(f"    {quote(source)} -> {quote(target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"
