"""Crash safety: SIGKILL the local runner at every kill point of a pipeline and resume it.

Each resumed run gives the uninterrupted run's output, and no task whose completion was committed
before the kill runs again (what re-runs is only work whose completion was not yet durable).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, Cli

REF = "tests/pipelines/crashable.py:crashable"
POINTS = 60  # 15 task calls x 4 kill points each
BATCHES = 3


def test_sigkill_at_every_point_then_resume(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "clean.log"
    code, clean = cli.json("run", REF, "--json", CRASH_LOG=str(log))
    assert code == 0 and clean["status"] == "SUCCEEDED"
    every_unit = log.read_text().split()
    assert len(every_unit) == len(set(every_unit)) == POINTS // 4
    out = tmp_path / "points"
    out.mkdir()
    env = cli.env()
    points = [str(k) for k in range(1, POINTS + 1)]
    drivers = [subprocess.Popen([sys.executable, str(ROOT / "tests" / "crash_points.py"), str(out),
                                 *points[i::BATCHES]], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
               for i in range(BATCHES)]
    for driver in drivers:
        _, err = driver.communicate(timeout=120)
        assert driver.returncode == 0, err
    for k in range(1, POINTS + 1):
        point = json.loads((out / f"{k}.json").read_text())
        where = f"kill point {k}"
        assert point["killed"], where
        assert point["resume_exit"] == 0, (where, point)
        assert point["result"]["output"] == clean["output"], where
        assert point["result"]["status"] == "SUCCEEDED", where
        rerun = set(point["resume_log"]) & set(point["committed"])
        assert not rerun, f"{where}: committed units ran again: {rerun}"
        assert sorted(set(point["run_log"]) | set(point["resume_log"])) == sorted(every_unit), where
        assert len(point["resume_log"]) == len(set(point["resume_log"])), where
        # at least once, never lost: every unit the kill left uncommitted ran in the resume
        assert set(every_unit) - set(point["committed"]) == set(point["resume_log"]), where
