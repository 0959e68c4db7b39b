"""Run states that tell the truth, and the run history commands: runs list filters, Ctrl-C, runs prune."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from strato import pipeline, task, wait
from strato.runtime import RunHooks, RunStore, VirtualClock, run_pipeline
from strato.runtime.store import shown_status

from .conftest import ROOT, Cli

FAILING = "tests/pipelines/failing.py:failing"
RESUMABLE = "tests/pipelines/resumable.py:resumable"


def test_map_items_left_running_by_a_failed_run_are_cancelled() -> None:
    release = threading.Event()
    started = threading.Event()

    @task
    def item(n: int) -> int:
        if n == 0:
            started.wait(10)
            raise ValueError("item 0 is bad")
        started.set()
        release.wait(10)  # still running when the run fails
        return n

    @pipeline
    def p():
        return item.map([0, 1])

    store = RunStore.memory()
    try:
        result = run_pipeline(p, store=store, clock=VirtualClock(), workers=2)
    finally:
        release.set()
    assert result.status == "FAILED"
    units = {u["key"]: u["status"] for u in store.units(result.run_id)}
    assert units == {"item": "FAILED", "item[0]": "FAILED", "item[1]": "CANCELLED"}
    assert {(a["key"], a["status"]) for a in store.attempts(result.run_id)} == {("item[0]", "FAILED"),
                                                                                 ("item[1]", "CANCELLED")}
    assert shown_status("RUNNING", "INTERRUPTED") == "INTERRUPTED" and shown_status("RUNNING", "RUNNING") == "RUNNING"


def test_progress_counts_a_pending_wait_as_work_not_done() -> None:
    seen: list[tuple[str, int, int]] = []

    class Count(RunHooks):
        planned = finished = 0

        def calls_planned(self, count: int) -> None:
            self.planned += count
            seen.append(("planned", self.planned, self.finished))

        def call_finished(self, key: str, task: str, status: str) -> None:
            self.finished += 1
            seen.append((key, self.planned, self.finished))

    @task
    def one() -> int:
        return 1

    @pipeline
    def p():
        first = one()
        pause = wait(seconds=60, wait_for=[first])
        return one(wait_for=[pause])

    clock = VirtualClock()
    run_pipeline(p, store=RunStore.memory(), clock=clock, hooks=Count())
    assert seen == [("planned", 1, 0), ("one", 1, 1), ("planned", 2, 1), ("wait", 2, 2), ("planned", 3, 2),
                    ("one_2", 3, 3)]
    assert clock.slept == [60.0]


def test_ctrl_c_says_how_to_resume_and_the_run_shows_as_interrupted(cli: Cli, tmp_path: Path) -> None:
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    env = cli.env(STRATO_TEST_LOG=str(log), STRATO_TEST_GATE=str(gate))
    proc = subprocess.Popen([sys.executable, "-m", "strato", "run", RESUMABLE], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (log.exists() and "gate" in log.read_text().split()):
        assert time.monotonic() < deadline and proc.poll() is None, "the run never reached the gate"
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    run_id = cli.json("runs", "list", "--json")[1][0]["run_id"]
    assert f"interrupted: run {run_id} stopped and is INTERRUPTED; continue it with `strato resume {run_id}`" in err
    assert "Traceback" not in err
    _, shown = cli.json("runs", "show", run_id, "--json")
    assert shown["status"] == "INTERRUPTED"
    assert {u["key"]: u["status"] for u in shown["units"]}["gate"] == "INTERRUPTED"
    assert "RUNNING" not in {u["status"] for u in shown["units"]} | {a["status"] for a in shown["attempts"]}
    gate.unlink()
    code, resumed = cli.json("resume", run_id, "--json", STRATO_TEST_LOG=str(log))
    assert code == 0 and resumed["output"]["total"] == 30


def test_runs_list_has_durations_and_filters(cli: Cli) -> None:
    _, failed = cli.json("run", FAILING, "--json")
    _, ok = cli.json("run", FAILING, "--input", '{"b": 2}', "--json")
    _, other = cli.json("run", "tests/pipelines/map_failures.py:fine_map", "--json")

    def listed(*args: str) -> list[str]:
        code, runs = cli.json("runs", "list", "--json", *args)
        assert code == 0
        return [r["run_id"] for r in runs]

    assert listed("--pipeline", "failing") == [ok["run_id"], failed["run_id"]]
    assert listed("--status", "FAILED") == [failed["run_id"]]
    assert listed("--status", "succeeded", "--pipeline", "failing") == [ok["run_id"]]
    assert listed("--status", "INTERRUPTED") == [] and listed("--status", "RUNNING") == []
    assert listed("--since", "1h") == [other["run_id"], ok["run_id"], failed["run_id"]]
    assert listed("--since", "2999-01-01") == []
    table = cli("runs", "list")
    assert "duration" in table.stdout and "scheduled_at" in table.stdout
    row = next(line for line in table.stdout.splitlines() if failed["run_id"] in line)
    assert "FAILED" in row and row.split()[-1].endswith("s")  # e.g. 0.05s
    assert cli("runs", "list", "--status", "FAILED", "--pipeline", "fine_map").stdout.strip() == "no runs match"
    for args, message in [(("--since", "yesterday"), "--since: 'yesterday' is not an ISO 8601"),
                          (("--status", "LOST"), "error: --status: 'LOST' is not one of 'RUNNING', 'SUCCEEDED'")]:
        bad = cli("runs", "list", *args)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr


def test_prune_deletes_old_runs_and_all_their_rows(cli: Cli) -> None:
    ids = [cli.json("run", "tests/pipelines/chatty.py:chatty", "--json")[1]["run_id"] for _ in range(3)]
    db = sqlite3.connect(cli.home / "strato.db")
    day = 86400
    db.execute("UPDATE runs SET started_at=started_at-?, ended_at=ended_at-? WHERE run_id IN (?, ?)",
               (40 * day, 40 * day, ids[0], ids[1]))
    # an old run still owned by a live process (this one) is kept
    db.execute("UPDATE runs SET status='RUNNING', ended_at=NULL, pid=?, heartbeat=? WHERE run_id=?",
               (os.getpid(), time.time(), ids[1]))
    db.commit()
    code, pruned = cli.json("runs", "prune", "--older-than", "30d", "--json")
    assert code == 0 and pruned == {"deleted": 1, "run_ids": [ids[0]]}
    for table in ("runs", "units", "attempts", "logs"):
        assert db.execute(f"SELECT count(*) FROM {table} WHERE run_id=?", (ids[0],)).fetchone()[0] == 0, table
        assert db.execute(f"SELECT count(*) FROM {table} WHERE run_id=?", (ids[2],)).fetchone()[0] > 0, table
    db.close()
    assert "deleted 0 run(s)" in cli("runs", "prune", "--older-than", "30d").stdout
    bad = cli("runs", "prune", "--older-than", "a month")
    assert bad.returncode == 2 and "write a whole number and a unit" in bad.stderr
    assert json.loads(cli("runs", "list", "--json").stdout)[0]["run_id"] == ids[2]
