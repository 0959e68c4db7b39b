"""Pulumi components that deploy compiled pipelines (``pulumi up``): one folder per cloud.

Components take a pipeline, compile it with the cloud's adapter, and create what the artifacts
need, with least privilege: every IAM statement names the resources it is for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from strato.dsl.definitions import PipelineDefinition
    from strato.ir import PipelineIR


def deployable_ir(pipeline: PipelineDefinition | str, adapter: Any) -> PipelineIR:
    """The pipeline's IR, validated and passing the target's own rules, or a DefinitionError naming
    every problem: nothing is created for a pipeline the cloud would refuse."""
    from strato.loader import load
    from strato.targets import passes_target_rules
    from strato.validate import validated

    definition = load(pipeline).definition if isinstance(pipeline, str) else pipeline
    ir = validated(definition).ir
    passes_target_rules(ir, adapter)
    return ir
