"""Strato beside Prefect 3 and Dagster: the same no-op workloads, each run as a fresh process.

Workloads: a 1-task pipeline (the fixed cost: process start, imports, setting up, one task), a map of
1,000 items, and 20 independent chains of 50 calls. Every run is a new interpreter, timed from outside
(start to exit), so W(n) includes everything a user waits for; the per-task overhead is
(W(n) - W(1)) / (n - 1), computed within each round. Each round runs every framework once on every
workload, the frameworks in a different order each round, so a slow spell of the machine hits them
alike; the table shows medians with min-max over the rounds.

  * ``strato-api``: ``run_pipeline`` with a SQLite run store (durable state per task).
  * ``strato-cli``: ``strato run file.py:pipeline`` (its run store under a temporary STRATO_HOME).
  * ``prefect``: ``@task`` calls in a ``@flow``, the default local setup: no API URL, so Prefect starts its
    ephemeral server on SQLite under a temporary PREFECT_HOME; map through ``task.map``, chains through
    ``task.submit`` with futures as arguments (the default thread-pool task runner).
  * ``dagster``: ``@op`` nodes in a ``@job``, ``execute_in_process`` on the instance of a temporary
    DAGSTER_HOME (SQLite storage); the map through ``DynamicOut``, chains as aliased ops.

    make bench-peers                              # installs the peers into bench/peers/.venv, then runs
    bench/peers/.venv/bin/python bench/peers/run.py --rounds 5
    python bench/peers/run.py --only strato-api,strato-cli --map 20 --chains 2x5 --rounds 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

FRAMEWORKS = ("strato-api", "strato-cli", "prefect", "dagster")
STRATO = ("strato-api", "strato-cli")
PEERS = ("prefect", "dagster")

# Each program defines the three workloads and runs the one named by argv: "one", "map N" or "chains C L".
# It checks the result and exits non-zero if it is wrong, so a broken run is never timed as a fast one.
STRATO_PIPELINES = '''
import sys
from strato import pipeline, task

@task
def noop(x: int) -> int:
    return x

@pipeline
def one() -> int:
    return noop(1)

@pipeline
def wide(items: list[int]) -> list[int]:
    return noop.map(items)

def chains_pipeline(count: int, length: int):
    def chains() -> list[int]:
        ends = []
        for c in range(count):
            handle = noop(c)
            for _ in range(length - 1):
                handle = noop(handle)
            ends.append(handle)
        return ends
    return pipeline(chains)

if len(sys.argv) > 2 and sys.argv[1] == "chains":
    chains = chains_pipeline(int(sys.argv[2]), int(sys.argv[3]))
'''

STRATO_API = STRATO_PIPELINES + '''
from strato.runtime import RunStore, run_pipeline

kind = sys.argv[1]
if kind == "one":
    definition, data, expected = one, {}, 1
elif kind == "map":
    items = list(range(int(sys.argv[2])))
    definition, data, expected = wide, {"items": items}, items
else:
    definition, data, expected = chains, {}, list(range(int(sys.argv[2])))
store = RunStore(sys.argv[-1])
result = run_pipeline(definition, data, store=store)
store.close()
if not result.succeeded or result.output != expected:
    sys.exit(f"strato: run {result.status}, output {result.output!r}, error {result.error}")
'''

PREFECT = '''
import sys
from prefect import flow, task

@task
def noop(x: int) -> int:
    return x

@flow
def one() -> int:
    return noop(1)

@flow
def wide(items: list[int]) -> list[int]:
    return [f.result() for f in noop.map(items)]

@flow
def chains(count: int, length: int) -> list[int]:
    ends = []
    for c in range(count):
        handle = noop.submit(c)
        for _ in range(length - 1):
            handle = noop.submit(handle)
        ends.append(handle)
    return [f.result() for f in ends]

kind = sys.argv[1]
if kind == "one":
    output, expected = one(), 1
elif kind == "map":
    items = list(range(int(sys.argv[2])))
    output, expected = wide(items), items
else:
    output, expected = chains(int(sys.argv[2]), int(sys.argv[3])), list(range(int(sys.argv[2])))
if output != expected:
    sys.exit(f"prefect: output {output!r}")
'''

DAGSTER = '''
import sys
from dagster import DagsterInstance, DynamicOut, DynamicOutput, In, job, op

@op
def noop(x: int) -> int:
    return x

@op
def first() -> int:
    return 1

@op(out=DynamicOut(int))
def fan_out():
    for i in range(N):
        yield DynamicOutput(i, mapping_key=str(i))

@op
def gather(values: list[int]) -> list[int]:
    return sorted(values)

kind = sys.argv[1]
if kind == "one":
    @job
    def one():
        noop(first())
    target, expected = one, None
elif kind == "map":
    N = int(sys.argv[2])

    @job
    def wide():
        gather(fan_out().map(noop).collect())
    target, expected = wide, list(range(N))
else:
    count, length = int(sys.argv[2]), int(sys.argv[3])
    heads = [op(name=f"head_{c}")(lambda c=c: c) for c in range(count)]

    @op(ins={f"x{c}": In(int) for c in range(count)})
    def ends(**values) -> list[int]:
        return [values[f"x{c}"] for c in range(count)]

    @job
    def chains():
        outs = {}
        for c in range(count):
            handle = heads[c]()
            for i in range(length - 1):
                handle = noop.alias(f"noop_{c}_{i}")(handle)
            outs[f"x{c}"] = handle
        ends(**outs)
    target, expected = chains, list(range(count))
with DagsterInstance.get() as instance:
    result = target.execute_in_process(instance=instance)
if not result.success:
    sys.exit("dagster: run failed")
if expected is not None:
    node = "gather" if kind == "map" else "ends"
    output = result.output_for_node(node)
    if output != expected:
        sys.exit(f"dagster: output {output!r}")
'''


@dataclass
class Workload:
    name: str
    args: list[str]
    calls: int  # task calls a run makes (for Dagster, plus the fan-out/heads/gather ops around them)


@dataclass
class Samples:
    wall: dict[str, list[float]] = field(default_factory=dict)  # workload name -> seconds per round


def strato_cli() -> str:
    """The ``strato`` script installed beside this interpreter (the install being measured)."""
    script = Path(sys.executable).parent / "strato"
    if not script.exists():
        raise SystemExit(f"no strato command beside {sys.executable}: install strato into this environment "
                         "(`make bench-peers` does)")
    return str(script)


def command(framework: str, workload: Workload, work: Path, home: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of one fresh run: its script in ``work`` (a new directory), its
    framework's state in ``home`` (kept across runs, as a user's is: database migrations are paid once)."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode caches as an installed package has them
    if framework == "strato-api":
        script = work / "bench_strato.py"
        script.write_text(STRATO_API)
        return [sys.executable, str(script), *workload.args, str(home / "runs.db")], env
    if framework == "strato-cli":
        module = work / "bench_strato.py"
        module.write_text(STRATO_PIPELINES)
        env["STRATO_HOME"] = str(home)
        kind = workload.args[0]
        if kind == "one":
            return [strato_cli(), "run", f"{module}:one", "--json"], env
        if kind == "map":
            data = json.dumps({"items": list(range(int(workload.args[1])))})
            return [strato_cli(), "run", f"{module}:wide", "--input", data, "--json"], env
        # the chains pipeline is built from argv when the module is loaded as a script; the CLI loads it by
        # reference, so its shape comes from a module of its own
        module.write_text(STRATO_PIPELINES.replace(
            'if len(sys.argv) > 2 and sys.argv[1] == "chains":',
            f"if True:\n    sys.argv = ['', 'chains', '{workload.args[1]}', '{workload.args[2]}']"))
        return [strato_cli(), "run", f"{module}:chains", "--json"], env
    if framework == "prefect":
        env["PREFECT_HOME"] = str(home)
        env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
        # the server starts in a subprocess of its own; on a busy machine it can need more than the 20 s default
        env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
        script = work / "bench_prefect.py"
        script.write_text(PREFECT)
        return [sys.executable, str(script), *workload.args], env
    if framework == "dagster":
        env["DAGSTER_HOME"] = str(home)
        script = work / "bench_dagster.py"
        script.write_text(DAGSTER)
        return [sys.executable, str(script), *workload.args], env
    raise ValueError(framework)


def timed_run(framework: str, workload: Workload, tmp: Path) -> float:
    """Wall seconds of one fresh process running ``workload``; exits with its stderr if it fails."""
    work = Path(tempfile.mkdtemp(prefix=f"{framework}-{workload.name}-", dir=tmp))
    home = tmp / f"{framework}-home"
    home.mkdir(exist_ok=True)
    argv, env = command(framework, workload, work, home)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{framework} {workload.name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def available(framework: str) -> str | None:
    """Why ``framework`` cannot run in this interpreter, or None."""
    module = {"prefect": "prefect", "dagster": "dagster"}.get(framework, "strato")
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    if probe.returncode:
        return (f"{module} is not installed in {sys.executable}: run `make bench-peers`, or "
                f"bench/peers/.venv/bin/python {' '.join(sys.argv)}")
    return None


def version(framework: str) -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    name = "strato" if framework in STRATO else framework
    try:
        return dist_version(name)
    except PackageNotFoundError:
        return "?"


def spread(values: list[float], scale: float) -> str:
    return (f"{statistics.median(values) * scale:.3f} "
            f"({min(values) * scale:.3f}-{max(values) * scale:.3f})")


def per_task(samples: Samples, workload: Workload) -> list[float]:
    """(W(n) - W(1)) / (n - 1) for each round."""
    walls = zip(samples.wall[workload.name], samples.wall["one"], strict=True)
    return [(w - w1) / (workload.calls - 1) for w, w1 in walls]


def report(frameworks: list[str], results: dict[str, Samples], workloads: list[Workload], rounds: int,
           plain: bool) -> None:
    header = (f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; {rounds} round(s); "
              + ", ".join(f"{f} {version(f)}" for f in frameworks if f != "strato-cli"))
    rows: list[list[str]] = []
    one = workloads[0]
    fixed = {f: results[f].wall[one.name] for f in frameworks}
    rows.append([f"fixed cost: {one.name} (s)", *[spread(fixed[f], 1) for f in frameworks],
                 ratio(frameworks, {f: statistics.median(v) for f, v in fixed.items()})])
    for workload in workloads[1:]:
        costs = {f: per_task(results[f], workload) for f in frameworks}
        rows.append([f"{workload.name} (ms/task)", *[spread(costs[f], 1e3) for f in frameworks],
                     ratio(frameworks, {f: statistics.median(v) for f, v in costs.items()})])
    columns = ["workload", *frameworks, "faster peer / strato-api"]
    note = ("median (min-max) over rounds; per task = (W(n) - W(1)) / (n - 1) of fresh-process wall times W; "
            "the last column: how many times more the faster of the peers costs than Strato's API")
    if not plain:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            plain = True
    if plain:
        print(header)
        widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
        for row in [columns, *rows]:
            print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        print(note)
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))
    table = Table(title=header, caption=note)
    for name in columns:
        table.add_column(name, justify="left" if name == "workload" else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def ratio(frameworks: list[str], medians: dict[str, float]) -> str:
    peers = [medians[f] for f in frameworks if f in PEERS]
    if "strato-api" not in medians or not peers or medians["strato-api"] <= 0:
        return "-"
    return f"x{min(peers) / medians['strato-api']:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each running every framework on every "
                        "workload in a fresh process (default 5)")
    parser.add_argument("--only", default=",".join(FRAMEWORKS), help=f"comma-separated: {', '.join(FRAMEWORKS)}")
    parser.add_argument("--map", dest="width", type=int, default=1000, help="items of the map (default 1000)")
    parser.add_argument("--chains", default="20x50", help="COUNTxLENGTH independent chains (default 20x50)")
    parser.add_argument("--plain", action="store_true", help="plain text instead of a Rich table")
    parser.add_argument("--budget", type=float, default=None, metavar="MINUTES",
                        help="start no new round after this many minutes; the table says how many rounds ran")
    args = parser.parse_args(argv)
    frameworks = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown or not frameworks:
        parser.error(f"--only: unknown framework(s) {', '.join(unknown) or '(none)'}; choose from "
                     f"{', '.join(FRAMEWORKS)}")
    try:
        count, length = (int(part) for part in args.chains.lower().split("x"))
    except ValueError:
        parser.error(f"--chains {args.chains!r}: expected COUNTxLENGTH, e.g. 20x50")
    if args.rounds < 1 or args.width < 2 or count < 1 or length < 1 or count * length < 2:
        parser.error("--rounds must be >= 1, --map >= 2 and --chains at least 2 calls in all")
    for framework in frameworks:
        problem = available(framework)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 1
    workloads = [Workload("one", ["one"], 1), Workload(f"map {args.width:,}", ["map", str(args.width)], args.width),
                 Workload(f"chains {count}x{length}", ["chains", str(count), str(length)], count * length)]
    results = {f: Samples({w.name: [] for w in workloads}) for f in frameworks}
    started = time.monotonic()
    rounds = 0
    with tempfile.TemporaryDirectory(prefix="strato-peers-") as tmp:
        for framework in frameworks:  # warm-up: bytecode caches, page cache, each home's database; not counted
            timed_run(framework, workloads[0], Path(tmp))
        for r in range(args.rounds):
            if args.budget is not None and r and time.monotonic() - started > args.budget * 60:
                print(f"--budget of {args.budget:g} minutes spent: stopping after {r} round(s)", file=sys.stderr)
                break
            order = frameworks[r % len(frameworks):] + frameworks[:r % len(frameworks)]
            if r % 2:
                order.reverse()
            for framework in order:
                for workload in workloads:
                    seconds = timed_run(framework, workload, Path(tmp))
                    results[framework].wall[workload.name].append(seconds)
            rounds += 1
            walls = {f: [round(results[f].wall[w.name][-1], 3) for w in workloads] for f in order}
            print(f"round {r + 1}/{args.rounds} ({', '.join(order)}) wall s {walls}", file=sys.stderr, flush=True)
    report(frameworks, results, workloads, rounds, args.plain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
