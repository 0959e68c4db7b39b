"""What Step Functions refuses and moto accepts, checked around every emulated execution.

moto creates a state machine of any size and passes state of any size between states; Step Functions
does not. So the emulator checks each definition as ``CreateStateMachine`` would, and after each
execution reads the histories of the root and of every child execution (parts, sub-pipelines) as
Step Functions would have enforced them while running. A run that would have failed on AWS fails
here with the error AWS gives, so what passes in emulation passes on the service.

Limits, from https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html:
a definition is at most 1,048,576 bytes; the input or output of a state, task, execution or a
Parallel/Map result is at most 262,144 bytes (UTF-8); an execution's history at most 25,000 events.
From the Amazon States Language (https://states-language.net/spec.html): a state name is at most 80
Unicode characters. From https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html:
a field may nest at most 10 intrinsic functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from strato.adapters.common.errors import AdapterError

from .limits import MAX_DEFINITION_BYTES, MAX_HISTORY_EVENTS, MAX_INTRINSIC_NESTING, to_compact_json
from .naming import MAX_STATE_NAME

MAX_PAYLOAD_BYTES = 262_144
DATA_LIMIT = "States.DataLimitExceeded"
# Event details whose ``input``/``output`` Step Functions measures against MAX_PAYLOAD_BYTES.
_MEASURED = ("input", "output")


class RejectedDefinition(AdapterError):
    """A definition ``CreateStateMachine`` would refuse (moto creates it anyway)."""


def check_definition(name: str, definition: dict[str, Any]) -> None:
    """Raise :class:`RejectedDefinition` naming the machine, and the state where there is one."""
    size = len(to_compact_json(definition).encode())
    if size > MAX_DEFINITION_BYTES:
        raise RejectedDefinition(f"state machine {name!r} is {size:,} bytes, over Step Functions' "
                                 f"{MAX_DEFINITION_BYTES:,}; split the pipeline into sub-pipelines")
    for state_name, state in states_of(definition):
        if len(state_name) > MAX_STATE_NAME:
            raise RejectedDefinition(f"state machine {name!r}: state name {state_name[:40]!r}... is "
                                     f"{len(state_name)} characters, over {MAX_STATE_NAME}")
        for field, text in _paths(state):
            depth = intrinsic_depth(text)
            if depth > MAX_INTRINSIC_NESTING:
                raise RejectedDefinition(f"state machine {name!r}, state {state_name!r}: field {field!r} nests "
                                         f"{depth} intrinsic functions, over {MAX_INTRINSIC_NESTING}")


_TOKENS = re.compile(r"States\.[A-Za-z]+\(|'(?:\\.|[^'\\])*'|[()]")


def intrinsic_depth(text: str) -> int:
    """How deeply ``States.*`` calls nest in ``text`` (quoted strings and other parentheses skipped)."""
    stack: list[bool] = []
    depth = deepest = 0
    for token in _TOKENS.finditer(text):
        kind = token.group()
        if kind.startswith("States."):
            stack.append(True)
            depth += 1
            deepest = max(deepest, depth)
        elif kind == "(":
            stack.append(False)
        elif kind == ")" and stack:
            depth -= stack.pop()
    return deepest


def states_of(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in (definition.get("States") or {}).items():
        yield name, state
        for branch in state.get("Branches") or ():
            yield from states_of(branch)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                yield from states_of(state[key])


def _paths(value: Any, field: str = "") -> Iterator[tuple[str, str]]:
    """Every ``"key.$": "expression"`` under a state's fields (not its nested branches' states)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key in ("Branches", "ItemProcessor", "Iterator"):
                continue
            if key.endswith(".$") and isinstance(inner, str):
                yield f"{field}.{key}".lstrip("."), inner
            else:
                yield from _paths(inner, f"{field}.{key}".lstrip("."))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, f"{field}[{index}]")


def _history(sfn: Any, arn: str) -> Iterator[dict[str, Any]]:
    token = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000,
                                         **({"nextToken": token} if token else {}))
        yield from page["events"]
        token = page.get("nextToken")
        if not token:
            return


def violation(sfn: Any, machines: dict[str, str], since: datetime) -> dict[str, str] | None:
    """The error Step Functions would have failed a run with, read from the histories of every
    execution of ``machines`` (the root and its children) started at ``since`` or later; None when
    all stayed within limits."""
    for machine in machines.values():
        for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
            if execution["startDate"] < since:
                continue
            error = _execution_violation(sfn, execution["executionArn"])
            if error is not None:
                return error
    return None


def _execution_violation(sfn: Any, arn: str) -> dict[str, str] | None:
    count, state = 0, "(execution)"
    for count, event in enumerate(_history(sfn, arn), start=1):
        for key, details in event.items():
            if not key.endswith("EventDetails") or not isinstance(details, dict):
                continue
            state = details.get("name", state)
            for field in _MEASURED:
                text = details.get(field)
                size = len(text.encode()) if isinstance(text, str) else 0
                if size > MAX_PAYLOAD_BYTES:
                    what = "returned a result" if field == "output" else "got an input"
                    return {"error": DATA_LIMIT,
                            "cause": f"The state/task {state!r} {what} with a size exceeding the maximum "
                                     "number of bytes service limit "
                                     f"({size:,} > {MAX_PAYLOAD_BYTES:,} bytes, {event['type']})"}
        if count > MAX_HISTORY_EVENTS:
            return {"error": "States.Runtime",
                    "cause": f"the execution's history passed Step Functions' {MAX_HISTORY_EVENTS:,} events "
                             "(split the pipeline into sub-pipelines)"}
    return None

