"""GCP adapter benchmarks: compiling generated pipelines to Cloud Workflows (split into parts past what
one workflow's 128 KB of source holds), and emulating them in Strato's Workflows interpreter with every
task through the real Cloud Functions shim.

Run from the repository root in a virtualenv with the ``emulate-gcp`` extra::

    python bench/gcp.py              # 3 repetitions of the compile table, one emulation each size
    python bench/gcp.py --quick      # smaller sizes, one repetition
    python bench/gcp.py --profile 1000   # cProfile of compiling a 1,000-task DAG, top 25 by own time

Every emulated output is checked against the local runner's (``strato.run_pipeline``).
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from strato.adapters.base import emulated_loader
from strato.adapters.gcp.compiler import MAX_SOURCE_BYTES, compile_pipeline
from strato.adapters.gcp.emulator import emulate
from strato.adapters.gcp.interpreter import VirtualClock as WorkflowsClock
from strato.runtime import RunStore, VirtualClock, prepare_input, resolver_for, run_pipeline

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
bench_run = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bench_run"] = bench_run
_spec.loader.exec_module(bench_run)  # type: ignore[union-attr]

COMPILE_TARGET = 10.0  # seconds for a 10,000-task pipeline


def compile_rows(sizes: tuple[int, ...], repeat: int) -> list[tuple[str, ...]]:
    rows = []
    for size in sizes:
        ir = bench_run.generated_pipeline(size).ir
        seconds, compiled = bench_run.median_time(lambda ir=ir: compile_pipeline(ir), repeat)
        sources = [compiled.source, *compiled.part_sources.values()]
        largest = max(len(s.encode()) for s in sources)
        rows.append((f"{size:,}", f"{seconds:.2f} s", f"{seconds / size * 1e6:.0f} us", f"{len(sources):,}",
                     f"{largest / 1024:.0f} KB", f"{sum(len(s) for s in sources) / 1e6:.2f} MB",
                     "yes" if largest <= MAX_SOURCE_BYTES and not compiled.errors else "NO"))
    return rows


def emulation_row(size: int) -> tuple[str, ...]:
    definition = bench_run.generated_pipeline(size)
    ir = definition.ir
    params = {"seed": 1}
    compiled = compile_pipeline(ir)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result, execution = emulate(ir, compiled.source, prepare_input(ir, params, definition.fn),
                                    emulated_loader(ir, resolver_for(ir)), Path(tmp), "wsgi", WorkflowsClock(),
                                    parts=compiled.part_sources)
        seconds = time.perf_counter() - start
    local = run_pipeline(definition, params, store=RunStore.memory(), clock=VirtualClock())
    same = result.status == local.status == "SUCCEEDED" and result.output == local.output
    return (f"{size:,}", f"{len(compiled.parts) + 1:,}", f"{seconds:.2f} s", f"{seconds / size * 1e3:.2f} ms",
            f"{execution.steps_executed:,}", "yes" if same else "NO")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repetition")
    parser.add_argument("--profile", type=int, metavar="TASKS", help="profile compiling one generated DAG")
    args = parser.parse_args()
    if args.profile:
        ir = bench_run.generated_pipeline(args.profile).ir
        profile = cProfile.Profile()
        profile.runcall(compile_pipeline, ir)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        return 0
    repeat = 1 if args.quick else 3
    compiled = compile_rows((100, 1_000, 2_000) if args.quick else (100, 1_000, 10_000, 20_000), repeat)
    bench_run.table("A. IR -> Cloud Workflows YAML (median)", ("tasks", "compile", "per task", "workflows", "largest",
                                                    "all sources", "each <= 128 KB"), compiled)
    rows = [emulation_row(n) for n in ((100, 500) if args.quick else (100, 500, 2_000))]
    bench_run.table("B. Emulation in the Workflows interpreter (parts through the Executions connector)",
          ("tasks", "workflows", "wall", "per task", "root steps", "= local"), rows)
    ten_k = [r for r in compiled if r[0] == "10,000"]
    if ten_k:
        seconds = float(ten_k[0][1].split()[0])
        print(f"10,000-task compile: {seconds:.2f} s (target <= {COMPILE_TARGET:g} s): "
              + ("met" if seconds <= COMPILE_TARGET else "NOT met"))
    return 0 if all(r[-1] == "yes" for r in [*compiled, *rows]) else 1


if __name__ == "__main__":
    sys.exit(main())
