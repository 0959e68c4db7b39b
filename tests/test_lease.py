"""One owner per run: concurrent `strato resume` of one run, and the lease's schema in the store."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from strato.runtime.store import SCHEMA_VERSION, RunLocked, RunStore, StoreError

from .conftest import ROOT, Cli
from .test_resume import EXPECTED, REF, _wait_for


def _interrupted_run(cli: Cli, log: Path, gate: Path) -> str:
    env = cli.env(STRATO_TEST_LOG=str(log), STRATO_TEST_GATE=str(gate))
    proc = subprocess.Popen([sys.executable, "-m", "strato", "run", REF, "--input", '{"n": 4}', "--json"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: log.exists() and "gate" in log.read_text().split())
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    code, runs = cli.json("runs", "list", "--json")
    assert code == 0 and runs[0]["status"] == "INTERRUPTED"
    return str(runs[0]["run_id"])


def test_five_concurrent_resumers_one_owner(cli: Cli, tmp_path: Path) -> None:
    log, gate = tmp_path / "executions.log", tmp_path / "gate"
    gate.touch()
    run_id = _interrupted_run(cli, log, gate)
    before = Counter(log.read_text().split())
    env = cli.env(STRATO_TEST_LOG=str(log), STRATO_TEST_GATE=str(gate))
    procs = [subprocess.Popen([sys.executable, "-m", "strato", "resume", run_id, "--json"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(5)]
    try:
        _wait_for(lambda: sum(p.poll() is not None for p in procs) >= 4, timeout=60)
        gate.unlink()  # the owner's gate task may now finish
        outputs = [(p.wait(timeout=60), *p.communicate()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    winners = [o for o in outputs if o[0] == 0]
    losers = [o for o in outputs if o[0] != 0]
    assert len(winners) == 1 and len(losers) == 4, outputs
    assert f'"run_id": "{run_id}"' in winners[0][1] and '"status": "SUCCEEDED"' in winners[0][1]
    for code, out, err in losers:
        assert code == 1 and out == ""
        assert f"error: run {run_id} is being resumed by pid " in err, err
    for _, out, err in outputs:
        assert "Traceback" not in out + err and "IntegrityError" not in err
    after = Counter(log.read_text().split()) - before
    assert all(count == 1 for count in after.values()), after  # nothing ran twice after the interruption
    assert after["gate"] == 1 and after["label:total="] == 1
    code, shown = cli.json("runs", "show", run_id, "--json")
    assert shown["status"] == "SUCCEEDED" and shown["output"] == EXPECTED and shown["resumes"] == 1


def _insert_running(store: RunStore, run_id: str, pid: int, host: str, heartbeat: float | None) -> None:
    store.create_run(run_id, "p", "x.py:p", [], "{}", "h", {}, time.time())
    store.db.execute("UPDATE runs SET pid=?, host=?, heartbeat=? WHERE run_id=?", (pid, host, heartbeat, run_id))


def test_a_live_lease_is_refused_and_a_dead_one_taken_over(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.db")
    here = socket.gethostname()
    parent = os.getppid()  # alive, not us
    _insert_running(store, "live", parent, here, time.time())
    with pytest.raises(RunLocked, match=f"run live is being run by pid {parent}"):
        store.claim("live")
    _insert_running(store, "stale", parent, here, time.time() - 3600)  # alive pid, no heartbeat for an hour
    assert store.claim("stale").pid == os.getpid()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _insert_running(store, "dead", int(dead.stdout), here, time.time())
    claimed = store.claim("dead")
    assert (claimed.pid, claimed.host, claimed.resumes, claimed.status) == (os.getpid(), here, 1, "RUNNING")
    _insert_running(store, "remote", 1, "another-host", time.time())
    with pytest.raises(RunLocked, match="on another-host"):
        store.claim("remote")
    store.db.execute("UPDATE runs SET heartbeat=? WHERE run_id='remote'", (time.time() - 3600,))
    assert store.claim("remote").host == here


def test_the_store_is_versioned_and_migrates_an_unversioned_one(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    db = sqlite3.connect(old)
    db.executescript("CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, ref TEXT, sys_path TEXT, "
                     "ir TEXT NOT NULL, ir_hash TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, output TEXT, "
                     "error TEXT, started_at REAL NOT NULL, ended_at REAL, pid INTEGER, host TEXT, "
                     "resumes INTEGER NOT NULL DEFAULT 0);"
                     "INSERT INTO runs VALUES ('r1','p',NULL,'[]','{}','h','{}','SUCCEEDED','1',NULL,1.0,2.0,1,'h',0);")
    db.close()
    store = RunStore(old)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
    record = store.get_run("r1")
    assert record is not None and record.output == 1 and record.heartbeat is None and record.backend is None
    assert record.ir == "{}"  # an old run's IR stays in its own row, and is read from there
    store.close()
    newer = sqlite3.connect(old)
    newer.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(StoreError, match="written by a newer strato"):
        RunStore(old)


def test_a_version_8_store_keeps_its_running_attempts_and_numbers_on(tmp_path: Path) -> None:
    """Version 9 keeps the attempt in progress on its unit; rows a version 8 store wrote stay readable."""
    path = tmp_path / "v8.db"
    RunStore(path).close()
    db = sqlite3.connect(path)
    db.executescript(
        "ALTER TABLE units DROP COLUMN attempt_started_at;"
        "CREATE TRIGGER attempts_counted AFTER INSERT ON attempts BEGIN "
        "UPDATE units SET attempts = NEW.attempt WHERE run_id = NEW.run_id AND key = NEW.key; END;"
        "INSERT INTO runs (run_id, pipeline, sys_path, ir, ir_hash, input, status, started_at) "
        "VALUES ('r1','p','[]','{}','h','{}','RUNNING',1.0);"
        "INSERT INTO units (run_id, key, kind, task, status, started_at) VALUES ('r1','a','task','t','RUNNING',1.0);"
        "INSERT INTO attempts (run_id, key, attempt, status, started_at, ended_at) "
        "VALUES ('r1','a',1,'FAILED',1.0,2.0), ('r1','a',2,'RUNNING',3.0,NULL);"
        "PRAGMA user_version=8;")
    db.close()
    store = RunStore(path)
    assert store.db.execute("SELECT count(*) FROM sqlite_master WHERE type='trigger'").fetchone()[0] == 0
    assert store.attempt_counts("r1") == {"a": 2}  # what the old trigger counted
    assert [(a["attempt"], a["status"]) for a in store.attempts("r1")] == [(1, "FAILED"), (2, "RUNNING")]
    store.start_attempt("r1", "a", 3, 4.0)  # a resumed run's next attempt: on the unit, listed as RUNNING
    assert [(a["attempt"], a["status"]) for a in store.attempts("r1")] == [(1, "FAILED"), (2, "RUNNING"),
                                                                           (3, "RUNNING")]
    store.finish_run("r1", "FAILED", None, {"error": "E", "cause": "c"}, 5.0)
    assert [(a["attempt"], a["status"]) for a in store.attempts("r1")] == [(1, "FAILED"), (2, "CANCELLED"),
                                                                           (3, "CANCELLED")]
    assert store.attempt_counts("r1") == {"a": 3}
    store.close()
