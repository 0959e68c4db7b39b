"""Pulumi components that deploy compiled pipelines (``pulumi up``): one folder per cloud.

Components take a pipeline, compile it with the cloud's adapter, and create what the artifacts
need, with least privilege: every IAM statement names the resources it is for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pulumi

    from strato.dsl.definitions import PipelineDefinition
    from strato.ir import PipelineIR

# A deployment package: an archive as is, the path of one `strato package` built, or None to build it.
Package = Union["pulumi.Archive", str, "os.PathLike[str]", None]


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


def pipeline_project(pipeline: PipelineDefinition | str) -> Path:
    """The directory the pipeline's module is imported from: what its deployment package holds."""
    import sys

    from strato.adapters.common.packaging import project_of
    from strato.loader import load

    if isinstance(pipeline, str):
        return Path(load(pipeline).sys_path[0])
    module = pipeline.fn.__module__
    return project_of(module, getattr(sys.modules.get(module), "__file__", None))


def deployment_package(pipeline: PipelineDefinition | str, ir: PipelineIR, adapter: Any, package: Package, *,
                       python_version: str = "3.12", out_dir: str | os.PathLike[str] = "build") -> pulumi.Archive:
    """The archive the functions run: ``package`` as given when it is an archive or the path of a built
    package (``strato package``), else built now from the pipeline's project into ``out_dir`` (relative to
    the Pulumi project), byte for byte the same while nothing changed, so ``pulumi up`` shows no diff."""
    import pulumi

    if isinstance(package, pulumi.Archive):
        return package
    if package is not None:
        path = Path(package)
        if not path.exists():
            raise ValueError(f"package {str(path)!r} does not exist: build it with `strato package REF --target "
                             f"{adapter.target}`, or leave it out and the component builds it")
        return pulumi.FileArchive(str(path))
    built = adapter.package(ir, pipeline_project(pipeline), Path(out_dir), python_version=python_version)
    return pulumi.FileArchive(str(built.path))
