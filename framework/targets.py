"""Where compile targets come from: installed entry points (group ``strato.adapters``) first, then
the adapters shipped with Strato. The core never imports an adapter until one is asked for."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from .errors import DefinitionError, Diagnostic, StratoError, UsageError

if TYPE_CHECKING:
    from .ir import PipelineIR

TARGETS = ("aws", "gcp", "azure")
BUILTIN = {"aws": "strato.adapters.aws", "gcp": "strato.adapters.gcp", "azure": "strato.adapters.azure"}
# `strato deploy --local`: the module (in strato.infra, loaded by name only) that applies a target's Pulumi
# program to a local emulator of the cloud
LOCAL_DEPLOYERS = {"aws": "strato.infra.aws.local"}


def local_deployer(target: str) -> Any:
    """The module deploying ``target`` locally (``serve(ref, port=, endpoint=, say=, stop=)``)."""
    module_name = LOCAL_DEPLOYERS.get(target)
    if module_name is None:
        raise UsageError(f"strato deploy --local deploys to a local AWS (moto, LocalStack); --target {target} has "
                         f"no local deployment: use `strato emulate --target {target}`")
    return importlib.import_module(module_name)


def target_names() -> list[str]:
    """Every target this installation can compile for: the built-in ones, then installed entry points."""
    names = list(TARGETS)
    names += sorted({ep.name for ep in entry_points(group="strato.adapters")} - set(names))
    return names


# What only some targets can do, as the adapter protocols in strato.adapters.base name it
# (SupportsWorker, SupportsInvoke, SupportsPackage); checked by the method an adapter has, since the core imports none.
CAPABILITIES = {"worker": ("serve_worker", "serve worker tasks"), "invoke": ("invoke", "start a deployed run"),
                "package": ("package", "build a deployment package")}


def capable(adapter: Any, target: str, capability: str) -> Any:
    """``adapter`` when it has ``capability``, else a usage error naming the targets that do."""
    method, what = CAPABILITIES[capability]
    if callable(getattr(adapter, method, None)):
        return adapter
    able = []
    for name in target_names():
        try:
            if callable(getattr(get_adapter(name), method, None)):
                able.append(name)
        except StratoError:
            continue
    raise UsageError(f"target {target!r} cannot {what}; targets that can: {', '.join(able) or 'none installed'}")


def get_adapter(target: str) -> Any:
    for ep in entry_points(group="strato.adapters"):
        if ep.name == target:
            return ep.load()()
    module_name = BUILTIN.get(target)
    if module_name is None:
        raise UsageError(f"unknown target {target!r}; choose one of {', '.join(target_names())}")
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

