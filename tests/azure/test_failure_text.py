"""Failure text as the real Durable host words it, and the error-marker parsing read against that wording.

Sources of the wording (quoted in ``replay/history.py``): the extension's ``TaskActivityShim.cs``
(``Activity function '{name}' failed: {message}``), ``OutOfProcOrchestrationShim.cs``
(``Orchestrator function '{name}' failed: {error}``), ``OutOfProcExceptionHelpers.cs`` (the message
between ``"\\nException:"`` and ``"\\nStack:"``), the host's ``RpcException.cs``, the Python worker's
``_serialize_exception`` (``f"{type(exc).__name__}: {exc}"``) and the SDK's
``Exception(f"{event.Reason} \\n {event.Details}")``. Users quote the result in issues:
https://github.com/Azure/azure-functions-durable-python/issues/562 ("Caught exception: Activity
function 'raise_exception' failed: ...", on Azure Storage) and
https://github.com/Azure/azure-functions-durable-extension/issues/2990 (the second line is the
Details JSON, whose "Message" holds "Type: message").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

df = pytest.importorskip("azure.durable_functions")

from strato.adapters.azure.emulator import ReplayHost  # noqa: E402
from strato.adapters.azure.orchestration import TaskError, error_from_text  # noqa: E402
from strato.adapters.azure.replay.history import EXECUTION_FAILED, activity_failure  # noqa: E402
from strato.adapters.azure.shim import TaskFailure  # noqa: E402
from tests.azure.conftest import T0  # noqa: E402


class InvalidOperationException(Exception):
    """The exception of the issue #562 reproduction."""


def _app() -> Any:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def catch_activity_exception(context: df.DurableOrchestrationContext):
        try:
            yield context.call_activity("raise_exception", context.instance_id)
        except Exception as e:
            return f"Caught exception: {e}"

    @app.activity_trigger(input_name="instance")
    def raise_exception(instance: str) -> str:
        raise InvalidOperationException("This activity failed")

    @app.orchestration_trigger(context_name="context")
    def broken(context: df.DurableOrchestrationContext):
        value = yield context.call_activity("hello", "x")
        raise ValueError(f"cannot use {value}")

    @app.orchestration_trigger(context_name="context")
    def parent(context: df.DurableOrchestrationContext):
        try:
            return (yield context.call_sub_orchestrator("broken", None, instance_id="child"))
        except Exception as e:
            return str(e)

    @app.orchestration_trigger(context_name="context")
    def misspelt(context: df.DurableOrchestrationContext):
        return (yield context.call_activity("helo", "x"))

    @app.activity_trigger(input_name="name")
    def hello(name: str) -> str:
        return name

    return app


def test_an_activity_failure_reads_as_on_azure_storage() -> None:
    host = ReplayHost(_app(), start=T0, durations=lambda name, value: 0.0)
    output = host.run_orchestration("catch_activity_exception", None, "i-1").output
    # issue #562: "Caught exception: Activity function 'raise_exception' failed: " on Azure Storage
    reason, details = output.split(" \n ")
    assert reason == "Caught exception: Activity function 'raise_exception' failed:  InvalidOperationException: " \
                     "This activity failed"
    # issue #2990's workaround: the second line is the Details JSON; its Message is "Type: message"
    assert json.loads(output.split("\n")[1])["Message"].split(":", 1)[1].lstrip() == "This activity failed"
    cause = json.loads(details)
    assert cause["$type"].startswith("System.Exception") and "Result: Failure\nException: " in \
        cause["InnerException"]["Message"]
    assert "raise InvalidOperationException" in cause["InnerException"]["RemoteStackTraceString"]


def test_an_orchestrator_failure_reads_as_on_azure_and_reaches_its_parent() -> None:
    host = ReplayHost(_app(), start=T0, durations=lambda name, value: 0.0)
    instance = host.run_orchestration("broken", None, "b-1")
    failed = next(e for e in instance.history if e["EventType"] == EXECUTION_FAILED)
    assert failed["Reason"] == "Orchestrator function 'broken' failed: cannot use x"
    assert failed["Details"].startswith("Message: cannot use x, StackTrace: Traceback")
    assert host.result(instance).error == {"error": "OrchestrationFailed", "cause": "cannot use x"}
    seen = host.run_orchestration("parent", None, "p-1").output
    assert seen.startswith("Orchestrator function 'broken' failed: cannot use x \n Message: cannot use x, StackTrace:")


def test_scheduling_an_unknown_activity_fails_the_orchestrator_with_the_extensions_message() -> None:
    host = ReplayHost(_app(), start=T0, durations=lambda name, value: 0.0)
    instance = host.run_orchestration("misspelt", None, "m-1")
    assert instance.error == (
        "Orchestrator function 'misspelt' failed: The function 'helo' doesn't exist, is disabled, or is not an "
        "activity function. Additional info: The following are the known activity functions: 'hello', "
        "'raise_exception'.")
    assert host.result(instance).error["cause"].startswith("The function 'helo' doesn't exist")


# ------------------------------------------------------------------- parsing the documented wording
def _as_the_sdk_raises(name: str, exc: BaseException) -> str:
    """``str()`` of what ``yield context.call_activity(name, ...)`` raises when the activity raised ``exc``."""
    reason, details = activity_failure(name, exc, 'Traceback (most recent call last):\n  File "x.py", line 1\n')
    return f"{reason} \n {details}"


def test_the_marker_is_read_from_the_reason_not_the_escaped_details() -> None:
    text = _as_the_sdk_raises("load", TaskFailure({"error": "OperationalError", "cause": "database is locked"}))
    assert text.count("strato-error:") == 3  # the Reason, the Details' message and its inner RpcException
    assert error_from_text(text) == {"error": "OperationalError", "cause": "database is locked"}
    assert TaskError.from_failure(Exception(text)).error == {"error": "OperationalError", "cause": "database is locked"}


def test_a_failure_without_marker_is_named_by_the_python_class_in_the_wording() -> None:
    text = _as_the_sdk_raises("raise_exception", InvalidOperationException("This activity failed"))
    assert error_from_text(text) == {"error": "InvalidOperationException", "cause": "This activity failed"}
    multiline = _as_the_sdk_raises("parse", ValueError("line one\nline two"))
    assert error_from_text(multiline) == {"error": "ValueError", "cause": "line one\nline two"}


def test_an_orchestrator_failure_is_unwrapped() -> None:
    marked = TaskError("ZeroDivisionError", "division by zero")
    text = f"Orchestrator function 'daily_sales' failed: {marked} \n Message: {marked}, StackTrace: "
    assert error_from_text(text) == {"error": "ZeroDivisionError", "cause": "division by zero"}
    plain = "Orchestrator function 'o' failed: cannot use x \n Message: cannot use x, StackTrace: "
    assert error_from_text(plain, "OrchestrationFailed") == {"error": "OrchestrationFailed", "cause": "cannot use x"}
    # a sub-orchestration whose activity failed without a marker: the class survives both wrappings
    inner = _as_the_sdk_raises("extract", KeyError("day"))
    assert error_from_text(f"Orchestrator function 'child' failed: {inner}") == {"error": "KeyError",
                                                                                "cause": "'day'"}


def test_text_in_no_known_shape_keeps_the_fallback_name() -> None:
    assert error_from_text("The orchestration was terminated", "OrchestrationFailed") == {
        "error": "OrchestrationFailed", "cause": "The orchestration was terminated"}
    assert error_from_text("strato-error:{not json", "TaskFailed")["error"] == "TaskFailed"
