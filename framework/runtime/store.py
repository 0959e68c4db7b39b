"""The durable run store: every state change of a run, in SQLite (WAL) under ``$STRATO_HOME``.

A run killed at any moment can be continued: units (task calls, map items, waits, sub-pipelines)
recorded as SUCCEEDED keep their results and are not run again.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .results import FAILED, INTERRUPTED, RUNNING, SKIPPED, SUCCEEDED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, ref TEXT, sys_path TEXT, ir TEXT NOT NULL,
    ir_hash TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, output TEXT, error TEXT,
    started_at REAL NOT NULL, ended_at REAL, pid INTEGER, host TEXT, resumes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, task TEXT, status TEXT NOT NULL,
    result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started_at REAL, ended_at REAL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, key TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, error TEXT, PRIMARY KEY (run_id, key, attempt)
);
"""



def strato_home() -> Path:
    return Path(os.environ.get("STRATO_HOME") or Path.home() / ".strato")


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class RunRecord:
    run_id: str
    pipeline: str
    ref: str | None
    sys_path: list[str]
    ir: str
    ir_hash: str
    input: dict
    status: str
    output: Any
    error: dict | None
    started_at: float
    ended_at: float | None
    pid: int | None
    host: str | None
    resumes: int

    @property
    def display_status(self) -> str:
        """RUNNING runs whose process is gone are shown as INTERRUPTED (``strato resume`` continues them)."""
        if self.status == RUNNING and not _process_alive(self.pid, self.host):
            return INTERRUPTED
        return self.status

    def summary(self) -> dict:
        return {"run_id": self.run_id, "pipeline": self.pipeline, "status": self.display_status,
                "started_at": iso(self.started_at), "ended_at": iso(self.ended_at)}


def _process_alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != socket.gethostname():
        return host != socket.gethostname()  # another machine's run: assume it is alive
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed child not yet reaped) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


