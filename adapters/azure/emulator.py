"""``strato emulate --target azure``: compile the pipeline into a function app and run it in the replay host.

The replay host (the real Durable Functions SDK driven in-process on a virtual clock) is the package
:mod:`.replay`; this module is the adapter's entry point and re-exports what tests and tools use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from strato.adapters.base import Resolver
from strato.adapters.common.errors import AdapterError
from strato.ir import PipelineIR
from strato.runtime import RunResult

from .replay import ActivityRun, Emulation, EmulationError, Instance, ReplayHost, emulation, load_app

BACKENDS = ("replay",)  # the Durable Functions SDK driven in-process; the first is the default


def emulate(pipeline: PipelineIR, params: dict[str, Any], resolver: Resolver, *, endpoint: str | None = None,
            work_dir: Path) -> RunResult:
    """Compile into ``work_dir`` and run in the replay host; ``endpoint`` is a storage connection string."""
    settings = None
    if endpoint:  # a storage account for offloaded results, e.g. Azurite: the app's AzureWebJobsStorage
        if "=" not in endpoint:
            raise AdapterError("for azure, --endpoint is a storage connection string (e.g. "
                               "'UseDevelopmentStorage=true' for Azurite on its default port); offloaded results "
                               "then go to its blob service")
        settings = {"AzureWebJobsStorage": endpoint,
                    **{k: os.environ[k] for k in ("STRATO_BLOB_CONTAINER", "STRATO_OFFLOAD_BYTES") if k in os.environ}}
    return emulation(pipeline, resolver, work_dir, settings=settings).run(params)


__all__ = ["BACKENDS", "ActivityRun", "Emulation", "EmulationError", "Instance", "ReplayHost", "emulate",
           "emulation", "load_app"]
