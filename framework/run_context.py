"""What a running task may know about its run: :func:`context`, and parameter defaults taken from it.

``strato.context()`` inside a task returns a frozen :class:`RunContext`. The runner (or a cloud's task
shim) sets it around each attempt with :func:`task_context`; the fields are plain values, and
:meth:`RunContext.to_dict` / :meth:`RunContext.from_dict` are the wire form a compiler passes to a shim,
so every backend builds the same object.

:func:`scheduled_date` and :func:`scheduled_time` are parameter defaults derived from the run's
``scheduled_at`` (the tick a scheduled or backfilled run is for; the run's start for a manual run).
They are recorded in the IR as ``{"$strato_scheduled": {...}}`` and resolved when the run starts, so a
daily pipeline needs no "yesterday" logic inside a task.

This module imports only the standard library: ``import strato`` stays fast.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

from ._record import record
from .errors import StratoError, caller_location

MARKER = "$strato_scheduled"
KINDS = ("date", "datetime")


class NoRunContext(StratoError):
    """``strato.context()`` was called outside a running task."""


@record
class RunContext:
    """The run a task attempt belongs to.

    ``task_id`` is the call's id in its pipeline, prefixed by sub-pipeline calls (``load``,
    ``report/fetch``), without a map index; ``task`` is the task's name; ``attempt`` counts from 1 over
    the run's life (resumes continue the numbering); ``map_index`` is the item's position in a map (None
    otherwise); ``backend`` is ``"local"``, ``"aws"``, ``"gcp"`` or ``"azure"``; ``scheduled_at`` is
    the tick a scheduled or backfilled run is for, as an aware UTC datetime, or None for a manual run.
    """

    run_id: str
    pipeline: str
    task_id: str
    task: str
    attempt: int
    map_index: int | None
    backend: str
    scheduled_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``scheduled_at`` as ISO 8601 in UTC, or null)."""
        data = asdict(self)
        data["scheduled_at"] = iso_utc(self.scheduled_at)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunContext:
        return cls(str(data["run_id"]), str(data["pipeline"]), str(data["task_id"]), str(data["task"]),
                   int(data["attempt"]), None if data.get("map_index") is None else int(data["map_index"]),
                   str(data["backend"]), parse_instant(data.get("scheduled_at")))


# a RunContext, or what builds it on first use (the local runner's: most tasks never ask)
_Current = RunContext | Callable[[], RunContext] | None
_current: contextvars.ContextVar[_Current] = contextvars.ContextVar("strato_run_context", default=None)


def context() -> RunContext:
    """The context of the task attempt running in this thread; a clear error anywhere else."""
    found = _current.get()
    if found is None:
        raise NoRunContext("strato.context() is only available inside a running task (called by a pipeline run); "
                           "outside one there is no run, task or attempt to describe")
    if not isinstance(found, RunContext):
        found = found()
        _current.set(found)  # built once per attempt: leave() restores what was there before
    return found


def enter(ctx: RunContext | Callable[[], RunContext]) -> contextvars.Token[_Current]:
    """:func:`task_context` without the context manager (the runner's hot path); pair with :func:`leave`.
    ``ctx`` may be a function building the context when :func:`context` is first called."""
    return _current.set(ctx)


def leave(token: contextvars.Token[_Current]) -> None:
    _current.reset(token)


@contextmanager
def task_context(ctx: RunContext) -> Iterator[RunContext]:
    """Within the block, :func:`context` returns ``ctx`` (set by the runner and the task shims)."""
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def split_key(key: str) -> tuple[str, int | None]:
    """A run-store unit key (``clean[3]``, ``sub/load``, ``clean[3]#catch``) -> (task id, map index)."""
    head, sep, tail = key.partition("#")
    index = None
    if head.endswith("]") and "[" in head:
        base, _, number = head[:-1].rpartition("[")
        if number.isdigit():
            head, index = base, int(number)
    return head + sep + tail, index


# instants -----------------------------------------------------------------------------------------
def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 string, epoch seconds or a datetime -> an aware UTC datetime (naive means UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise StratoError(f"{value!r} is not an ISO 8601 date or time (e.g. 2024-03-01 or "
                              "2024-03-01T02:00:00+01:00)") from None
    else:
        raise StratoError(f"{value!r} is not a date or time")
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).astimezone(UTC)


