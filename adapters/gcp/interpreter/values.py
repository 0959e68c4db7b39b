"""Workflows values in Python, and the error maps the engine raises.

Workflows has integers (64-bit), doubles, strings, booleans, bytes, null, lists and maps
(syntax reference, "Data types"). They map onto ``int``, ``float``, ``str``, ``bool``, ``bytes``,
``None``, ``list`` and ``dict``. Python's ``bool`` is a subclass of ``int`` and ``True == 1``, so
every check here looks at booleans first: in Workflows ``true`` is not a number.
"""

from __future__ import annotations

import math
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Error tags from the syntax reference ("Error types"); the ones this engine raises itself.
ERROR_TAGS = (
    "AuthError", "ConnectionError", "ConnectionFailedError", "HttpError", "IndexError", "KeyError",
    "OperationError", "ParallelNestingError", "RecursionError", "ResourceLimitError", "ResponseTypeError",
    "SystemError", "TimeoutError", "TypeError", "UnhandledBranchError", "ValueError", "ZeroDivisionError",
)


class WorkflowError(Exception):
    """A Workflows error in flight: ``value`` is what ``except: as: e`` receives.

    ``raise`` accepts any value (a string or a map, usually), so the payload is not always a map.
    """

    def __init__(self, value: Any):
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        if isinstance(self.value, dict) and "message" in self.value:
            return str(self.value["message"])
        return repr(self.value)

    @property
    def tags(self) -> list[str]:
        if isinstance(self.value, dict) and isinstance(self.value.get("tags"), list):
            return [t for t in self.value["tags"] if isinstance(t, str)]
        return []


def error(tag: str, message: str, **extra: Any) -> WorkflowError:
    """An error map ``{"message": ..., "tags": [tag], ...}`` as the engine raises it."""
    return WorkflowError({"message": message, "tags": [tag], **extra})


def type_name(value: Any) -> str:
    """The Workflows name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "map"
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(value: int) -> int:
    """Integers are 64-bit signed: leaving the range is a ValueError rather than silent bignums."""
    if value < INT64_MIN or value > INT64_MAX:
        raise error("ValueError", f"integer overflow: {value} does not fit in 64 bits")
    return value


def check_double(value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        raise error("ValueError", "arithmetic result is not a finite double")
    return value


def equals(a: Any, b: Any) -> bool:
    """Workflows equality: numbers compare by value (``1 == 1.0``), other types only with their own."""
    if is_number(a) and is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equals(a[k], b[k]) for k in a)
    return bool(a == b)


def copy_value(value: Any) -> Any:
    """Assignment copies: Workflows variables hold values, never references to another variable."""
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    return value


def to_string(value: Any) -> str:
    """``string()`` of a scalar; also used when a message must show a value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_int(value):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return value
    raise error("TypeError", f"string() cannot convert a {type_name(value)}")


def check_json_value(value: Any, what: str) -> None:
    """Bytes and engine objects cannot leave a workflow: the reference says a workflow cannot return bytes."""
    if value is None or isinstance(value, bool | int | float | str):
        return
    if isinstance(value, list):
        for item in value:
            check_json_value(item, what)
        return
    if isinstance(value, dict):
        for item in value.values():
            check_json_value(item, what)
        return
    raise error("TypeError", f"{what} contains a {type_name(value)}, which cannot be JSON-encoded")
