"""Names in a generated Durable Functions app: Azure function names and the module's Python identifiers.

Azure function names match ``^[A-Za-z][A-Za-z0-9_-]{0,127}$`` and are case-insensitive within an app;
the orchestrators, activities and starters share that one namespace with the built-in
``strato_resolve`` activity. The compiler allocates every name through :class:`Names` in a fixed
order (orchestrators first: they are what users see in the portal), so the same pipeline always gets
the same names.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable

from strato import ir

RESOLVE_ACTIVITY = "strato_resolve"  # the built-in activity that reads offloaded values back
MAP_ORCHESTRATOR = "strato_map_items"  # the built-in orchestrator that runs a chunk of a large map
MODULE_GLOBALS = ("app", "df", "func", "json", "Any")  # names the generated module binds itself


class Names:
    """Allocates unique identifiers: Python names (case-sensitive) or Azure function names."""

    def __init__(self, taken: Iterable[str] = (), case_insensitive: bool = False, azure: bool = False):
        self.case_insensitive, self.azure = case_insensitive, azure
        self.taken: set[str] = {self._norm(t) for t in taken}

    def _norm(self, name: str) -> str:
        return name.lower() if self.case_insensitive else name

    def clean(self, wanted: str) -> str:
        name = re.sub(r"[^A-Za-z0-9_]", "_", wanted)
        if self.azure:  # ^[A-Za-z][A-Za-z0-9_-]{0,127}$
            name = name.lstrip("_") or "f"
            if not name[0].isalpha():
                name = "f_" + name
            name = name[:120]
        else:
            if not name or name[0].isdigit():
                name = "_" + name
            if keyword.iskeyword(name) or keyword.issoftkeyword(name):
                name += "_"
        return name

    def take(self, wanted: str) -> str:
        base = self.clean(wanted)
        name, n = base, 2
        while self._norm(name) in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(self._norm(name))
        return name

    def reserve(self, name: str) -> None:
        self.taken.add(self._norm(name))

    def __contains__(self, name: str) -> bool:
        return self._norm(name) in self.taken


def function_names() -> Names:
    """The app's Azure function namespace, with the built-in activity already taken."""
    return Names([RESOLVE_ACTIVITY, MAP_ORCHESTRATOR], case_insensitive=True, azure=True)


def module_names() -> Names:
    """The generated module's Python namespace."""
    return Names(MODULE_GLOBALS)


def root_function_name(pipeline: ir.PipelineIR) -> str:
    """The Azure function name of the root pipeline's orchestrator (the first name allocated)."""
    return function_names().take(pipeline.name)


# the names each function would like; :meth:`Names.take` makes them unique
def orchestrator_python(pipeline: str) -> str:
    return f"{pipeline}_orchestrator"


def pipeline_constant(pipeline: str, role: str) -> str:
    """``REQUIRED``/``DEFAULTS``/``SCHEDULE_INPUT`` constants of a pipeline."""
    return f"{pipeline}_{role}".upper()


def activity_python(function: str) -> str:
    return f"{function}_activity"


def task_constant(function: str) -> str:
    """The ``TaskRef`` binding an activity to its task's code."""
    return f"{function.upper()}_TASK"


def retry_constant(function: str) -> str:
    return f"{function.upper()}_RETRY"


def caller_python(function: str) -> str:
    """The orchestrator-side call of an activity (timeout, retries, catch)."""
    return f"call_{function}"


def handler_caller_python(caller: str) -> str:
    """The call of an activity as a catch handler (its own catch does not apply)."""
    return f"{caller}_as_handler"


def part_function(pipeline: str, index: int) -> str:
    """The orchestrator of part ``index`` (1-based) of a large pipeline."""
    return f"{pipeline}_part_{index}"


def start_function(root: str, index: int) -> str:
    """The HTTP starter for the ``index``-th (0-based) ``Http`` trigger."""
    return f"{root}_start" if index == 0 else f"{root}_start_{index + 1}"


def schedule_function(root: str) -> str:
    return f"{root}_schedule"


def object_created_function(root: str, index: int) -> str:
    """The Event Grid starter for the ``index``-th (0-based) ``ObjectCreated`` trigger."""
    return f"{root}_object_created" if index == 0 else f"{root}_object_created_{index + 1}"
