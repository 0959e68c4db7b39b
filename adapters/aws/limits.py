"""Step Functions' limits, as the compiler keeps a pipeline within them.

A definition may be at most 1 MB and an execution's history at most 25,000 events
(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html). The compiler measures
what each block would add (states and their bytes, history events) and moves consecutive parts of a
pipeline that would not fit into child state machines, run with ``startExecution.sync:2``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strato import ir
from strato.errors import Diagnostic

from ..structure import Block, Par, Seq, Step, nodes_of
from .naming import machine_ref, state_name

if TYPE_CHECKING:
    from .compiler import Compiled

MAX_DEFINITION_BYTES = 1_048_576
MAX_HISTORY_EVENTS = 25_000
# What one state machine may hold before parts of the pipeline move to child state machines: under
# the limits, with room for the states around them.
PART_EVENTS = 20_000
PART_BYTES = 800_000  # the estimate runs a few percent under the deployed bytes

MAX_INTRINSIC_NESTING = 10  # https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html
MAX_BRANCHES = 256  # per Parallel state: merging them with the state's results nests 9 deep


def chunked(block: Par) -> Par:
    """``block`` with at most MAX_BRANCHES branches, the rest grouped into nested parallels."""
    branches = block.branches
    while len(branches) > MAX_BRANCHES:
        chunks = [branches[i:i + MAX_BRANCHES] for i in range(0, len(branches), MAX_BRANCHES)]
        branches = tuple(chunk[0] if len(chunk) == 1 else Par(chunk) for chunk in chunks)
    return block if branches is block.branches else Par(branches)


def branch_nodes(branch: Block | PartCall) -> list[str]:
    """The nodes a block runs, including those of the parts it calls."""
    if isinstance(branch, PartCall):
        return list(branch.nodes)
    if isinstance(branch, Step):
        return [branch.node]
    children = branch.items if isinstance(branch, Seq) else branch.branches
    return [n for child in children for n in branch_nodes(child)]





def to_json(definition: dict[str, Any]) -> str:
    """The definition as written to files: indented for people."""
    return json.dumps(definition, indent=2, ensure_ascii=False) + "\n"


def to_compact_json(definition: dict[str, Any]) -> str:
    """The definition as deployed; Step Functions' 1 MB limit applies to these bytes."""
    return json.dumps(definition, separators=(",", ":"), ensure_ascii=False)


def in_run_order(states: dict[str, Any], start: str) -> dict[str, Any]:
    """States listed in the order a run reaches them (depth first), so the file reads top to bottom."""
    ordered: dict[str, Any] = {}
    stack = [start]
    while stack:
        name = stack.pop()
        if name in ordered or name not in states:
            continue
        state = ordered[name] = states[name]
        following = [state.get("Next"), *(c["Next"] for c in state.get("Choices", ())), state.get("Default"),
                     *(c["Next"] for c in state.get("Catch", ()))]
        stack.extend(reversed([n for n in following if n]))
    ordered.update((name, state) for name, state in states.items() if name not in ordered)
    return ordered


@dataclass(frozen=True)
class PartCall:
    """A block moved to a child state machine, in the place it runs, with the nodes it runs."""

    machine: str
    nodes: tuple[str, ...] = ()


