"""Control flow inside a pipeline body: ``when``/``otherwise`` blocks and ``wait`` timers."""

from __future__ import annotations

import math
from typing import Any

from ..errors import TraceError, caller_location
from .handles import Handle
from .tracing import Draft, Tracer, current_tracer


def _tracer(what: str) -> Tracer:
    tracer = current_tracer()
    if tracer is None:
        raise TraceError(f"{what} can only be used inside a @pipeline body")
    return tracer


class when:
    """Run the tasks called in this block only when ``condition`` holds.

    ``condition`` compares a result (or an address into it) with a JSON literal, combined with
    ``&``, ``|`` and ``~``. Results of tasks in a branch that did not run are ``null`` downstream.
    """

    def __init__(self, condition: object):  # object: a comparison of results type-checks as bool
        self.condition = condition
        self.location = caller_location()

    def __enter__(self) -> None:
        self._tracer = _tracer("when()")
        self._branch = self._tracer.open_when(self.condition, self.location)

    def __exit__(self, *exc: object) -> None:
        self._tracer.close_when(self._branch)


class otherwise:
    """Run the tasks called in this block when the ``when`` block just before it did not run."""

    def __init__(self) -> None:
        self.location = caller_location()

    def __enter__(self) -> None:
        self._tracer = _tracer("otherwise()")
        self._tracer.open_otherwise(self.location)

    def __exit__(self, *exc: object) -> None:
        self._tracer.close_otherwise()


def wait(seconds: float, *, wait_for: Any = None, name: str | None = None) -> Handle:
    """A durable timer of ``seconds``; ``wait_for`` orders it after other calls. Its result is ``null``."""
    tracer = _tracer("wait()")
    loc = caller_location()
    subject = "wait()"
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        tracer.sink.error(f"wait(seconds=...) takes a number of seconds >= 0, got {seconds!r}", loc, subject)
        seconds = 0
    draft = Draft("wait", "wait", name, loc, tracer.guard, after=tracer.wait_for(wait_for, loc, subject),
                  seconds=float(seconds))
    return tracer.add(draft)
