"""A Google Cloud Workflows interpreter, so compiled workflows can run and be tested on one machine.

No faithful Workflows emulator can be installed here, so Strato carries its own: a ``${}``
expression parser and evaluator (no Python ``eval``), the step syntax (subworkflows, assign, call,
switch, for, parallel, try/retry/except, raise, return, jumps), a subset of the standard library,
a virtual clock for ``sys.sleep`` and retry backoff, and pluggable HTTP transports.

    from strato.adapters.gcp.interpreter import run_workflow, FunctionTransport
    execution = run_workflow(source_yaml, {"day": "2024-03-01"}, transport=FunctionTransport(handler))
    execution.state, execution.result, execution.error, execution.sleeps

Definitions are checked before they run (``WorkflowSyntaxError`` names the step); errors during the
run end the execution as ``FAILED`` with the Workflows error map in ``Execution.error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .clock import Clock, RealClock, Sleep, VirtualClock
from .engine import Engine, Execution
from .expressions import ExpressionSyntaxError, parse_expression
from .schema import schema_errors, workflow_schema
from .syntax import Program, WorkflowSyntaxError, compile_program
from .transport import (
    ConnectionBroken,
    ConnectionFailed,
    FunctionTransport,
    HttpRequest,
    HttpResponse,
    RequestTimeout,
    Router,
    Transport,
    TransportError,
    UrllibTransport,
    WsgiTransport,
)
from .values import WorkflowError


class Workflow:
    """A checked definition that can be run many times."""

    def __init__(self, program: Program):
        self.program = program

    @classmethod
    def load(cls, source: str | bytes | dict | list) -> Workflow:
        return cls(compile_program(source))

    @property
    def subworkflows(self) -> list[str]:
        return list(self.program.subworkflows)

    def run(self, args: Any = None, *, transport: Transport | None = None, clock: Clock | None = None,
            env: Mapping[str, str] | None = None, max_steps: int = 100_000,
            deployed: Mapping[str, Workflow] | None = None) -> Execution:
        """One execution with ``args``; ``deployed`` are the project's other workflows by id, which the
        Workflow Executions connector (``executions.run``) can start."""
        programs = {name: workflow.program for name, workflow in (deployed or {}).items()}
        engine = Engine(self.program, transport=transport, clock=clock, env=env, max_steps=max_steps,
                        deployed=programs)
        return engine.run(args)


def load_workflow(source: str | bytes | dict | list) -> Workflow:
    """Parse and check a definition (YAML/JSON text or the parsed document); raises WorkflowSyntaxError."""
    return Workflow.load(source)


def run_workflow(source: str | bytes | dict | list | Workflow, args: Any = None, *,
                 transport: Transport | None = None, clock: Clock | None = None,
                 env: Mapping[str, str] | None = None, max_steps: int = 100_000,
                 deployed: Mapping[str, Workflow] | None = None) -> Execution:
    """Check and run a workflow with ``args`` (main's single parameter); never sleeps with the default clock.

    ``transport`` serves ``http.*`` calls (default: every call fails with ConnectionFailedError),
    ``clock`` defaults to a fresh :class:`VirtualClock`, ``env`` feeds ``sys.get_env``, ``deployed``
    are the other workflows the Workflow Executions connector may start, by workflow id.
    """
    workflow = source if isinstance(source, Workflow) else load_workflow(source)
    return workflow.run(args, transport=transport, clock=clock, env=env, max_steps=max_steps, deployed=deployed)


__all__ = [
    "Clock",
    "ConnectionBroken",
    "ConnectionFailed",
    "Execution",
    "ExpressionSyntaxError",
    "FunctionTransport",
    "HttpRequest",
    "HttpResponse",
    "RealClock",
    "RequestTimeout",
    "Router",
    "Sleep",
    "Transport",
    "TransportError",
    "UrllibTransport",
    "VirtualClock",
    "Workflow",
    "WorkflowError",
    "WorkflowSyntaxError",
    "WsgiTransport",
    "load_workflow",
    "parse_expression",
    "run_workflow",
    "schema_errors",
    "workflow_schema",
]
