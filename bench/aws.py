"""AWS adapter benchmarks: compiling generated pipelines to ASL, and emulated time per state on moto.

Run from the repository root in a virtualenv with the ``aws`` extra::

    python bench/aws.py            # 3 repetitions, medians
    python bench/aws.py --quick    # 1 repetition
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strato.adapters.aws.compiler import compile_pipeline, to_compact_json
from strato.adapters.aws.emulator import (
    Deployment,
    deployed_on_moto,
    run_execution,
)
from strato.adapters.base import emulated_loader
from strato.dsl.definitions import PipelineDefinition
from strato.runtime import resolver_for
from tests.pipelines.generated import dense_dag

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
bench_run = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bench_run"] = bench_run
_spec.loader.exec_module(bench_run)  # type: ignore[union-attr]


def compile_rows(repeat: int) -> list[tuple[str, ...]]:
    rows = []
    kinds = [("chains+joins", bench_run.generated_pipeline), ("dense DAG", dense_dag)]
    for (kind, generate), size in ((k, s) for k in kinds for s in (1_000, 10_000, 20_000)):
        ir = generate(size).ir
        seconds, compiled = bench_run.median_time(lambda ir=ir: compile_pipeline(ir), repeat)
        sizes = [len(to_compact_json(d).encode()) for d in compiled.machines.values()]
        rows.append((f"{kind}, {size:,} tasks", f"{seconds:.3f} s", f"{seconds / size * 1e6:.1f} us",
                     f"{len(compiled.machines):,}", f"{sum(sizes) / 1e6:.2f} MB", f"{max(sizes) / 1e6:.2f} MB",
                     f"{len(compiled.errors)} error(s)"))
    return rows


def emulated_rows(repeat: int) -> list[tuple[str, ...]]:
    rows = []
    cases: list[tuple[str, PipelineDefinition, dict]] = [
        ("chain of 50 tasks", bench_run.chains_pipeline(1, 50), {}),
        ("map of 200 items", bench_run.wide, {"items": list(range(200))}),
        ("dense DAG of 300 tasks", dense_dag(300), {}),
    ]
    for label, definition, params in cases:
        ir = definition.ir
        resolver = resolver_for(definition.trace().ir)
        deployment = Deployment(ir, compile_pipeline(ir).machines, emulated_loader(ir, resolver))
        with deployed_on_moto(deployment) as (_, _, sfn):
            seconds, result = bench_run.median_time(
                lambda sfn=sfn, deployment=deployment, params=params: run_execution(sfn, deployment, params), repeat)
            arn = sfn.list_executions(stateMachineArn=deployment.machines[ir.name])["executions"][0]["executionArn"]
            events = len(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])
        assert result.status == "SUCCEEDED", result.error
        rows.append((label, f"{seconds:.3f} s", f"{events:,}", f"{seconds / max(events, 1) * 1e3:.2f} ms"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition")
    repeat = 1 if parser.parse_args().quick else 3
    bench_run.table("A. IR -> ASL compile time (median)", ("pipeline", "compile", "per task", "state machines",
                                                   "definitions", "largest", "limits"), compile_rows(repeat))
    bench_run.table("B. Emulated execution on moto, tasks through the Lambda shim (median)",
          ("pipeline", "wall", "history events", "per event"), emulated_rows(repeat))


if __name__ == "__main__":
    main()
