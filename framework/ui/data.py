"""What the UI shows, as JSON-ready dicts, read from the run store.

Kept free of any web framework so it is tested directly and the server stays a thin layer. Each call
opens its own connection: the server answers from several threads and a SQLite connection must not
be shared across them mid-query. Nothing here writes to the store.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StratoError, UsageError
from ..runtime.results import FAILED, INTERRUPTED, RUNNING, SUCCEEDED
from ..runtime.store import RunRecord, RunStore, StoreError, iso

STATUSES = (RUNNING, SUCCEEDED, FAILED, INTERRUPTED)
PENDING = "PENDING"
NOT_RUN = "NOT_RUN"
"""A node a finished run never reached (it stopped first, or the node is pending in a running one)."""
RUNS_LIMIT = 500
LOG_LINES_LIMIT = 5000
ARTIFACT_BYTES_LIMIT = 2_000_000
RESULT_BYTES_LIMIT = 64_000
"""A unit's result larger than this (as JSON) is left out of a run's answer, which a page polls while
the run goes on; ``strato runs show RUN_ID --json`` has it all."""

# The task-log table the UI reads when a store has one. Expected shape (one row per line):
#   logs (run_id TEXT, key TEXT, attempt INTEGER, ts REAL, stream TEXT, line TEXT[, seq INTEGER])
# ``key`` is the unit key (``extract``, ``clean[3]``, ``child/load``), ``ts`` seconds since the epoch,
# ``stream`` ``stdout``/``stderr`` (or a level). The alternatives below are accepted for each column.
LOG_COLUMNS = {"key": ("key", "unit"), "attempt": ("attempt",), "ts": ("ts", "at", "time", "created_at"),
               "stream": ("stream", "level"), "line": ("line", "message", "text", "msg")}
LOG_ORDER = ("id", "seq", "ts", "at", "time", "created_at")


class NotFound(StratoError):
    """No such run or pipeline in the store."""


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(value: str, name: str, now: float | None = None) -> float:
    """``since``/``until``: an ISO 8601 date or time (UTC when no offset is given) or a span back from
    now (``30m``, ``6h``, ``7d``, ``2w``)."""
    text = value.strip()
    match = _RELATIVE.match(text)
    if match:
        return (time.time() if now is None else now) - int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{name}={value!r}: give an ISO 8601 date or time (2024-03-01, 2024-03-01T02:00:00Z) "
                         "or a span back from now (30m, 6h, 7d, 2w)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _duration(start: float | None, end: float | None) -> float | None:
    return round(end - start, 6) if start is not None and end is not None else None


class StoreView:
    """Read-only queries over the run store ``home/strato.db``; a missing store reads as empty."""

    def __init__(self, home: Path):
        self.home = Path(home)
        self.path = self.home / "strato.db"
        self._compiled: dict[tuple[str, str], dict[str, Any]] = {}
        self._compile_lock = threading.Lock()

    @contextlib.contextmanager
    def store(self) -> Iterator[RunStore | None]:
        if not self.path.exists():
            yield None
            return
        if not self.path.is_file():
            raise StoreError(f"the run store {self.path} is not a file; move it aside or point STRATO_HOME elsewhere")
        store = RunStore(self.path)
        try:
            yield store
        finally:
            store.db.close()

    # runs ----------------------------------------------------------------------------------------
    def runs(self, pipeline: str | None = None, status: str | None = None, since: str | None = None,
             until: str | None = None, limit: int = 100) -> dict[str, Any]:
        """Runs newest first, filtered; with every pipeline name for the filter's choices."""
        if status and status not in STATUSES:
            raise UsageError(f"status={status!r}: choose one of {', '.join(STATUSES)}")
        if not 1 <= limit <= RUNS_LIMIT:
            raise UsageError(f"limit={limit}: give a number from 1 to {RUNS_LIMIT}")
        where: list[str] = []
        args: list[Any] = []
        if pipeline:
            where.append("pipeline=?")
            args.append(pipeline)
        if status in (RUNNING, INTERRUPTED):  # both are RUNNING rows; the lease tells them apart
            where.append("status=?")
            args.append(RUNNING)
        elif status:
            where.append("status=?")
            args.append(status)
        if since:
            where.append("started_at>=?")
            args.append(parse_time(since, "since"))
        if until:
            where.append("started_at<=?")
            args.append(parse_time(until, "until"))
        with self.store() as store:
            if store is None:
                return {"runs": [], "pipelines": [], "statuses": list(STATUSES), "store": str(self.path)}
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            rows = store.db.execute(f"SELECT {RunStore._RUN_COLUMNS} FROM runs {clause} "
                                    "ORDER BY started_at DESC, rowid DESC LIMIT ?", (*args, limit)).fetchall()
            records = [store._record(row) for row in rows]
            if status in (RUNNING, INTERRUPTED):
                records = [r for r in records if r.display_status == status]
            names = [n for (n,) in store.db.execute("SELECT DISTINCT pipeline FROM runs ORDER BY pipeline")]
        return {"runs": [self._summary(r) for r in records], "pipelines": names, "statuses": list(STATUSES),
                "store": str(self.path)}

    @staticmethod
    def _summary(record: RunRecord) -> dict[str, Any]:
        summary = record.summary()
        summary["duration"] = _duration(record.started_at, record.ended_at)
        summary["error"] = record.error
        return summary

    def _record(self, store: RunStore | None, run_id: str) -> RunRecord:
        record = store.get_run(run_id) if store is not None else None
        if record is None:
            raise NotFound(f"no run {run_id!r} in {self.path}")
        return record

    def run(self, run_id: str) -> dict[str, Any]:
        """One run: the graph with each node's state, every unit and attempt, input, output, error."""
        with self.store() as store:
            record = self._record(store, run_id)
            assert store is not None
            units, attempts = store.units(run_id), store.attempts(run_id)
            for attempt in attempts:  # the panel shows a failed attempt's traceback with its error
                if attempt.get("traceback") and isinstance(attempt.get("error"), dict):
                    attempt["error"] = {**attempt["error"], "traceback": attempt["traceback"]}
            logs = _log_table(store) is not None
        for unit in units:
            size = len(json.dumps(unit["result"])) if unit["result"] is not None else 0
            unit["result_bytes"] = size
            if size > RESULT_BYTES_LIMIT:
                unit["result"], unit["result_omitted"] = None, True
        data = {**self._summary(record), "ref": record.ref, "input": record.input, "output": record.output,
                "resumes": record.resumes, "ir_hash": record.ir_hash, "pid": record.pid, "host": record.host,
                "units": units, "attempts": attempts, "logs_available": logs}
        data["graph"] = _run_graph(record, units, attempts)
        return data

    def logs(self, run_id: str, key: str | None = None, attempt: int | None = None) -> dict[str, Any]:
        """Task log lines, when the store keeps them; ``available`` false (and no lines) when it does not."""
        with self.store() as store:
            self._record(store, run_id)
            assert store is not None
            table = _log_table(store)
            if table is None:
                return {"available": False, "lines": [], "truncated": False}
            columns = {role: next((c for c in names if c in table), None) for role, names in LOG_COLUMNS.items()}
            if columns["line"] is None:
                return {"available": False, "lines": [], "truncated": False}
            where: list[str] = ["run_id=?"]
            args: list[Any] = [run_id]
            if key is not None and columns["key"]:
                where.append(f'"{columns["key"]}"=?')
                args.append(key)
            if attempt is not None and columns["attempt"]:
                where.append(f'"{columns["attempt"]}"=?')
                args.append(attempt)
            order = next((c for c in LOG_ORDER if c in table), None)
            select = ", ".join(f'"{columns[r]}"' if columns[r] else "NULL" for r in LOG_COLUMNS)
            order_by = f'"{order}", rowid' if order else "rowid"
            rows = store.db.execute(f"SELECT {select} FROM logs WHERE {' AND '.join(where)} ORDER BY {order_by} "
                                    "LIMIT ?", (*args, LOG_LINES_LIMIT + 1)).fetchall()
        lines = [{"key": k, "attempt": a, "ts": iso(ts) if isinstance(ts, (int, float)) else ts, "stream": s,
                  "line": line} for k, a, ts, s, line in rows[:LOG_LINES_LIMIT]]
        return {"available": True, "lines": lines, "truncated": len(rows) > LOG_LINES_LIMIT}

    # pipelines -----------------------------------------------------------------------------------
    def pipelines(self) -> list[dict[str, Any]]:
        """Pipelines that have runs, each with its graph versions (IR hashes), newest first."""
        with self.store() as store:
            if store is None:
                return []
            rows = store.db.execute(
                "SELECT pipeline, ir_hash, count(*), min(started_at), max(started_at) FROM runs "
                "GROUP BY pipeline, ir_hash ORDER BY max(started_at) DESC").fetchall()
        found: dict[str, dict[str, Any]] = {}
        for name, ir_hash, count, first, last in rows:
            entry = found.setdefault(name, {"name": name, "runs": 0, "last_run": iso(last), "versions": []})
            entry["runs"] += count
            entry["versions"].append({"hash": ir_hash, "runs": count, "first_run": iso(first), "last_run": iso(last)})
        return list(found.values())

    def _ir_text(self, name: str, ir_hash: str | None) -> tuple[str, str]:
        with self.store() as store:
            row = None
            if store is not None:
                where, args = ("pipeline=? AND ir_hash=?", (name, ir_hash)) if ir_hash else ("pipeline=?", (name,))
                row = store.db.execute(f"SELECT {RunStore.IR_COLUMN}, ir_hash FROM runs WHERE {where} "
                                       "ORDER BY started_at DESC LIMIT 1", args).fetchone()
        if row is None:
            version = f" with graph {ir_hash[:12]}" if ir_hash else ""
            raise NotFound(f"no run of pipeline {name!r}{version} in {self.path}")
        return row[0], row[1]

    def pipeline(self, name: str, ir_hash: str | None = None) -> dict[str, Any]:
        """The IR a run stored: parameters, schedule, triggers, tags, tasks, datasets and the graph."""
        text, found_hash = self._ir_text(name, ir_hash)
        data = json.loads(text)
        tags = data.get("tags") or {}
        tasks = []
        reads: dict[str, list[str]] = {}
        writes: dict[str, list[str]] = {}
        for spec in (data.get("tasks") or {}).values():
            tasks.append({key: spec.get(key) for key in ("name", "doc", "module", "qualname", "params", "returns",
                                                          "retry", "timeout", "memory", "catch", "runtime", "tags",
                                                          "reads", "writes")})
            for uri in spec.get("reads") or []:
                reads.setdefault(uri, []).append(spec["name"])
            for uri in spec.get("writes") or []:
                writes.setdefault(uri, []).append(spec["name"])
        versions: list[dict[str, Any]] = next((p["versions"] for p in self.pipelines() if p["name"] == name), [])
        return {"name": data.get("name", name), "hash": found_hash, "doc": data.get("doc"),
                "module": data.get("module"), "qualname": data.get("qualname"), "params": data.get("params") or [],
                "schedule": data.get("schedule"), "triggers": data.get("triggers") or [], "tags": tags,
                "classification": tags.get("data-classification"), "tasks": tasks,
                "datasets": {"reads": reads, "writes": writes}, "subpipelines": sorted(data.get("subpipelines") or {}),
                "graph": _graph(data), "versions": versions, "ir": data}

    def compile(self, name: str, target: str, ir_hash: str | None = None) -> dict[str, Any]:
        """The target cloud's artifact for the stored IR, compiled on first request and kept."""
        from .. import ir
        from ..targets import get_adapter, passes_target_rules

        text, found_hash = self._ir_text(name, ir_hash)
        with self._compile_lock:
            cached = self._compiled.get((found_hash, target))
            if cached is not None:
                return cached
            adapter = get_adapter(target)
            pipeline = ir.from_json(text)
            warnings = passes_target_rules(pipeline, adapter)
            with tempfile.TemporaryDirectory(prefix="strato-ui-") as tmp:
                result = adapter.compile(pipeline, Path(tmp))
                files = []
                for path in result.paths:
                    raw = Path(path).read_bytes()
                    files.append({"path": str(Path(path).relative_to(tmp)), "bytes": len(raw),
                                  "text": raw[:ARTIFACT_BYTES_LIMIT].decode("utf-8", "replace"),
                                  "truncated": len(raw) > ARTIFACT_BYTES_LIMIT})
            answer = {"target": target, "hash": found_hash, "files": files,
                      "warnings": [str(w) for w in warnings + list(result.warnings)]}
            self._compiled[(found_hash, target)] = answer
            return answer


