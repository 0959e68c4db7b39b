"""Strato benchmarks: definition-time cost of large pipelines and the local runner's overhead per task.

Run from the repository root (``make bench`` does this in the project's virtualenv)::

    python bench/run.py            # 5 repetitions per measurement, medians reported
    python bench/run.py --quick    # 1 repetition: a smoke test of the figures

Part A traces, validates, serialises, parses and hashes generated pipelines of 1,000, 10,000 and
20,000 task calls. Part B runs no-op tasks on the embedded runner with a SQLite run store in a
temporary directory, so the wall time divided by the number of task calls is the runner's overhead.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strato import ir, pipeline, task
from strato.dsl.definitions import PipelineDefinition
from strato.runtime import RunStore, run_pipeline
from strato.runtime.runner import Runner
from strato.validate import check_ir

SIZES = (1_000, 10_000, 20_000)
PHASES = ("trace", "validate", "to_json", "from_json", "content_hash")
CHAIN_LENGTH = 50  # a generated pipeline starts a new chain every CHAIN_LENGTH calls
TRACE_VALIDATE_TARGET_S = 1.0  # 10,000 tasks traced and validated, on a 2-core machine
RUNNER_TARGET_MS = 0.5  # runner overhead per no-op task call, run store on
# the runner near its floor (default workers, run store on): a 1,000-item map, and 20 chains of 50
MAP_TARGET_MS, CHAINS_TARGET_MS = 0.035, 0.05
LINEAR_TOLERANCE = 1.25  # per-task cost at the largest size over the smallest, still called linear


# ------------------------------------------------------------------------------------------ tasks
@task
def load(seed: int, part: int) -> int:
    """The head of a chain: reads the pipeline parameter and a literal."""
    return seed + part


@task
def step(x: int) -> int:
    """One link of a chain."""
    return x + 1


@task
def combine(a: int, b: int) -> int:
    """A fan-in of two earlier results."""
    return a + b


@task
def noop(x: int) -> int:
    """Does nothing: what the runner spends around it is pure overhead."""
    return x


# ------------------------------------------------------------------------------ generated pipelines
def generated_pipeline(size: int) -> PipelineDefinition:
    """A fresh definition of ``size`` task calls (tracing results are cached on a definition).

    Call ``i`` starts a new chain every CHAIN_LENGTH calls (``load``), every third call joins the
    previous result with an earlier one picked deterministically, anywhere before it (``combine``),
    and the others extend the chain (``step``). The output lists the last result of every chain.
    """

    def body(seed: int = 0) -> Any:
        results: list[Any] = []
        ends: list[Any] = []
        for i in range(size):
            if i % CHAIN_LENGTH == 0:
                if results:
                    ends.append(results[-1])
                handle = load(seed, i)
            elif i % 3 == 0:
                handle = combine(results[i - 1], results[(i * 7919) % i])
            else:
                handle = step(results[i - 1])
            results.append(handle)
        ends.append(results[-1])
        return ends

    return PipelineDefinition(body, name=f"generated_{size}")


@pipeline
def wide(items: list[int]) -> Any:
    """One map of ``len(items)`` no-op calls."""
    return noop.map(items)


def chains_pipeline(count: int, length: int) -> PipelineDefinition:
    """``count`` independent chains of ``length`` no-op calls each."""

    def body() -> Any:
        ends = []
        for c in range(count):
            handle = noop(c)
            for _ in range(length - 1):
                handle = noop(handle)
            ends.append(handle)
        return ends

    return PipelineDefinition(body, name=f"chains_{count}x{length}")


# --------------------------------------------------------------------------------------- part A
class GCMeter:
    """Seconds Python's cyclic garbage collector runs while ``active`` (through ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.active = False
        self.seconds = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.active:
            self.seconds += time.perf_counter() - self._started


GC_METER = GCMeter()


def table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain right-aligned table (the cloud benchmarks print theirs with it)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(title)
    for row in [header, *rows]:
        print("  " + "  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    print()


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The median wall seconds of ``repeat`` calls of ``fn()``, and the last call's value (the cloud
    benchmarks time their compilers with it)."""
    times, value = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall seconds of ``fn()``, the part of them spent in garbage collection, and its value."""
    gc_before = GC_METER.seconds
    GC_METER.active = True
    start = time.perf_counter()
    try:
        value = fn()
    finally:
        elapsed = time.perf_counter() - start
        GC_METER.active = False
    return elapsed, GC_METER.seconds - gc_before, value


