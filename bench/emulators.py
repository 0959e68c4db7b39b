"""What each cloud's emulator costs: a fresh `strato emulate` of one task, and per task and per state in one process.

Run from the repository root in the project's virtualenv (the ``emulate`` extras installed)::

    python bench/emulators.py              # 3 repetitions, medians
    python bench/emulators.py --quick      # 1 repetition
    python bench/emulators.py --only aws   # one emulator (aws, gcp, azure)

For each emulator (AWS: moto's Step Functions interpreter; GCP: Strato's Workflows interpreter; Azure: the
replay host driving the Durable Functions SDK), every task through the cloud's own task shim:

- **fresh CLI**: wall time of ``strato emulate one.py:one --target T --json`` in a new process (imports,
  compiling, starting the emulator, one task), what a user waits for;
- **1 task / chain of N**: wall time of the adapter's ``emulate`` in this process once the emulator's
  modules are loaded (the median of the repetitions, after one warm-up run of each);
- **per task** = (W(N) - W(1)) / (N - 1), and **per state** = (W(N) - W(1)) / (S(N) - S(1)), where S is
  the number of native states the run went through: AWS history events of type ``*StateEntered``,
  Workflows steps executed, Durable history events (every orchestration instance's).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# this folder holds azure.py, named like the ``azure`` namespace package: it must not shadow it
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from strato.adapters.base import emulated_loader  # noqa: E402
from strato.dsl.definitions import PipelineDefinition  # noqa: E402
from strato.runtime import RunStore, VirtualClock, prepare_input, resolver_for, run_pipeline  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
bench_run = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules["bench_run"] = bench_run
_spec.loader.exec_module(bench_run)  # type: ignore[union-attr]

CHAIN = 50
ONE = '''
from strato import pipeline, task


@task
def noop(x: int) -> int:
    return x


@pipeline
def one(x: int = 1):
    return noop(x)
'''

Run = Callable[[PipelineDefinition, dict[str, Any]], tuple[float, int, Any]]  # -> seconds, states, output


def run_aws(definition: PipelineDefinition, params: dict[str, Any]) -> tuple[float, int, Any]:
    from strato.adapters.aws.compiler import compile_pipeline
    from strato.adapters.aws.emulator import Deployment, deployed_on_moto, run_execution

    ir = definition.ir
    start = time.perf_counter()
    deployment = Deployment(ir, compile_pipeline(ir).machines, emulated_loader(ir, resolver_for(ir)))
    with deployed_on_moto(deployment) as (_, _, sfn):
        result = run_execution(sfn, deployment, prepare_input(ir, params, definition.fn))
        seconds = time.perf_counter() - start
        states = 0
        for arn in deployment.machines.values():
            for execution in sfn.list_executions(stateMachineArn=arn)["executions"]:
                pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
                states += sum(1 for page in pages for e in page["events"] if e["type"].endswith("StateEntered"))
    assert result.status == "SUCCEEDED", result.error
    return seconds, states, result.output


def run_gcp(definition: PipelineDefinition, params: dict[str, Any]) -> tuple[float, int, Any]:
    from strato.adapters.gcp.compiler import compile_pipeline
    from strato.adapters.gcp.emulator import emulate
    from strato.adapters.gcp.interpreter import VirtualClock as WorkflowsClock

    ir = definition.ir
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        compiled = compile_pipeline(ir)
        result, execution = emulate(ir, compiled.source, prepare_input(ir, params, definition.fn),
                                    emulated_loader(ir, resolver_for(ir)), Path(tmp), "wsgi", WorkflowsClock(),
                                    parts=compiled.part_sources)
        seconds = time.perf_counter() - start
    assert result.status == "SUCCEEDED", result.error
    return seconds, execution.steps_executed, result.output


def run_azure(definition: PipelineDefinition, params: dict[str, Any]) -> tuple[float, int, Any]:
    from strato.adapters.azure.emulator import emulation

    ir = definition.ir
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        em = emulation(ir, resolver_for(ir), Path(tmp))
        result = em.run(prepare_input(ir, params, definition.fn), "bench")
        seconds = time.perf_counter() - start
        states = sum(len(instance.history) for instance in em.host.instances.values())
    assert result.status == "SUCCEEDED", result.error
    return seconds, states, result.output


EMULATORS: dict[str, tuple[str, Run]] = {
    "aws": ("AWS: moto (Step Functions)", run_aws),
    "gcp": ("GCP: Workflows interpreter", run_gcp),
    "azure": ("Azure: Durable replay host", run_azure),
}


def fresh_cli(target: str, repeat: int, work: Path) -> float:
    """Median wall seconds of `strato emulate` of one task in a new process (bytecode caches written first)."""
    (work / "one.py").write_text(ONE)
    env = {**os.environ, "STRATO_HOME": str(work / "home")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "strato", "emulate", "one.py:one", "--target", target, "--json"]
    samples = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
        elapsed = time.perf_counter() - start
        assert done.returncode == 0 and json.loads(done.stdout)["output"] == 1, done.stderr
        if i:
            samples.append(elapsed)
    return statistics.median(samples)


def measure(target: str, repeat: int, work: Path) -> tuple[str, ...]:
    label, run = EMULATORS[target]
    one = bench_run.chains_pipeline(1, 1)
    chain = bench_run.chains_pipeline(1, CHAIN)
    expected = run_pipeline(chain, {}, store=RunStore.memory(), clock=VirtualClock()).output
    run(one, {})  # warm-up: the emulator's modules and caches
    run(chain, {})
    w1, s1, w_n, s_n = [], 0, [], 0
    for _ in range(repeat):  # the two sizes take turns, so a slow spell of the machine hits both
        seconds, s1, _ = run(one, {})
        w1.append(seconds)
        seconds, s_n, output = run(chain, {})
        assert output == expected, (target, output, expected)
        w_n.append(seconds)
    one_s, chain_s = statistics.median(w1), statistics.median(w_n)
    per_task = (chain_s - one_s) / (CHAIN - 1)
    per_state = (chain_s - one_s) / max(s_n - s1, 1)
    return (label, f"{fresh_cli(target, repeat, work):.2f} s", f"{one_s * 1e3:.0f} ms", f"{chain_s:.2f} s",
            f"{per_task * 1e3:.1f} ms", f"{(s_n - s1) / (CHAIN - 1):.1f}", f"{per_state * 1e3:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repetition")
    parser.add_argument("--only", default="aws,gcp,azure", help="comma-separated: aws, gcp, azure")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 3
    targets = [t.strip() for t in args.only.split(",") if t.strip()]
    unknown = [t for t in targets if t not in EMULATORS]
    if unknown:
        parser.error(f"unknown emulator(s) {', '.join(unknown)}; choose from {', '.join(EMULATORS)}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(t, repeat, Path(tmp)) for t in targets]
    bench_run.table(f"Emulators: one task, a chain of {CHAIN}, each task through the cloud's shim (median of "
                    f"{repeat})", ("emulator", "fresh CLI, 1 task", "1 task", f"chain of {CHAIN}", "per task",
                                   "states per task", "per state"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
