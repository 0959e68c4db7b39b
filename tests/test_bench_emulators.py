"""The emulator benchmark keeps working: each emulator's row, checked against the local runner's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "emulators.py"


def test_prints_per_task_and_per_state_costs_for_each_emulator() -> None:
    pytest.importorskip("azure.durable_functions")
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--only", "gcp,azure"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.strip().startswith(("GCP:", "Azure:"))]
    assert len(rows) == 2, done.stdout
    for row in rows:
        cells = row.split()
        assert cells[-1] == "ms" and float(cells[-2]) > 0  # per state
        assert float(cells[-3]) >= 1  # native states per task


def test_an_unknown_emulator_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "oracle"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "unknown emulator" in done.stderr and "Traceback" not in done.stderr
