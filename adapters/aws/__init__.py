"""AWS: pipelines as Step Functions state machines, tasks as Lambda functions, emulated on moto."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strato import ir
from strato.errors import DefinitionError, Diagnostic
from strato.runtime import RunResult

from ..base import CompileResult, compiled_or_raise, emulated_loader, task_specs
from ..common.errors import UnknownBackend, check_backend

if TYPE_CHECKING:
    from ..common.packaging import PackageResult

class Adapter:
    target = "aws"
    backends = ("moto", "moto-server", "localstack")

    def check(self, pipeline: ir.PipelineIR) -> list[Diagnostic]:
        from .rules import check

        return check(pipeline)

    def build(self, pipeline: ir.PipelineIR) -> Any:
        """The compiled state machines, or a DefinitionError with every reason they cannot be built."""
        from .compiler import compile_pipeline

        return compiled_or_raise(pipeline, self.target, compile_pipeline)

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

        backend = check_backend(self.target, backend or ("localstack" if endpoint else None), self.backends)
        if backend == "localstack" and not endpoint:
            raise UnknownBackend("--backend localstack needs --endpoint URL of a running LocalStack, "
                                 "e.g. http://127.0.0.1:4566")
        compiled = self.build(pipeline)
        return emulate(pipeline, compiled.machines, params, emulated_loader(pipeline, resolver), backend,
                       endpoint=endpoint)

    def package(self, pipeline: ir.PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                via_s3: bool = False) -> PackageResult:
        """The Lambda package: the project, Strato's runtime and the declared dependencies, no boto3."""
        from .package import build_package

        return build_package(pipeline, project, out_dir, python_version=python_version, via_s3=via_s3)

    def invoke(self, pipeline: ir.PipelineIR, params: dict[str, Any], *, endpoint: str | None = None,
               region: str | None = None, state_machine_arn: str | None = None, timeout: float | None = None,
               poll_seconds: float = 2.0, on_start: Callable[[str], None] | None = None) -> RunResult:
        """Start the deployed root state machine (StartExecution) and follow it to its end."""
        from .invoke import invoke

        return invoke(pipeline.name, params, endpoint=endpoint, region=region, state_machine_arn=state_machine_arn,
                      timeout=timeout, poll_seconds=poll_seconds, on_start=on_start)

    def serve_worker(self, pipeline: ir.PipelineIR, resolver: Callable[..., Any], *, endpoint: str | None = None,
                     threads: int = 2) -> None:
        """Serve the pipeline's ``runtime="worker"`` tasks as Activities until interrupted."""
        import threading

        import boto3

        from ..common.emulation import emulating
        from .naming import function_name
        from .worker import serve

        specs = task_specs(pipeline)
        workers = sorted(name for name, spec in specs.items() if spec.runtime == "worker")
        if not workers:
            raise DefinitionError([Diagnostic("the pipeline has no task with runtime='worker' to serve",
                                              pipeline.location, f"pipeline {pipeline.name!r} (aws)")])
        client_args = {"endpoint_url": endpoint} if endpoint else {}

        def client() -> Any:
            return boto3.session.Session().client("stepfunctions", **client_args)

        arns = [client().create_activity(name=function_name(pipeline.name, task))["activityArn"] for task in workers]
        stop = threading.Event()
        with emulating(loader=emulated_loader(pipeline, resolver)):  # runs this pipeline's tasks only
            serve(client, arns, stop, threads)
        try:
            stop.wait()
        except KeyboardInterrupt:
            stop.set()

