"""The durable run store: every state change of a run, in SQLite (WAL) under ``$STRATO_HOME``.

A run killed at any moment can be continued: units (task calls, map items, waits, sub-pipelines)
recorded as SUCCEEDED keep their results and are not run again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._record import record
from ..errors import StratoError
from .results import CANCELLED, FAILED, INTERRUPTED, RUNNING, SKIPPED, SUCCEEDED


def hostname() -> str:
    """This machine's name, as ``socket.gethostname()`` gives it; on POSIX without loading ``socket`` (3 ms)."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


_OPEN: weakref.WeakSet[RunStore] = weakref.WeakSet()  # stores not closed yet (see close_all)


def close_all() -> None:
    """Close the connection of every store still open, as collecting it would: an open transaction is rolled
    back, not committed. For a process about to exit without collecting its garbage (the CLI), where an
    unclosed connection would leave its WAL behind."""
    for store in list(_OPEN):
        store.db.close()
        _OPEN.discard(store)


SCHEMA_VERSION = 9
"""``PRAGMA user_version`` of the store this code writes. 0 is a store from before versioning (the
version-1 tables, no lease); :data:`_MIGRATIONS` brings an older store up to date in place.

Tables (read by the web UI and the scheduler too; columns are documented in :data:`_SCHEMA`):

- ``irs``: each pipeline IR's JSON once, keyed by the SHA-256 of that text; a run row names its IR
  with ``ir_key`` (stores from before version 8 keep their runs' IR inline in ``runs.ir``).
- ``runs``: one row per run. ``status`` is RUNNING, SUCCEEDED or FAILED as written; a RUNNING run
  whose owner (``pid``/``host``/``heartbeat``, the lease) is gone is *shown* as INTERRUPTED
  (:attr:`RunRecord.display_status`). ``scheduled_at`` is the tick a scheduled or backfilled run is
  for (NULL for a manual run); ``rerun_of``/``rerun_from`` name the run (and task) a rerun came from;
  ``backend`` is where the run ran: NULL for the local runner, else the cloud or emulator of a run
  recorded by ``strato invoke``/``strato emulate`` under its cloud execution id (e.g. ``aws``, ``aws:moto``).
- ``units``: one row per unit of work of a run, keyed ``node``, ``node[3]`` (map item), ``node#catch``
  (catch handler), ``sub/node`` (inside sub-pipeline call ``sub``). ``status`` is RUNNING, SUCCEEDED,
  FAILED, SKIPPED (a branch not taken) or CANCELLED (abandoned when its run failed); ``reused_from``
  is the run whose result a rerun reused.
- ``attempts``: one row per attempt of a task unit that has ended, with its error and (failed)
  ``traceback``. The attempt in progress lives on its unit: ``units.attempts`` is the latest attempt's
  number and ``units.attempt_started_at`` its start, so starting a task writes one row, not two
  (:meth:`RunStore.attempts` lists it as RUNNING). Stores from before version 9 also hold RUNNING rows.
- ``pools``: shared limits (``strato pools set``): ``slots`` attempts of tasks in the pool at once, across
  every local run and process. ``pool_slots``: the slots taken, one row per running attempt; a row
  whose run is no longer running (or whose owner died: the run's lease) is free again.
- ``logs``: what each attempt wrote, one row per line, in order of ``id``; ``stream`` is stdout,
  stderr, log (a ``logging`` record), traceback, strato (a note, e.g. a log cut at its size limit) or
  check (a data-quality check's outcome as JSON: name, severity, passed, message).
- ``fired``: what ``strato serve`` has fired, so a restart neither repeats nor forgets it: ``kind``
  "tick" with ``key`` "" holds a pipeline's last fired schedule tick in ``at``; ``kind`` "file" with
  ``key`` "bucket/object-key" marks a file whose ``ObjectCreated`` run was started.
"""

LEASE_TIMEOUT = float(os.environ.get("STRATO_LEASE_TIMEOUT") or 60.0)
"""Seconds without a heartbeat after which a run's owner is presumed dead and its lease may be taken."""

HEARTBEAT_EVERY = min(5.0, LEASE_TIMEOUT / 4)

