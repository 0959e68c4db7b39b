"""Operating pipelines from the command line: ``runs logs``, ``runs prune``, ``rerun``, ``backfill``, ``pools``.

Registered as commands of :mod:`strato.cli` (kept apart so the commands that run pipelines day to day
live together).
"""

from __future__ import annotations

import argparse
import sys
import time

from .cli import (
    _echo_json,
    _existing_store,
    _guard,
    _json_only,
    _ranged,
    _report,
    _run_with_display,
    _show_help,
    arg,
    command,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def _matches(key: str, task: str) -> bool:
    """Whether unit ``key`` belongs to ``task``: the key itself, its map items and catch, or calls inside it."""
    from .run_context import split_key

    if key == task or key.startswith(task + "/"):
        return True
    task_id, _ = split_key(key)
    return task_id == task or task_id.startswith(task + "#") or task_id.startswith(task + "/")


def _format_line(entry: dict[str, Any]) -> str:
    attempt = f" #{entry['attempt']}" if entry["attempt"] > 1 else ""
    mark = {"stderr": "!", "traceback": "!"}.get(entry["stream"], "|")
    return f"{entry['key']}{attempt} {mark} {entry['line']}"


@command(arg("run_id"),
         arg("task", nargs="?"),
         arg("-f", "--follow", action="store_true", help="Keep printing new lines until the run ends."),
         arg("--json", dest="as_json", action="store_true",
             help="Print a JSON array of lines (key, attempt, at, stream, line)."),
         arg("--poll", default=0.5, type=_ranged(float, 0.05, 60), help=argparse.SUPPRESS),
         name="runs logs")
@_guard
def runs_logs(run_id: str, task: str | None, follow: bool, as_json: bool, poll: float) -> None:
    """Print what a run's tasks wrote (stdout, stderr, logging records, tracebacks), per attempt.

    TASK narrows it to one call id (its map items and catch handler included) or one unit key
    such as ``clean[3]``. Lines read ``KEY [#ATTEMPT] | line`` (``!`` for stderr and tracebacks).
    """
    from .errors import UsageError

    store = _existing_store(run_id)
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.path}; list runs with `strato runs list`")
    if task is not None:
        keys = [u["key"] for u in store.units(run_id)]
        if not any(_matches(k, task) for k in keys) and not follow:
            raise UsageError(f"run {run_id} has no task {task!r}; its units are {', '.join(keys) or 'none yet'}")
    if as_json and follow:
        raise UsageError("--json prints the lines written so far; leave out --follow")
    last, printed = 0, []
    while True:
        now = store.get_run(run_id)
        running = follow and now is not None and now.display_status == "RUNNING"
        batch = store.logs(run_id, after=last)
        if batch:
            last = batch[-1]["id"]
        batch = [e for e in batch if task is None or _matches(e["key"], task)]
        if as_json:
            printed += batch
        else:
            for entry in batch:
                print(_format_line(entry), flush=follow)
        if not running:
            break
        time.sleep(poll)
    if as_json:
        _echo_json([{k: v for k, v in e.items() if k != "id"} for e in printed])


@command(arg("--older-than", required=True, metavar="AGE",
             help="Delete runs started more than AGE ago: 30d, 12h, 90m, 2w."),
         arg("--json", dest="as_json", action="store_true"),
         name="runs prune")
@_guard
def runs_prune(older_than: str, as_json: bool) -> None:
    """Delete old runs and everything recorded about them (units, attempts, logs) in one transaction.

    Runs still running are kept.
    """
    from .runtime import RunStore

    seconds = parse_age(older_than, "--older-than")
    store = RunStore.existing()
    gone = store.prune(time.time() - seconds) if store is not None else []
    if as_json:
        _echo_json({"deleted": len(gone), "run_ids": gone})
    else:
        print(f"deleted {len(gone)} run(s) started more than {older_than} ago")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str, option: str) -> float:
    """``30d`` -> seconds; a usage error naming ``option`` otherwise."""
    from .errors import UsageError

    value = text.strip().lower()
    if len(value) >= 2 and value[-1] in _UNITS and value[:-1].isdigit():
        return int(value[:-1]) * _UNITS[value[-1]]
    raise UsageError(f"{option} {text!r}: write a whole number and a unit: s, m, h, d or w (e.g. 30d)")


def parse_since(text: str) -> float:
    """``--since``: an age (``2h``, ``7d``) or an ISO 8601 date or time (naive means UTC) -> epoch seconds."""
    from .errors import StratoError, UsageError
    from .run_context import parse_instant

    value = text.strip().lower()
    if value and value[-1] in _UNITS and value[:-1].isdigit():
        return time.time() - parse_age(value, "--since")
    try:
        moment = parse_instant(text)
    except StratoError as exc:
        raise UsageError(f"--since: {exc}, or an age such as 2h or 7d") from None
    assert moment is not None
    return moment.timestamp()


