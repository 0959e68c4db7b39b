"""Differential testing: random valid pipelines give the same output, or the same error, on the local
runner and in every cloud's emulation.

A bounded, derandomized profile runs in ``make test``; ``make fuzz`` runs 1,000 random examples
(``STRATO_FUZZ_EXAMPLES``, ``STRATO_FUZZ_TARGETS``). A disagreement is a bug in whichever backend is
wrong; its shrunk plan is kept in ``REGRESSIONS`` below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("moto")

from hypothesis import HealthCheck, given, settings

from strato.runtime import RunStore, VirtualClock, prepare_input, resolver_for, run_pipeline
from strato.targets import get_adapter

from .plans import ODD, build, plans

EXAMPLES = int(os.environ.get("STRATO_FUZZ_EXAMPLES", "6"))
TARGETS = os.environ.get("STRATO_FUZZ_TARGETS", "aws,gcp,azure").split(",")
FUZZING = "STRATO_FUZZ_EXAMPLES" in os.environ

# Shrunk plans of disagreements found and fixed: each runs on every backend in every test run.
REGRESSIONS: list[list[tuple]] = [
    [("make", 0, 230_000), ("make", 1, 230_000), ("combine", 0, 1)],  # two large results in one state
    [("make", 3, 0), ("fragile", 0, False)],  # an uncaught failure: the same error everywhere
    [("make", 3, 0), ("fragile", 0, True), ("map", ("of", 1), 2)],  # a caught one, mapped over
    [("make", 5, 0), ("when", ("cmp", 0, (ODD, "==", True)), [("combine", 0, 0)], [("make", 9, 0)])],
    [("make", 4, 0), ("map", [], 1), ("map", ("of", 0), 0)],  # empty and computed maps
    # three equal results offloaded at once, to the same content-addressed key (a moto race, bridged)
    [("make", 0, 0), ("make", 0, 90000), ("make", 0, 90000), ("make", 0, 90000)],
    # an output of ~550 KB, more than a workflow's 512 KB of variables: returned as an envelope, read back
    [("make", 0, 0), ("make", 0, 0), ("make", 0, 0), ("make", 0, 90000), ("make", 0, 230000), ("make", 0, 230000)],
    # a map over a result of a block that did not run (null): the same TypeError and cause everywhere
    [("make", 1, 0), ("when", ("cmp", 0, ("n", ">", 300)), [("make", 2, 0)], None), ("map", ("of", 1), 0)],
    # a large field in a condition beside two calls that can fail: GCP may stop at either failure
    [("make", 176, 90000), ("when", ("cmp", 0, ("n", ">", 300)), [
        ("make", 0, 0), ("when", ("and", ("cmp", 0, ("n", ">", 300)), ("cmp", 0, ("s", "==", ""))),
                         [("map", [16, 33, 12, 0, 45], 0), ("make", 0, 0), ("combine", 1, 0)], None),
        ("make", 483, 0)], None),
     ("fragile", 3, False), ("make", 0, 0), ("make", 0, 0), ("map", ("of", 3), 0)],
    # two Distributed Maps in one execution: each map run's results are its own (the emulators' ResultWriter
    # took the execution's newest map run)
    [("make", 46, 230000), ("make", 27, 0), ("make", 193, 0),
     ("when", ("not", ("cmp", 0, ("n", ">", 300))), [("combine", 0, 0), ("map", ("of", 3), 1), ("make", 161, 0)],
      None), ("make", 0, 0), ("map", ("of", 5), 0)],
    # conditions on two ~230 KB text fields: Step Functions holds both inline, over its 256 KiB, and
    # refuses with States.DataLimitExceeded where the local runner succeeds (a documented limit)
    [("make", 921, 230000), ("make", 130, 0), ("make", 0, 0),
     ("when", ("cmp", 0, ("n", ">", 300)), [
         ("map", [], 0),
         ("when", ("and", ("or", ("cmp", 1, ("n", "<=", 600)), ("cmp", 2, ("odd key-é.$", "==", True))),
                   ("cmp", 0, ("s", "==", ""))), [("map", ("of", 1), 0)], None),
         ("fragile", 1, False)], None),
     ("make", 235, 230000),
     ("when", ("not", ("cmp", 6, ("s", "==", ""))), [
         ("fragile", 6, False),
         ("when", ("cmp", 3, ("n", ">", 300)), [("combine", 7, 1)], [("combine", 3, 8), ("combine", 7, 0)]),
         ("map", ("of", 1), 2)], None),
     ("combine", 0, 11)],
]


def outcome(result: Any) -> tuple:
    return result.status, result.output, result.error


# Limits a cloud has and the local runner does not, each documented in the README: where a plan meets
# one, that cloud must refuse it with its limit's error, never give a different answer.
LIMIT_ERRORS = {"States.DataLimitExceeded", "ResourceLimitError", "ResultTooLarge"}


def _condition_field_bytes(steps: list[tuple], sizes: list[int], read: set[int] | None = None) -> int:
    """The bytes of the distinct text fields conditions read: Step Functions keeps each inline in the
    execution's state (a Choice state reads it there), all within the state's 256 KiB."""
    read = set() if read is None else read
    for step in steps:
        if step[0] == "when":
            read.update(_condition_reads(step[1], "s"))
            _condition_field_bytes(step[2], sizes, read)
            if step[3]:
                _condition_field_bytes(step[3], sizes, read)
        else:
            sizes.append(step[2] if step[0] == "make" else 0)
    return sum(sizes[ref] for ref in read if ref < len(sizes))


def _large_field_in_a_condition(steps: list[tuple], sizes: list[int]) -> bool:
    """A condition compares the (large) text field of a record: the orchestrator reads it itself, so it
    stays in its state or variables however large (GCP keeps condition operands inline)."""
    for step in steps:
        if step[0] == "when":
            if any(sizes[ref] > 64 * 1024 for ref in _condition_reads(step[1], "s")):
                return True
            if _large_field_in_a_condition(step[2], sizes) or (step[3] and _large_field_in_a_condition(step[3], sizes)):
                return True
        else:
            sizes.append(step[2] if step[0] == "make" else 0)
    return False


def _condition_reads(cond: tuple, key: str) -> list[int]:
    if cond[0] == "cmp":
        return [cond[1]] if cond[2][0] == key else []
    return [ref for inner in cond[1:] for ref in _condition_reads(inner, key)]


def check_everywhere(plan: list[tuple], work_dir: Path) -> None:
    definition = build(plan)
    ir = definition.ir
    local = run_pipeline(definition, {}, store=RunStore.memory(), clock=VirtualClock())
    params = prepare_input(ir, {}, definition.fn)
    at_a_limit = {"gcp"} if _large_field_in_a_condition(plan, []) else set()
    if _condition_field_bytes(plan, []) > 192 * 1024:  # with the rest of the state, near its 256 KiB
        at_a_limit.add("aws")
    for target in TARGETS:
        emulated = get_adapter(target).emulate(ir, params, resolver_for(ir), work_dir=work_dir)
        if outcome(emulated) == outcome(local):
            continue
        if target in at_a_limit and emulated.error and emulated.error["error"] in LIMIT_ERRORS:
            continue  # the cloud refused at one of its documented limits, with that limit's error
        if (emulated.status, local.status) == ("FAILED", "FAILED") and _failure_points(plan) > 1:
            continue  # two calls failing side by side: each backend reports the one that failed first
        assert outcome(emulated) == outcome(local), f"{target} disagrees with the local runner on {plan!r}"


def _failure_points(steps: list[tuple]) -> int:
    """Calls that may fail the run: uncaught fragile calls and maps over computed values."""
    count = 0
    for step in steps:
        if step[0] == "when":
            count += _failure_points(step[2]) + (_failure_points(step[3]) if step[3] else 0)
        elif (step[0] == "fragile" and not step[2]) or (step[0] == "map" and isinstance(step[1], tuple)):
            count += 1
    return count


@pytest.mark.parametrize("plan", REGRESSIONS, ids=[f"regression{i}" for i in range(len(REGRESSIONS))])
def test_kept_disagreements_stay_fixed(plan: list[tuple], tmp_path: Path) -> None:
    check_everywhere(plan, tmp_path)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not FUZZING, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(plan=plans())
def test_random_pipelines_agree_on_every_backend(plan: list[tuple], tmp_path: Path) -> None:
    check_everywhere(plan, tmp_path)
