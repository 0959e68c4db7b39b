"""Strato: define data pipelines once in Python, run them locally or on any cloud's state machine.

Everything a pipeline author imports lives here::

    from strato import task, pipeline, Retry, Catch, when, otherwise, wait, Schedule, ObjectCreated, Http

The DSL is loaded on first use (PEP 562), so ``import strato.ir`` or ``strato.runtime.results`` in a
cloud function or an adapter does not load it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .dsl import otherwise, pipeline, task, wait, when
    from .errors import CheckFailed, DefinitionError, Diagnostic, StratoError, TaskTimeout
    from .governance import CLASSIFICATIONS, AllowedValues, Policy, RequireTags, policy
    from .options import Catch, Http, ObjectCreated, Retry, Schedule
    from .run_context import RunContext, context, scheduled_date, scheduled_time
    from .secrets import Secret

__version__ = "0.1.0"

_DSL = ("otherwise", "pipeline", "task", "wait", "when")
_CONTEXT = ("RunContext", "context", "scheduled_date", "scheduled_time")
# Loaded on first use too: ``strato --help`` and the cloud shims need none of them (options loads the IR, the
# errors load dataclasses and inspect).
_LAZY = {"CheckFailed": ".errors", "DefinitionError": ".errors", "Diagnostic": ".errors", "StratoError": ".errors",
         "TaskTimeout": ".errors", "CLASSIFICATIONS": ".governance", "AllowedValues": ".governance",
         "Policy": ".governance", "RequireTags": ".governance", "policy": ".governance", "Catch": ".options",
         "Http": ".options",
         "ObjectCreated": ".options", "Retry": ".options", "Schedule": ".options", "Secret": ".secrets"}
_SUBMODULES = ("checks", "cli", "dsl", "errors", "governance", "graph", "hooks", "ir", "loader", "options", "runtime",
               "targets", "validate")


def __getattr__(name: str) -> Any:
    if name in _DSL:
        value = getattr(importlib.import_module(".dsl", __name__), name)
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _CONTEXT:
        value = getattr(importlib.import_module(".run_context", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_DSL, *_CONTEXT, *_LAZY, *_SUBMODULES})


__all__ = [
    "CLASSIFICATIONS", "AllowedValues", "Catch", "CheckFailed", "DefinitionError", "Diagnostic", "Http",
    "ObjectCreated", "Policy", "RequireTags", "Retry", "RunContext", "Schedule", "Secret", "StratoError",
    "TaskTimeout", "context", "otherwise", "pipeline", "policy", "scheduled_date", "scheduled_time", "task", "wait",
    "when",
]