@dataclass
class IRResult:
    size: int
    samples: dict[str, list[float]] = field(default_factory=lambda: {phase: [] for phase in PHASES})
    net: dict[str, list[float]] = field(default_factory=lambda: {phase: [] for phase in PHASES})  # minus GC
    gc_seconds: float = 0.0  # summed over every timed phase of every repetition
    timed_seconds: float = 0.0
    json_bytes: int = 0
    hashes: set[str] = field(default_factory=set)

    @property
    def seconds(self) -> dict[str, float]:
        """Median per phase."""
        return {phase: statistics.median(values) for phase, values in self.samples.items()}

    def per_task_us(self, phase: str) -> float:
        return self.seconds[phase] / self.size * 1e6

    @property
    def trace_validate(self) -> float:
        return self.seconds["trace"] + self.seconds["validate"]

    @property
    def net_per_task_us(self) -> float:
        """All phases, garbage collection excluded (medians per phase, summed)."""
        return sum(statistics.median(values) for values in self.net.values()) / self.size * 1e6

    @property
    def gc_share(self) -> float:
        return self.gc_seconds / self.timed_seconds if self.timed_seconds else 0.0

    def add(self, phase: str, seconds: float, gc_seconds: float) -> None:
        self.samples[phase].append(seconds)
        self.net[phase].append(seconds - gc_seconds)
        self.timed_seconds += seconds
        self.gc_seconds += gc_seconds


def ir_round(result: IRResult) -> None:
    """One repetition of every phase on a fresh definition of ``result.size`` task calls."""
    size = result.size
    definition = generated_pipeline(size)
    gc.collect()  # garbage of the previous round is not charged to this one
    seconds, in_gc, traced = timed(definition.trace)
    result.add("trace", seconds, in_gc)
    if traced.ir is None:
        raise SystemExit("generated pipeline does not trace:\n" + "\n".join(map(str, traced.diagnostics[:5])))
    pipe: ir.PipelineIR = traced.ir
    seconds, in_gc, diagnostics = timed(lambda: check_ir(pipe))
    result.add("validate", seconds, in_gc)
    seconds, in_gc, text = timed(pipe.to_json)
    result.add("to_json", seconds, in_gc)
    seconds, in_gc, parsed = timed(lambda: ir.from_json(text))
    result.add("from_json", seconds, in_gc)
    seconds, in_gc, digest = timed(lambda: ir.content_hash(pipe))
    result.add("content_hash", seconds, in_gc)
    # sanity checks, outside the timed sections
    if len(pipe.nodes) != size or diagnostics or parsed != pipe:
        raise SystemExit(f"generated pipeline of {size} tasks: {len(pipe.nodes)} nodes, "
                         f"{len(diagnostics)} diagnostics, round trip equal: {parsed == pipe}")
    result.hashes.add(digest)
    result.json_bytes = len(text.encode())


def measure_ir(sizes: tuple[int, ...], repeat: int) -> list[IRResult]:
    """Sizes take turns within each repetition, so a slow spell of the machine hits them alike."""
    results = [IRResult(size) for size in sizes]
    ir_round(IRResult(sizes[0]))  # warm-up: first calls pay for lazy imports and cold caches
    gc.callbacks.append(GC_METER)
    try:
        for _ in range(repeat):
            for result in results:
                ir_round(result)
    finally:
        gc.callbacks.remove(GC_METER)
    for result in results:
        if len(result.hashes) != 1:
            raise SystemExit(f"content hash of the {result.size}-task pipeline differs between identical definitions")
    return results


# --------------------------------------------------------------------------------------- part B
@dataclass
class RunnerResult:
    scenario: str
    workers: int
    calls: int
    seconds: float  # median wall time of run_pipeline

    @property
    def per_task_ms(self) -> float:
        return self.seconds / self.calls * 1e3


def measure_runner(scenario: str, definition: PipelineDefinition, run_input: dict[str, Any], calls: int,
                   expected: Any, workers: int | None, repeat: int, tmp: Path) -> RunnerResult:
    definition.trace()  # tracing is part A's subject; here the definition is traced once, up front
    samples = []
    for i in range(repeat + 1):  # the first run is a warm-up (type adapters, imports), not counted
        store = RunStore(tmp / f"{definition.name}-{workers}-{i}.db")  # a fresh SQLite file per run
        gc.collect()
        try:
            seconds, _, result = timed(lambda s=store: run_pipeline(definition, run_input, store=s, workers=workers))
            units = store.units(result.run_id)
        finally:
            store.close()
        if not result.succeeded or result.output != expected:
            raise SystemExit(f"{scenario}: run {result.status}, error {result.error}")
        recorded = sum(1 for u in units if u["kind"] in ("task", "item") and u["status"] == "SUCCEEDED")
        if recorded != calls:
            raise SystemExit(f"{scenario}: the run store recorded {recorded} task calls, expected {calls}")
        if i:
            samples.append(seconds)
    probe = RunStore.memory()
    resolved = Runner(store=probe, workers=workers).workers  # the pool size the runner picked
    probe.close()
    return RunnerResult(scenario, resolved, calls, statistics.median(samples))


