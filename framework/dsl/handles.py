"""Handles: placeholders for results while a pipeline body is traced.

A handle stands for a task's (or parameter's) future JSON value. ``handle["key"]`` addresses into
it; comparing it with a JSON literal builds a condition for ``when``. Anything that would need the
value now (``if handle:``, iteration, ``len``) is a mistake and says what to write instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import Location, TraceError, caller_location

if TYPE_CHECKING:
    from .tracing import Draft, Tracer


class Handle:
    """A future result inside a pipeline: a node's result or a pipeline parameter."""

    __slots__ = ("_draft", "_param", "_path", "_tracer")

    def __init__(self, tracer: Tracer, draft: Draft | None = None, param: str | None = None,
                 path: tuple[str | int, ...] = ()):
        self._tracer, self._draft, self._param, self._path = tracer, draft, param, path

    # addressing ---------------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Handle:
        if isinstance(key, bool) or not isinstance(key, (str, int)):
            raise TraceError(f"address into a result with a string key or an integer index, not {key!r}")
        return Handle(self._tracer, self._draft, self._param, self._path + (key,))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise TraceError(f"{self.describe()} has no attribute {name!r} while the pipeline is traced; "
                         f"address into the result with [{name!r}] instead")

    # conditions ---------------------------------------------------------------------------------
    def _compare(self, op: str, other: Any) -> Condition:
        return Condition.compare(self, op, other, caller_location())

    def __eq__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._compare("==", other)

    def __ne__(self, other: Any) -> Condition:  # type: ignore[override]
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> Condition:
        return self._compare("<", other)

    def __le__(self, other: Any) -> Condition:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> Condition:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> Condition:
        return self._compare(">=", other)

    __hash__ = object.__hash__

    # mistakes -----------------------------------------------------------------------------------
    def __bool__(self) -> bool:
        raise TraceError(f"{self.describe()} has no value while the pipeline is traced; branch with "
                         "`with when(handle > 0): ...` instead of `if`")

    def __iter__(self) -> Iterator[Any]:
        raise TraceError(f"{self.describe()} cannot be iterated while the pipeline is traced; fan out over a "
                         "list with task.map(handle) instead of a for loop")

    def __len__(self) -> int:
        raise TraceError(f"{self.describe()} has no length while the pipeline is traced")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TraceError(f"{self.describe()} is a task's future result, not something to call")

    def describe(self) -> str:
        base = f"the result of {self._draft.display}" if self._draft is not None else f"parameter {self._param!r}"
        return base + "".join(f"[{k!r}]" for k in self._path)

    def __repr__(self) -> str:
        return f"<Handle {self.describe()}>"


class Condition:
    """A test on handles for ``when``: comparisons combined with ``&``, ``|`` and ``~``."""

    __slots__ = ("items", "left", "location", "op", "problem", "right")

    def __init__(self, op: str, left: Handle | None = None, right: Any = None,
                 items: tuple[Condition, ...] = (), location: Location | None = None, problem: str | None = None):
        self.op, self.left, self.right, self.items = op, left, right, items
        self.location, self.problem = location, problem

    @classmethod
    def compare(cls, left: Handle, op: str, right: Any, location: Location | None) -> Condition:
        problem = None
        if isinstance(right, Handle):
            problem = (f"when() compares a result with a JSON literal; {left.describe()} {op} {right.describe()} "
                       "compares two values known only at run time. Compute the comparison in a task and test "
                       "its result")
        elif isinstance(right, Condition):
            problem = "a comparison cannot be compared again; combine conditions with & | ~"
        return cls(op, left, right, location=location, problem=problem)

    def __and__(self, other: Any) -> Condition:
        return Condition("all", items=(self, _as_condition(other, "&")), location=caller_location())

    def __or__(self, other: Any) -> Condition:
        return Condition("any", items=(self, _as_condition(other, "|")), location=caller_location())

    def __invert__(self) -> Condition:
        return Condition("not", items=(self,), location=caller_location())

    def __bool__(self) -> bool:
        raise TraceError("a condition has no truth value while the pipeline is traced: combine conditions with "
                         "& | ~ (not and/or/not), and use it in `with when(...)`")

    def __repr__(self) -> str:
        return f"<Condition {self.op}>"


def _as_condition(other: Any, op: str) -> Condition:
    if isinstance(other, Condition):
        return other
    return Condition("invalid", problem=f"{op} combines two conditions (comparisons of a result with a literal); "
                                        f"got {other!r}", location=caller_location())
