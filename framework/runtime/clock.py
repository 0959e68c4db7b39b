"""Clocks for the runner. The virtual clock lets tests exercise retries, waits and timeouts
without sleeping: when no task is running, time jumps to the next timer."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

TICK = object()  # put on the runner's queue when a virtual clock moves


class SystemClock:
    """Wall-clock time; waiting blocks for real."""

    def now(self) -> float:
        return time.time()

    def wait(self, events: queue.SimpleQueue[Any], deadline: float | None, busy: bool) -> Any:
        """The next event, or None once ``deadline`` (clock time) has passed."""
        timeout = None if deadline is None else max(0.0, deadline - self.now())
        try:
            return events.get(timeout=timeout)
        except queue.Empty:
            return None


class VirtualClock:
    """Time that moves only when told to (``advance``) or when the runner is idle until a timer."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = start
        self._lock = threading.Lock()
        self._queues: list[queue.SimpleQueue[Any]] = []
        self.slept: list[float] = []  # every idle jump, for tests asserting delays

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward (a task may call this to simulate running long) and wake waiters."""
        with self._lock:
            self._now += seconds
            for q in self._queues:
                q.put(TICK)

    sleep = advance

    def wait(self, events: queue.SimpleQueue[Any], deadline: float | None, busy: bool) -> Any:
        with self._lock:
            if events not in self._queues:
                self._queues.append(events)
        try:
            return events.get_nowait()
        except queue.Empty:
            pass
        if not busy and deadline is not None:
            with self._lock:
                if deadline > self._now:
                    self.slept.append(deadline - self._now)
                    self._now = deadline
            return None
        return events.get()
