"""Where compile targets come from: installed entry points (group ``strato.adapters``) first, then
the adapters shipped with Strato. The core never imports an adapter until one is asked for."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import DefinitionError, Diagnostic, StratoError

if TYPE_CHECKING:
    from .ir import PipelineIR

TARGETS = ("aws", "gcp", "azure")
BUILTIN = {"aws": "strato.adapters.aws", "gcp": "strato.adapters.gcp", "azure": "strato.adapters.azure"}


def get_adapter(target: str) -> Any:
    for ep in entry_points(group="strato.adapters"):
        if ep.name == target:
            return ep.load()()
    module_name = BUILTIN.get(target)
    if module_name is None:
        raise StratoError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise StratoError(f"no adapter for target {target!r} is installed yet; this Strato can validate, graph "
                              "and run pipelines locally") from None
        raise StratoError(f"the {target} adapter needs {exc.name!r}; install it with: pip install 'strato[{target}]'") \
            from None
    factory = getattr(module, "Adapter", None)
    if factory is None:
        raise StratoError(f"no adapter for target {target!r} is installed yet")
    return factory()


def passes_target_rules(pipeline: PipelineIR, adapter: Any) -> list[Diagnostic]:
    """The target's own rules on a validated pipeline: raises DefinitionError on any error, returns
    the warnings, so nothing is compiled, emulated or deployed for a pipeline the cloud would refuse."""
    problems = adapter.check(pipeline)
    if any(d.severity == "error" for d in problems):
        raise DefinitionError(problems)
    return [d for d in problems if d.severity != "error"]

