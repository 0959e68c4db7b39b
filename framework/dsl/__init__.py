"""The pipeline DSL: decorators, handles and control-flow blocks."""

from .blocks import otherwise, wait, when
from .definitions import PipelineDefinition, TaskDefinition, pipeline, task
from .handles import Condition, Handle
from .tracing import Traced

__all__ = ["Condition", "Handle", "PipelineDefinition", "TaskDefinition", "Traced", "otherwise", "pipeline",
           "task", "wait", "when"]
