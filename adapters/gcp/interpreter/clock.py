"""Clocks for the Workflows engine.

``sys.sleep`` and retry backoff are where Workflows waits. Tests must see those waits exactly and
never spend them, so the default clock is virtual: sleeping moves its time forward and records the
wait. Parallel branches are scheduled against the same clock (see ``engine``), which is why the
clock can also be moved to a given instant.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Sleep:
    """One wait: when it started, how long, why (``sys.sleep`` or ``retry``) and in which step."""

    at: float
    seconds: float
    reason: str
    step: str


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    def set_time(self, instant: float) -> None:
        """Move to ``instant`` (used to start each parallel branch at its scheduled time)."""
        ...


class VirtualClock:
    """Time that moves only when the workflow waits; nothing ever sleeps for real."""

    def __init__(self, start: float = 1_700_000_000.0):
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += seconds

    def set_time(self, instant: float) -> None:
        self._now = float(instant)


class RealClock:
    """Wall-clock time with real sleeps, for running a workflow against live services by hand.

    Parallel branches still run one after another under it, so their waits add up.
    """

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def set_time(self, instant: float) -> None:
        """Real time cannot be moved; branches simply start when the previous one ends."""
