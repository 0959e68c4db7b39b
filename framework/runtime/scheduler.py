"""A local scheduler: fires pipelines' schedules and folder triggers on the local runner (``strato serve``).

:meth:`Scheduler.tick` is pure decision-making at one instant: it looks at the clock it is given,
the run store and the mapped folders, and starts what is due on daemon threads. The service loop
only calls it every ``poll`` seconds, so tests drive it step by step with a virtual clock.

Policies:

- **Schedules.** The first time a pipeline is served, its schedule starts from "now" (no runs for
  the past; use ``strato backfill`` for them). After that the last fired tick is kept in the store
  (table ``fired``). Ticks missed while the service was down or the pipeline was busy are, with
  ``catchup=False`` (the default), collapsed into the latest one; with ``catchup=True`` each runs,
  oldest first.
- **Folders.** A folder mapped to an ``ObjectCreated`` trigger's bucket is polled (a scan per tick
  costs little for a landing folder and behaves the same on every OS and under a virtual clock,
  which a file-watcher would not). Each file whose key (its path below the folder, ``/``-separated)
  has the trigger's prefix and suffix fires once: the key is recorded in the store when its run
  starts, so a restart does not fire it again. Files that are there when the service first starts
  fire too (they are new to the pipeline).
- **Concurrency.** At most ``max_active`` runs per pipeline at once (1 by default); a due tick or
  file waits for a free slot, it is not dropped.
- A run that fails (or whose input is refused) is reported through ``on_fire`` and the service goes on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import ir

if TYPE_CHECKING:
    from ..dsl.definitions import PipelineDefinition


@dataclass
class Fired:
    """One run the scheduler started (or tried to): what for, and how it ended once it has."""

    pipeline: str
    reason: str  # "schedule", "file" or "http"
    detail: str  # the tick (ISO 8601), the object key, or the request path
    scheduled_at: datetime | None = None
    run_id: str | None = None
    status: str = "RUNNING"
    error: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def to_dict(self) -> dict[str, Any]:
        from ..run_context import iso_utc

        return {"pipeline": self.pipeline, "reason": self.reason, "detail": self.detail,
                "scheduled_at": iso_utc(self.scheduled_at) if self.scheduled_at else None,
                "run_id": self.run_id, "status": self.status, "error": self.error}


@dataclass
class Served:
    """A pipeline the scheduler serves: its definition and where it was loaded from (for resume)."""

    definition: PipelineDefinition[..., Any]
    ref: str | None = None
    sys_path: list[str] | None = None

    @property
    def name(self) -> str:
        return str(self.definition.name)


class Scheduler:
    """Decides what is due at an instant and starts it; see the module docstring for the policies."""

    def __init__(self, pipelines: list[Served], *, store_factory: Callable[[], Any] | None = None,
                 buckets: Mapping[str, str | Path] | None = None, catchup: bool = False, max_active: int = 1,
                 workers: int | None = None, run_clock: Any = None,
                 on_fire: Callable[[Fired], None] | None = None, on_end: Callable[[Fired], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None):
        from ..validate import validated
        from .store import RunStore

        self.pipelines = pipelines
        self.irs = {p.name: validated(p.definition).ir for p in pipelines}
        self.make_store = store_factory or RunStore
        self.store = self.make_store()
        self.buckets = {name: Path(path) for name, path in (buckets or {}).items()}
        self.catchup, self.max_active, self.workers, self.run_clock = catchup, max_active, workers, run_clock
        self.on_fire, self.on_end, self.on_error = on_fire, on_end, on_error
        self.active: dict[str, list[Fired]] = {p.name: [] for p in pipelines}
        self.fired: list[Fired] = []
        self.threads: list[threading.Thread] = []
        self.stopping = False
        self._lock = threading.Lock()
        self._firing = threading.Lock()  # one decision at a time: the loop's tick or an HTTP request

    # decisions ------------------------------------------------------------------------------------
    def _free(self, name: str) -> int:
        with self._lock:
            self.active[name] = [f for f in self.active[name] if not f.done.is_set()]
            return self.max_active - len(self.active[name])

    def tick(self, now: float) -> list[Fired]:
        """Start every schedule tick and file due at ``now`` (epoch seconds); return what was started."""
        started: list[Fired] = []
        if self.stopping:
            return started
        with self._firing:
            return self._tick(now)

    def _tick(self, now: float) -> list[Fired]:
        started: list[Fired] = []
        for served in self.pipelines:
            pipeline = self.irs[served.name]
            if pipeline.schedule is not None:
                started += self._schedule(served, pipeline.schedule, now)
            for trigger in pipeline.triggers:
                if isinstance(trigger, ir.ObjectCreatedSpec) and trigger.bucket in self.buckets:
                    started += self._folder(served, pipeline, trigger)
        return started

    def _schedule(self, served: Served, schedule: ir.ScheduleSpec, now: float) -> list[Fired]:
        from ..run_context import iso_utc
        from .ticks import iter_ticks

        name = served.name
        last = self.store.last_fired(name, "tick", "")
        if last is None:  # first time served: the schedule starts now
            self.store.mark_fired(name, "tick", "", now, None)
            return []
        start = datetime.fromtimestamp(last, UTC)
        end = datetime.fromtimestamp(now, UTC)
        due = [t for t in iter_ticks(schedule, start, end + timedelta(seconds=1)) if last < t.timestamp() <= now]
        if not due:
            return []
        if not self.catchup:
            due = due[-1:]
        started = []
        for moment in due:
            if self._free(name) <= 0:
                break
            fired = Fired(name, "schedule", iso_utc(moment) or "", scheduled_at=moment)
            self._start(served, {**(schedule.input or {})}, fired)
            self.store.mark_fired(name, "tick", "", moment.timestamp(), fired.run_id)
            started.append(fired)
        return started

    def _folder(self, served: Served, pipeline: ir.PipelineIR, trigger: ir.ObjectCreatedSpec) -> list[Fired]:
        root = self.buckets[trigger.bucket]
        if not root.is_dir():
            return []
        seen = self.store.fired_keys(served.name, "file")
        names = {p.name for p in pipeline.params}
        started = []
        for path in sorted(root.rglob("*")):
            if not path.is_file():
                continue
            key = path.relative_to(root).as_posix()
            if not key.startswith(trigger.prefix) or not key.endswith(trigger.suffix):
                continue
            if f"{trigger.bucket}/{key}" in seen:
                continue
            if self._free(served.name) <= 0:
                break
            # the input an ObjectCreated event gives on the clouds: event fields for parameters of those names
            fields = {"bucket": trigger.bucket, "key": key, "size": path.stat().st_size}
            data = {**(trigger.input or {}), **{k: v for k, v in fields.items() if k in names}}
            fired = Fired(served.name, "file", f"{trigger.bucket}/{key}")
            self.store.mark_fired(served.name, "file", f"{trigger.bucket}/{key}", path.stat().st_mtime, None)
            self._start(served, data, fired)
            self.store.mark_fired(served.name, "file", f"{trigger.bucket}/{key}", path.stat().st_mtime, fired.run_id)
            started.append(fired)
        return started

    def http_routes(self) -> dict[str, Served]:
        """Request path -> pipeline, for each ``Http`` trigger (``/pipelines/NAME`` unless it names a path)."""
        routes = {}
        for served in self.pipelines:
            for trigger in self.irs[served.name].triggers:
                if isinstance(trigger, ir.HttpSpec):
                    path = trigger.path or f"/pipelines/{served.name}"
                    routes[path if path.startswith("/") else "/" + path] = served
        return routes

    def fire_http(self, served: Served, path: str, data: dict[str, Any]) -> Fired | None:
        """Start a run for an HTTP request (its JSON body is the input); None when the pipeline is busy."""
        with self._firing:
            if self.stopping or self._free(served.name) <= 0:
                return None
            fired = Fired(served.name, "http", path)
            self._start(served, data, fired)
            return fired

    # runs -----------------------------------------------------------------------------------------
    def _start(self, served: Served, data: dict[str, Any], fired: Fired) -> None:
        """Start a run on a daemon thread and return once it has its run id (or failed to start)."""
        from . import run_pipeline
        from .runner import RunHooks

        have_id, announced = threading.Event(), threading.Event()

        class Hooks(RunHooks):
            def run_started(self, run_id: str, pipeline: str) -> None:
                fired.run_id = run_id
                have_id.set()

        def work() -> None:
            try:
                store = self.make_store()
                try:
                    outcome = run_pipeline(served.definition, data, store=store, clock=self.run_clock,
                                           workers=self.workers, ref=served.ref, sys_path=served.sys_path,
                                           scheduled_at=fired.scheduled_at, hooks=Hooks())
                finally:
                    if store.path != ":memory:":
                        store.close()
                fired.run_id, fired.status, fired.error = outcome.run_id, outcome.status, outcome.error
            except Exception as exc:  # a refused input or a broken store: reported, the service goes on
                fired.status = "FAILED"
                fired.error = {"error": type(exc).__name__, "cause": str(exc)}
            finally:
                have_id.set()
                announced.wait()  # "fired" is reported before "ended", however fast the run
                fired.done.set()
                if self.on_end:
                    self.on_end(fired)

        with self._lock:
            self.active[served.name].append(fired)
            self.fired.append(fired)
        thread = threading.Thread(target=work, daemon=True, name=f"strato-serve-{served.name}")
        self.threads.append(thread)
        thread.start()
        have_id.wait()
        try:
            if self.on_fire:
                self.on_fire(fired)
        finally:
            announced.set()
        if fired.run_id is None:  # refused before it started: over once reported, so it holds no slot
            fired.done.wait()

    def running(self) -> list[Fired]:
        return [f for f in self.fired if not f.done.is_set()]

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the runs started so far (up to ``timeout`` seconds); whether they all ended."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        for fired in list(self.fired):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not fired.done.wait(left):
                return False
        return True

    def close(self) -> None:
        if self.store.path != ":memory:":
            self.store.close()


class HttpTriggers:
    """The ``Http`` triggers on one local port (stdlib ``http.server`` on a thread: the core needs no web
    framework, and one request starts one run, so a threading server is plenty).

    ``POST PATH`` with a JSON object body (or none) starts a run and answers 202 with its run id (and
    status FAILED with the error when the input was refused); 404 for an unknown path, 400 for a body
    that is not a JSON object, 429 while the pipeline has its maximum of active runs, 503 when stopping.
    """

    def __init__(self, scheduler: Scheduler, port: int, host: str = "127.0.0.1"):
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        routes = scheduler.http_routes()

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                served = routes.get(path)
                if served is None:
                    self._answer(404, {"error": f"no Http trigger at {path}; served: {sorted(routes)}"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    data = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    data = None
                if not isinstance(data, dict):
                    self._answer(400, {"error": "the body must be a JSON object: the run's input"})
                    return
                if scheduler.stopping:
                    self._answer(503, {"error": "the service is stopping"})
                    return
                fired = scheduler.fire_http(served, path, data)
                if fired is None:
                    self._answer(429, {"error": f"pipeline {served.name} has {scheduler.max_active} active run(s); "
                                                "try again when one ends"})
                    return
                self._answer(202, {"run_id": fired.run_id, "pipeline": served.name, "status": fired.status,
                                   "error": fired.error})

            def log_message(self, format: str, *args: Any) -> None:  # the service prints its own lines
                return

        self.routes = routes
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="strato-serve-http")

    def start(self) -> HttpTriggers:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve_forever(scheduler: Scheduler, stop: threading.Event, *, clock: Any = None, poll: float = 1.0,
                  grace: float = 30.0) -> bool:
    """The service loop: ``tick`` every ``poll`` seconds until ``stop`` is set, then wait up to ``grace``
    seconds for the runs in progress. Returns whether they all ended (the others are left to their
    daemon threads: once the process exits they show as INTERRUPTED, for ``strato resume``)."""
    from .clock import SystemClock

    clock = clock or SystemClock()
    while not stop.is_set():
        try:
            scheduler.tick(clock.now())
        except Exception as exc:  # a folder or store hiccup: reported through on_fire's caller, retried next poll
            if scheduler.on_error:
                scheduler.on_error(exc)
        stop.wait(poll)
    scheduler.stopping = True
    return scheduler.wait(grace)


__all__ = ["Fired", "HttpTriggers", "Scheduler", "Served", "serve_forever"]
