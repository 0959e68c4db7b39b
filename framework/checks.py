"""Data-quality checks on a task's result: ``@task(checks=[not_empty(), unique("id")])``.

A check is a function of the task's result (its JSON form, the same value every backend hands on)
that returns ``True`` or ``False``, or raises; it has a name, a severity and a message. An ``error``
check that fails fails the attempt with :class:`~strato.errors.CheckFailed` (retried and caught like
any error, so after its retries the task fails before anything downstream starts); a ``warn`` check
is recorded and logged only.

Checks run inside :func:`strato.runtime.invoke.invoke`, the one place a task is called on the local
runner and in every cloud's task shim, so they mean the same everywhere. They are found through the
task's function (registered by ``@task``), never from a payload: a deployed shim runs the checks its
own code declares. The IR records only each check's name, severity and description.

This module imports only the standard library until a check runs (``schema`` needs pydantic).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from ._record import record
from .errors import CheckFailed

__all__ = ["Check", "CheckFailed", "check", "no_nulls", "not_empty", "row_count", "schema", "unique", "values_in"]

SEVERITIES = ("error", "warn")
_log = logging.getLogger("strato.checks")


@record
class Check:
    """One check: ``fn(result)`` is True when the data is good."""

    fn: Callable[[Any], Any]
    name: str
    severity: str = "error"
    message: str | None = None

    def problems(self) -> list[str]:
        out = []
        if self.severity not in SEVERITIES:
            out.append(f"check {self.name!r}: severity must be 'error' or 'warn', got {self.severity!r}")
        if not isinstance(self.name, str) or not self.name:
            out.append(f"a check needs a name, got {self.name!r}")
        if not callable(self.fn):
            out.append(f"check {self.name!r}: {self.fn!r} is not callable")
        return out

    def evaluate(self, result: Any) -> dict[str, Any]:
        """``{"name", "severity", "passed", "message"}`` for ``result``; a raising check fails."""
        try:
            verdict = self.fn(result)
        except Exception as exc:  # the data broke the check: a failure, with what it said
            return self._outcome(False, f"{type(exc).__name__}: {exc}")
        if verdict is True:
            return self._outcome(True, None)
        if verdict is False or verdict is None:
            return self._outcome(False, self.message or "returned False")
        return self._outcome(False, f"returned {verdict!r}, not True or False")

    def _outcome(self, passed: bool, message: str | None) -> dict[str, Any]:
        return {"name": self.name, "severity": self.severity, "passed": passed,
                "message": None if passed else (message or self.message or "failed")}

    def describe(self) -> str:
        return self.message or (getattr(self.fn, "__doc__", None) or "").strip().split("\n")[0]


def check(fn: Callable[[Any], Any] | None = None, *, name: str | None = None, severity: str = "error",
          message: str | None = None) -> Any:
    """Your own check: ``check(lambda rows: len(rows) < 10_000, name="small")``, or as a decorator::

        @check(severity="warn", message="some orders have no customer")
        def customers_known(rows): return all(r["customer"] for r in rows)
    """
    def make(f: Callable[[Any], Any]) -> Check:
        return Check(f, name or str(getattr(f, "__name__", "check")), severity, message)

    return make if fn is None else make(fn)


# ------------------------------------------------------------------------------------ ready-made
def _records(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise TypeError("expects a list of records (objects)")
    return result


def not_empty(*, severity: str = "error") -> Check:
    """The result is not null, nor an empty list, object or string."""
    def test(result: Any) -> bool:
        return result is not None and not (isinstance(result, (list, dict, str)) and len(result) == 0)
    return Check(test, "not_empty", severity, "the result is empty")


def row_count(min: int | None = None, max: int | None = None, *, severity: str = "error") -> Check:
    """The result is a list of between ``min`` and ``max`` items (either may be left open)."""
    def test(result: Any) -> bool:
        if not isinstance(result, list):
            raise TypeError("expects a list")
        if (min is not None and len(result) < min) or (max is not None and len(result) > max):
            raise ValueError(f"{len(result):,} rows, expected {_range(min, max)}")
        return True
    return Check(test, f"row_count({_range(min, max)})", severity)


def no_nulls(column: str, *, severity: str = "error") -> Check:
    """Every record has ``column``, and it is not null."""
    def test(result: Any) -> bool:
        bad = [i for i, r in enumerate(_records(result)) if r.get(column) is None]
        if bad:
            raise ValueError(f"{len(bad):,} record(s) with {column!r} null or missing (first at index {bad[0]})")
        return True
    return Check(test, f"no_nulls({column})", severity)


def unique(key: str | Sequence[str], *, severity: str = "error") -> Check:
    """No two records share ``key`` (a column, or a list of columns taken together)."""
    columns = [key] if isinstance(key, str) else list(key)

    def test(result: Any) -> bool:
        seen: set[str] = set()
        for row in _records(result):
            value = json.dumps([row.get(c) for c in columns], sort_keys=True)
            if value in seen:
                raise ValueError(f"duplicate {'/'.join(columns)}: {value}")
            seen.add(value)
        return True
    return Check(test, f"unique({', '.join(columns)})", severity)


def values_in(column: str, allowed: Sequence[Any], *, severity: str = "error") -> Check:
    """Every record's ``column`` is one of ``allowed``."""
    choices = list(allowed)

    def test(result: Any) -> bool:
        for i, row in enumerate(_records(result)):
            if row.get(column) not in choices:
                raise ValueError(f"record {i}: {column}={row.get(column)!r} is not one of {choices!r}")
        return True
    return Check(test, f"values_in({column})", severity)


