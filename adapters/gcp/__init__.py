"""Google Cloud: pipelines as Cloud Workflows (YAML), tasks as Cloud Functions (2nd gen, HTTP),
emulated in Strato's own Workflows interpreter (``strato.adapters.gcp.interpreter``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato import ir
from strato.errors import Diagnostic
from strato.runtime import RunResult

from ..base import CompileResult, compiled_or_raise, emulated_loader
from ..common.errors import UnknownBackend, check_backend

if TYPE_CHECKING:
    from ..common.packaging import PackageResult

class Adapter:
    target = "gcp"
    backends = ("wsgi", "http")  # the shim in-process through WSGI, or over real HTTP on 127.0.0.1

    def check(self, pipeline: ir.PipelineIR) -> list[Diagnostic]:
        from .rules import check

        return check(pipeline)

    def build(self, pipeline: ir.PipelineIR) -> Any:
        """The compiled workflow, or a DefinitionError with every reason it cannot be built."""
        from .compiler import compile_pipeline

        return compiled_or_raise(pipeline, self.target, compile_pipeline)

    def compile(self, pipeline: ir.PipelineIR, out_dir: Path) -> CompileResult:
        compiled = self.build(pipeline)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{pipeline.name}.workflow.yaml"
        path.write_text(compiled.source)
        paths = [path]
        for name, source in compiled.part_sources.items():  # a large pipeline's parts: workflows of their own
            paths.append(out_dir / f"{name}.workflow.yaml")
            paths[-1].write_text(source)
        return CompileResult(paths, compiled.warnings)

    def emulate(self, pipeline: ir.PipelineIR, params: dict[str, Any], resolver: Callable[..., Any], *,
                backend: str | None = None, endpoint: str | None = None, work_dir: Path) -> RunResult:
        from .emulator import emulate

        backend = check_backend(self.target, backend, self.backends)
        if endpoint is not None:
            raise UnknownBackend("--endpoint is not supported for gcp: the Workflows emulator runs in-process "
                                 "(use --backend wsgi or http)")
        from .interpreter.engine import MAX_ARGUMENT_BYTES  # an execution's argument (quotas page)

        compiled = self.build(pipeline)
        size = len(json.dumps(params, separators=(",", ":")).encode())
        if size > MAX_ARGUMENT_BYTES:
            from strato.errors import UsageError

            raise UsageError(f"the run input is {size:,} bytes of JSON; Cloud Workflows starts an execution with at "
                             f"most {MAX_ARGUMENT_BYTES:,} (https://cloud.google.com/workflows/quotas): pass large "
                             "data by reference (a gs:// URI)")
        (work_dir / "gcp").mkdir(parents=True, exist_ok=True)
        (work_dir / "gcp" / f"{pipeline.name}.workflow.yaml").write_text(compiled.source)
        result, _ = emulate(pipeline, compiled.source, params, emulated_loader(pipeline, resolver), work_dir / "gcp",
                            backend, parts=compiled.part_sources)
        return result

    def package(self, pipeline: ir.PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                via_s3: bool = False) -> PackageResult:
        """The Cloud Functions source: the project, Strato, ``main.py`` and ``requirements.txt``."""
        from .package import build_package

        return build_package(pipeline, project, out_dir, python_version=python_version, via_s3=via_s3)

    def invoke(self, pipeline: ir.PipelineIR, params: dict[str, Any], *, project: str | None = None,
               location: str | None = None, timeout: float | None = None, poll_seconds: float = 2.0,
               on_start: Callable[[str], None] | None = None) -> RunResult:
        """Start the deployed workflow with the Workflow Executions API and follow it to its end."""
        from strato.errors import UsageError

        from .client import invoke

        if not project or not location:
            raise UsageError("gcp needs --project (or $GOOGLE_CLOUD_PROJECT) and --location (or "
                             "$STRATO_GCP_LOCATION) to find the deployed workflow")

        return invoke(pipeline.name, params, project=project, location=location, timeout=timeout,
                      poll_seconds=poll_seconds, on_start=on_start)

