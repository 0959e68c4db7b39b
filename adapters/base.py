"""The contract every cloud adapter implements (see ``framework.targets`` for discovery)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from framework.errors import Diagnostic
from framework.ir import PipelineIR


@dataclass
class CompileResult:
    """Files an adapter wrote (deterministic bytes) and what it wants the user to know."""

    paths: list[Path]
    warnings: list[Diagnostic] = field(default_factory=list)


class Adapter(Protocol):
    target: str

    def check(self, pipeline: PipelineIR) -> list[Diagnostic]:
        """Cloud-specific rules (tag syntax, schedule dialect, limits), as located diagnostics."""
        ...

    def compile(self, pipeline: PipelineIR, out_dir: Path) -> CompileResult:
        """Write the native artifacts for ``pipeline`` (and its sub-pipelines) under ``out_dir``."""
        ...
