"""Cold start of the ``strato`` command: what a user waits for before anything of theirs runs.

Measures, in fresh processes of a regular (non-editable) install, ``python -c pass`` (the interpreter's
own start, the floor), ``strato --help`` and a 1-task ``strato run one.py:one --json`` (``one`` calls
``noop(x: int) -> int`` once, with the run store on), alternating the commands over ``--repeat``
rounds, and prints the median wall time with its min-max, the CPU time of the child (user + system:
near what a quiet machine's wall time would be when this one is busy) and each target.

    python bench/coldstart.py                 # builds bench/.coldstart-venv from this checkout first
    python bench/coldstart.py --venv DIR      # an existing virtualenv with strato installed
    python bench/coldstart.py --importtime    # also the modules a run spends most of its imports on

The default virtualenv gets this checkout installed as users install it (``pip install .``, a wheel, its
bytecode compiled), refreshed on every call; the first call downloads nothing new when the project's
own dependencies are already in pip's cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / "bench" / ".coldstart-venv"
TARGETS = {"strato --help": 0.06, "strato run (1 task)": 0.10}
ONE = '''
from strato import pipeline, task


@task
def noop(x: int) -> int:
    return x


@pipeline
def one() -> int:
    return noop(1)
'''


def prepare(venv: Path) -> None:
    """A virtualenv with this checkout installed as a wheel (not editable), refreshed."""
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(ROOT)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT)],
                   check=True)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``cmd``, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def importtime(venv: Path, cwd: Path, env: dict[str, str], top: int = 15) -> list[tuple[int, str]]:
    """The modules with the largest own import time (microseconds) in one 1-task run."""
    done = subprocess.run([str(venv / "bin" / "python"), "-X", "importtime", "-m", "strato", "run", "one.py:one",
                           "--json"], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            own, _, name = line.removeprefix("import time:").split("|")
            rows.append((int(own), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="an existing virtualenv with strato installed (not rebuilt)")
    parser.add_argument("--repeat", type=int, default=11, help="rounds (default 11)")
    parser.add_argument("--importtime", action="store_true", help="also list the costliest imports of a run")
    args = parser.parse_args()
    venv = args.venv or DEFAULT_VENV
    if args.venv is None:
        prepare(venv)
    python, strato = str(venv / "bin" / "python"), str(venv / "bin" / "strato")
    commands = {"python -c pass": [python, "-c", "pass"], "strato --help": [strato, "--help"],
                "strato run (1 task)": [strato, "run", "one.py:one", "--json"]}
    with tempfile.TemporaryDirectory(prefix="strato-coldstart-") as tmp:
        work = Path(tmp)
        (work / "one.py").write_text(ONE)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
        env.update(STRATO_HOME=str(work / "home"), STRATO_NO_PROGRESS="1")
        for cmd in commands.values():  # warm-up: bytecode caches and the run store exist
            timed(cmd, work, env)
        walls: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for round_ in range(args.repeat):
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # alternate the order
                wall, cpu = timed(commands[name], work, env)
                walls[name].append(wall)
                cpus[name].append(cpu)
        version = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True,
                                 text=True, check=True).stdout.strip()
        print(f"Strato cold start: Python {version}, {os.cpu_count()} CPUs, load average "
              f"{os.getloadavg()[0]:.2f}, {args.repeat} rounds, {venv}")
        print("| command | wall s, median (min-max) | CPU s, median (min-max) | target |")
        print("|---|---|---|---|")
        met = True
        for name in names:
            wall, cpu = walls[name], cpus[name]
            target = TARGETS.get(name)
            verdict = ""
            if target is not None:
                ok = statistics.median(wall) <= target
                met &= ok
                verdict = f"<= {target:.2f} s: {'met' if ok else 'MISSED'}"
            print(f"| `{name}` | {statistics.median(wall):.3f} ({min(wall):.3f}-{max(wall):.3f}) | "
                  f"{statistics.median(cpu):.3f} ({min(cpu):.3f}-{max(cpu):.3f}) | {verdict} |")
        if args.importtime:
            print("\nlargest own import times of one run (python -X importtime):")
            for own, module in importtime(venv, work, env):
                print(f"  {own / 1000:6.1f} ms  {module}")
        print(f"\ncold-start targets: {'met' if met else 'not met'}")


if __name__ == "__main__":
    main()