def schema(model: Any, *, severity: str = "error") -> Check:
    """The result (or each record of a list) validates against a pydantic model."""
    def test(result: Any) -> bool:
        from pydantic import TypeAdapter

        adapter = TypeAdapter(list[model] if isinstance(result, list) else model)
        adapter.validate_python(result)
        return True
    return Check(test, f"schema({getattr(model, '__name__', model)})", severity)


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}..{high}"
    return f">= {low}" if low is not None else f"<= {high}" if high is not None else "any"


# --------------------------------------------------------------------------------------- running
_REGISTRY: dict[Callable[..., Any], tuple[Check, ...]] = {}
_collector: ContextVar[list[dict[str, Any]] | None] = ContextVar("strato_check_outcomes", default=None)


def register(fn: Callable[..., Any], checks: Sequence[Check]) -> None:
    """The checks of the task whose function is ``fn`` (``@task`` calls this)."""
    if checks:
        _REGISTRY[fn] = tuple(checks)


def checks_of(fn: Callable[..., Any]) -> tuple[Check, ...]:
    return _REGISTRY.get(fn, ())


@contextmanager
def collecting() -> Iterator[list[dict[str, Any]]]:
    """The outcomes of the checks run inside the block (the runner stores them with the attempt)."""
    outcomes: list[dict[str, Any]] = []
    token = _collector.set(outcomes)
    try:
        yield outcomes
    finally:
        _collector.reset(token)


def run_checks(task_name: str, fn: Callable[..., Any], result: Any) -> None:
    """Run the task's checks on its JSON result; raise CheckFailed when an ``error`` check fails."""
    checks = _REGISTRY.get(fn)
    if not checks:
        return
    outcomes = [c.evaluate(result) for c in checks]
    collector = _collector.get()
    if collector is not None:
        collector.extend(outcomes)
    failed = [o for o in outcomes if not o["passed"]]
    for outcome in failed:
        if outcome["severity"] == "warn":
            _log.warning("check %r of task %r failed: %s", outcome["name"], task_name, outcome["message"])
    errors = [o for o in failed if o["severity"] == "error"]
    if errors:
        raise CheckFailed("; ".join(f"check {o['name']!r} of task {task_name!r} failed: {o['message']}"
                                    for o in errors))
