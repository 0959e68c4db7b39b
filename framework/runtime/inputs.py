"""A run's input, checked the same way on every backend before anything starts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from .. import ir
from ..errors import UsageError


def prepare_input(pipeline: ir.PipelineIR, raw: dict[str, Any] | None,
                  fn: Callable[..., Any] | None = None, *, scheduled_at: datetime | None = None,
                  now: datetime | None = None) -> dict[str, Any]:
    """The run's input: defaults applied, unknown or missing parameters refused, types checked.

    With the pipeline's function ``fn``, values are validated against its annotations (pydantic).
    Defaults derived from the schedule (``strato.scheduled_date()``) are resolved against
    ``scheduled_at``, or ``now`` (the run's start) for a manual run.
    """
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
    from ..run_context import resolve_defaults

    values = {**resolve_defaults(pipeline.defaults(), scheduled_at, now), **raw}
    if fn is not None and raw:
        from .invoke import all_plain

        if all_plain(fn, raw):  # exact scalars: what pydantic would return, without loading it
            return values
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
