"""What the orchestrator itself reads of each result: the paths kept inline when a result is offloaded.

Conditions (``Choice``, ``switch``, ``if``) and map items are evaluated by the cloud's state machine,
not by a shim, so the parts of a result they read must stay in the envelope. One analysis for every
cloud, so a pipeline branches the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strato import ir

Paths = dict[str, list[list[Any]]]  # node id -> paths into its result (of each item's, for a map)


def refs_in(value: ir.Value | ir.Ref | ir.Param) -> Iterator[ir.Ref]:
    """The references inside a value (a list or dict of references counts each)."""
    if isinstance(value, ir.Ref):
        yield value
    elif isinstance(value, ir.ListOf):
        for item in value.items:
            yield from refs_in(item)
    elif isinstance(value, ir.DictOf):
        for _, item in value.entries:
            yield from refs_in(item)


def read_inline(pipeline: ir.PipelineIR) -> Paths:
    """Per node, the object-key paths of its result that conditions and map items read, sorted.

    For a map node the path is into each item's result (the list index is dropped): an element's
    field read by a condition stays inline in every element's envelope. ``[]`` means the whole value
    is read (a condition on the result itself, a map over a whole list of results), so it must not
    be replaced by an envelope at that level.
    """
    nodes = pipeline.node_by_id
    found: dict[str, set[tuple[Any, ...]]] = {}

    def note(ref: ir.Ref) -> None:
        path = list(ref.path)
        if isinstance(nodes.get(ref.node), ir.MapNode):
            path = path[1:] if path and isinstance(path[0], int) and not isinstance(path[0], bool) else []
        prefix: list[Any] = []
        for part in path:
            if not isinstance(part, str):
                break
            prefix.append(part)
        found.setdefault(ref.node, set()).add(tuple(prefix))

    for branch in pipeline.branches:
        for operand in ir.condition_operands(branch.condition):
            for ref in refs_in(operand):
                note(ref)
    for node in pipeline.nodes:
        if isinstance(node, ir.MapNode):
            for ref in refs_in(node.items):
                note(ref)
    return {node: [list(path) for path in sorted(paths, key=repr)] for node, paths in sorted(found.items())}
