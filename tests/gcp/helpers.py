"""Small helpers shared by the Workflows conformance tests."""

from __future__ import annotations

from typing import Any

from strato.adapters.gcp.interpreter import Execution, run_workflow


def run(source: str | dict | list, args: Any = None, **kwargs: Any) -> Execution:
    """Run and return the execution whatever its state."""
    return run_workflow(source, args, **kwargs)


def result(source: str | dict | list, args: Any = None, **kwargs: Any) -> Any:
    """Run, insist on success, return the result."""
    execution = run_workflow(source, args, **kwargs)
    assert execution.state == "SUCCEEDED", execution.error
    return execution.result


def failure(source: str | dict | list, args: Any = None, **kwargs: Any) -> Any:
    """Run, insist on failure, return the error value."""
    execution = run_workflow(source, args, **kwargs)
    assert execution.state == "FAILED", execution.result
    return execution.error


def _expression_workflow(expression: str, variables: dict[str, Any]) -> dict[str, Any]:
    steps: list[dict[str, Any]] = []
    if variables:
        steps.append({"init": {"assign": [{k: v} for k, v in variables.items()]}})
    steps.append({"out": {"return": "${" + expression + "}"}})
    return {"main": {"steps": steps}}


def ev(expression: str, **variables: Any) -> Any:
    """The value of ``${expression}`` after assigning ``variables`` (Python values, or ``${}`` strings)."""
    return result(_expression_workflow(expression, variables))


def ev_error(expression: str, **variables: Any) -> dict[str, Any]:
    """The error map raised evaluating ``${expression}``."""
    err = failure(_expression_workflow(expression, variables))
    assert isinstance(err, dict), err
    return err


def tags(err: Any) -> list[str]:
    assert isinstance(err, dict) and isinstance(err.get("tags"), list), err
    return err["tags"]
