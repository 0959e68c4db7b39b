"""Cold import cost of what a deployed function loads: each cloud's task shim, and ``strato`` itself.

A task function's cold start pays for importing its shim; the shim should load only what a task call
needs (the IR values, the type checks, the payload code), never the local runner, SQLite, the DSL's
tracing, Rich or Click. Each module is imported in a fresh interpreter ``--repeat`` times; the table
shows the median wall time of ``import`` (measured inside the process) and which heavy modules it
pulled in. Bytecode is written and used (a warm-up import first, ``PYTHONDONTWRITEBYTECODE``
unset), as in a deployed package that ships or caches its ``.pyc`` files; otherwise compiling the
sources would dominate the figures.

    python bench/imports.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

MODULES = ["strato", "strato.adapters.aws.shim", "strato.adapters.gcp.shim", "strato.adapters.azure.shim"]
HEAVY = ["sqlite3", "strato.runtime.runner", "strato.runtime.store", "strato.dsl", "rich", "click", "croniter",
         "pydantic", "boto3", "yaml", "flask", "azure.functions"]
PROBE = """
import json, sys, time
t = time.perf_counter()
import importlib; importlib.import_module({module!r})
elapsed = time.perf_counter() - t
print(json.dumps({{"ms": elapsed * 1000, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def measure(module: str, repeat: int) -> tuple[float, float, float, list[str]]:
    times, heavy = [], []
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    probe = [sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)]
    subprocess.run(probe, capture_output=True, check=True, cwd="/", env=env)  # writes the bytecode caches
    for _ in range(repeat):
        out = subprocess.run(probe, capture_output=True, text=True, check=True, cwd="/", env=env).stdout
        data = json.loads(out)
        times.append(data["ms"])
        heavy = data["heavy"]
    return statistics.median(times), min(times), max(times), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    print("| module | median ms | min-max ms | heavy modules loaded |\n|---|---|---|---|")
    for module in MODULES:
        median, low, high, heavy = measure(module, args.repeat)
        print(f"| `{module}` | {median:.1f} | {low:.1f}-{high:.1f} | {', '.join(heavy) or 'none'} |")


if __name__ == "__main__":
    main()