def _log_table(store: RunStore) -> set[str] | None:
    """The columns of the store's ``logs`` table, or None when it has none (a store from before logs)."""
    try:
        rows = store.db.execute("PRAGMA table_info(logs)").fetchall()
    except sqlite3.Error:
        return None
    return {row[1] for row in rows} or None


def _graph(data: dict[str, Any]) -> dict[str, Any]:
    """Nodes and edges of a stored IR (top level; a sub-pipeline is one node)."""
    from .. import ir
    from ..graph import data_inputs, guard_reads

    pipeline = ir.from_dict(data)
    branches = {b.id: b for b in pipeline.branches}
    nodes, edges = [], []
    for node in pipeline.nodes:
        entry: dict[str, Any] = {"id": node.id, "kind": node.kind, "task": getattr(node, "task", None),
                                 "pipeline": getattr(node, "pipeline", None), "guard": None}
        if node.guard is not None:
            branch = branches.get(node.guard.branch)
            entry["guard"] = {"branch": node.guard.branch, "arm": node.guard.arm,
                              "condition": _condition_text(ir.condition_to_dict(branch.condition)) if branch else None}
        if isinstance(node, ir.WaitNode):
            entry["seconds"] = node.seconds
        nodes.append(entry)
        kinds: dict[str, str] = {}
        for source in guard_reads(pipeline, node.guard):
            kinds[source] = "guard"
        for source in node.after:
            kinds[source] = "after"
        for source in data_inputs(node):
            kinds[source] = "data"
        edges += [{"from": source, "to": node.id, "kind": kind} for source, kind in sorted(kinds.items())
                  if source != node.id]
    return {"nodes": nodes, "edges": edges}


