"""Azure adapter benchmarks: compiling generated pipelines to a Durable Functions app, and emulating them
in the replay host (the real Durable SDK, replayed after every batch of events).

Run from the repository root in a virtualenv with the ``azure`` extra::

    python bench/azure.py              # 3 repetitions of the compile table, one emulation each size
    python bench/azure.py --quick      # smaller sizes, one repetition
    python bench/azure.py --baseline   # as before bounded histories: one orchestration per pipeline and
                                       # per map, and every replay parsing every history timestamp again
    python bench/azure.py --profile 1000   # cProfile of one 1,000-task DAG emulation, top 25 by own time

Emulation uses measured activity durations, as ``strato emulate`` does, and checks every output
against the local runner's (``strato.run_pipeline``).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# this file is named like the ``azure`` namespace package: its own folder must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strato.adapters.azure import compiler, orchestration  # noqa: E402
from strato.adapters.azure.emulator import emulation  # noqa: E402
from strato.adapters.azure.replay import host as replay_host  # noqa: E402
from strato.adapters.azure.replay.history import SUB_CREATED, TASK_SCHEDULED  # noqa: E402
from strato.dsl.definitions import PipelineDefinition  # noqa: E402
from strato.runtime import RunStore, VirtualClock, resolver_for, run_pipeline  # noqa: E402
from strato.validate import validated  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
bench_run = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bench_run"] = bench_run
_spec.loader.exec_module(bench_run)  # type: ignore[union-attr]

LINEAR_TARGET = 1.5  # per-task emulation cost at 2,000 tasks over the cost at 100


def baseline() -> None:
    """Undo bounded histories and the timestamp cache, to measure what they changed."""
    compiler.PART_NODES = 10**9  # type: ignore[misc]
    orchestration.MAP_CHUNK = 10**9  # type: ignore[misc]
    replay_host.remember_history_timestamps = lambda: None  # type: ignore[assignment]


def compile_rows(sizes: tuple[int, ...], repeat: int) -> list[tuple[str, ...]]:
    rows = []
    for size in sizes:
        ir = bench_run.generated_pipeline(size).ir
        seconds, source = bench_run.median_time(lambda ir=ir: compiler.generate_function_app(ir), repeat)
        rows.append((f"{size:,}", f"{seconds:.3f} s", f"{seconds / size * 1e6:.0f} us",
                     f"{len(compiler.partition(ir)):,}", f"{source.count('@app.orchestration_trigger'):,}",
                     f"{len(source) / 1e6:.2f} MB"))
    return rows


def emulate(definition: PipelineDefinition, params: dict[str, Any], tasks: int) -> tuple[str, ...]:
    checked = validated(definition)
    with tempfile.TemporaryDirectory() as tmp:
        em = emulation(checked.ir, resolver_for(checked.ir), Path(tmp))
        start = time.perf_counter()
        result = em.run(params, "bench")
        seconds = time.perf_counter() - start
        host = em.host
    local = run_pipeline(definition, params, store=RunStore.memory(), clock=VirtualClock())
    same = result.status == local.status == "SUCCEEDED" and result.output == local.output
    most = max(sum(1 for e in i.history if e["EventType"] in (TASK_SCHEDULED, SUB_CREATED))
               for i in host.instances.values())
    longest = max(len(i.history) for i in host.instances.values())
    return (f"{tasks:,}", f"{seconds:.2f} s", f"{seconds / tasks * 1e3:.2f} ms", f"{len(host.instances):,}",
            f"{host._episodes:,}", f"{most:,}", f"{longest:,}", "yes" if same else "NO")


def emulation_rows(cases: list[tuple[str, Callable[[int], tuple[PipelineDefinition, dict[str, Any]]], int]]
                   ) -> list[tuple[str, ...]]:
    rows = []
    for label, make, size in cases:
        definition, params = make(size)
        rows.append((label, *emulate(definition, params, size)))
    return rows


def dag(size: int) -> tuple[PipelineDefinition, dict[str, Any]]:
    return bench_run.generated_pipeline(size), {"seed": 1}


def chain(size: int) -> tuple[PipelineDefinition, dict[str, Any]]:
    return bench_run.chains_pipeline(1, size), {}


def wide(size: int) -> tuple[PipelineDefinition, dict[str, Any]]:
    return bench_run.wide, {"items": list(range(size))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--baseline", action="store_true", help="unbounded histories, no timestamp cache")
    parser.add_argument("--profile", type=int, metavar="TASKS", help="profile one generated DAG emulation")
    args = parser.parse_args()
    if args.baseline:
        baseline()
    if args.profile:
        definition, params = dag(args.profile)
        profile = cProfile.Profile()
        profile.runcall(emulate, definition, params, args.profile)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return 0
    repeat = 1 if args.quick else 3
    dags = (100, 200, 500) if args.quick else (100, 200, 500, 1_000, 2_000)
    bench_run.table("A. IR -> function_app.py (median)", ("tasks", "compile", "per task", "top parts", "orchestrators",
                                                "source"),
          compile_rows((1_000, 2_000) if args.quick else (1_000, 10_000, 20_000), repeat))
    more = 2 if args.quick else 3
    cases = [*(("DAG", dag, n) for n in dags), *(("chain", chain, n) for n in (100, 500, 1_000)[:more]),
             *(("map", wide, n) for n in (100, 1_000, 2_000)[:more])]
    rows = emulation_rows(cases)
    bench_run.table("B. Emulation in the replay host, measured durations" + (" (baseline)" if args.baseline else ""),
          ("pipeline", "tasks", "wall", "per task", "instances", "episodes", "most calls/orch.", "longest history",
           "= local"), rows)
    per_task = {int(r[1].replace(",", "")): float(r[3].split()[0]) for r in rows if r[0] == "DAG"}
    if 100 in per_task and 2_000 in per_task:
        ratio = per_task[2_000] / per_task[100]
        print(f"DAG per-task cost, 2,000 / 100 tasks: x{ratio:.2f} (target <= x{LINEAR_TARGET}): "
              + ("met" if ratio <= LINEAR_TARGET else "NOT met"))
    return 0 if all(r[-1] == "yes" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
