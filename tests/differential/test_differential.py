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
]


def outcome(result: Any) -> tuple:
    return result.status, result.output, result.error


def check_everywhere(plan: list[tuple], work_dir: Path) -> None:
    definition = build(plan)
    ir = definition.ir
    local = run_pipeline(definition, {}, store=RunStore.memory(), clock=VirtualClock())
    params = prepare_input(ir, {}, definition.fn)
    for target in TARGETS:
        emulated = get_adapter(target).emulate(ir, params, resolver_for(ir), work_dir=work_dir)
        assert outcome(emulated) == outcome(local), f"{target} disagrees with the local runner on {plan!r}"


@pytest.mark.parametrize("plan", REGRESSIONS, ids=[f"regression{i}" for i in range(len(REGRESSIONS))])
def test_kept_disagreements_stay_fixed(plan: list[tuple], tmp_path: Path) -> None:
    check_everywhere(plan, tmp_path)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not FUZZING, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(plan=plans())
def test_random_pipelines_agree_on_every_backend(plan: list[tuple], tmp_path: Path) -> None:
    check_everywhere(plan, tmp_path)
