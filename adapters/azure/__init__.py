"""Azure: compile a pipeline into a Durable Functions app and emulate it with the real Durable SDK.

``strato compile REF --target azure`` writes ``<out>/<pipeline>/`` (``function_app.py``, ``host.json``,
``requirements.txt``, ``local.settings.json.example``); ``strato emulate REF --target azure`` runs that
app in an in-process replay host (``emulator.py``, the package ``replay/``). Importing this package is
cheap: the Azure SDKs are imported only by the modules that need them.

The modules: ``compiler.py`` (IR -> ``function_app.py``, through ``codegen.py``), ``naming.py`` (function
and Python names), ``orchestration.py`` (the generated orchestrators' helpers), ``shim.py`` (what an
activity runs), ``payloads.py`` (Blob Storage and offloading), ``triggers.py`` (schedules, HTTP and
blob-event starters), ``rules.py`` (Azure's checks, tags), ``emulator.py`` + ``replay/``,
``invoke.py`` (``strato invoke``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato.adapters.base import CompileResult, Resolver
from strato.adapters.common.errors import check_backend
from strato.errors import Diagnostic
from strato.ir import PipelineIR
from strato.runtime import RunResult

if TYPE_CHECKING:
    from ..common.packaging import PackageResult

class Adapter:
    """The ``azure`` target."""

    target = "azure"
    backends: tuple[str, ...] = ("replay",)  # the Durable SDK driven in-process (emulator.BACKENDS)

    def check(self, pipeline: PipelineIR) -> list[Diagnostic]:
        """Azure's rules: NCRONTAB-expressible UTC schedules and resource tag syntax."""
        from .rules import check

        return check(pipeline)

    def compile(self, pipeline: PipelineIR, out_dir: Path) -> CompileResult:
        """Write the function app under ``out_dir/<pipeline>/``."""
        from .compiler import compile_app

        paths, warnings = compile_app(pipeline, out_dir)
        return CompileResult(paths, warnings)

    def emulate(self, pipeline: PipelineIR, params: dict[str, Any], resolver: Resolver, *,
                backend: str | None = None, endpoint: str | None = None, work_dir: Path) -> RunResult:
        """Compile into ``work_dir`` and run the app in the replay host (``backend``: ``replay``, the only one)."""
        check_backend(self.target, backend, self.backends)
        from .emulator import emulate

        return emulate(pipeline, params, resolver, endpoint=endpoint, work_dir=work_dir)

    def invoke(self, pipeline: PipelineIR, params: dict[str, Any], *, endpoint: str | None = None,
               key: str | None = None, timeout: float | None = None, poll_seconds: float = 2.0,
               on_start: Callable[[str], None] | None = None) -> RunResult:
        """POST to the deployed app's HTTP starter and follow the Durable status endpoint to the run's end."""
        from strato.errors import UsageError

        from .invoke import invoke

        if not endpoint:
            raise UsageError("azure needs --endpoint, the function app's URL (e.g. https://APP.azurewebsites.net)")
        return invoke(pipeline, params, endpoint=endpoint, key=key, timeout=timeout, poll_seconds=poll_seconds,
                      on_start=on_start)

    def package(self, pipeline: PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                via_s3: bool = False) -> PackageResult:
        """The function app for run-from-package, dependencies in ``.python_packages``."""
        from .package import build_package

        return build_package(pipeline, project, out_dir, python_version=python_version, via_s3=via_s3)


__all__ = ["Adapter"]
