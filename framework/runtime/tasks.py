"""Finding a task's code from the IR alone: a :class:`~strato.ir.TaskSpec` names its module and qualname.

``@task`` registers each function here when it is declared, so a task resolves in the process that
declared it even where no import can find it (a script run as ``__main__``, a function's locals);
otherwise its module is imported, as a cloud's task shim does. Nothing travels beside the IR.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .. import ir
from ..errors import StratoError

Resolver = Callable[[ir.TaskSpec], Callable[..., Any]]

_by_key: dict[tuple[str, str], Callable[..., Any]] = {}
_by_name: dict[tuple[str, str, str], Callable[..., Any]] = {}  # one function may be several tasks


def register_task_function(name: str, fn: Callable[..., Any]) -> None:
    """Remember ``fn`` as task ``name``; the latest declaration of a module + qualname wins."""
    key = (getattr(fn, "__module__", None) or "", getattr(fn, "__qualname__", None) or "")
    _by_key[key] = fn
    _by_name[(*key, name)] = fn


def import_task(spec: ir.TaskSpec) -> Callable[..., Any]:
    """Load a task's function from its module, as a cloud's task shim does."""
    obj: Any = importlib.import_module(spec.module)
    for part in spec.qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


def resolve_task(spec: ir.TaskSpec) -> Callable[..., Any]:
    """The function of a task: declared in this process, else imported by module and qualname."""
    fn = _by_name.get((spec.module, spec.qualname, spec.name)) or _by_key.get((spec.module, spec.qualname))
    return fn if fn is not None else import_task(spec)


def resolver_for(pipeline: ir.PipelineIR) -> Resolver:
    """A resolver for the tasks of ``pipeline`` and its sub-pipelines only: a run loads no other code."""
    known = {(spec.module, spec.qualname) for p in (pipeline, *pipeline.subpipelines.values())
             for spec in p.tasks.values()}

    def resolve(spec: ir.TaskSpec) -> Callable[..., Any]:
        if (spec.module, spec.qualname) not in known:
            raise StratoError(f"task {spec.name!r} ({spec.module}:{spec.qualname}) is not a task of pipeline "
                              f"{pipeline.name!r}")
        return resolve_task(spec)

    return resolve


__all__ = ["Resolver", "import_task", "register_task_function", "resolve_task", "resolver_for"]
