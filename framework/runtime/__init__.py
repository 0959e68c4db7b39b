"""Running pipelines: a light façade over the embedded runner, its run store and clocks.

Importing this package loads neither the runner, SQLite nor the DSL, so adapters and cloud shims
can use :class:`RunResult`, :func:`prepare_input` and :func:`import_task` cheaply. The runner's
names (``Runner``, ``RunStore``, clocks, hooks) are loaded on first use (PEP 562), and
:func:`run_pipeline` imports the runner when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .inputs import prepare_input
from .results import PipelineFailed, RunResult, new_run_id
from .tasks import Resolver, import_task, resolve_task, resolver_for

if TYPE_CHECKING:
    from ..dsl.definitions import PipelineDefinition
    from ..governance import Policy
    from .clock import SystemClock, VirtualClock
    from .runner import RunHooks, Runner
    from .store import RunStore

_LAZY = {"Runner": ".runner", "RunHooks": ".runner", "RunStore": ".store", "SystemClock": ".clock",
         "VirtualClock": ".clock"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


def run_pipeline(definition: PipelineDefinition[..., Any], input: dict[str, Any] | None = None, *,
                 store: RunStore | None = None, clock: Any = None, hooks: RunHooks | None = None,
                 workers: int | None = None, ref: str | None = None, sys_path: list[str] | None = None,
                 policies: Iterable[Policy] = (), scheduled_at: Any = None) -> RunResult:
    """Validate and run a pipeline on the embedded runner.

    ``scheduled_at`` (a datetime, ISO 8601 text or epoch seconds; naive means UTC) is the tick the run
    is for: stored on the run, given to tasks by ``strato.context()``, and the base of parameter
    defaults such as ``strato.scheduled_date(offset_days=-1)``.
    """
    from datetime import UTC, datetime

    from ..errors import StratoError, UsageError
    from ..run_context import parse_instant
    from ..validate import validated
    from .runner import Runner

    try:
        tick = parse_instant(scheduled_at)
    except StratoError as exc:
        raise UsageError(f"scheduled_at: {exc}") from None
    from .clock import SystemClock

    checked = validated(definition, policies)
    clock = clock or SystemClock()
    params = prepare_input(checked.ir, input, definition.fn, scheduled_at=tick,
                           now=datetime.fromtimestamp(clock.now(), UTC))
    runner = Runner(store, clock, workers, hooks)  # opens the store: only once the input is known to be good
    return runner.start(checked.ir, params, resolver_for(checked.ir), ref=ref, sys_path=sys_path,
                        scheduled_at=tick.timestamp() if tick else None)


def run_inline(definition: PipelineDefinition[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """A pipeline called as plain Python: run it in memory and return its output (or raise)."""
    from ..errors import UsageError
    from .store import RunStore

    names = [p.name for p in definition.param_specs]
    if len(args) > len(names):
        raise UsageError(f"pipeline {definition.name!r} takes {len(names)} argument(s), {len(args)} given")
    result = run_pipeline(definition, {**dict(zip(names, args, strict=False)), **kwargs}, store=RunStore.memory())
    if not result.succeeded:
        raise PipelineFailed(result)
    return result.output


__all__ = ["PipelineFailed", "Resolver", "RunHooks", "RunResult", "RunStore", "Runner", "SystemClock", "VirtualClock",
           "import_task", "new_run_id", "prepare_input", "resolve_task", "resolver_for", "run_inline", "run_pipeline"]
