"""The peer benchmark's Strato side keeps working: tiny sizes, no peers installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "peers" / "run.py"


def test_strato_side_prints_fixed_and_per_task_costs() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "strato-api,strato-cli", "--map", "3",
                           "--chains", "2x2", "--rounds", "1", "--plain"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split()[:3] == ["workload", "strato-api", "strato-cli"]
    assert lines[2].startswith("fixed cost: one (s)")
    assert lines[3].startswith("map 3 (ms/task)")
    assert lines[4].startswith("chains 2x2 (ms/task)")
    fixed = float(lines[2].split()[4])  # strato-api's median W(1), in seconds
    assert 0 < fixed < 30


def test_missing_peer_is_reported_with_what_to_do() -> None:
    probe = subprocess.run([sys.executable, "-c", "import prefect"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("prefect is installed in this environment")
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "prefect", "--rounds", "1"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 1
    assert "make bench-peers" in done.stderr and "Traceback" not in done.stderr


def test_bad_arguments_are_usage_errors() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "airflow"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert "unknown framework(s) airflow" in done.stderr
