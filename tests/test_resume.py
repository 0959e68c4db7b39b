"""A run killed with SIGKILL resumes to the same output without re-running finished tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .conftest import ROOT, Cli

REF = "tests/pipelines/resumable.py:resumable"
EXPECTED = {"squares": [1, 4, 9, 16], "total": 30, "sub": {"label": "total=30"}, "side": "side-4"}


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the run to reach the gate")
        time.sleep(0.02)


def test_sigkilled_run_resumes_without_rerunning_finished_tasks(cli: Cli, tmp_path: Path) -> None:
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    env = cli.env(STRATO_TEST_LOG=str(log), STRATO_TEST_GATE=str(gate))
    proc = subprocess.Popen([sys.executable, "-m", "strato", "run", REF, "--input", '{"n": 4}', "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: log.exists() and "gate" in log.read_text().split())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    code, runs = cli.json("runs", "list", "--json")
    assert code == 0 and len(runs) == 1
    run = runs[0]
    assert run["status"] == "INTERRUPTED" and run["ended_at"] is None and run["pipeline"] == "resumable"

    gate.unlink()
    code, resumed = cli.json("resume", run["run_id"], "--json", STRATO_TEST_LOG=str(log))
    assert code == 0, resumed
    assert resumed == {"run_id": run["run_id"], "status": "SUCCEEDED", "output": EXPECTED, "error": None}

    executions = Counter(log.read_text().split())
    assert executions == Counter({"source": 1, "square:1": 1, "square:2": 1, "square:3": 1, "square:4": 1,
                                  "side": 1, "gate": 2, "label:total=": 1})

    code, shown = cli.json("runs", "show", run["run_id"], "--json")
    assert shown["status"] == "SUCCEEDED" and shown["resumes"] == 1
    units = {u["key"]: u for u in shown["units"]}
    assert units["labelled/label"]["status"] == "SUCCEEDED" and units["square[3]"]["result"] == 16

    fresh_log = tmp_path / "fresh.log"
    code, fresh = cli.json("run", REF, "--input", '{"n": 4}', "--json", STRATO_TEST_LOG=str(fresh_log))
    assert code == 0 and fresh["output"] == resumed["output"]

    again = cli("resume", run["run_id"], "--json", STRATO_TEST_LOG=str(log))
    assert again.returncode == 0 and Counter(log.read_text().split()) == executions  # finished: nothing re-runs


def test_a_failed_run_resumes_after_the_code_is_fixed(cli: Cli, tmp_path: Path) -> None:
    module = tmp_path / "fixable.py"
    module.write_text(
        "from strato import pipeline, task\n\n"
        "@task\ndef parse(text: str) -> int:\n    return int(text)\n\n"
        "@pipeline\ndef fixable(text: str = 'x'):\n    return {'n': parse(text)}\n")
    code, failed = cli.json("run", f"{module}:fixable", "--json")
    assert code == 1 and failed["error"]["error"] == "ValueError"
    module.write_text(module.read_text().replace("return int(text)", "return len(text)"))
    code, fixed = cli.json("resume", failed["run_id"], "--json")
    assert code == 0 and fixed["output"] == {"n": 1}

    module.write_text(module.read_text().replace("{'n': parse(text)}", "{'m': parse(text)}"))
    code, failed = cli.json("run", f"{module}:fixable", "--input", '{"text": "a"}', "--json")
    changed = cli("resume", "no-such-run")
    assert changed.returncode == 2 and "no run 'no-such-run'" in changed.stderr