class RunStore:
    """SQLite-backed store. Writes are grouped in transactions by the runner (``commit``)."""

    def __init__(self, path: str | Path | None = None):
        if path is None:
            home = strato_home()
            home.mkdir(parents=True, exist_ok=True)
            path = home / "strato.db"
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._in_tx = False

    @classmethod
    def memory(cls) -> RunStore:
        return cls(":memory:")

    # transactions ------------------------------------------------------------------------------
    def _tx(self) -> sqlite3.Connection:
        if not self._in_tx:
            self.db.execute("BEGIN")
            self._in_tx = True
        return self.db

    def commit(self) -> None:
        if self._in_tx:
            self.db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        self.commit()
        self.db.close()

    # writes ------------------------------------------------------------------------------------
    def create_run(self, run_id: str, pipeline: str, ref: str | None, sys_path: list[str], ir_json: str,
                   ir_hash: str, input: dict, started_at: float) -> None:
        self._tx().execute(
            "INSERT INTO runs (run_id, pipeline, ref, sys_path, ir, ir_hash, input, status, started_at, pid, host) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, pipeline, ref, _dumps(sys_path), ir_json, ir_hash, _dumps(input), RUNNING, started_at,
             os.getpid(), socket.gethostname()))
        self.commit()

    def mark_resumed(self, run_id: str) -> None:
        self._tx().execute("UPDATE runs SET status=?, pid=?, host=?, ended_at=NULL, error=NULL, "
                           "resumes=resumes+1 WHERE run_id=?", (RUNNING, os.getpid(), socket.gethostname(), run_id))
        self.commit()

    def finish_run(self, run_id: str, status: str, output: Any, error: dict | None, ended_at: float) -> None:
        self._tx().execute("UPDATE runs SET status=?, output=?, error=?, ended_at=? WHERE run_id=?",
                           (status, _dumps(output), _dumps(error) if error else None, ended_at, run_id))
        self.commit()

    def start_unit(self, run_id: str, key: str, kind: str, task: str | None, started_at: float) -> None:
        self._tx().execute(
            "INSERT INTO units (run_id, key, kind, task, status, started_at) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET status=excluded.status, error=NULL, ended_at=NULL, "
            "started_at=CASE WHEN units.kind='wait' THEN units.started_at ELSE excluded.started_at END",
            (run_id, key, kind, task, RUNNING, started_at))

    def finish_unit(self, run_id: str, key: str, status: str, result: Any, error: dict | None,
                    ended_at: float, kind: str = "task", task: str | None = None) -> None:
        self._tx().execute(
            "INSERT INTO units (run_id, key, kind, task, status, result, error, started_at, ended_at) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id, key) DO UPDATE SET status=excluded.status, "
            "result=excluded.result, error=excluded.error, ended_at=excluded.ended_at",
            (run_id, key, kind, task, status, _dumps(result), _dumps(error) if error else None, ended_at, ended_at))

    def start_attempt(self, run_id: str, key: str, attempt: int, started_at: float) -> None:
        db = self._tx()
        db.execute("INSERT INTO attempts (run_id, key, attempt, status, started_at) VALUES (?,?,?,?,?)",
                   (run_id, key, attempt, RUNNING, started_at))
        db.execute("UPDATE units SET attempts=? WHERE run_id=? AND key=?", (attempt, run_id, key))

    def finish_attempt(self, run_id: str, key: str, attempt: int, status: str, ended_at: float,
                       error: dict | None) -> None:
        self._tx().execute("UPDATE attempts SET status=?, ended_at=?, error=? WHERE run_id=? AND key=? AND attempt=?",
                           (status, ended_at, _dumps(error) if error else None, run_id, key, attempt))

    # reads -------------------------------------------------------------------------------------
    def _record(self, row: tuple) -> RunRecord:
        (run_id, pipeline, ref, sys_path, ir_json, ir_hash, input_, status, output, error, started, ended, pid,
         host, resumes) = row
        return RunRecord(run_id, pipeline, ref, json.loads(sys_path or "[]"), ir_json, ir_hash, json.loads(input_),
                         status, json.loads(output) if output else None, json.loads(error) if error else None,
                         started, ended, pid, host, resumes)

    _RUN_COLUMNS = ("run_id, pipeline, ref, sys_path, ir, ir_hash, input, status, output, error, started_at, "
                    "ended_at, pid, host, resumes")

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return self._record(row) if row else None

    def list_runs(self, limit: int = 50, pipeline: str | None = None) -> list[RunRecord]:
        where, args = ("WHERE pipeline=?", (pipeline, limit)) if pipeline else ("", (limit,))
        rows = self.db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, rowid DESC "
                               "LIMIT ?", args).fetchall()
        return [self._record(r) for r in rows]

    def completed_units(self, run_id: str) -> dict[str, Any]:
        """Results of units that finished (succeeded or skipped): what a resumed run does not redo."""
        rows = self.db.execute("SELECT key, result FROM units WHERE run_id=? AND status IN (?, ?)",
                               (run_id, SUCCEEDED, SKIPPED)).fetchall()
        return {key: json.loads(result) if result is not None else None for key, result in rows}

    def unit_started_at(self, run_id: str) -> dict[str, float]:
        rows = self.db.execute("SELECT key, started_at FROM units WHERE run_id=? AND started_at IS NOT NULL",
                               (run_id,)).fetchall()
        return dict(rows)

    def attempt_counts(self, run_id: str) -> dict[str, int]:
        """The highest attempt number recorded per unit, so a resumed run numbers on from there."""
        rows = self.db.execute("SELECT key, max(attempt) FROM attempts WHERE run_id=? GROUP BY key", (run_id,))
        return dict(rows.fetchall())

    def units(self, run_id: str) -> list[dict]:
        rows = self.db.execute("SELECT key, kind, task, status, attempts, started_at, ended_at, error, result "
                               "FROM units WHERE run_id=? ORDER BY started_at, rowid", (run_id,)).fetchall()
        return [{"key": k, "kind": kind, "task": task, "status": st, "attempts": att, "started_at": iso(s),
                 "ended_at": iso(e), "duration": round(e - s, 6) if s is not None and e is not None else None,
                 "error": json.loads(err) if err else None, "result": json.loads(res) if res is not None else None}
                for k, kind, task, st, att, s, e, err, res in rows]

    def attempts(self, run_id: str) -> list[dict]:
        rows = self.db.execute("SELECT key, attempt, status, started_at, ended_at, error FROM attempts WHERE run_id=? "
                               "ORDER BY started_at, key, attempt", (run_id,)).fetchall()
        return [{"key": k, "attempt": a, "status": st, "started_at": iso(s), "ended_at": iso(e),
                 "duration": round(e - s, 6) if s is not None and e is not None else None,
                 "error": json.loads(err) if err else None} for k, a, st, s, e, err in rows]


__all__ = ["FAILED", "INTERRUPTED", "RUNNING", "SKIPPED", "SUCCEEDED", "RunRecord", "RunStore", "strato_home"]