def _condition_text(data: dict[str, Any]) -> str:
    """A branch condition as the DSL wrote it: ``extract["count"] > 0``, ``~(a == 1) & (b != "x")``."""
    if "compare" in data:
        left = data["left"]
        base = left.get("ref") or left.get("param") or "?"
        path = "".join(f"[{json.dumps(p)}]" for p in left.get("path") or [])
        return f"{base}{path} {data['compare']} {json.dumps(data['right'])}"
    if "not" in data:
        return f"~({_condition_text(data['not'])})"
    joiner = " & " if "all" in data else " | "
    return joiner.join(f"({_condition_text(c)})" for c in data.get("all") or data.get("any") or [])


def _run_graph(record: RunRecord, units: list[dict], attempts: list[dict]) -> dict[str, Any]:
    """The run's graph, each node with its state, duration, attempts and (for a map) its items."""
    graph = _graph(json.loads(record.ir))
    by_key = {u["key"]: u for u in units}
    tries: dict[str, int] = {}
    for a in attempts:
        tries[a["key"]] = max(tries.get(a["key"], 0), a["attempt"])
    for node in graph["nodes"]:
        unit = by_key.get(node["id"])
        state = unit["status"] if unit else (PENDING if record.status == RUNNING else NOT_RUN)
        if state == RUNNING and record.display_status == INTERRUPTED:
            state = INTERRUPTED
        node.update(state=state, started_at=unit["started_at"] if unit else None,
                    ended_at=unit["ended_at"] if unit else None, duration=unit["duration"] if unit else None,
                    error=unit["error"] if unit else None, attempts=tries.get(node["id"], 0))
        if node["kind"] == "map":
            items = [u for u in units if u["key"].startswith(node["id"] + "[") and u["kind"] == "item"]
            counts: dict[str, int] = {}
            for item in items:
                counts[item["status"]] = counts.get(item["status"], 0) + 1
            total = len(unit["result"]) if unit and isinstance(unit.get("result"), list) else None
            node["items"] = {"started": len(items), "total": total, "by_status": counts,
                             "retried": sum(1 for i in items if tries.get(i["key"], 0) > 1)}
        if node["kind"] == "pipeline":
            inner = [u for u in units if u["key"].startswith(node["id"] + "/")]
            node["children"] = {"units": len(inner), "failed": sum(1 for u in inner if u["status"] == FAILED)}
    graph["states"] = sorted({n["state"] for n in graph["nodes"]})
    return graph
