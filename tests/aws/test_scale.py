"""Pipelines of the sizes real teams run compile into state machines Step Functions accepts."""

from __future__ import annotations

import pytest

from strato.adapters.aws import conformance
from strato.adapters.aws.compiler import compile_pipeline
from strato.adapters.aws.limits import MAX_HISTORY_EVENTS

from ..pipelines.generated import dense_dag


def _task_states(definition: dict) -> list[str]:
    return [name for name, state in conformance.states_of(definition)
            if state.get("Type") == "Task" and str(state.get("Resource", "")).endswith("add}")]


@pytest.mark.parametrize("size", [300, 3000])
def test_a_dense_dag_compiles_into_parts_aws_accepts(size: int) -> None:
    """Every task in exactly one state machine, each within every limit (1 MB, 80-character names,
    10 nested intrinsic functions), with no compile error; parallels wider than 256 branches nest."""
    definition = dense_dag(size)
    compiled = compile_pipeline(definition.ir)
    assert compiled.errors == []
    for name, machine in compiled.machines.items():
        conformance.check_definition(name, machine)
    task_states = [s for m in compiled.machines.values() for s in _task_states(m)]
    assert len(task_states) == len(set(task_states)) == size - 10
    extra = [w for w in compiled.warnings if "joins parallel branches only at their end" in w.message]
    assert len(extra) <= 21  # twenty named, then one counting the rest
    assert MAX_HISTORY_EVENTS == 25_000


def test_a_very_wide_parallel_nests_its_branches() -> None:
    from strato import pipeline, task

    @task
    def one(i: int) -> int:
        return i

    @task
    def total(values: list) -> int:
        return sum(values)

    @pipeline
    def wide_600() -> int:
        return total([one(i) for i in range(600)])

    compiled = compile_pipeline(wide_600.ir)
    assert compiled.errors == []
    widths = [len(s["Branches"]) for m in compiled.machines.values()
              for _, s in conformance.states_of(m) if s.get("Type") == "Parallel"]
    assert max(widths) <= 256 and sum(1 for w in widths if w > 1) >= 3
    for name, machine in compiled.machines.items():
        conformance.check_definition(name, machine)
