"""Running pipelines on this machine: the embedded runner, its run store and clocks."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .. import ir
from ..errors import StratoError, UsageError
from .clock import SystemClock, VirtualClock
from .runner import RunHooks, Runner, RunResult
from .store import RunStore

if TYPE_CHECKING:
    from ..dsl.definitions import PipelineDefinition, TaskDefinition
    from ..governance import Policy


class PipelineFailed(StratoError):
    """Raised when a pipeline called as plain Python fails; ``error`` is ``{"error", "cause"}``."""

    def __init__(self, result: RunResult):
        self.result, self.error = result, result.error or {}
        super().__init__(f"run {result.run_id} failed: {self.error.get('error')}: {self.error.get('cause')}")


def import_task(spec: ir.TaskSpec) -> Callable[..., Any]:
    """Load a task's function from its module, as a cloud's task shim does."""
    obj: Any = importlib.import_module(spec.module)
    for part in spec.qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


def resolver_for(definitions: dict[str, TaskDefinition]) -> Callable[[ir.TaskSpec], Callable[..., Any]]:
    """Use the traced definitions' functions where known (tasks defined anywhere), else import."""

    def resolve(spec: ir.TaskSpec) -> Callable[..., Any]:
        definition = definitions.get(spec.name)
        if definition is not None and definition.fn.__module__ == spec.module and (
                definition.fn.__qualname__ == spec.qualname):
            return definition.fn
        return import_task(spec)

    return resolve


def prepare_input(pipeline: ir.PipelineIR, raw: dict[str, Any] | None, fn: Callable[..., Any] | None = None) -> dict:
    """The run's input: defaults applied, unknown or missing parameters refused, types checked."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UsageError("the run input must be a JSON object of the pipeline's parameters")
    raw = dict(raw)
    names = [p.name for p in pipeline.params]
    unknown = [k for k in raw if k not in names]
    problems = []
    if unknown:
        problems.append(f"unknown parameter(s) {', '.join(map(repr, unknown))}; {pipeline.name!r} takes "
                        f"{', '.join(names) or 'no parameters'}")
    missing = [p.name for p in pipeline.params if p.required and p.name not in raw]
    if missing:
        problems.append(f"missing required parameter(s) {', '.join(map(repr, missing))}")
    problem = ir.json_problem(raw, "input")
    if problem:
        problems.append(problem)
    if problems:
        raise UsageError(f"input for pipeline {pipeline.name!r}: " + "; ".join(problems))
    values = {**pipeline.defaults(), **raw}
    if fn is not None:
        from pydantic import ValidationError

        from .invoke import _describe, _type_adapters

        adapters, _ = _type_adapters(fn)
        for name, adapter in adapters.items():
            if name in raw:
                try:
                    values[name] = adapter.dump_python(adapter.validate_python(raw[name]), mode="json")
                except ValidationError as exc:
                    raise UsageError(f"input for pipeline {pipeline.name!r}, parameter {name!r}: "
                                     f"{_describe(exc)}") from None
    return values


def run_pipeline(definition: PipelineDefinition, input: dict[str, Any] | None = None, *,
                 store: RunStore | None = None, clock: Any = None, hooks: RunHooks | None = None,
                 workers: int | None = None, ref: str | None = None, sys_path: list[str] | None = None,
                 policies: Iterable[Policy] = ()) -> RunResult:
    """Validate and run a pipeline on the embedded runner."""
    from ..validate import validated

    checked = validated(definition, policies)
    params = prepare_input(checked.ir, input, definition.fn)
    runner = Runner(store, clock, workers, hooks)
    return runner.start(checked.ir, params, resolver_for(checked.definitions), ref=ref, sys_path=sys_path)


def run_inline(definition: PipelineDefinition, args: tuple, kwargs: dict) -> Any:
    """A pipeline called as plain Python: run it in memory and return its output (or raise)."""
    names = [p.name for p in definition.param_specs]
    if len(args) > len(names):
        raise UsageError(f"pipeline {definition.name!r} takes {len(names)} argument(s), {len(args)} given")
    result = run_pipeline(definition, {**dict(zip(names, args, strict=False)), **kwargs}, store=RunStore.memory())
    if not result.succeeded:
        raise PipelineFailed(result)
    return result.output


__all__ = ["PipelineFailed", "RunHooks", "RunResult", "RunStore", "Runner", "SystemClock", "VirtualClock",
           "import_task", "prepare_input", "resolver_for", "run_inline", "run_pipeline"]