class Limits:
    """The part of the state machine builder that measures blocks and splits them into parts."""

    p: ir.PipelineIR
    out: Compiled
    events: int
    _costs: dict[int, tuple[Block, tuple[int, int]]]

    def _emit(self, block: Block, states: dict[str, Any], next_state: str | None) -> str:
        raise NotImplementedError  # the builder's

    def _parallel(self, block: Par, states: dict[str, Any], next_state: str | None) -> str:
        raise NotImplementedError  # the builder's

    def _parallel_frame(self, block: Par, next_state: str | None
                        ) -> tuple[str, dict[str, Any], list[tuple[dict[str, Any], str | None]]]:
        raise NotImplementedError  # the builder's

    def _own_results(self, nodes: list[str]) -> dict[str, Any]:
        raise NotImplementedError  # the builder's

    @staticmethod
    def _then(state: dict[str, Any], next_state: str | None) -> dict[str, Any]:
        raise NotImplementedError  # the builder's

    def _check_limits(self, definition: dict[str, Any]) -> None:
        size = len(to_compact_json(definition).encode())
        subject = f"pipeline {self.p.name!r} (aws)"
        if size > MAX_DEFINITION_BYTES:
            self.out.errors.append(Diagnostic(
                f"the state machine definition is {size:,} bytes, over Step Functions' 1 MB; split the pipeline "
                "into sub-pipelines", self.p.location, subject))
        if self.events > MAX_HISTORY_EVENTS:
            self.out.errors.append(Diagnostic(
                f"a run would write about {self.events:,} history events, over Step Functions' 25,000; split the "
                "pipeline into sub-pipelines", self.p.location, subject))

    # ---------------------------------------------------------------------- splitting in parts
    def _cost(self, block: Block) -> tuple[int, int]:
        """History events and definition bytes ``block`` would add to the machine holding it.

        A node is measured by emitting it; a sequence adds its items' costs and a parallel its
        branches' plus its own frame, so measuring a whole pipeline emits each node once.
        """
        cached = self._costs.get(id(block))  # by identity: hashing a block walks all of it
        if cached is not None:
            return cached[1]
        events, warnings = self.events, len(self.out.warnings)
        if isinstance(block, Seq):
            parts = [self._cost(item) for item in block.items]
            cost = (sum(c[0] for c in parts), sum(c[1] for c in parts))
        elif isinstance(block, Par):
            grouped = chunked(block)
            parts = [self._cost(branch) for branch in grouped.branches]
            _, frame, ends = self._parallel_frame(grouped, None)
            frame_bytes = len(to_compact_json(frame).encode()) + sum(
                len(to_compact_json(inner).encode()) + 40 for inner, _ in ends)
            cost = (sum(c[0] for c in parts) + 4 + 2 * len(grouped.branches),
                    sum(c[1] for c in parts) + frame_bytes)
        else:
            trial: dict[str, Any] = {}
            self._emit(block, trial, None)
            cost = (self.events - events, len(to_compact_json(trial).encode()))
        self.events = events
        del self.out.warnings[warnings:]
        self._costs[id(block)] = (block, cost)  # the block is kept, so its id stays its own
        return cost

    def _fits(self, cost: tuple[int, int]) -> bool:
        return cost[0] <= PART_EVENTS and cost[1] <= PART_BYTES

    def _emit_within_limits(self, block: Block, states: dict[str, Any], next_state: str | None) -> str:
        """Emit ``block`` here when it fits; else move consecutive parts of it to child state machines.

        A child machine takes the whole execution state as input and returns it with its results
        added, so moving a part changes nothing but where its history is kept.
        """
        if self._fits(self._cost(block)):
            return self._emit(block, states, next_state)
        if isinstance(block, Seq):
            entry = next_state
            for group in reversed(self._packed(block.items)):
                part = self._child_machine(group[0] if len(group) == 1 else Seq(tuple(group)))
                entry = self._call_part(part, states, entry)
            return entry  # type: ignore[return-value]
        if isinstance(block, Par):  # its branches, packed into parts that fit, run side by side
            parts = [group[0] if len(group) == 1 else Par(tuple(group)) for group in self._packed(block.branches)]
            calls = tuple(PartCall(self._child_machine(part, own_results=True), tuple(nodes_of(part)))
                          for part in parts)
            return self._parallel(Par(calls), states, next_state)  # type: ignore[arg-type]
        return self._emit(block, states, next_state)  # one node: nothing smaller to move

    def _packed(self, blocks: tuple[Block, ...]) -> list[list[Block]]:
        """Consecutive ``blocks`` in groups whose summed costs fit a part; never one group of several,
        which would be the block that did not fit (the states joining them cost a little more than
        their sum), so every split makes progress."""
        groups: list[list[Block]] = [[]]
        used = (0, 0)
        for item in blocks:
            cost = self._cost(item)
            if groups[-1] and not self._fits((used[0] + cost[0], used[1] + cost[1])):
                groups.append([])
                used = (0, 0)
            groups[-1].append(item)
            used = (used[0] + cost[0], used[1] + cost[1])
        if len(groups) == 1 and len(blocks) > 1:
            middle = len(blocks) // 2
            groups = [list(blocks[:middle]), list(blocks[middle:])]
        return groups

    def _child_machine(self, block: Block, own_results: bool = False) -> str:
        """Compile ``block`` (split further if needed) into a child state machine; returns its name.

        The child takes the whole execution state as input and returns it with its results added, or,
        run as a branch of a parallel (``own_results``), only its own results.
        """
        inner: dict[str, Any] = {}
        saved, self.events = self.events, 0
        end = None
        if own_results:
            end = state_name("Own results")
            inner[end] = self._own_results(nodes_of(block))
        start = self._emit_within_limits(block, inner, end)
        self.events = saved + 6
        name = f"{self.p.name}__part{sum(1 for n in self.out.machines if n.startswith(self.p.name + '__part')) + 1}"
        first = nodes_of(block)[0]
        self.out.machines[name] = {"Comment": f"Part of pipeline {self.p.name} from {first!r} (IR {self.p.hash[:12]})",
                                   "StartAt": start, "States": in_run_order(inner, start)}
        return name

    def _call_part(self, machine: str, states: dict[str, Any], next_state: str | None) -> str:
        name = state_name(f"Run {machine}")
        states[name] = self._then({
            "Type": "Task", "Comment": "a part of this pipeline, run as a child execution to stay within limits",
            "Resource": "arn:aws:states:::states:startExecution.sync:2",
            "Parameters": {"StateMachineArn": machine_ref(machine), "Input.$": "$", "Name.$": "States.UUID()"},
            "OutputPath": "$.Output"}, next_state)
        return name