def iso_utc(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# parameter defaults from scheduled_at --------------------------------------------------------------
@record
class ScheduledValue:
    """A parameter default computed from the run's ``scheduled_at`` when the run starts.

    ``as_`` is ``"date"`` (``YYYY-MM-DD``) or ``"datetime"`` (ISO 8601 with the zone's offset). The
    instant is taken in ``timezone`` (None: the pipeline schedule's timezone, else UTC), moved by
    ``offset_days`` calendar days (DST-safe) and ``offset_seconds``.
    """

    as_: str
    offset_days: int = 0
    offset_seconds: int = 0
    timezone: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {MARKER: {"as": self.as_, "offset_days": self.offset_days, "offset_seconds": self.offset_seconds,
                         "timezone": self.timezone}}


def _scheduled(as_: str, offset_days: Any, offset_seconds: Any, timezone: Any, what: str) -> ScheduledValue:
    for name, value in (("offset_days", offset_days), ("offset_seconds", offset_seconds)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise StratoError(f"{caller_location()}: {what}({name}={value!r}): give a whole number")
    if timezone is not None:
        _zone(timezone, f"{caller_location()}: {what}(timezone={timezone!r})")
    return ScheduledValue(as_, offset_days, offset_seconds, timezone)


def scheduled_date(offset_days: int = 0, *, timezone: str | None = None) -> Any:
    """A parameter default: the run's ``scheduled_at`` as a ``YYYY-MM-DD`` date, ``offset_days`` away.

    ``def daily(day: str = strato.scheduled_date(offset_days=-1))`` gives a run scheduled at
    2024-03-02T02:00 the day ``"2024-03-01"``. The date is taken in ``timezone``, by default the
    pipeline schedule's. A manual run (no ``scheduled_at``) uses its start time; an explicit input wins.
    """
    return _scheduled("date", offset_days, 0, timezone, "scheduled_date")


def scheduled_time(offset_seconds: int = 0, *, offset_days: int = 0, timezone: str | None = None) -> Any:
    """A parameter default: the run's ``scheduled_at`` as an ISO 8601 time, moved by the offsets."""
    return _scheduled("datetime", offset_days, offset_seconds, timezone, "scheduled_time")


def is_scheduled_default(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(MARKER), dict)


def with_timezone(value: Any, timezone: str) -> Any:
    """A default's JSON with the pipeline schedule's timezone filled in where none was given."""
    if is_scheduled_default(value) and value[MARKER].get("timezone") is None:
        return {MARKER: {**value[MARKER], "timezone": timezone}}
    return value


def _zone(name: str, where: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise StratoError(f"{where}: {name!r} is not an IANA timezone (e.g. 'Europe/Paris')") from None


def resolve_scheduled(value: Any, scheduled_at: datetime | None, now: datetime) -> Any:
    """A default's JSON with ``$strato_scheduled`` resolved against ``scheduled_at`` (or ``now``)."""
    if not is_scheduled_default(value):
        return value
    spec = value[MARKER]
    zone = _zone(spec.get("timezone") or "UTC", "a scheduled parameter default")
    local = (scheduled_at or now).astimezone(zone)
    days, seconds = int(spec.get("offset_days") or 0), int(spec.get("offset_seconds") or 0)
    if days:  # calendar days in the zone: wall time kept across a DST change
        wall = local.replace(tzinfo=None) + timedelta(days=days)
        local = wall.replace(tzinfo=zone)
    if seconds:
        local = (local.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(zone)
    if spec.get("as") == "date":
        return local.date().isoformat()
    return local.isoformat()


def resolve_defaults(values: dict[str, Any], scheduled_at: datetime | None, now: datetime | None = None) -> \
        dict[str, Any]:
    """Every scheduled default in a run's parameters, resolved (other values unchanged)."""
    if not any(is_scheduled_default(v) for v in values.values()):
        return values
    moment = now or datetime.now(UTC)
    return {k: resolve_scheduled(v, scheduled_at, moment) for k, v in values.items()}


__all__ = ["NoRunContext", "RunContext", "ScheduledValue", "context", "parse_instant", "resolve_defaults",
           "scheduled_date", "scheduled_time", "task_context"]
