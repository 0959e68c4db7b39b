"""What a task's ``pool`` becomes on a cloud: nothing. Pools limit attempts across runs of the local
runner (slots in its run store); a cloud runs each execution's tasks as its state machine says, and
no Strato component shares a slot count between executions there. Each cloud says so in a compile
warning, with the cloud's own way to limit concurrency, rather than pretending."""

from __future__ import annotations

from strato import ir
from strato.errors import Diagnostic


def pool_warnings(pipeline: ir.PipelineIR, cloud: str, instead: str) -> list[Diagnostic]:
    """One warning per pooled task of ``pipeline`` (and its sub-pipelines); ``instead`` says what limits
    concurrency on ``cloud``."""
    seen: set[str] = set()
    out = []
    for p in (pipeline, *(pipeline.subpipelines[name] for name in sorted(pipeline.subpipelines))):
        for name in sorted(p.tasks):
            spec = p.tasks[name]
            if spec.pool and name not in seen:
                seen.add(name)
                out.append(Diagnostic(f"pool {spec.pool!r} limits this task on the local runner only: on {cloud} it "
                                      f"has no effect ({instead})", spec.location, f"task {name!r} ({cloud})",
                                      "warning"))
    return out
