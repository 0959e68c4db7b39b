"""The Durable Functions history protocol as the replay host speaks it: event and action types, timestamps,
an instance and its history, and how actions are compared on replay.

The numbers are the SDK's own (``azure.durable_functions.models.history.HistoryEventType`` and
``models.actions.ActionType``); an ``ExecutionStarted`` event needs a ``Version`` field.
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from strato.adapters.common.errors import AdapterError

# history event types (azure.durable_functions.models.history.HistoryEventType)
EXECUTION_STARTED, EXECUTION_COMPLETED, EXECUTION_FAILED = 0, 1, 2
TASK_SCHEDULED, TASK_COMPLETED, TASK_FAILED = 4, 5, 6
SUB_CREATED, SUB_COMPLETED, SUB_FAILED = 7, 8, 9
TIMER_CREATED, TIMER_FIRED = 10, 11
ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED = 12, 13
# action types (azure.durable_functions.models.actions.ActionType)
CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB_ORCHESTRATOR, CREATE_TIMER = 0, 1, 2, 5
WHEN_ANY, WHEN_ALL = 11, 12
OUT_OF_PROC = "$OutOfProcData$:"
REPLAY_SCHEMA = 1  # V2: one flat action list with compound WhenAny/WhenAll actions


class EmulationError(AdapterError):
    """The emulated app could not run (not a failure of the pipeline)."""


@dataclass
class Retry:
    """A ``CallActivityWithRetry`` in flight: the host reschedules it like the extension does."""

    name: str
    input: str | None
    interval: float
    max_attempts: int
    attempts: int = 1


@dataclass(eq=False)
class Instance:
    """One orchestration instance and its history."""

    id: str
    name: str
    input: str | None
    parent: tuple[Instance, int] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)  # atomic actions already in history
    action_ids: list[int] = field(default_factory=list)
    next_id: int = 0
    status: str = "Running"  # Running | Completed | Failed
    output: Any = None
    error: str | None = None
    retries: dict[int, Retry] = field(default_factory=dict)
    cancelled: set[int] = field(default_factory=set)
    episodes: int = 0

    @property
    def done(self) -> bool:
        return self.status != "Running"


# ------------------------------------------------------------------------------------------- events
def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class _TimestampCache:
    """The SDK's history timestamp parser, remembering what it returned for each text.

    ``HistoryEvent.__init__`` parses every event's ``Timestamp`` with ``dateutil`` on every replay,
    and the orchestrator is replayed after every batch of events: at 1,000 tasks that was about 60%
    of the emulation's time, growing with the history. Every event of one episode shares one stamp,
    so a history holds at most one distinct text per episode; each is parsed once, by the SDK's own
    parser, and the very value it returned is handed back afterwards (datetimes are immutable), so
    the SDK sees exactly what it would have computed.
    """

    LIMIT = 65_536  # distinct stamps kept; past that the cache starts again (the values stay exact)

    def __init__(self, parse: Callable[..., datetime]):
        self.parse = parse
        self.known: dict[str, datetime] = {}

    def __call__(self, text: Any, *args: Any, **kwargs: Any) -> datetime:
        if args or kwargs or not isinstance(text, str):
            return self.parse(text, *args, **kwargs)
        value = self.known.get(text)
        if value is None:
            if len(self.known) >= self.LIMIT:
                self.known.clear()
            value = self.known[text] = self.parse(text)
        return value


_cache_lock = threading.Lock()


def remember_history_timestamps() -> None:
    """Install :class:`_TimestampCache` in front of the SDK's history parser (once per process)."""
    module = importlib.import_module("azure.durable_functions.models.history.HistoryEvent")
    with _cache_lock:
        current = getattr(module, "dt_parse", None)
        if current is not None and not isinstance(current, _TimestampCache):
            module.dt_parse = _TimestampCache(current)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------ failures