def measure_floor(calls: int, repeat: int, tmp: Path) -> float:
    """The floor of a task's cost, in ms: the Python call of a no-op task plus the run store's writes of its
    state (unit started, attempt started and finished, unit finished), committed in batches of 16 as a
    busy runner commits, in a fresh SQLite file (WAL) through the store's own methods."""
    samples = []
    fn = noop.fn
    for i in range(repeat + 1):
        store = RunStore(tmp / f"floor-{i}.db")
        try:
            gc.collect()
            started = time.perf_counter()
            for n in range(calls):
                key = f"map[{n}]"
                store.start_unit("floor", key, "item", "noop", 0.0)
                store.start_attempt("floor", key, 1, 0.0)
                result = fn(n)
                store.finish_attempt("floor", key, 1, "SUCCEEDED", 0.0, 0.0, None)
                store.finish_unit("floor", key, "SUCCEEDED", result, None, 0.0, "item", "noop")
                if n % 16 == 15:
                    store.commit()
            store.commit()
            if i:
                samples.append(time.perf_counter() - started)
        finally:
            store.close()
    return statistics.median(samples) * 1000 / calls


# ------------------------------------------------------------------------------------------ output
def scaling(results: list[IRResult], phase: str) -> float:
    return results[-1].per_task_us(phase) / results[0].per_task_us(phase)


def report_plain(ir_results: list[IRResult], runner_results: list[RunnerResult], header: str) -> None:
    print(header)
    print("\nA. Trace, validate and serialise generated pipelines (median; seconds, then microseconds per task)")
    cols = ["tasks", *PHASES, "trace+validate", "in GC", "JSON"]
    print("  ".join(f"{c:>19}" for c in cols))
    for r in ir_results:
        cells = [f"{r.size:,}"] + [f"{r.seconds[p]:.3f} s ({r.per_task_us(p):.1f} us)" for p in PHASES]
        cells += [f"{r.trace_validate:.3f} s ({r.trace_validate / r.size * 1e6:.1f} us)",
                  f"{r.gc_share:.0%}", f"{r.json_bytes / 1e6:.1f} MB"]
        print("  ".join(f"{c:>19}" for c in cells))
    first, last = ir_results[0], ir_results[-1]
    ratios = "  ".join(f"{p} x{scaling(ir_results, p):.2f}" for p in PHASES)
    print(f"per-task cost at {last.size:,} vs {first.size:,} tasks: {ratios}")
    print("in GC: share of the timed phases spent in Python's cyclic garbage collector")
    print("\nB. Local runner, no-op tasks, SQLite run store (median wall time of run_pipeline)")
    for rr in runner_results:
        print(f"  {rr.scenario:<28} workers={rr.workers:<3} calls={rr.calls:<6} {rr.seconds:.3f} s  "
              f"{rr.per_task_ms:.3f} ms/task")


