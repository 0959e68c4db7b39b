"""What a run gives back, on every backend: statuses, :class:`RunResult`, run ids.

Kept apart from the runner and the run store so that adapters, cloud shims and emulators can use
them without loading SQLite, the DSL or the local runner.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .._record import record
from ..errors import StratoError

RUNNING, SUCCEEDED, FAILED, SKIPPED, INTERRUPTED = "RUNNING", "SUCCEEDED", "FAILED", "SKIPPED", "INTERRUPTED"
CANCELLED = "CANCELLED"  # a unit abandoned when its run failed


@record(frozen=False)
class RunResult:
    run_id: str
    status: str
    output: Any
    error: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": self.status, "output": self.output, "error": self.error}

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED


def new_run_id() -> str:
    """A sortable, unique run id: UTC start time and random hex (``20240301T020000-1a2b3c4d``)."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + os.urandom(4).hex()


class PipelineFailed(StratoError):
    """Raised when a pipeline called as plain Python fails; ``error`` is ``{"error", "cause"}``."""

    def __init__(self, result: RunResult):
        self.result = result
        self.error: dict[str, Any] = result.error or {}
        super().__init__(f"run {result.run_id} failed: {self.error.get('error')}: {self.error.get('cause')}")


__all__ = ["FAILED", "INTERRUPTED", "RUNNING", "SKIPPED", "SUCCEEDED", "PipelineFailed", "RunResult", "new_run_id"]
