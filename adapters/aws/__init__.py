"""AWS: pipelines as Step Functions state machines, tasks as Lambda functions, emulated on moto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from framework import ir
from framework.errors import DefinitionError, Diagnostic
from framework.runtime import RunResult

from ..base import CompileResult


class Adapter:
    target = "aws"

    def check(self, pipeline: ir.PipelineIR) -> list[Diagnostic]:
        from .tags import check

        return check(pipeline)

    def build(self, pipeline: ir.PipelineIR) -> Any:
        from .compiler import CompileError, compile_pipeline

        try:
            compiled = compile_pipeline(pipeline)
        except CompileError as exc:
            raise DefinitionError([Diagnostic(str(exc), pipeline.location, f"pipeline {pipeline.name!r} (aws)")])
        if compiled.errors:
            raise DefinitionError(compiled.errors)
        return compiled

    def compile(self, pipeline: ir.PipelineIR, out_dir: Path) -> CompileResult:
        from .compiler import to_json

        compiled = self.build(pipeline)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name in sorted(compiled.machines):
            file_name = f"{pipeline.name}.asl.json" if name == pipeline.name else f"{pipeline.name}.{name}.asl.json"
            path = out_dir / file_name
            path.write_text(to_json(compiled.machines[name]))
            paths.append(path)
        return CompileResult(paths, compiled.warnings)

    def emulate(self, pipeline: ir.PipelineIR, params: dict[str, Any], resolver: Callable[..., Any], *,
                backend: str | None = None, endpoint: str | None = None, work_dir: Path) -> RunResult:
        from .emulator import emulate

        compiled = self.build(pipeline)
        specs = {name: spec for p in (pipeline, *pipeline.subpipelines.values()) for name, spec in p.tasks.items()}

        def load(name: str, target: str) -> Callable[..., Any]:
            return resolver(specs[name])

        if endpoint is not None:
            raise DefinitionError([Diagnostic("--endpoint (LocalStack) is not supported yet for aws; use "
                                              "--backend moto or moto-server", None, "emulate (aws)")])
        return emulate(pipeline, compiled.machines, params, load, backend or "moto")