def report_rich(ir_results: list[IRResult], runner_results: list[RunnerResult], header: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # redirected to a file: do not squeeze the table into 80 columns
        console = Console(width=max(console.width, 150))
    console.print(header)
    table = Table(title="A. Trace, validate and serialise generated pipelines (median; per task in µs)",
                  caption="in GC: share of the timed phases spent in Python's cyclic garbage collector")
    table.add_column("tasks", justify="right")
    for phase in PHASES:
        table.add_column(phase, justify="right")
    table.add_column("trace + validate", justify="right", style="bold")
    table.add_column("in GC", justify="right")
    table.add_column("JSON", justify="right")
    for r in ir_results:
        table.add_row(f"{r.size:,}", *[f"{r.seconds[p]:.3f} s\n{r.per_task_us(p):.1f} µs" for p in PHASES],
                      f"{r.trace_validate:.3f} s\n{r.trace_validate / r.size * 1e6:.1f} µs",
                      f"{r.gc_share:.0%}", f"{r.json_bytes / 1e6:.1f} MB", end_section=True)
    first, last = ir_results[0], ir_results[-1]
    ratios = [scaling(ir_results, p) for p in PHASES]
    table.add_row(f"µs/task x\n{last.size // 1000}k / {first.size // 1000}k",
                  *[f"[{'green' if x <= LINEAR_TOLERANCE else 'yellow'}]x{x:.2f}[/]" for x in ratios],
                  f"x{(last.trace_validate / last.size) / (first.trace_validate / first.size):.2f}", "", "")
    console.print(table)

    runs = Table(title="B. Local runner, no-op tasks, SQLite run store (median wall time of run_pipeline)")
    for name in ("scenario", "workers", "task calls", "wall time", "per task"):
        runs.add_column(name, justify="left" if name == "scenario" else "right")
    for rr in runner_results:
        colour = "green" if rr.per_task_ms < RUNNER_TARGET_MS else "red"
        runs.add_row(rr.scenario, str(rr.workers), f"{rr.calls:,}", f"{rr.seconds:.3f} s",
                     f"[{colour}]{rr.per_task_ms:.3f} ms[/]")
    console.print(runs)


def verdicts(ir_results: list[IRResult], runner_results: list[RunnerResult], floor_ms: float) -> list[str]:
    lines = []
    ten_k = next((r for r in ir_results if r.size == 10_000), None)
    if ten_k is not None:
        ok = ten_k.trace_validate < TRACE_VALIDATE_TARGET_S
        lines.append(f"target 10,000 tasks traced + validated < {TRACE_VALIDATE_TARGET_S:g} s: "
                     f"{ten_k.trace_validate:.3f} s -> {'met' if ok else 'MISSED'}")
    worst = max(runner_results, key=lambda r: r.per_task_ms)
    ok = worst.per_task_ms < RUNNER_TARGET_MS
    lines.append(f"target runner overhead < {RUNNER_TARGET_MS:g} ms per task: worst {worst.per_task_ms:.3f} ms "
                 f"({worst.scenario}, workers={worst.workers}) -> {'met' if ok else 'MISSED'}")
    lines.append(f"floor (a no-op call and its store writes, batched commits): {floor_ms:.3f} ms per task")
    for prefix, target in (("noop.map", MAP_TARGET_MS), ("20 chains", CHAINS_TARGET_MS)):
        found = next((r for r in runner_results if r.scenario.startswith(prefix)), None)  # default workers
        if found is not None:
            ok = found.per_task_ms <= target
            lines.append(f"target {found.scenario} <= {target:g} ms per task: {found.per_task_ms:.3f} ms "
                         f"({found.per_task_ms / floor_ms:.1f}x the floor) -> {'met' if ok else 'MISSED'}")
    first, last = ir_results[0], ir_results[-1]
    nonlinear = [p for p in PHASES if scaling(ir_results, p) > LINEAR_TOLERANCE]
    span = f"{first.size:,} -> {last.size:,} tasks"
    lines.append(f"scaling {span}: " + (f"linear (per-task cost within x{LINEAR_TOLERANCE:g})" if not nonlinear
                                        else "per-task cost grows by more than "
                                        f"x{LINEAR_TOLERANCE:g} for {', '.join(nonlinear)}"))
    net_ratio = last.net_per_task_us / first.net_per_task_us
    lines.append(f"  all phases without garbage collection: {first.net_per_task_us:.1f} -> "
                 f"{last.net_per_task_us:.1f} us per task (x{net_ratio:.2f}); time in GC: {first.gc_share:.0%} -> "
                 f"{last.gc_share:.0%}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repetition per measurement instead of five")
    parser.add_argument("--repeat", type=int, default=None, help="repetitions per measurement (median reported)")
    parser.add_argument("--no-gc", action="store_true", help="disable Python's cyclic garbage collector (to see "
                        "its share of the cost; not how pipelines normally run)")
    parser.add_argument("--plain", action="store_true", help="plain text instead of Rich tables")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    if args.no_gc:
        gc.disable()

    header = (f"Strato bench: Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
              f"SQLite {sqlite3.sqlite_version}; {repeat} repetition(s)"
              f"{', garbage collector off' if args.no_gc else ''}")

    ir_results = measure_ir(SIZES, repeat)

    chains_count, chains_length = 20, 50
    width = 1_000
    items = list(range(width))
    with tempfile.TemporaryDirectory(prefix="strato-bench-") as tmp:
        chains = chains_pipeline(chains_count, chains_length)
        chain_ends = list(range(chains_count))
        runner_results = []
        for workers in (None, 1):
            runner_results.append(measure_runner(f"noop.map({width:,} items)", wide, {"items": items}, width, items,
                                                 workers, repeat, Path(tmp)))
            runner_results.append(measure_runner(f"{chains_count} chains x {chains_length}", chains, {},
                                                 chains_count * chains_length, chain_ends, workers, repeat, Path(tmp)))
        floor_ms = measure_floor(width, repeat, Path(tmp))

    try:
        (report_plain if args.plain else report_rich)(ir_results, runner_results, header)
    except ImportError:  # Rich is a dependency of Strato, but the numbers matter more than the frame
        report_plain(ir_results, runner_results, header)
    print()
    for line in verdicts(ir_results, runner_results, floor_ms):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
