"""A generated function app loaded into a replay host, with its activities pointed at local code and storage."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from strato.adapters.base import Resolver, emulated_loader
from strato.adapters.common.emulation import TaskLoader, emulating
from strato.adapters.common.stores import BlobStore, LocalBlobStore
from strato.ir import PipelineIR
from strato.runtime import RunResult

from ..payloads import SCHEME, offloading_above, store_from_environment, threshold_setting
from .history import EmulationError
from .host import ReplayHost


def load_app(path: Path) -> Any:
    """Import a generated ``function_app.py`` under a private module name and return its ``app``."""
    name = f"strato_azure_app_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise EmulationError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module.app


@dataclass
class Emulation:
    """A compiled app loaded into a replay host, with the shim pointed at local code and storage."""

    host: ReplayHost
    orchestrator: str  # the root pipeline's orchestrator function
    loader: TaskLoader  # the pipeline's own tasks by id, through the local resolver
    store: BlobStore  # where offloaded results go
    offload_bytes: int | None = None  # None: STRATO_OFFLOAD_BYTES or 64 KiB, as deployed

    def run(self, params: dict[str, Any], run_id: str | None = None) -> RunResult:
        """Run the root pipeline with ``params``; the run id is the orchestration's instance id."""
        from strato.runtime.runner import new_run_id

        with self.activate():
            instance = self.host.run_orchestration(self.orchestrator, params, run_id or new_run_id())
        return self.host.result(instance)

    @contextmanager
    def activate(self) -> Iterator[None]:
        """Activities scheduled in the block see this emulation's loader, blob store and threshold."""
        with emulating(loader=self.loader, store=self.store), offloading_above(self.offload_bytes):
            yield


def emulation(pipeline: PipelineIR, resolver: Resolver, work_dir: Path, *,
              durations: Callable[[str, Any], float] | None = None, offload_bytes: int | None = None,
              start: datetime | float | None = None, settings: Mapping[str, str] | None = None,
              concurrency: int = 8) -> Emulation:
    """Compile ``pipeline`` into ``work_dir``, import the app and put it in a replay host.

    Task code comes from ``resolver`` (as on the local runner), for the pipeline's own tasks only.
    ``settings`` are the app settings a deployed app would have (``AzureWebJobsStorage`` or
    ``STRATO_BLOB_CONNECTION``, ``STRATO_BLOB_CONTAINER``, ``STRATO_OFFLOAD_BYTES``): the store and the
    threshold come from them exactly as from a deployed app's environment, so pointing them at Azurite
    exercises real Blob Storage. Without them offloaded results go to ``work_dir/blobs``.
    ``durations(activity, input)`` gives activities' virtual run times (default: measured);
    ``concurrency`` bounds the activities running at once.
    """
    from ..compiler import compile_app
    from ..naming import root_function_name

    work_dir = Path(work_dir)
    compile_app(pipeline, work_dir)
    app = load_app(work_dir / pipeline.name / "function_app.py")
    host = ReplayHost(app, start=start, durations=durations, concurrency=concurrency)
    if settings is None:
        store: BlobStore = LocalBlobStore(work_dir / "blobs", SCHEME)
    else:
        store = store_from_environment(settings)
        if offload_bytes is None:
            offload_bytes = threshold_setting(settings)
    return Emulation(host, root_function_name(pipeline), emulated_loader(pipeline, resolver), store, offload_bytes)
