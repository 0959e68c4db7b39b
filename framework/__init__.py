"""Strato: define data pipelines once in Python, run them locally or on any cloud's state machine.

Everything a pipeline author imports lives here::

    from strato import task, pipeline, Retry, Catch, when, otherwise, wait, Schedule, ObjectCreated, Http
"""

from .dsl import otherwise, pipeline, task, wait, when
from .errors import DefinitionError, Diagnostic, StratoError, TaskTimeout
from .governance import CLASSIFICATIONS, AllowedValues, Policy, RequireTags, policy
from .options import Catch, Http, ObjectCreated, Retry, Schedule

__version__ = "0.1.0"

__all__ = [
    "CLASSIFICATIONS", "AllowedValues", "Catch", "DefinitionError", "Diagnostic", "Http", "ObjectCreated", "Policy",
    "RequireTags", "Retry", "Schedule", "StratoError", "TaskTimeout", "otherwise", "pipeline", "policy", "task",
    "wait", "when",
]
