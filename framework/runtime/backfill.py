"""Backfills: one run per schedule tick in a range, each with its ``scheduled_at``, a few at a time.

Each run is an ordinary run (own run id, lease, logs), started with the schedule's ``input`` and
the backfill's input on top. Ticks that already have a succeeded run of the pipeline, or a run
still in progress, are skipped unless ``rerun`` is set. Runs execute on daemon threads, each with
its own connection to the run store, so Ctrl-C stops the backfill at once and leaves the runs in
progress INTERRUPTED (``strato resume`` continues them; running the backfill again skips the ticks
that succeeded).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from .results import RUNNING, SUCCEEDED

if TYPE_CHECKING:
    from ..dsl.definitions import PipelineDefinition


@dataclass
class TickRun:
    """What became of one tick: a run (``run_id``, ``status``, ``error``), or skipped with the run that covers it."""

    scheduled_at: datetime
    run_id: str | None
    status: str
    error: dict[str, Any] | None = None
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        from ..run_context import iso_utc

        return {"scheduled_at": iso_utc(self.scheduled_at), "run_id": self.run_id, "status": self.status,
                "error": self.error, "skipped": self.skipped}


@dataclass
class Backfill:
    pipeline: str
    ticks: list[TickRun] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for t in self.ticks if not t.skipped and t.status != SUCCEEDED)

    @property
    def succeeded(self) -> int:
        return sum(1 for t in self.ticks if not t.skipped and t.status == SUCCEEDED)

    @property
    def skipped(self) -> int:
        return sum(1 for t in self.ticks if t.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "ticks": len(self.ticks), "succeeded": self.succeeded,
                "failed": self.failed, "skipped": self.skipped, "runs": [t.to_dict() for t in self.ticks]}


def backfill(definition: PipelineDefinition[..., Any], start: datetime, end: datetime, *,
             input: dict[str, Any] | None = None, max_active: int = 1, rerun: bool = False,
             ref: str | None = None, sys_path: list[str] | None = None, workers: int | None = None,
             store_factory: Callable[[], Any] | None = None, clock: Any = None,
             on_tick: Callable[[TickRun, int, int], None] | None = None) -> Backfill:
    """Run ``definition`` once per tick of its schedule in ``[start, end)`` (aware datetimes).

    ``on_tick(tick, done, total)`` is called as each tick is skipped or its run ends.
    """
    from ..validate import validated
    from . import run_pipeline
    from .store import RunStore
    from .ticks import ticks as schedule_ticks

    if start >= end:
        raise UsageError(f"--start {start.isoformat()} is not before --end {end.isoformat()}; the range is "
                         "[start, end)")
    if isinstance(max_active, bool) or not isinstance(max_active, int) or max_active < 1:
        raise UsageError(f"max_active={max_active!r}: give a whole number of runs at a time, 1 or more")
    pipeline = validated(definition).ir
    if pipeline.schedule is None:
        raise UsageError(f"pipeline {pipeline.name!r} has no schedule to backfill; give it "
                         "@pipeline(schedule=Schedule(cron=..., timezone=...)) or Schedule(every=...)")
    make_store = store_factory or RunStore
    base_input = {**(pipeline.schedule.input or {}), **(input or {})}
    found = schedule_ticks(pipeline.schedule, start, end)
    result = Backfill(pipeline.name)
    store = make_store()
    try:
        covered = store.scheduled_runs(pipeline.name)
    finally:
        if store.path != ":memory:":
            store.close()
    if found:  # a bad input is refused before any run starts
        from .inputs import prepare_input

        prepare_input(pipeline, base_input, definition.fn, scheduled_at=found[0], now=found[0])
    todo: list[datetime] = []
    total = len(found)
    for tick in found:
        earlier = covered.get(tick.timestamp(), [])
        done = next((r for r in earlier if r.status == SUCCEEDED or r.display_status == RUNNING), None)
        if done is not None and not rerun:
            entry = TickRun(tick, done.run_id, done.display_status, done.error, skipped=True)
            result.ticks.append(entry)
            if on_tick:
                on_tick(entry, len(result.ticks), total)
        else:
            todo.append(tick)
    if not todo:
        return result

    pending: queue.SimpleQueue[datetime | None] = queue.SimpleQueue()
    finished: queue.SimpleQueue[TickRun | BaseException] = queue.SimpleQueue()
    for tick in todo:
        pending.put(tick)

    def serve() -> None:
        while (tick := pending.get()) is not None:
            try:
                run_store = make_store()
                try:
                    outcome = run_pipeline(definition, base_input, store=run_store, clock=clock, workers=workers,
                                           ref=ref, sys_path=sys_path, scheduled_at=tick)
                finally:
                    if run_store.path != ":memory:":
                        run_store.close()
                finished.put(TickRun(tick, outcome.run_id, outcome.status, outcome.error))
            except BaseException as exc:  # a bad input or store: reported, and the backfill stops
                finished.put(exc)

    threads = min(max_active, len(todo))
    for _ in range(threads):
        pending.put(None)  # after the ticks: one stop per thread
        threading.Thread(target=serve, daemon=True, name="strato-backfill").start()
    for _ in range(len(todo)):
        while True:
            try:
                item = finished.get(timeout=0.2)  # a short wait keeps Ctrl-C prompt
                break
            except queue.Empty:
                continue
        if isinstance(item, BaseException):
            raise item
        result.ticks.append(item)
        if on_tick:
            on_tick(item, len(result.ticks), total)
    result.ticks.sort(key=lambda t: t.scheduled_at)
    return result


__all__ = ["Backfill", "TickRun", "backfill"]