# The text of a failure as the Durable extension records it for a Python app, so that what the
# orchestrator's ``except`` sees (the SDK raises ``Exception(f"{Reason} \n {Details}")`` for a failed
# task or sub-orchestration, models/TaskOrchestrationExecutor.py) reads as it does on Azure:
#
# * the Python worker reports an exception as ``f"{type(exc).__name__}: {exc}"``
#   (azure-functions-python-worker, dispatcher.py ``_serialize_exception``);
# * the Functions host wraps it as ``"Result: Failure\nException: {message}\nStack: {stack}"``
#   (azure-functions-host, Workers/Rpc/RpcException.cs);
# * the extension keeps what lies between ``"\nException:"`` and ``"\nStack:"`` (leading space
#   included, OutOfProcExceptionHelpers.TryGetExceptionWithFriendlyMessage) and fails the task with
#   Reason ``"Activity function '{name}' failed: {that}"`` and Details the exception serialised as JSON
#   (Listener/TaskActivityShim.cs, ErrorSerializerSettingsFactory: Newtonsoft, TypeNameHandling.Objects);
# * an orchestrator that raises fails with Reason ``"Orchestrator function '{name}' failed: {error}"``
#   and Details ``"Message: {error}, StackTrace: {stack}"`` (Listener/OutOfProcOrchestrationShim.cs),
#   ``error`` being ``str(exc)`` (the SDK's ``$OutOfProcData$`` state);
# * scheduling an activity the app does not have fails the orchestrator with the extension's
#   ``GetInvalidActivityFunctionMessage`` (DurableTaskExtension.cs).
#
# Users parse this text in the wild (github.com/Azure/azure-functions-durable-extension/issues/2990
# reads the message from the Details JSON's "Message"), and orchestration.error_from_text reads it
# when a failure carries no Strato marker.
_EXCEPTION_TYPE = "System.Exception, System.Private.CoreLib"
_RPC_EXCEPTION_TYPE = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException, Microsoft.Azure.WebJobs.Script"


def _serialised_exception(type_name: str, message: str, inner: dict[str, Any] | None = None,
                          remote_stack: str | None = None) -> dict[str, Any]:
    """A .NET exception as Newtonsoft serialises it with type names (the fields the extension writes)."""
    return {"$type": type_name, "ClassName": type_name.split(",")[0], "Message": message, "Data": None,
            "InnerException": inner, "HelpURL": None, "StackTraceString": None,
            "RemoteStackTraceString": remote_stack, "RemoteStackIndex": 0, "ExceptionMethod": None,
            "HResult": -2146233088, "Source": None, "WatsonBuckets": None}


def activity_failure(name: str, exc: BaseException, stack: str) -> tuple[str, str]:
    """``(Reason, Details)`` of a ``TaskFailed`` event for an activity that raised ``exc``."""
    try:
        message = f"{type(exc).__name__}: {exc}"
    except Exception:  # the worker's own fallback
        message = "Unhandled exception in function. Could not serialize original exception message."
    rpc = f"Result: Failure\nException: {message}\nStack: {stack}"
    friendly = rpc[rpc.index("\nException:") + len("\nException:"):rpc.index("\nStack:")]
    inner = _serialised_exception(_RPC_EXCEPTION_TYPE, rpc, remote_stack=stack)
    details = json.dumps(_serialised_exception(_EXCEPTION_TYPE, friendly, inner), separators=(",", ":"))
    return f"Activity function '{name}' failed: {friendly}", details


def orchestrator_failure(name: str, error: str, stack: str = "") -> tuple[str, str]:
    """``(Reason, Details)`` of an orchestration whose orchestrator raised (``error`` is ``str(exc)``)."""
    return f"Orchestrator function '{name}' failed: {error}", f"Message: {error}, StackTrace: {stack}"


def missing_activity(name: str, known: list[str]) -> str:
    """The extension's message for scheduling an activity the app does not have."""
    message = f"The function '{name}' doesn't exist, is disabled, or is not an activity function. Additional info: "
    if known:
        return message + "The following are the known activity functions: '" + "', '".join(known) + "'."
    return message + "No activity functions are currently registered!"


# ------------------------------------------------------------------------------------------ actions
def flatten(groups: list[Any]) -> list[dict[str, Any]]:
    """Atomic actions in the order the SDK numbers them (compound WhenAny/WhenAll opened)."""
    out: list[dict[str, Any]] = []

    def walk(action: dict[str, Any]) -> None:
        if action.get("actionType") in (WHEN_ANY, WHEN_ALL):
            for child in action.get("compoundActions") or []:
                walk(child)
        else:
            out.append(action)

    for group in groups:
        for action in group if isinstance(group, list) else [group]:
            walk(action)
    return out


def identity(action: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in action.items() if k != "isCanceled"}


def describe(action: dict[str, Any]) -> str:
    kind = action.get("actionType")
    if kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY):
        return f"activity {action.get('functionName')!r} with input {action.get('input')}"
    if kind == CALL_SUB_ORCHESTRATOR:
        return f"sub-orchestration {action.get('functionName')!r} ({action.get('instanceId')})"
    if kind == CREATE_TIMER:
        return f"a timer at {action.get('fireAt')}"
    return f"an action of type {kind}"

