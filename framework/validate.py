"""Structural validation of a pipeline: everything that can be checked before anything runs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import ir
from .errors import DefinitionError, Diagnostic, Location, UsageError
from .governance import Policy
from .graph import dependencies, find_cycle
from .secrets import credential_places

if TYPE_CHECKING:
    from .dsl.definitions import PipelineDefinition


@dataclass
class Validated:
    """A pipeline that passed validation: its IR (all a backend needs, task code included) and warnings."""

    ir: ir.PipelineIR
    warnings: list[Diagnostic]


def check_ir(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    """Checks on the IR itself (also for IR read from JSON): references, cycles, trigger inputs."""
    out: list[Diagnostic] = []
    for p in (pipeline, *pipeline.subpipelines.values()):
        out.extend(_check_one(p, pipeline))
    out.extend(_trigger_inputs(pipeline))
    out.extend(_credential_literals(pipeline))
    return out


def _literal_places(value: ir.Value, where: str, key: str | None) -> list[str]:
    if isinstance(value, ir.Literal):
        return list(credential_places(value.value, where, key))
    if isinstance(value, ir.ListOf):
        return [w for i, item in enumerate(value.items) for w in _literal_places(item, f"{where}[{i}]", key)]
    if isinstance(value, ir.DictOf):
        return [w for k, item in value.entries for w in _literal_places(item, f"{where}[{k!r}]", k)]
    return []


def _credential_literals(root: ir.PipelineIR) -> list[Diagnostic]:
    """Warnings for literals that look like credentials: they would be written into every artifact."""
    out = []
    hint = "pass Secret(\"<name>\") instead, so the value stays in the secret store and out of artifacts and logs"
    for p in (root, *root.subpipelines.values()):
        subject = f"pipeline {p.name!r}"
        places: list[tuple[str, Location | None]] = []
        for node in p.nodes:
            for name, value in getattr(node, "args", {}).items():
                places += [(f"{node.kind} {node.id!r} argument {w}", node.location)
                           for w in _literal_places(value, repr(name), name)]
        for param in p.params:
            places += [(f"parameter {param.name!r} default{w[len('x'):]}", p.location)
                       for w in credential_places(param.default, "x", param.name)]
        if p.schedule is not None:
            places += [(f"schedule input{w[len('x'):]}", p.schedule.location or p.location)
                       for w in credential_places(p.schedule.input or {}, "x")]
        for trigger in p.triggers:
            trigger_input = getattr(trigger, "input", None) or {}
            places += [(f"trigger input{w[len('x'):]}", getattr(trigger, "location", None) or p.location)
                       for w in credential_places(trigger_input, "x")]
        out += [Diagnostic(f"{where} looks like a credential; {hint}", loc, subject, "warning")
                for where, loc in places]
    return out


def _check_one(p: ir.PipelineIR, root: ir.PipelineIR) -> list[Diagnostic]:
    out: list[Diagnostic] = []
    subject = f"pipeline {p.name!r}"
    params = {param.name for param in p.params}
    deps = dependencies(p)
    for node in p.nodes:
        where = f"{node.kind} {node.id!r}"
        if node.id in deps[node.id] or node.id in getattr(node, "after", ()):
            out.append(Diagnostic("waits for itself: wait_for names the call it is given to; remove that entry",
                                  node.location, where))
        for dep in deps[node.id]:
            if dep not in p.node_by_id:
                out.append(Diagnostic(f"depends on unknown node {dep!r}", node.location, where))
        values = list(getattr(node, "args", {}).values()) + ([node.items] if isinstance(node, ir.MapNode) else [])
        for value in values:
            for name in ir.value_params(value):
                if name not in params:
                    out.append(Diagnostic(f"reads unknown pipeline parameter {name!r}", node.location, where))
        if isinstance(node, (ir.TaskNode, ir.MapNode)) and node.task not in p.tasks:
            out.append(Diagnostic(f"calls unknown task {node.task!r}", node.location, where))
        if isinstance(node, ir.SubPipelineNode) and node.pipeline not in root.subpipelines:
            out.append(Diagnostic(f"calls unknown sub-pipeline {node.pipeline!r}", node.location, where))
        if node.guard is not None and node.guard.branch not in p.branch_by_id:
            out.append(Diagnostic(f"is guarded by unknown branch {node.guard.branch!r}", node.location, where))
    for spec in p.tasks.values():
        if spec.catch is not None and spec.catch.handler not in p.tasks:
            out.append(Diagnostic(f"catch handler {spec.catch.handler!r} is not a task of the pipeline",
                                  spec.location, f"task {spec.name!r}"))
    cycle = find_cycle({k: tuple(d for d in v if d in deps) for k, v in deps.items()})
    if cycle:
        first = p.node_by_id[cycle[0]]
        flow = " -> ".join(reversed(cycle))  # in the order the calls would have to run
        out.append(Diagnostic(f"dependency cycle {flow}: a call cannot wait for a call that waits for "
                              "it; remove one of these wait_for entries", first.location, subject))
    return out


def _trigger_inputs(p: ir.PipelineIR) -> list[Diagnostic]:
    """A scheduled or event-started run must be able to fill every required parameter."""
    out = []
    required = [param.name for param in p.params if param.required]
    sources: list[tuple[str, set[str], object]] = []
    if p.schedule is not None:
        sources.append(("schedule", set(p.schedule.input or {}), p.schedule))
    for trigger in p.triggers:
        if isinstance(trigger, ir.ObjectCreatedSpec):
            sources.append(("ObjectCreated trigger", set(trigger.EVENT_FIELDS) | set(trigger.input or {}), trigger))
    for label, supplied, obj in sources:
        missing = [name for name in required if name not in supplied]
        if missing:
            out.append(Diagnostic(f"a run started by the {label} gets no value for required parameter(s) "
                                  f"{', '.join(map(repr, missing))}; give them defaults or pass input={{...}}",
                                  getattr(obj, "location", None) or p.location, f"pipeline {p.name!r}", "warning"))
    return out


def validate(definition: PipelineDefinition, policies: Iterable[Policy] = ()) -> tuple[Validated | None,
                                                                                       list[Diagnostic]]:
    """Trace, check and apply policies. Returns the validated pipeline (or None) and every diagnostic."""
    traced = definition.trace()
    diagnostics = list(traced.diagnostics)
    if traced.checked is None:
        traced.checked = check_ir(traced.ir)
    diagnostics.extend(traced.checked)
    policies = list(policies)
    for item in policies:
        if not isinstance(item, Policy):
            raise UsageError(f"policies: {item!r} is not a strato.Policy; pass Policy objects (subclass Policy or "
                             "use @policy)")
    for item in [*definition.policies, *policies]:
        if isinstance(item, Policy):
            diagnostics.extend(_apply(item, traced.ir))
    diagnostics = sorted(dict.fromkeys(diagnostics), key=_position)
    if any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    warnings = [d for d in diagnostics if d.severity != "error"]
    return Validated(traced.ir, warnings), diagnostics


def _apply(item: Policy, pipeline: ir.PipelineIR) -> list[Diagnostic]:
    """A policy that raises is reported as an error of that policy, not a crash of the check."""
    try:
        return item.violations(pipeline)
    except Exception as exc:
        name = getattr(item, "name", type(item).__name__)
        return [Diagnostic(f"policy {name!r} raised {type(exc).__name__}: {exc}; fix the policy (it must return its "
                           "findings, not raise)", pipeline.location, f"policy {name}")]


def _position(d: Diagnostic) -> tuple[str, int]:
    return (d.location.file, d.location.line) if d.location else ("", 0)


def validated(definition: PipelineDefinition, policies: Iterable[Policy] = ()) -> Validated:
    """Like :func:`validate`, raising :class:`DefinitionError` with every error."""
    result, diagnostics = validate(definition, policies)
    if result is None:
        raise DefinitionError(diagnostics)
    return result