WAL_AUTOCHECKPOINT = 4000
"""WAL pages (4 KiB each) after which a commit of the runner's connection checkpoints by itself: a bound on
the WAL's size whatever the workload. Below it, the heartbeat thread's checkpoints keep the WAL copied."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, ref TEXT, sys_path TEXT, ir TEXT NOT NULL,
    ir_hash TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, output TEXT, error TEXT,
    started_at REAL NOT NULL, ended_at REAL, pid INTEGER, host TEXT, resumes INTEGER NOT NULL DEFAULT 0,
    heartbeat REAL, scheduled_at REAL, rerun_of TEXT, rerun_from TEXT, backend TEXT, ir_key TEXT
);
CREATE TABLE IF NOT EXISTS irs (key TEXT PRIMARY KEY, ir TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS units (
    run_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, task TEXT, status TEXT NOT NULL,
    result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started_at REAL, ended_at REAL,
    reused_from TEXT, attempt_started_at REAL, PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL, key TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT NULL,
    started_at REAL NOT NULL, ended_at REAL, error TEXT, traceback TEXT, PRIMARY KEY (run_id, key, attempt)
);
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, key TEXT NOT NULL, attempt INTEGER NOT NULL,
    at REAL NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_run ON logs (run_id, id);
CREATE INDEX IF NOT EXISTS runs_scheduled ON runs (pipeline, scheduled_at);
CREATE TABLE IF NOT EXISTS pools (name TEXT PRIMARY KEY, slots INTEGER NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pool_slots (
    pool TEXT NOT NULL, run_id TEXT NOT NULL, key TEXT NOT NULL, task TEXT, taken_at REAL NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX IF NOT EXISTS pool_slots_pool ON pool_slots (pool);
CREATE TABLE IF NOT EXISTS fired (
    pipeline TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, at REAL, run_id TEXT,
    PRIMARY KEY (pipeline, kind, key)
);
"""


# version -> statements that bring a store at version-1 to it (version 1 = the unversioned tables)
_MIGRATIONS: dict[int, list[str]] = {
    2: ["ALTER TABLE runs ADD COLUMN heartbeat REAL"],
    3: ["ALTER TABLE runs ADD COLUMN scheduled_at REAL", "ALTER TABLE runs ADD COLUMN rerun_of TEXT",
        "ALTER TABLE runs ADD COLUMN rerun_from TEXT", "ALTER TABLE units ADD COLUMN reused_from TEXT",
        "ALTER TABLE attempts ADD COLUMN traceback TEXT",
        "CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, "
        "key TEXT NOT NULL, attempt INTEGER NOT NULL, at REAL NOT NULL, stream TEXT NOT NULL, line TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS logs_run ON logs (run_id, id)",
        "CREATE INDEX IF NOT EXISTS runs_scheduled ON runs (pipeline, scheduled_at)"],
    4: [],  # pools and pool_slots: new tables, created whole from _SCHEMA
    5: ["ALTER TABLE runs ADD COLUMN backend TEXT"],
    6: ["CREATE TABLE IF NOT EXISTS fired (pipeline TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, "
         "at REAL, run_id TEXT, PRIMARY KEY (pipeline, kind, key))"],
    7: [],  # an attempts_counted trigger, dropped again by version 9
    8: ["ALTER TABLE runs ADD COLUMN ir_key TEXT"],  # and the irs table, created whole from _SCHEMA
    9: ["ALTER TABLE units ADD COLUMN attempt_started_at REAL", "DROP TRIGGER IF EXISTS attempts_counted"],
}

# The writes of a running task, queued by the store and sent at the next commit with one ``executemany``
# per statement, in this order (what depends on what: a unit is inserted before it is finished; the
# other statements touch other rows or other columns)
_START_UNIT = (
    "INSERT INTO units (run_id, key, kind, task, status, started_at, attempts, attempt_started_at) "
    "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (run_id, key) DO UPDATE SET status=excluded.status, error=NULL, "
    "ended_at=NULL, started_at=CASE WHEN units.kind='wait' THEN units.started_at ELSE excluded.started_at END, "
    "attempts=CASE WHEN excluded.attempt_started_at IS NULL THEN units.attempts ELSE excluded.attempts END, "
    "attempt_started_at=coalesce(excluded.attempt_started_at, units.attempt_started_at)")
_START_ATTEMPT = "UPDATE units SET attempts=?, attempt_started_at=? WHERE run_id=? AND key=?"
_END_ATTEMPT = ("INSERT OR REPLACE INTO attempts (run_id, key, attempt, status, started_at, ended_at, error, "
                "traceback) VALUES (?,?,?,?,?,?,?,?)")
_FINISH_UNIT = (
    "INSERT INTO units (run_id, key, kind, task, status, result, error, started_at, ended_at) "
    "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (run_id, key) DO UPDATE SET status=excluded.status, "
    "result=excluded.result, error=excluded.error, ended_at=excluded.ended_at")
_QUEUED = (_START_UNIT, _START_ATTEMPT, _END_ATTEMPT, _FINISH_UNIT)


class StoreError(StratoError):
    """The run store cannot be opened or used (corrupt, newer, unwritable): nothing was run or written."""


class RunLocked(StratoError):
    """Another live process owns the run (holds its lease)."""

    def __init__(self, run_id: str, pid: int | None, host: str | None, resuming: bool):
        self.run_id, self.pid, self.host = run_id, pid, host
        where = "" if host == hostname() else f" on {host}"
        doing = "being resumed" if resuming else "being run"
        super().__init__(f"run {run_id} is {doing} by pid {pid}{where}; wait for it to stop (a lease whose owner "
                         f"died or sent no heartbeat for {LEASE_TIMEOUT:g}s is taken over)")


def strato_home() -> Path:
    return Path(os.environ.get("STRATO_HOME") or Path.home() / ".strato")


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder, not one per value


