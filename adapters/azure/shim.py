"""The activity runtime of a generated Durable Functions app: run one task, report errors, offload.

Each generated activity is bound to one task when the app is generated: ``run_task(TASK_REF, args)``
with a :class:`TaskRef` constant in ``function_app.py``. The activity's input is data only, the
task's arguments: it never says which code runs, and an input that is not exactly arguments of the
bound task is refused before anything runs. Deployed, the function is imported from the TaskRef
(the deployment's code, once per worker); in emulation it comes from the loader installed with
:func:`strato.adapters.common.emulation.emulating`, by task id, which refuses any other id. So a
function app needs no ``STRATO_TASKS`` catalog: its catalog is the generated module itself.

Arguments may hold offloaded values (``payloads.resolve``); results larger than the threshold are
offloaded (``payloads.offload``), so the orchestration history stays small.

Errors: Durable Functions wraps an activity's exception into text (``TaskFailed`` reason and
details) and the orchestrator sees a plain ``Exception``. So the shim raises :class:`TaskFailure`,
whose message ends with ``strato-error:{"error": ClassName, "cause": message}``; the orchestrator
(``orchestration.TaskError.from_failure``) finds that marker and matches ``retry.on``/``catch.on``
against the original class name. Activities may run on several threads at once (as on a Functions
worker), so everything here is thread-safe.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from strato.adapters.common.emulation import loader_override
from strato.adapters.common.errors import AdapterError
from strato.adapters.common.tasks import granted_secrets, import_task, run_context
from strato.lineage import shim_attempt
from strato.run_context import RunContext, task_context

from .payloads import offload, resolve

CONTEXT_KEY = "strato.context"  # an activity input's run context (strato.context()); not an identifier

ERROR_MARKER = "strato-error:"


@dataclass(frozen=True)
class TaskRef:
    """The task an activity is bound to: its id in the IR and where its code lives (module, qualname)."""

    name: str
    module: str
    qualname: str
    secrets: tuple[str, ...] = ()  # the secrets the IR grants the task, read from Key Vault when deployed


class TaskFailure(Exception):
    """Raised by an activity: the message carries the task's error for the orchestrator to parse."""

    def __init__(self, error: dict[str, str]):
        self.error = error
        super().__init__(f"{error['error']}: {error['cause']} {ERROR_MARKER}{json.dumps(error)}")


class ActivityInputError(AdapterError):
    """An activity's input is not a set of arguments of its own task (nothing was run)."""


_imported: dict[TaskRef, Callable[..., Any]] = {}
_imported_lock = threading.Lock()


def load(task: TaskRef) -> Callable[..., Any]:
    """The bound task's function: the emulation's loader (by task id), else imported from the TaskRef once."""
    override = loader_override()
    if override is not None:
        return override(task.name)
    with _imported_lock:
        fn = _imported.get(task)
        if fn is None:
            fn = _imported[task] = import_task(task.module, task.qualname)
    return fn


def _shown(names: list[str]) -> str:
    text = ", ".join(repr(name[:40]) for name in names[:5])
    return text + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def check_input(task: TaskRef, fn: Callable[..., Any], args: Any) -> dict[str, Any]:
    """``args`` if it is a JSON object of the task's own parameters; refused otherwise.

    An activity runs its bound task only: fields such as ``task`` or ``fn`` that try to name other
    code are not parameters of it, so they are refused here rather than passed on.
    """
    if args is None:
        return {}
    if not isinstance(args, dict) or not all(isinstance(key, str) for key in args):
        raise ActivityInputError(f"the input of the activity for task {task.name!r} must be a JSON object of its "
                                 f"arguments, not {type(args).__name__}; nothing was run")
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return args
    unknown = sorted(key for key in args if key not in params)
    if unknown:
        raise ActivityInputError(f"the activity for task {task.name!r} got {_shown(unknown)}, which "
                                 f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} of the "
                                 "task; an activity runs only its own task, so nothing was run")
    return args


def run_task(task: TaskRef, args: Any) -> Any:
    """An activity's body: load, check, resolve, invoke, offload; a failure raises :class:`TaskFailure`."""
    from strato.runtime.invoke import error_of, invoke

    try:
        fn = load(task)
    except Exception as exc:
        raise TaskFailure({"error": type(exc).__name__, "cause": f"cannot load task {task.name!r}: {exc}"}) from exc
    called = _run_context(task, args)
    if isinstance(args, dict):
        args = {k: v for k, v in args.items() if k != CONTEXT_KEY}
    try:
        checked = check_input(task, fn, args)
        with task_context(called):
            result = _invoke_with_secrets(task, fn, resolve(checked), invoke)
    except Exception as exc:
        raise TaskFailure(error_of(exc)) from exc
    try:
        return offload(result)
    except Exception as exc:
        raise TaskFailure({"error": type(exc).__name__, "cause": f"cannot offload the result of task "
                                                                 f"{task.name!r}: {exc}"}) from exc


def _run_context(task: TaskRef, args: Any) -> RunContext:
    """``strato.context()`` for the call, from the orchestrator's ``strato.context`` field (data only)."""
    from strato.run_context import split_key

    given = args.get(CONTEXT_KEY) if isinstance(args, dict) else None
    fields: dict[str, Any] = given if isinstance(given, dict) else {}
    found = fields.get("key")
    task_id, index = split_key(found if isinstance(found, str) else task.name)
    return run_context({"ctx": {"run": fields.get("run"), "pipeline": fields.get("pipeline")}, "task_id": task_id,
                        "attempt": fields.get("attempt"), "map_index": index}, task.name, "azure")


def _invoke_with_secrets(task: TaskRef, fn: Callable[..., Any], args: dict[str, Any],
                         invoke: Callable[..., Any]) -> Any:
    """Call the task with its granted secrets: from the emulation's grants and the environment, or,
    deployed, from the generated TaskRef and Key Vault."""
    with shim_attempt(task.name, fn):  # OpenLineage START and COMPLETE/FAIL, when configured
        return _invoke_task(task, fn, args, invoke)


def _invoke_task(task: TaskRef, fn: Callable[..., Any], args: dict[str, Any], invoke: Callable[..., Any]) -> Any:
    if loader_override() is not None:
        return invoke(task.name, fn, args, granted_secrets(task.name))
    if not task.secrets:
        return invoke(task.name, fn, args)
    from strato.secrets import secret_source

    from .secrets import key_vault

    with secret_source(key_vault()):
        return invoke(task.name, fn, args, task.secrets)


def resolve_activity(payload: Any) -> Any:
    """The built-in ``strato_resolve`` activity: the orchestrator needs to look inside a value.

    With ``"length": true`` it answers a list's length only (None for anything else), so a map over an
    offloaded list fans out over references to its elements.
    """
    try:
        if not isinstance(payload, dict):
            raise ActivityInputError("the input of strato_resolve must be a JSON object {\"value\": ...}")
        value = resolve(payload.get("value"))
        if payload.get("length"):
            return len(value) if isinstance(value, list) else None
        return value
    except Exception as exc:
        raise TaskFailure({"error": type(exc).__name__, "cause": f"cannot read an offloaded result: {exc}"}) \
            from exc