def _load_recorded(record: Any) -> Any:
    """The pipeline a stored run was started from (its reference, imported as it was), validated."""
    from .errors import UsageError
    from .loader import load
    from .validate import validated

    if not record.ref:
        raise UsageError(f"run {record.run_id} was started from Python, not from a pipeline reference; it cannot be "
                         "rerun from the command line")
    for path in reversed(record.sys_path):
        if path not in sys.path:
            sys.path.insert(0, path)
    loaded = load(record.ref)
    return loaded, validated(loaded.definition)


@command(arg("run_id"),
         arg("--from", dest="from_task", metavar="TASK",
             help="Run this call and everything downstream of it again; reuse the other results of RUN_ID."),
         arg("--json", dest="as_json", action="store_true",
             help="Print one JSON object: run_id, status, output, error."),
         arg("--workers", type=_ranged(int, 1, 1024), help="Task threads (default 16, or $STRATO_WORKERS)."))
@_guard
def rerun(run_id: str, from_task: str | None, as_json: bool, workers: int | None) -> None:
    """Start a new run with the input (and scheduled_at) of RUN_ID, recorded as its rerun.

    Without --from everything runs again. With --from TASK, the results RUN_ID stored for calls that
    are neither TASK nor downstream of it are reused (the pipeline's wiring must be unchanged; task
    code may change).
    """
    from datetime import UTC, datetime

    from .errors import UsageError
    from .runtime import Runner, prepare_input, resolver_for

    started = time.monotonic()
    store = _existing_store(run_id)
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.path}; list runs with `strato runs list`")
    with _json_only(as_json):
        loaded, checked = _load_recorded(record)
        tick = None if record.scheduled_at is None else datetime.fromtimestamp(record.scheduled_at, UTC)
        params = prepare_input(checked.ir, record.input, loaded.definition.fn, scheduled_at=tick)
        result = _run_with_display(lambda hooks: Runner(store, workers=workers, hooks=hooks).rerun(
            record, checked.ir, params, from_task, resolver_for(checked.ir)), echo=not as_json)
        if not as_json:
            print(f"rerun of {run_id}{f' from {from_task}' if from_task else ''}", file=sys.stderr)
        _report(result, as_json, started)


