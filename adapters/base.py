"""The contract every cloud adapter implements.

An adapter reads only the IR. ``check`` reports what the cloud cannot express (tag syntax, schedule
dialect, limits) as located diagnostics; ``compile`` writes deterministic artifacts; ``emulate``
runs those artifacts in the cloud's emulator on this machine and returns the same
:class:`~strato.runtime.RunResult` the local runner gives, so outputs can be compared directly.

Adapters are found by ``strato.targets.get_adapter``: an entry point in the ``strato.adapters``
group, or the built-in ``strato.adapters.<target>`` package exposing ``Adapter``. What only some
targets can do (serve workers, start a deployed run, build a deployment package) are the capability
protocols below, which the CLI checks with ``isinstance`` rather than by target name.

What the three clouds do alike (offload envelopes, blob stores, the task catalog, emulation
overrides, inline reads, errors) lives in :mod:`strato.adapters.common`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from strato.errors import DefinitionError, Diagnostic
from strato.ir import PipelineIR, TaskSpec
from strato.runtime import RunResult

from .common.emulation import TaskLoader
from .common.errors import CompileError, UnknownTask

if TYPE_CHECKING:  # packaging is deployment tooling: a deployed shim never loads it
    from .common.packaging import PackageResult

Resolver = Callable[[TaskSpec], Callable[..., Any]]


@dataclass
class CompileResult:
    """Files an adapter wrote (deterministic bytes) and what it wants the user to know."""

    paths: list[Path]
    warnings: list[Diagnostic] = field(default_factory=list)


@runtime_checkable
class Adapter(Protocol):
    target: str
    backends: tuple[str, ...]  # the emulators ``emulate`` accepts as ``backend``; the first is the default

    def check(self, pipeline: PipelineIR) -> list[Diagnostic]:
        """Cloud-specific rules, as located diagnostics (errors stop compilation)."""
        ...

    def compile(self, pipeline: PipelineIR, out_dir: Path) -> CompileResult:
        """Write the native artifacts for ``pipeline`` (and its sub-pipelines) under ``out_dir``."""
        ...

    def emulate(self, pipeline: PipelineIR, params: dict[str, Any], resolver: Resolver, *,
                backend: str | None = None, endpoint: str | None = None, work_dir: Path) -> RunResult:
        """Compile into ``work_dir``, then run the artifacts in this cloud's emulator with ``params``.

        ``backend`` picks an emulator (e.g. ``moto``, ``localstack``) and ``endpoint`` points at a
        running one. ``resolver`` is how the emulated task shim finds task code in this process (the
        cloud's shim imports it from the deployment package instead).
        """
        ...


@runtime_checkable
class SupportsWorker(Protocol):
    """A target whose tasks can run on workers this machine serves (e.g. Step Functions Activities)."""

    def serve_worker(self, pipeline: PipelineIR, resolver: Resolver, *, endpoint: str | None = None,
                     threads: int = 2) -> None: ...


@runtime_checkable
class SupportsInvoke(Protocol):
    """A target that can start a run of the deployed pipeline and follow it to its end."""

    def invoke(self, pipeline: PipelineIR, params: dict[str, Any], **options: Any) -> RunResult: ...


@runtime_checkable
class SupportsPackage(Protocol):
    """A target that builds the deployment package its deployed code runs from (``strato package``):
    the project's files, Strato's runtime and the declared dependencies, no emulator, deterministic bytes.
    ``project`` is the directory the pipeline's module is imported from."""

    def package(self, pipeline: PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                via_s3: bool = False) -> PackageResult: ...


def task_specs(pipeline: PipelineIR) -> dict[str, TaskSpec]:
    """Every task of a pipeline and of its sub-pipelines, by name."""
    return {name: spec for p in (pipeline, *pipeline.subpipelines.values()) for name, spec in p.tasks.items()}


class EmulatedTasks:
    """The task loader an emulation installs (:func:`strato.adapters.common.emulation.emulating`): a
    task of the pipeline by name, through ``resolver``, with the secrets the IR grants it; any other
    name is refused, as when deployed."""

    def __init__(self, pipeline: PipelineIR, resolver: Resolver):
        self.pipeline, self.resolver, self.specs = pipeline, resolver, task_specs(pipeline)

    def _spec(self, name: str) -> TaskSpec:
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownTask(f"task {name[:80]!r} is not a task of pipeline {self.pipeline.name!r}; nothing was run")
        return spec

    def __call__(self, name: str) -> Callable[..., Any]:
        return self.resolver(self._spec(name))

    def secrets(self, name: str) -> tuple[str, ...]:
        return self._spec(name).secrets


def emulated_loader(pipeline: PipelineIR, resolver: Resolver) -> TaskLoader:
    """See :class:`EmulatedTasks`."""
    return EmulatedTasks(pipeline, resolver)


def compiled_or_raise(pipeline: PipelineIR, target: str, compile_fn: Callable[[PipelineIR], Any]) -> Any:
    """Run a target's compiler, turning its refusals into located definition errors."""
    try:
        compiled = compile_fn(pipeline)
    except CompileError as exc:
        raise DefinitionError([Diagnostic(str(exc), pipeline.location, f"pipeline {pipeline.name!r} ({target})")])
    if compiled.errors:
        raise DefinitionError(compiled.errors)
    return compiled



__all__ = ["Adapter", "CompileError", "CompileResult", "EmulatedTasks", "Resolver", "SupportsInvoke",
           "SupportsPackage", "SupportsWorker",
           "compiled_or_raise", "emulated_loader", "task_specs"]
