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

from ..structure import Block, Par, Seq, nodes_of
from .naming import machine_ref, state_name

if TYPE_CHECKING:
    from .compiler import Compiled

MAX_DEFINITION_BYTES = 1_048_576
MAX_HISTORY_EVENTS = 25_000
# What one state machine may hold before parts of the pipeline move to child state machines: under
# the limits, with room for the states around them.
PART_EVENTS = 20_000
PART_BYTES = 900_000


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
    """A block moved to a child state machine, in the place it runs."""

    machine: str


class Limits:
    """The part of the state machine builder that measures blocks and splits them into parts."""

    p: ir.PipelineIR
    out: Compiled
    events: int
    _costs: dict[Block, tuple[int, int]]

    def _emit(self, block: Block, states: dict[str, Any], next_state: str | None) -> str:
        raise NotImplementedError  # the builder's

    def _parallel(self, block: Par, states: dict[str, Any], next_state: str | None) -> str:
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
        """History events and definition bytes ``block`` would add to the machine holding it."""
        cached = self._costs.get(block)
        if cached is not None:
            return cached
        events, warnings = self.events, len(self.out.warnings)
        trial: dict[str, Any] = {}
        self._emit(block, trial, None)
        cost = (self.events - events, len(to_compact_json(trial).encode()))
        self.events = events
        del self.out.warnings[warnings:]
        self._costs[block] = cost
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
            groups: list[list[Block]] = [[]]
            used = (0, 0)
            for item in block.items:
                cost = self._cost(item)
                if groups[-1] and not self._fits((used[0] + cost[0], used[1] + cost[1])):
                    groups.append([])
                    used = (0, 0)
                groups[-1].append(item)
                used = (used[0] + cost[0], used[1] + cost[1])
            entry = next_state
            for group in reversed(groups):
                part = self._child_machine(group[0] if len(group) == 1 else Seq(tuple(group)))
                entry = self._call_part(part, states, entry)
            return entry  # type: ignore[return-value]
        if isinstance(block, Par):  # the largest branches move to parts of their own until the rest fits
            costs = {branch: self._cost(branch) for branch in block.branches}
            total = [sum(c[0] for c in costs.values()), sum(c[1] for c in costs.values())]
            moved: set[Block] = set()
            for branch in sorted(block.branches, key=lambda b: costs[b][1], reverse=True):
                if self._fits((total[0], total[1])):
                    break
                moved.add(branch)
                total[0] -= costs[branch][0] - 5
                total[1] -= costs[branch][1] - 400
            branches = tuple(PartCall(self._child_machine(b)) if b in moved else b for b in block.branches)
            return self._parallel(Par(branches), states, next_state)  # type: ignore[arg-type]
        return self._emit(block, states, next_state)  # one node: nothing smaller to move

    def _child_machine(self, block: Block) -> str:
        """Compile ``block`` (split further if needed) into a child state machine; returns its name."""
        inner: dict[str, Any] = {}
        saved, self.events = self.events, 0
        start = self._emit_within_limits(block, inner, None)
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
