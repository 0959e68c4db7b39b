"""Names on Google Cloud: Cloud Functions (2nd gen) names, the deploy-time URL of each task's function,
and identifiers inside a workflow (step names, variables, subworkflows).

Compiled workflows hold no project id or region: a task's URL is read at run time from the workflow's
user environment variable ``STRATO_FUNCTIONS_URL`` (set by infra at deploy time, e.g.
``https://europe-west1-my-project.cloudfunctions.net``) joined with the function's name, so one
environment variable serves any number of tasks (Workflows allows only 20 user variables).
"""

from __future__ import annotations

import hashlib
import re

from strato import ir

FUNCTIONS_URL_ENV = "STRATO_FUNCTIONS_URL"
MAX_FUNCTION_NAME = 63
_IDENT = re.compile(r"[^A-Za-z0-9_]")


def _short(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    return f"{name[:limit - 11]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def function_name(root: str, task: str) -> str:
    """A Cloud Functions 2nd gen name: lowercase letters, digits and '-', starting with a letter, <= 63."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"strato-{root}-{task}".lower()).strip("-")
    if base != f"strato-{root}-{task}":  # case or characters were lost: keep distinct tasks distinct
        base = f"{base}-{hashlib.sha256(task.encode()).hexdigest()[:6]}"
    return _short(base, MAX_FUNCTION_NAME)


def function_names(root: ir.PipelineIR) -> dict[str, str]:
    """Every task of ``root`` and its sub-pipelines -> its function's name (what infra deploys)."""
    tasks = sorted({name for p in (root, *root.subpipelines.values()) for name in p.tasks})
    return {task: function_name(root.name, task) for task in tasks}


def function_url_expression(root: str, task: str) -> str:
    """The ``${}`` expression a workflow uses to reach a task's function."""
    return f'${{sys.get_env("{FUNCTIONS_URL_ENV}") + "/{function_name(root, task)}"}}'


def subworkflow_name(pipeline: str) -> str:
    """A sub-pipeline's subworkflow (``main`` is the root pipeline)."""
    return "pipeline_" + _IDENT.sub("_", pipeline)


def workflow_name(root: str) -> str:
    """The workflow resource name: letters, digits, '-' and '_', starting with a letter, <= 64."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", root)
    if not name[:1].isalpha():
        name = "p-" + name
    return _short(name, 64)


def part_name(root: str, index: int) -> str:
    """The workflow of part ``index`` of a pipeline split into parts (see the compiler), <= 64 characters."""
    suffix = f"-part{index}"
    return _short(workflow_name(root), 64 - len(suffix)) + suffix


class Names:
    """Unique identifiers within one subworkflow, derived readably from node ids."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next: dict[str, int] = {}  # base -> the next suffix to try: a hint used 10,000 times stays O(1)

    def __call__(self, hint: str) -> str:
        base = _IDENT.sub("_", hint) or "x"
        if base[0].isdigit():
            base = "n" + base
        base = base[:60]
        name, i = base, self.next.get(base, 2)
        if name in self.used or name in ("end", "break", "continue"):
            name = f"{base}_{i}"
            while name in self.used:
                i += 1
                name = f"{base}_{i}"
            self.next[base] = i + 1
        self.used.add(name)
        return name