def _range_end(option: str, value: str, zone: str) -> Any:
    """``--start``/``--end``: ISO 8601; a value without an offset is in the schedule's timezone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from .errors import UsageError

    text = value.strip()
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise UsageError(f"{option} {value!r} is not an ISO 8601 date or time (e.g. 2024-03-01 or "
                         "2024-03-01T02:00:00+01:00)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(zone))


@command(arg("ref"),
         arg("--start", required=True, metavar="ISO", help="First instant of the range (included)."),
         arg("--end", required=True, metavar="ISO", help="End of the range (excluded)."),
         arg("--input", dest="input_", metavar="JSON|@FILE",
             help="Parameters for every run, over the schedule's input."),
         arg("--max-active", default=1, show_default=True, type=_ranged(int, 1, 64), help="Runs at a time."),
         arg("--rerun", action="store_true", help="Run ticks again even when they already have a succeeded run."),
         arg("--workers", type=_ranged(int, 1, 1024), help="Task threads per run (default 16, or $STRATO_WORKERS)."),
         arg("--json", dest="as_json", action="store_true", help="Print a JSON summary: counts and every tick's run."))
@_guard
def backfill(ref: str, start: str, end: str, input_: str | None, max_active: int, rerun: bool, workers: int | None,
             as_json: bool) -> None:
    """Run a scheduled pipeline once per schedule tick in [--start, --end), each with its scheduled_at.

    A date or time without an offset is in the schedule's timezone. Ticks that already have a
    succeeded (or running) run are skipped unless --rerun. Exit 1 when any run failed.
    """
    from .cli import _read_input
    from .loader import load
    from .run_context import iso_utc
    from .runtime.backfill import TickRun
    from .runtime.backfill import backfill as run_backfill

    with _json_only(as_json):
        data = _read_input(input_)
        loaded = load(ref)
        schedule = loaded.definition.schedule_spec()
        zone = schedule.timezone if schedule is not None and schedule.timezone else "UTC"
        first, last = _range_end("--start", start, zone), _range_end("--end", end, zone)

        def progress(tick: TickRun, done: int, total: int) -> None:
            what = f"skipped (run {tick.run_id} {tick.status})" if tick.skipped else f"{tick.status} run {tick.run_id}"
            if tick.error and not tick.skipped:
                what += f": {tick.error.get('error')}: {tick.error.get('cause')}"
            print(f"[{done}/{total}] {iso_utc(tick.scheduled_at)} {what}", file=sys.stderr)

        try:
            result = run_backfill(loaded.definition, first, last, input=data, max_active=max_active, rerun=rerun,
                                  ref=loaded.ref, sys_path=loaded.sys_path, workers=workers, on_tick=progress)
        except KeyboardInterrupt:
            raise SystemExit(_interrupted()) from None
        if as_json:
            _echo_json(result.to_dict())
        else:
            print(f"backfill of {result.pipeline}: {len(result.ticks)} tick(s), {result.succeeded} succeeded, "
                  f"{result.failed} failed, {result.skipped} skipped", file=sys.stderr)
            if result.failed:
                print("inspect a failed run with `strato runs show RUN_ID`; run the backfill again to retry "
                      "the ticks that did not succeed", file=sys.stderr)
    raise SystemExit(1 if result.failed else 0)


def _parse_buckets(values: tuple[str, ...]) -> dict[str, str]:
    """``--bucket NAME=DIR`` (repeatable) -> {name: dir}; a usage error naming the bad value otherwise."""
    import os

    from .errors import UsageError

    buckets: dict[str, str] = {}
    for value in values:
        name, sep, folder = value.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise UsageError(f"--bucket {value!r}: write NAME=DIR, e.g. --bucket landing=./data/landing")
        if not os.path.isdir(folder):
            raise UsageError(f"--bucket {value!r}: {folder} is not a directory; create it or map another folder")
        buckets[name.strip()] = os.path.abspath(folder)
    return buckets


@command(arg("refs", nargs="+", metavar="REF"),
         arg("--bucket", dest="buckets", action="append", default=[], metavar="NAME=DIR",
             help="Fire ObjectCreated triggers on bucket NAME for new files in DIR (repeatable)."),
         arg("--http-port", default=8787, show_default=True, type=_ranged(int, 0, 65535),
             help="Port for the pipelines' Http triggers (0: any free port), on 127.0.0.1."),
         arg("--grace", default=30.0, show_default=True, type=_ranged(float, 0),
             help="Seconds to wait for running runs when stopping; the rest are left INTERRUPTED."),
         arg("--catchup", action="store_true",
             help="After a restart, run every missed schedule tick, not only the latest."),
         arg("--max-active", default=1, show_default=True, type=_ranged(int, 1, 64),
             help="Runs of one pipeline at a time; a due tick or file waits for a free slot."),
         arg("--workers", type=_ranged(int, 1, 1024), help="Task threads per run (default 16, or $STRATO_WORKERS)."),
         arg("--poll", default=1.0, show_default=True, type=_ranged(float, 0.05, 3600),
             help="Seconds between looks at the clock and the folders."),
         arg("--json", dest="as_json", action="store_true",
             help="Print one JSON object per line for each run fired and ended."))
@_guard
def serve(refs: tuple[str, ...], buckets: tuple[str, ...], http_port: int, grace: float, catchup: bool,
          max_active: int, workers: int | None, poll: float, as_json: bool) -> None:
    """Serve pipelines locally: fire their schedules, folder triggers and Http triggers until stopped.

    Schedules start from now the first time a pipeline is served (use `strato backfill` for the past);
    after a restart only the latest missed tick runs unless --catchup. A file fires once, ever. State
    lives in the run store. SIGTERM or Ctrl-C stops firing and waits --grace seconds for running runs.
    """
    import json
    import signal
    import threading

    from .errors import UsageError
    from .loader import load
    from .runtime.scheduler import Fired, HttpTriggers, Scheduler, Served, serve_forever

    mapped = _parse_buckets(buckets)
    served: list[Served] = []
    for ref in refs:
        loaded = load(ref)
        if any(s.name == loaded.definition.name for s in served):
            raise UsageError(f"{ref}: pipeline {loaded.definition.name!r} is given twice; serve each pipeline once")
        served.append(Served(loaded.definition, loaded.ref, loaded.sys_path))
    lock = threading.Lock()

    def say(event: str, fired: Fired) -> None:
        with lock:
            if as_json:
                print(json.dumps({"event": event, **fired.to_dict()}), flush=True)
            elif event == "fired" and fired.run_id is None:
                print(f"not started {fired.pipeline} ({fired.reason} {fired.detail}): "
                      f"{(fired.error or {}).get('cause')}", flush=True)
            elif event == "fired":
                print(f"fired {fired.pipeline} ({fired.reason} {fired.detail}) run {fired.run_id}", flush=True)
            elif fired.run_id is not None:
                why = f": {fired.error.get('error')}: {fired.error.get('cause')}" if fired.error else ""
                print(f"ended {fired.pipeline} run {fired.run_id} {fired.status}{why}", flush=True)

    def failed(exc: Exception) -> None:
        print(f"error: {exc} (the service goes on)", file=sys.stderr)

    scheduler = Scheduler(served, buckets=mapped, catchup=catchup, max_active=max_active, workers=workers,
                          on_fire=lambda f: say("fired", f), on_end=lambda f: say("ended", f), on_error=failed)
    used = {t.bucket for p in scheduler.irs.values() for t in p.triggers if hasattr(t, "bucket")}
    for name in sorted(set(mapped) - used):
        print(f"warning: --bucket {name}: no served pipeline has an ObjectCreated trigger on it", file=sys.stderr)
    http = None
    if scheduler.http_routes():
        try:
            http = HttpTriggers(scheduler, http_port).start()
        except OSError as exc:
            raise UsageError(f"--http-port {http_port}: cannot listen ({exc.strerror}); pick another port") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    what = []
    for item in served:
        pipeline = scheduler.irs[item.name]
        if pipeline.schedule is not None:
            what.append(f"{item.name}: schedule")
        for trigger in pipeline.triggers:
            if http is not None and not hasattr(trigger, "bucket"):
                path = next(p for p, s in http.routes.items() if s is item)
                what.append(f"{item.name}: POST http://127.0.0.1:{http.port}{path}")
            elif hasattr(trigger, "bucket"):
                folder = mapped.get(trigger.bucket)
                what.append(f"{item.name}: files in {folder}" if folder else
                            f"{item.name}: bucket {trigger.bucket} not mapped (give --bucket {trigger.bucket}=DIR)")
    print(f"serving {len(served)} pipeline(s) ({'; '.join(what) or 'nothing to fire'}); "
          "stop with Ctrl-C or SIGTERM", file=sys.stderr)
    ended = serve_forever(scheduler, stop, poll=poll, grace=grace)
    if http is not None:
        http.stop()
    left = [f.run_id for f in scheduler.running()]
    if not ended and left:
        print(f"stopped; {len(left)} run(s) did not end within --grace {grace:g}s and are INTERRUPTED: "
              f"continue each with `strato resume RUN_ID` ({', '.join(str(r) for r in left)})", file=sys.stderr)
        raise SystemExit(1)
    print("stopped", file=sys.stderr)


def _interrupted() -> int:
    print("error: interrupted: runs in progress are INTERRUPTED (`strato runs list --status INTERRUPTED`); "
          "continue each with `strato resume RUN_ID`, or run the backfill again: ticks that succeeded are "
          "skipped", file=sys.stderr)
    return 130


__all__ = ["backfill", "parse_age", "parse_since", "pools", "rerun", "runs_logs", "runs_prune", "serve"]


@command()
def pools() -> None:
    """Shared limits on tasks across local runs: ``@task(pool="warehouse")`` and ``strato pools set``."""
    _show_help("pools")  # `strato pools` alone


def _pool_slots() -> Any:
    from .runtime import RunStore
    from .runtime.store import PoolSlots

    return PoolSlots(RunStore())


@command(arg("name"), arg("slots", type=_ranged(int, 1, 100_000)), name="pools set")
@_guard
def pools_set(name: str, slots: int) -> None:
    """At most SLOTS attempts of tasks in pool NAME run at once, across every local run and process."""
    import re

    from .errors import UsageError

    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$", name):
        raise UsageError(f"pool name {name!r}: use letters, digits, '_', '-' or '.' (at most 64)")
    _pool_slots().set_slots(name, slots, time.time())
    print(f"pool {name}: {slots} slot(s)")


@command(arg("name"), name="pools delete")
@_guard
def pools_delete(name: str) -> None:
    """Remove pool NAME's limit (its tasks then run without one)."""
    from .errors import UsageError

    if not _pool_slots().delete(name):
        raise UsageError(f"no pool {name!r} is set; `strato pools list` shows them")
    print(f"pool {name}: deleted (no limit)")


@command(arg("--json", dest="as_json", action="store_true", help="Print a JSON array: pool, slots, in_use, holders."),
         name="pools list")
@_guard
def pools_list(as_json: bool) -> None:
    """Pools with their slots, and which runs and tasks hold them now."""
    from .runtime import RunStore
    from .runtime.store import PoolSlots

    store = RunStore.existing()
    listing = PoolSlots(store).listing() if store is not None else []
    if as_json:
        _echo_json(listing)
        return
    if not listing:
        print("no pools: set one with `strato pools set NAME SLOTS`; a pool that is not set has no limit")
        return
    for pool in listing:
        limit = pool["slots"] if pool["slots"] is not None else "not set (no limit)"
        print(f"{pool['pool']}: {pool['in_use']} of {limit} in use")
        for holder in pool["holders"]:
            print(f"  {holder['run_id']}  {holder['key']}  since {holder['since']}")
