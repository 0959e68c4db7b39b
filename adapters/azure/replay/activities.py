"""Activities in the replay host: run on worker threads, measured or given a virtual duration.

Activities of one replay overlap as they do on a Functions worker: each is handed to a pool of at
most ``concurrency`` threads. The host's clock never passes a moment at which a running activity
could still finish (:meth:`ActivityWorkers.settle`), so completions enter the history at their
virtual end, in schedule order, whatever order the threads finished in. Each call runs in a copy of
the context it was scheduled in (:func:`~strato.adapters.common.emulation.in_this_context`): the
emulation's task loader and blob store travel to the thread.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .history import Instance, activity_failure


@dataclass
class ActivityRun:
    """One activity execution, for tests and diagnostics: when it ran on the virtual clock.

    ``ended`` and ``ok`` stay None while it runs (a task that never returns keeps them None).
    """

    instance: str
    task_id: int
    name: str
    input: Any
    started: float
    ended: float | None = None
    ok: bool | None = None


Outcome = tuple[bool, Any]  # (True, encoded result) or (False, (reason, details))


@dataclass(eq=False)
class InFlight:
    """An activity handed to a worker thread; its completion is pushed once it finished."""

    run: ActivityRun
    instance: Instance
    seq: int  # reserved when scheduled: same-moment completions are delivered in schedule order
    call: Callable[[], Outcome]
    declared: float | None  # the ``durations`` answer; None: measured
    began: float | None = None  # perf_counter when a worker picked it up
    took: float = 0.0
    outcome: Outcome | None = None

    def must_wait(self, horizon: float) -> float | None:
        """Real seconds to wait for it before the clock may reach ``horizon`` (None: until it ends; 0: not)."""
        if self.declared is not None:
            end = self.run.started + max(0.0, self.declared)
            return None if end < math.inf and end <= horizon else 0.0
        # a measured duration is rounded down to tenths: it may still end at or before the horizon
        # until it has run 0.1 s longer than the gap
        if horizon == math.inf:
            return None
        elapsed = 0.0 if self.began is None else time.perf_counter() - self.began
        return max(0.0, horizon - self.run.started + 0.1 - elapsed)


def call_activity(function: Any, name: str, decoded: Any) -> Outcome:
    """Run an activity function (on a worker thread) and encode its result as the worker would."""
    from azure.functions.durable_functions import ActivityTriggerConverter

    try:
        result = function.get_user_function()(**{function.get_trigger().name: decoded})
        if inspect.isawaitable(result):
            result = asyncio.run(_awaited(result))
        return True, ActivityTriggerConverter.encode(result, expected_type=None).value
    except Exception as exc:
        return False, activity_failure(name, exc, traceback.format_exc())


async def _awaited(value: Any) -> Any:
    return await value


class ActivityWorkers:
    """A bounded pool of daemon threads (a task that never returns must not keep the process alive)."""

    def __init__(self, concurrency: int):
        self.concurrency = concurrency
        self.inflight: list[InFlight] = []
        self._backlog: deque[InFlight] = deque()
        self._workers = 0
        self._cond = threading.Condition()

    def submit(self, job: InFlight) -> None:
        with self._cond:
            self.inflight.append(job)
            self._backlog.append(job)
            if self._workers < self.concurrency:  # one more worker per job, up to the bound
                self._workers += 1
                threading.Thread(target=self._work, name=f"strato-activity-{self._workers}", daemon=True).start()

    def running(self, instance: Instance) -> set[str]:
        """Names of the activities of ``instance`` still in flight."""
        return {job.run.name for job in self.inflight if job.instance is instance}

    def _work(self) -> None:
        """A worker thread: run queued activities until none is left."""
        while True:
            with self._cond:
                if not self._backlog:
                    self._workers -= 1
                    return
                job = self._backlog.popleft()
                job.began = time.perf_counter()
            try:
                outcome = job.call()
            except BaseException as exc:  # reported as the activity's failure, never lost
                outcome = False, activity_failure(job.run.name, exc, traceback.format_exc())
            took = time.perf_counter() - job.began
            with self._cond:
                job.took, job.outcome = took, outcome
                self._cond.notify_all()

    def settle(self, horizon: Callable[[], float], finish: Callable[[InFlight], None]) -> None:
        """Wait for the activities that may finish before ``horizon()``, handing each finished one to ``finish``.

        Virtual time must not pass a running activity's possible end: a declared duration is waited
        for once the clock would reach it; a measured one until it has run longer than the gap to the
        next event. Activities of finished instances are not waited for (nobody reads their result).
        """
        with self._cond:
            while True:
                for job in [job for job in self.inflight if job.outcome is not None]:
                    self.inflight.remove(job)
                    finish(job)
                limit = horizon()
                waits = [job.must_wait(limit) for job in self.inflight if not job.instance.done]
                waits = [w for w in waits if w != 0.0]
                if not waits:
                    return
                bounded = [w for w in waits if w is not None]
                self._cond.wait(min(bounded) if bounded else None)