def _dumps(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is int:  # exactly int (a bool or an IntEnum is not): its JSON is its decimal form
        return int.__repr__(value)
    return _encode(value)


@record(frozen=False)
class RunRecord:
    """A row of ``runs``. Times are epoch seconds; ``scheduled_at`` is the tick the run is for (or None)."""

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
    heartbeat: float | None = None
    scheduled_at: float | None = None
    rerun_of: str | None = None
    rerun_from: str | None = None
    backend: str | None = None

    @property
    def display_status(self) -> str:
        """RUNNING runs whose owner is gone are shown as INTERRUPTED (``strato resume`` continues them)."""
        if self.status == RUNNING and not lease_alive(self.pid, self.host, self.heartbeat):
            return INTERRUPTED
        return self.status

    @property
    def duration(self) -> float | None:
        """Seconds from start to end; for a live run, to now; None for an interrupted one."""
        if self.ended_at is not None:
            return round(self.ended_at - self.started_at, 6)
        return round(time.time() - self.started_at, 6) if self.display_status == RUNNING else None

    def summary(self) -> dict:
        """The ``runs list --json`` object of this run (the public contract: these five keys)."""
        return {"run_id": self.run_id, "pipeline": self.pipeline, "status": self.display_status,
                "started_at": iso(self.started_at), "ended_at": iso(self.ended_at)}

    def details(self) -> dict:
        """:meth:`summary` and what ``runs show`` adds: duration, the tick, where a rerun came from."""
        return {**self.summary(), "duration": self.duration, "scheduled_at": iso(self.scheduled_at),
                "rerun_of": self.rerun_of, "rerun_from": self.rerun_from, "backend": self.backend or "local"}


def lease_alive(pid: int | None, host: str | None, heartbeat: float | None, now: float | None = None) -> bool:
    """Whether a run's owner may still be working: a fresh heartbeat and, on this host, a live pid."""
    if heartbeat is not None and (now if now is not None else time.time()) - heartbeat > LEASE_TIMEOUT:
        return False
    return _process_alive(pid, host)


def _process_alive(pid: int | None, host: str | None) -> bool:
    if pid is None or host != hostname():
        return host != hostname()  # another machine's run: its heartbeat decides
    if pid == os.getpid():
        return True
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


def store_path() -> Path:
    return strato_home() / "strato.db"


def _store_error(path: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if "readonly" in text or "unable to open" in text or "disk I/O" in text:
        return StoreError(f"cannot write the run store {path} ({text}); make its directory writable or point "
                          "STRATO_HOME at a writable directory")
    return StoreError(f"the run store {path} is not a usable SQLite database ({text}); it may be corrupt or "
                      "truncated: move it aside (its runs are lost to strato) or point STRATO_HOME elsewhere")


class RunStore:
    """SQLite-backed store. Writes are grouped in transactions by the runner (``commit``)."""

    def __init__(self, path: str | Path | None = None):
        if path is None:
            home = strato_home()
            try:
                home.mkdir(parents=True, exist_ok=True)
            except FileExistsError:
                raise StoreError(f"STRATO_HOME {home} is a file, not a directory; point STRATO_HOME at a "
                                 "directory") from None
            except NotADirectoryError:
                raise StoreError(f"STRATO_HOME {home} lies under a file, not a directory; point STRATO_HOME at "
                                 "a directory") from None
            except OSError as exc:
                raise StoreError(f"cannot create STRATO_HOME {home}: {exc.strerror}; point STRATO_HOME at a "
                                 "writable directory") from None
            if not home.is_dir():
                raise StoreError(f"STRATO_HOME {home} is not a directory; point STRATO_HOME at a directory")
            path = home / "strato.db"
        self.path = str(path)
        self._in_tx = False
        self._queue: dict[str, list[Any]] = {sql: [] for sql in _QUEUED}
        self._queued = 0
        self._fresh: dict[tuple[str, str], list[Any]] = {}  # queued unit inserts, by (run, key)
        self._finishing: set[tuple[str, str]] = set()  # queued unit finishes
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        except sqlite3.Error as exc:
            raise _store_error(self.path, exc) from None
        _OPEN.add(self)
        try:
            self._open()
        except sqlite3.Error as exc:
            self.db.close()
            raise _store_error(self.path, exc) from None
        except StoreError:
            self.db.close()
            raise

    def _open(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"the run store {self.path} was written by a newer strato (schema {version}; this one "
                             f"reads up to {SCHEMA_VERSION}): upgrade strato, or point STRATO_HOME elsewhere")
        self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if self.path != ":memory:":
            self.db.execute("PRAGMA journal_mode=WAL")
            # SQLite's automatic checkpoint (by default when the WAL passes 1,000 pages) copies the WAL into
            # the database and syncs it inside a commit: about 15 ms once every few hundred tasks, on the
            # runner's critical path. The heartbeat thread checkpoints on its own connection instead, and this
            # connection only when the WAL passes WAL_AUTOCHECKPOINT pages (then there is little left to
            # copy). https://www.sqlite.org/wal.html ("Application-Initiated Checkpoints") and
            # https://sqlite.org/c3ref/wal_autocheckpoint.html
            self.db.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives SIGKILL, not power loss
        if version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        """Create or upgrade the tables in one transaction, so a concurrent opener sees all or nothing."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if self.db.execute("SELECT 1 FROM sqlite_master WHERE name='runs'").fetchone():
                # version 0 with tables: the unversioned layout, which is version 1
                for statement in [st for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1)
                                  for st in _MIGRATIONS[target]]:
                    if self._needed(statement):
                        self.db.execute(statement)
            for statement in [st for st in _SCHEMA.split(";") if st.strip()]:  # what is still missing
                self.db.execute(statement)
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _needed(self, statement: str) -> bool:
        """An ``ALTER TABLE t ADD COLUMN c`` is skipped when ``t`` is missing (created whole later) or has ``c``."""
        words = statement.split()
        if words[:2] != ["ALTER", "TABLE"]:
            return True
        table, column = words[2], words[5]
        columns = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
        return bool(columns) and column not in columns

    @classmethod
    def memory(cls) -> RunStore:
        return cls(":memory:")

    @classmethod
    def existing(cls) -> RunStore | None:
        """The store under ``$STRATO_HOME`` if there is one: read-only commands create nothing."""
        path = store_path()
        if not path.exists():
            return None
        if not path.is_file():
            raise StoreError(f"the run store {path} is not a file; move it aside or point STRATO_HOME elsewhere")
        return cls()

    # transactions ------------------------------------------------------------------------------
    def _tx(self) -> sqlite3.Connection:
        if not self._in_tx:
            self.db.execute("BEGIN")
            self._in_tx = True
        if self._queued:
            self._send()
        return self.db

    def _send(self) -> None:
        """Send the queued task writes, one ``executemany`` per statement (inside the open transaction)."""
        self._queued = 0
        self._fresh.clear()
        self._finishing.clear()
        for sql, rows in self._queue.items():
            if rows:
                self.db.executemany(sql, rows)
                rows.clear()

    def _send_queued(self) -> None:
        """Before a read on this connection: it sees the queued writes too."""
        if self._queued:
            self._tx()

    def _put(self, sql: str, row: list[Any] | tuple[Any, ...]) -> None:
        self._queue[sql].append(row)
        self._queued += 1

    @property
    def in_transaction(self) -> bool:
        """Whether writes are waiting for :meth:`commit`."""
        return self._in_tx or self._queued > 0

    def commit(self) -> None:
        if self._queued:
            self._tx()
        if self._in_tx:
            self.db.execute("COMMIT")
            self._in_tx = False

    def close(self) -> None:
        self.commit()
        self.db.close()
        _OPEN.discard(self)

    # the lease: one owner per run ----------------------------------------------------------------
    def claim(self, run_id: str, resuming: bool = True) -> RunRecord:
        """Take the run's lease in one ``BEGIN IMMEDIATE`` transaction, or raise :class:`RunLocked`.

        Two resumers cannot both see the lease free: the second waits for the first's write lock,
        then reads its pid. A lease whose owner died (pid gone on this host) or whose heartbeat is
        older than :data:`LEASE_TIMEOUT` is taken over.
        """
        self.commit()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            record = self.get_run(run_id)
            if record is None:
                raise StoreError(f"no run {run_id!r} in {self.path}")
            mine = record.pid == os.getpid() and record.host == hostname()
            if record.status == RUNNING and not mine and lease_alive(record.pid, record.host, record.heartbeat):
                raise RunLocked(run_id, record.pid, record.host, resuming=record.resumes > 0)
            if record.status != SUCCEEDED:
                self.db.execute("UPDATE runs SET status=?, pid=?, host=?, heartbeat=?, ended_at=NULL, error=NULL, "
                                "resumes=resumes+? WHERE run_id=?",
                                (RUNNING, os.getpid(), hostname(), time.time(), int(resuming), run_id))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        claimed = self.get_run(run_id)
        assert claimed is not None
        return claimed

    def heartbeat(self) -> Heartbeat | None:
        """A thread refreshing the lease of runs this process owns (none for an in-memory store)."""
        return None if self.path == ":memory:" else Heartbeat(self.path)

    # writes ------------------------------------------------------------------------------------
    def _ir_key(self, ir_json: str) -> str:
        """The key of ``ir_json`` in ``irs``, stored there once: a pipeline run again and again (a schedule, a
        backfill) keeps one copy of its IR, not one per run."""
        key = hashlib.sha256(ir_json.encode()).hexdigest()
        # no cache of what is stored: a `runs prune` in another process may have removed it since
        self._tx().execute("INSERT OR IGNORE INTO irs (key, ir) VALUES (?, ?)", (key, ir_json))
        return key

    def create_run(self, run_id: str, pipeline: str, ref: str | None, sys_path: list[str], ir_json: str,
                   ir_hash: str, input: dict, started_at: float, *, scheduled_at: float | None = None,
                   rerun_of: str | None = None, rerun_from: str | None = None) -> None:
        key = self._ir_key(ir_json)
        self._tx().execute(
            "INSERT INTO runs (run_id, pipeline, ref, sys_path, ir, ir_key, ir_hash, input, status, started_at, pid, "
            "host, heartbeat, scheduled_at, rerun_of, rerun_from) VALUES (?,?,?,?,'',?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, pipeline, ref, _dumps(sys_path), key, ir_hash, _dumps(input), RUNNING, started_at,
             os.getpid(), hostname(), time.time(), scheduled_at, rerun_of, rerun_from))
        self.commit()

    def finish_run(self, run_id: str, status: str, output: Any, error: dict | None, ended_at: float) -> None:
        """End a run; a failed run's units and attempts still RUNNING become CANCELLED (abandoned)."""
        db = self._tx()
        db.execute("UPDATE runs SET status=?, output=?, error=?, ended_at=? WHERE run_id=?",
                   (status, _dumps(output), _dumps(error) if error else None, ended_at, run_id))
        if status == FAILED:
            db.execute("INSERT OR IGNORE INTO attempts (run_id, key, attempt, status, started_at, ended_at) "
                       "SELECT run_id, key, attempts, ?, attempt_started_at, ? FROM units WHERE run_id=? AND status=? "
                       "AND attempt_started_at IS NOT NULL", (CANCELLED, ended_at, run_id, RUNNING))
            for table in ("units", "attempts"):  # attempts: RUNNING rows of stores from before version 9
                db.execute(f"UPDATE {table} SET status=?, ended_at=? WHERE run_id=? AND status=?",
                           (CANCELLED, ended_at, run_id, RUNNING))
        self.commit()

    def record_external_run(self, run_id: str, pipeline: str, ref: str | None, ir_json: str, ir_hash: str,
                            input: dict, *, backend: str, status: str, output: Any, error: dict | None,
                            started_at: float, ended_at: float) -> None:
        """Record a finished run that ran elsewhere (a cloud execution, an emulated one) under its own id, so
        ``runs list/show`` show it beside local runs; recording the same id again replaces it. No lease:
        nothing here can resume it."""
        key = self._ir_key(ir_json)
        self._tx().execute(
            "INSERT OR REPLACE INTO runs (run_id, pipeline, ref, sys_path, ir, ir_key, ir_hash, input, status, "
            "output, error, started_at, ended_at, backend) VALUES (?,?,?,?,'',?,?,?,?,?,?,?,?,?)",
            (run_id, pipeline, ref, "[]", key, ir_hash, _dumps(input), status, _dumps(output),
             _dumps(error) if error else None, started_at, ended_at, backend))
        self.commit()

    # A running task's writes are queued and sent at the next commit (or before any other statement), so
    # nothing is durable later than before; what is read on this connection is sent first.
    def start_unit(self, run_id: str, key: str, kind: str, task: str | None, started_at: float) -> None:
        if (run_id, key) in self._finishing:  # started again after a queued finish: keep the order
            self._tx()
        row = [run_id, key, kind, task, RUNNING, started_at, 0, None]
        self._fresh[(run_id, key)] = row
        self._put(_START_UNIT, row)

    def finish_unit(self, run_id: str, key: str, status: str, result: Any, error: dict | None,
                    ended_at: float, kind: str = "task", task: str | None = None) -> None:
        self._finishing.add((run_id, key))
        self._put(_FINISH_UNIT, (run_id, key, kind, task, status, _dumps(result), _dumps(error) if error else None,
                                 ended_at, ended_at))

    def start_attempt(self, run_id: str, key: str, attempt: int, started_at: float) -> None:
        """The attempt in progress, on its unit's row: folded into the unit's insert when that is still queued."""
        row = self._fresh.get((run_id, key))
        if row is not None:
            row[6], row[7] = attempt, started_at
        else:
            self._put(_START_ATTEMPT, (attempt, started_at, run_id, key))

    def finish_attempt(self, run_id: str, key: str, attempt: int, status: str, started_at: float, ended_at: float,
                       error: dict | None, traceback: str | None = None) -> None:
        self._put(_END_ATTEMPT, (run_id, key, attempt, status, started_at, ended_at,
                                 _dumps(error) if error else None, traceback))

    def append_logs(self, run_id: str, key: str, attempt: int, lines: list[tuple[float, str, str]]) -> None:
        """Add an attempt's output lines ``(time, stream, line)``, committed with the runner's next commit."""
        self._tx().executemany("INSERT INTO logs (run_id, key, attempt, at, stream, line) VALUES (?,?,?,?,?,?)",
                               [(run_id, key, attempt, at, stream, line) for at, stream, line in lines])

    def copy_units(self, source: str, run_id: str, keys: list[str]) -> None:
        """Record units of run ``source`` as this run's own (a rerun reusing their results)."""
        db = self._tx()
        for key in keys:
            db.execute("INSERT INTO units (run_id, key, kind, task, status, result, error, attempts, started_at, "
                       "ended_at, reused_from) SELECT ?, key, kind, task, status, result, error, attempts, started_at, "
                       "ended_at, ? FROM units WHERE run_id=? AND key=?", (run_id, source, source, key))
        self.commit()

    def prune(self, before: float) -> list[str]:
        """Delete runs started before ``before`` that are not live, with all their rows, in one transaction."""
        self.commit()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            rows = self.db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE started_at < ?", (before,)).fetchall()
            gone = [r.run_id for r in map(self._record, rows) if r.display_status != RUNNING]
            for table in ("logs", "attempts", "units", "runs"):
                self.db.executemany(f"DELETE FROM {table} WHERE run_id=?", [(run_id,) for run_id in gone])
            if gone:  # IRs no run names any more
                self.db.execute("DELETE FROM irs WHERE key NOT IN (SELECT ir_key FROM runs WHERE ir_key IS NOT NULL)")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return gone

    # reads -------------------------------------------------------------------------------------
    def _record(self, row: tuple) -> RunRecord:
        (run_id, pipeline, ref, sys_path, ir_json, ir_hash, input_, status, output, error, started, ended, pid,
         host, resumes, heartbeat, scheduled_at, rerun_of, rerun_from, backend) = row
        return RunRecord(run_id, pipeline, ref, json.loads(sys_path or "[]"), ir_json, ir_hash, json.loads(input_),
                         status, json.loads(output) if output else None, json.loads(error) if error else None,
                         started, ended, pid, host, resumes, heartbeat, scheduled_at, rerun_of, rerun_from,
                         backend)

    # a run's IR: its own row's (a store from before version 8) or the one its ir_key names
    IR_COLUMN = "COALESCE(NULLIF(runs.ir, ''), (SELECT irs.ir FROM irs WHERE irs.key = runs.ir_key), '')"
    _RUN_COLUMNS = (f"run_id, pipeline, ref, sys_path, {IR_COLUMN}, ir_hash, input, status, output, error, "
                    "started_at, ended_at, pid, host, resumes, heartbeat, scheduled_at, rerun_of, rerun_from, backend")

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self.db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return self._record(row) if row else None

    def list_runs(self, limit: int = 50, pipeline: str | None = None, status: str | None = None,
                  since: float | None = None) -> list[RunRecord]:
        """Runs newest first, optionally of one pipeline, in one (displayed) status, started at or after ``since``.

        RUNNING and INTERRUPTED are both ``status='RUNNING'`` in the table; they are told apart by the lease.
        """
        clauses, args = [], []
        for clause, value in (("pipeline=?", pipeline), ("started_at>=?", since),
                              ("status=?", RUNNING if status == INTERRUPTED else status)):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT {self._RUN_COLUMNS} FROM runs {where} ORDER BY started_at DESC, rowid DESC"
        if status not in (RUNNING, INTERRUPTED):
            rows = self.db.execute(query + " LIMIT ?", (*args, limit)).fetchall()
            return [self._record(r) for r in rows]
        records = [self._record(r) for r in self.db.execute(query, args)]
        return [r for r in records if r.display_status == status][:limit]

    def scheduled_runs(self, pipeline: str) -> dict[float, list[RunRecord]]:
        """Runs of ``pipeline`` that have a ``scheduled_at``, by tick, newest first (a backfill's skip list)."""
        rows = self.db.execute(f"SELECT {self._RUN_COLUMNS} FROM runs WHERE pipeline=? AND scheduled_at IS NOT NULL "
                               "ORDER BY started_at DESC", (pipeline,)).fetchall()
        found: dict[float, list[RunRecord]] = {}
        for run in map(self._record, rows):
            assert run.scheduled_at is not None
            found.setdefault(run.scheduled_at, []).append(run)
        return found

    # what `strato serve` fired ------------------------------------------------------------------
    def mark_fired(self, pipeline: str, kind: str, key: str, at: float | None, run_id: str | None) -> None:
        """Record a fired schedule tick (``kind`` "tick", ``key`` "") or file (``kind`` "file")."""
        self._tx().execute("INSERT OR REPLACE INTO fired (pipeline, kind, key, at, run_id) VALUES (?,?,?,?,?)",
                           (pipeline, kind, key, at, run_id))
        self.commit()

    def last_fired(self, pipeline: str, kind: str, key: str) -> float | None:
        row = self.db.execute("SELECT at FROM fired WHERE pipeline=? AND kind=? AND key=?",
                              (pipeline, kind, key)).fetchone()
        return None if row is None else row[0]

    def fired_keys(self, pipeline: str, kind: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT key FROM fired WHERE pipeline=? AND kind=?", (pipeline, kind))}

    def completed_units(self, run_id: str) -> dict[str, Any]:
        """Results of units that finished (succeeded or skipped): what a resumed run does not redo."""
        self._send_queued()
        rows = self.db.execute("SELECT key, result FROM units WHERE run_id=? AND status IN (?, ?)",
                               (run_id, SUCCEEDED, SKIPPED)).fetchall()
        return {key: json.loads(result) if result is not None else None for key, result in rows}

    def unit_started_at(self, run_id: str) -> dict[str, float]:
        self._send_queued()
        rows = self.db.execute("SELECT key, started_at FROM units WHERE run_id=? AND started_at IS NOT NULL",
                               (run_id,)).fetchall()
        return dict(rows)

    def attempt_counts(self, run_id: str) -> dict[str, int]:
        """The latest attempt number per unit, so a resumed run numbers on from there."""
        self._send_queued()
        rows = self.db.execute("SELECT key, attempts FROM units WHERE run_id=? AND attempts > 0", (run_id,))
        return dict(rows.fetchall())

    def units(self, run_id: str) -> list[dict]:
        """The run's units as stored, in start order (see :func:`shown_status` for what to display)."""
        self._send_queued()
        rows = self.db.execute("SELECT key, kind, task, status, attempts, started_at, ended_at, error, result, "
                               "reused_from FROM units WHERE run_id=? ORDER BY started_at, rowid", (run_id,)).fetchall()
        return [{"key": k, "kind": kind, "task": task, "status": st, "attempts": att, "started_at": iso(s),
                 "ended_at": iso(e), "duration": round(e - s, 6) if s is not None and e is not None else None,
                 "error": json.loads(err) if err else None, "result": json.loads(res) if res is not None else None,
                 "reused_from": reused}
                for k, kind, task, st, att, s, e, err, res, reused in rows]

    def attempts(self, run_id: str) -> list[dict]:
        """Every attempt of the run's task units, the ones in progress (kept on their unit) included."""
        self._send_queued()
        rows = self.db.execute(
            "SELECT key, attempt, status, started_at, ended_at, error, traceback FROM attempts WHERE run_id=? "
            "UNION ALL SELECT key, attempts, status, attempt_started_at, NULL, NULL, NULL FROM units u WHERE "
            "run_id=? AND status=? AND attempt_started_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM attempts a "
            "WHERE a.run_id=u.run_id AND a.key=u.key AND a.attempt=u.attempts) ORDER BY 4, 1, 2",
            (run_id, run_id, RUNNING)).fetchall()
        checks: dict[tuple[str, int], list[dict]] = {}
        try:
            for k, a, line in self.db.execute("SELECT key, attempt, line FROM logs WHERE run_id=? AND stream='check' "
                                              "ORDER BY id", (run_id,)):
                checks.setdefault((k, a), []).append(json.loads(line))
        except (sqlite3.OperationalError, json.JSONDecodeError):  # a logs table of another shape: no outcomes
            checks = {}
        return [{"key": k, "attempt": a, "status": st, "started_at": iso(s), "ended_at": iso(e),
                 "duration": round(e - s, 6) if s is not None and e is not None else None,
                 "error": json.loads(err) if err else None, "traceback": tb, "checks": checks.get((k, a), [])}
                for k, a, st, s, e, err, tb in rows]

    def logs(self, run_id: str, after: int = 0, limit: int | None = None) -> list[dict]:
        """Output lines of the run with ``id > after``, in the order they were written."""
        rows = self.db.execute("SELECT id, key, attempt, at, stream, line FROM logs WHERE run_id=? AND id>? ORDER BY id"
                               + (" LIMIT ?" if limit else ""),
                               (run_id, after, limit) if limit else (run_id, after)).fetchall()
        return [{"id": i, "key": k, "attempt": a, "at": iso(at), "stream": st, "line": line}
                for i, k, a, at, st, line in rows]

    def log_summary(self, run_id: str) -> dict[str, dict[str, int]]:
        """Per unit key: how many lines and bytes of output were stored."""
        rows = self.db.execute("SELECT key, count(*), sum(length(CAST(line AS BLOB)) + 1) FROM logs WHERE run_id=? "
                               "GROUP BY key", (run_id,)).fetchall()
        return {k: {"lines": n, "bytes": b or 0} for k, n, b in rows}


class PoolSlots:
    """Pool limits in the run store: slots taken and given back in ``BEGIN IMMEDIATE`` transactions, so
    two processes never both see the last free slot; a slot whose run is over, or whose run's owner is
    gone (its lease: pid on this host, heartbeat), is free again."""

    def __init__(self, store: RunStore):
        self.store = store

    def set_slots(self, name: str, slots: int, now: float) -> None:
        db = self.store.db
        self.store.commit()
        db.execute("INSERT INTO pools (name, slots, updated_at) VALUES (?,?,?) ON CONFLICT(name) DO UPDATE SET "
                   "slots=excluded.slots, updated_at=excluded.updated_at", (name, slots, now))

    def delete(self, name: str) -> bool:
        self.store.commit()
        return self.store.db.execute("DELETE FROM pools WHERE name=?", (name,)).rowcount > 0

    def take(self, name: str, run_id: str, key: str, task: str, now: float) -> bool:
        """Take a slot of pool ``name`` for the attempt ``run_id``/``key``; False when none is free. A pool
        never set has no limit."""
        db = self.store.db
        self.store.commit()  # the runner's pending writes first: this is a transaction of its own
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT slots FROM pools WHERE name=?", (name,)).fetchone()
            if row is None:
                db.execute("COMMIT")
                return True
            held = self._holders(name)
            if len(held) >= row[0] and (run_id, key) not in held:
                db.execute("COMMIT")
                return False
            db.execute("INSERT OR REPLACE INTO pool_slots (pool, run_id, key, task, taken_at) VALUES (?,?,?,?,?)",
                       (name, run_id, key, task, now))
            db.execute("COMMIT")
            return True
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _holders(self, name: str) -> set[tuple[str, str]]:
        """Slots of ``name`` still held; frees (deletes) those of runs that ended or whose owner died."""
        db = self.store.db
        rows = db.execute("SELECT s.run_id, s.key, r.status, r.pid, r.host, r.heartbeat FROM pool_slots s LEFT JOIN "
                          "runs r ON r.run_id = s.run_id WHERE s.pool=?", (name,)).fetchall()
        held = set()
        for run_id, key, status, pid, host, heartbeat in rows:
            if status == RUNNING and lease_alive(pid, host, heartbeat):
                held.add((run_id, key))
            else:
                db.execute("DELETE FROM pool_slots WHERE run_id=? AND key=?", (run_id, key))
        return held

    def give_back(self, run_id: str, key: str | None = None) -> None:
        """Free the slot of one attempt (or every slot of the run), committed at once."""
        self.store.commit()
        if key is None:
            self.store.db.execute("DELETE FROM pool_slots WHERE run_id=?", (run_id,))
        else:
            self.store.db.execute("DELETE FROM pool_slots WHERE run_id=? AND key=?", (run_id, key))

    def listing(self) -> list[dict[str, Any]]:
        """Every pool that is set or has slots taken: its slots and who holds them."""
        db = self.store.db
        names = {n: s for n, s in db.execute("SELECT name, slots FROM pools")}
        names.update({n: names.get(n) for (n,) in db.execute("SELECT DISTINCT pool FROM pool_slots")})
        out = []
        for name in sorted(names):
            self.store.commit()
            db.execute("BEGIN IMMEDIATE")
            try:
                held = self._holders(name)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            rows = db.execute("SELECT run_id, key, task, taken_at FROM pool_slots WHERE pool=? ORDER BY taken_at",
                              (name,)).fetchall()
            out.append({"pool": name, "slots": names[name], "in_use": len(held),
                        "holders": [{"run_id": r, "key": k, "task": t, "since": iso(at)} for r, k, t, at in rows]})
        return out


class Heartbeat:
    """Refreshes ``runs.heartbeat`` of the runs this process owns, on its own connection and thread.

    ``lost`` is set when a refresh finds the lease taken over (this process looked dead), so the
    runner stops rather than work beside the new owner.
    """

    def __init__(self, path: str):
        import threading

        self.path, self.runs, self.lost = path, set[str](), threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="strato-heartbeat")
        self._thread.start()

    def _beat(self) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        except sqlite3.Error:
            return
        try:
            while not self._stop.wait(HEARTBEAT_EVERY):
                for run_id in list(self.runs):
                    try:
                        cur = db.execute("UPDATE runs SET heartbeat=? WHERE run_id=? AND pid=? AND host=? "
                                         "AND status=?", (time.time(), run_id, os.getpid(), hostname(),
                                                          RUNNING))
                    except sqlite3.Error:
                        continue  # busy past the timeout: try again at the next beat
                    if cur.rowcount == 0:
                        self.lost.set()
                _checkpoint(db)
            _checkpoint(db)  # the run is over: its writes move into the database off the runner's path
        finally:
            db.close()

    def stop(self) -> None:
        self._stop.set()


def _checkpoint(db: sqlite3.Connection) -> None:
    """Copy what the WAL holds into the database without waiting for anyone (``PASSIVE``): readers and
    the runner's writes go on; what cannot be copied now is copied by a later checkpoint."""
    try:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error:
        pass  # busy or closing: the next beat, or closing the store, checkpoints


def shown_status(unit_status: str, run_status: str) -> str:
    """A unit's status as displayed: work left RUNNING by a run that is not running is not running.

    In an interrupted run it is INTERRUPTED (``strato resume`` runs it again); in a failed one CANCELLED.
    """
    if unit_status != RUNNING or run_status == RUNNING:
        return unit_status
    return INTERRUPTED if run_status == INTERRUPTED else CANCELLED


__all__ = ["CANCELLED", "FAILED", "INTERRUPTED", "RUNNING", "SKIPPED", "SUCCEEDED", "RunLocked", "RunRecord",
           "RunStore", "StoreError", "shown_status", "strato_home"]
