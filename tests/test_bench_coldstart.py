"""The cold-start benchmark keeps working: a row per command, with the targets judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prints_each_command_with_its_target() -> None:
    venv = Path(sys.executable).parent.parent  # this environment's own install of strato
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "coldstart.py"), "--venv", str(venv), "--repeat", "1"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    rows = {line.split("|")[1].strip(): line for line in done.stdout.splitlines() if line.startswith("| `")}
    assert set(rows) == {"`python -c pass`", "`strato --help`", "`strato run (1 task)`"}, done.stdout
    assert "<= 0.06 s" in rows["`strato --help`"] and "<= 0.10 s" in rows["`strato run (1 task)`"]
    assert float(rows["`strato run (1 task)`"].split("|")[2].split()[0]) > 0
    assert "cold-start targets:" in done.stdout
