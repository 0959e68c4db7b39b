"""What starts a run on Azure: schedules (NCRONTAB timer triggers), HTTP starters and Blob events.

Compile time: :func:`ncrontab` turns a ``Schedule`` into the 6-field NCRONTAB of a timer trigger, or
raises :class:`ScheduleError` saying why it cannot (``rules.check`` reports it, located).

Run time (imported by the generated app's starters): :func:`start_input` checks an HTTP body
against the pipeline's parameters and :func:`object_created_input` maps an Event Grid
``BlobCreated`` event onto the ``bucket``/``key``/``size`` parameters.

Time zones: a timer trigger's NCRONTAB is evaluated in UTC. Only ``WEBSITE_TIME_ZONE`` changes that,
and Python function apps run on Linux, where that setting is not supported on the Consumption and
Flex Consumption plans (and it would apply to every schedule of the app). So a cron in any other zone
is translated (:func:`local_timer`): the timer fires at every UTC minute and hour the local schedule
can fall on (the local times under each of the zone's UTC offsets, and the instants of its
transitions, where croniter puts a local time that a spring-forward skips), every day; at run time
:class:`LocalSchedule` starts the orchestration only when croniter, evaluated in the zone, fires at
that instant. Skipped and repeated hours therefore behave exactly as croniter does locally. An
``every=`` interval is the same in every zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, ClassVar

from strato.adapters.common.errors import CompileError
from strato.ir import ScheduleSpec

# what "now" is for a timer function's check: the replay host sets its virtual clock here while it
# runs a starter; a deployed app reads the system clock
NOW: ContextVar[Callable[[], float] | None] = ContextVar("strato_azure_now", default=None)

UTC_ZONES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/GMT", "GMT", "Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0",
                       "GMT0", "GMT+0", "GMT-0", "Etc/Greenwich", "Greenwich", "Etc/Universal", "Universal",
                       "Etc/Zulu", "Zulu"})

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                       "dec"), start=1)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day-of-month", 1, 31, {}), ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS))
_ELEMENT = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


class ScheduleError(CompileError, ValueError):
    """A schedule Azure's timer trigger cannot express."""


# ------------------------------------------------------------------------------------ schedules
def ncrontab(schedule: ScheduleSpec) -> str:
    """The timer trigger's 6-field NCRONTAB (``second minute hour day month day-of-week``), in UTC.

    A cron in a zone other than UTC gets :func:`local_timer`'s translation; the generated timer
    function then checks :class:`LocalSchedule`.
    """
    if schedule.every is not None:
        return _every(schedule)
    if schedule.cron is None:
        raise ScheduleError("give cron='m h dom mon dow' or every='15m'")
    if needs_check(schedule):
        return local_timer(schedule.cron, schedule.timezone)
    fields = schedule.cron.lower().split()
    if len(fields) != 5:
        raise ScheduleError(f"cron {schedule.cron!r} must have 5 fields")
    out = [_field(value, *spec) for value, spec in zip(fields, _FIELDS, strict=True)]
    return " ".join(["0", *out])


def needs_check(schedule: ScheduleSpec) -> bool:
    """Whether the timer needs :class:`LocalSchedule`'s run-time check: a cron in a zone that is not UTC
    all year, or days NCRONTAB cannot say (unix cron ORs a restricted day-of-month and day-of-week,
    NCRONTAB ANDs them; ``L`` and the like). The timer then fires every day and croniter decides."""
    if schedule.cron is None:
        return False
    if schedule.timezone not in UTC_ZONES:
        return True
    fields = schedule.cron.lower().split()
    if len(fields) != 5:
        return False
    try:
        days = [_field(value, *spec) for value, spec in zip(fields[2:], _FIELDS[2:], strict=True)]
    except ScheduleError:
        return True
    return days[0] != "*" and days[2] != "*"


def local_timer(cron: str, timezone: str) -> str:
    """A UTC NCRONTAB firing at every UTC time ``cron`` in ``timezone`` can fall on (days left to the check).

    The minutes and hours are those of every local time of the cron under each UTC offset the zone
    has, plus the UTC time of a transition whose skipped local times the cron names (croniter moves
    a local time that a spring-forward skips to the transition instant); the product of both sets
    is a superset, and
    :meth:`LocalSchedule.due` keeps only the instants croniter gives.
    """
    fields = cron.lower().split()
    if len(fields) != 5:
        raise ScheduleError(f"cron {cron!r} must have 5 fields")
    minutes = _values(_field(fields[0], *_FIELDS[0]), 0, 59)
    hours = _values(_field(fields[1], *_FIELDS[1]), 0, 23)
    offsets, transitions = zone_changes(timezone)
    local = {hour * 60 + minute for hour in hours for minute in minutes}
    utc_minutes: set[int] = set()
    utc_hours: set[int] = set()
    for offset in offsets:
        for at in local:
            utc = (at - offset) % 1440
            utc_hours.add(utc // 60)
            utc_minutes.add(utc % 60)
    for at, before, after in transitions:
        skipped = {(at + before + i) % 1440 for i in range(max(0, after - before))}
        if local & skipped:  # a local time this spring-forward skips: croniter fires at the transition
            utc_hours.add(at // 60)
            utc_minutes.add(at % 60)
    return f"0 {_list(utc_minutes, 60)} {_list(utc_hours, 24)} * * *"


def _values(field: str, low: int, high: int) -> list[int]:
    """The numbers an NCRONTAB minute or hour field (as :func:`_field` renders it) stands for."""
    out: set[int] = set()
    for element in field.split(","):
        base, _, step = element.partition("/")
        start, end = (low, high) if base == "*" else (int(base.split("-")[0]), int(base.split("-")[-1]))
        if step and base != "*" and "-" not in base:
            end = high
        out.update(range(start, end + 1, int(step) if step else 1))
    return sorted(out)


def _list(values: set[int], size: int) -> str:
    return "*" if len(values) == size else ",".join(str(v) for v in sorted(values))


@lru_cache(maxsize=64)
def zone_changes(timezone: str, first: int = 2000,
                 last: int = 2060) -> tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]:
    """The zone's UTC offsets, and its transitions as (UTC time of day, offset before, offset after),
    all in minutes, over the years given.

    zoneinfo has no public list of transitions, so the offset is sampled weekly and each change
    bisected to the minute (about 3,000 look-ups). Later rules are the zone's current ones; a zone
    that changes its rules needs the app compiled again, as with any tz data.
    """
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)

    def offset(at: datetime) -> timedelta:
        return at.astimezone(zone).utcoffset() or timedelta(0)

    at = datetime(first, 1, 1, tzinfo=UTC)
    end = datetime(last + 1, 1, 1, tzinfo=UTC)
    current = offset(at)
    offsets = {current}
    transitions: set[tuple[int, int, int]] = set()
    step = timedelta(days=7)
    while at < end:
        following = at + step
        changed = offset(following)
        if changed != current:
            low, high = at, following
            while high - low > timedelta(minutes=1):
                middle = (low + (high - low) / 2).replace(second=0, microsecond=0)
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            transitions.add((high.hour * 60 + high.minute, _minutes(current), _minutes(changed)))
            offsets.add(changed)
            current = changed
        at = following
    return tuple(sorted(_minutes(o) for o in offsets)), tuple(sorted(transitions))


def _minutes(offset: timedelta) -> int:
    return int(offset.total_seconds() // 60)


@dataclass(frozen=True)
class LocalSchedule:
    """A cron in a time zone, checked when its UTC timer fires (the generated timer function asks :meth:`due`).

    ``timer`` is the UTC NCRONTAB the trigger runs on (:func:`local_timer`).
    """

    cron: str
    timezone: str
    timer: str

    LOOKBACK: ClassVar[timedelta] = timedelta(hours=26)  # longer than a day and any repeated hour

    def due(self, now: float | datetime | None = None) -> bool:
        """Whether the timer's latest firing at or before ``now`` is a time croniter gives for the cron in the zone.

        ``now`` defaults to :data:`NOW` (the replay host's virtual clock) or the system clock; a timer
        function that starts late (a cold start) still checks the firing it belongs to.
        """
        from zoneinfo import ZoneInfo

        from croniter import croniter

        if now is None:
            from strato.runtime.clock import SystemClock

            now = (NOW.get() or SystemClock().now)()
        instant = now if isinstance(now, datetime) else datetime.fromtimestamp(now, UTC)
        utc_cron = " ".join(self.timer.split()[1:])  # croniter reads 5 fields: the timer's seconds are 0
        fired = croniter(utc_cron, instant.astimezone(UTC) + timedelta(seconds=1)).get_prev(datetime)
        # croniter's answer depends on where it starts inside a repeated hour (it gives both
        # 02:30s of a fall-back day when it walks through it, none when started between them), so
        # walk as a local scheduler would: from well before any transition near ``fired``
        # (transitions are weeks apart), up to ``fired``
        # (compared as timestamps: an aware datetime in a repeated hour never equals one of another zone)
        walk = croniter(self.cron, (fired - self.LOOKBACK).astimezone(ZoneInfo(self.timezone)))
        target = fired.timestamp()
        while True:
            at = walk.get_next(datetime).timestamp()
            if at >= target:
                return at == target


def _every(schedule: ScheduleSpec) -> str:

    seconds = schedule.every_seconds
    if seconds is None or seconds < 60 or seconds % 60:
        raise ScheduleError(f"every={schedule.every!r}: schedules run in whole minutes")
    minutes = seconds // 60
    if minutes < 60 and 60 % minutes == 0:
        return f"0 */{minutes} * * * *" if minutes > 1 else "0 * * * * *"
    if minutes % 60 == 0 and minutes < 1440 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return f"0 0 */{hours} * * *" if hours > 1 else "0 0 * * * *"
    if minutes == 1440:
        return "0 0 0 * * *"
    raise ScheduleError(f"every={schedule.every!r} is not a whole fraction of an hour or a day, so a timer trigger "
                        "cannot fire at even intervals; use e.g. '15m', '2h', '1d' or a cron")


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> str:
    """One cron field in NCRONTAB's syntax: names become numbers, a day-of-week 7 becomes 0."""
    values: set[int] = set()
    rendered = []
    for element in text.split(","):
        match = _ELEMENT.match(element)
        if not match:
            raise ScheduleError(f"{name} field {text!r}: {element!r} is not supported by NCRONTAB "
                                "(use numbers, ranges a-b, lists and steps /n)")
        base, step = match.group(1), match.group(2)
        if base == "*":
            start, end = low, (6 if name == "day-of-week" else high)
            rendered.append(element)
        else:
            parts = [_number(p, name, low, high, names) for p in base.split("-")]
            start, end = parts[0], parts[-1] if len(parts) == 2 else (high if step else parts[0])
            if start > end:
                raise ScheduleError(f"{name} field {text!r}: range {base!r} runs backwards")
            rendered.append(f"{start}-{end}/{step}" if step else (f"{start}-{end}" if len(parts) == 2 else f"{start}"))
        values.update(range(start, end + 1, int(step) if step else 1))
    if name == "day-of-week" and 7 in values:  # unix cron's second Sunday; NCRONTAB knows 0-6
        values = {0 if v == 7 else v for v in values}
        return ",".join(str(v) for v in sorted(values))
    return ",".join(rendered)


def _number(text: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    value = names.get(text[:3]) if text.isalpha() else (int(text) if text.isdigit() else None)
    if value is None and not text.isdigit():
        raise ScheduleError(f"{name} field: {text!r} is not supported by NCRONTAB (use numbers, ranges a-b, lists "
                            "and steps /n)")
    if value is None or not low <= value <= high:
        raise ScheduleError(f"{name} value {text!r} is out of range {low}-{high}")
    return value


# ---------------------------------------------------------------------------- run-time helpers
def start_input(body: bytes | str | None, required: tuple[str, ...],
                defaults: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """A run's input from a request body: a JSON object of known parameters with the required ones.

    Returns ``(input, None)`` or ``(None, problem)``; the orchestrator applies the defaults.
    """
    import json

    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        return None, f"the body is not JSON: {exc}"
    if not isinstance(data, dict):
        return None, "the body must be a JSON object of the pipeline's parameters"
    known = (*required, *defaults)
    unknown = sorted(k for k in data if k not in known)
    missing = [k for k in required if k not in data]
    problems = []
    if unknown:
        problems.append(f"unknown parameter(s) {', '.join(map(repr, unknown))}")
    if missing:
        problems.append(f"missing required parameter(s) {', '.join(map(repr, missing))}")
    return (None, "; ".join(problems)) if problems else (data, None)


def bad_request(problem: str) -> Any:
    """A 400 answer naming what is wrong with the input."""
    import json

    import azure.functions as func  # lazy: only the deployed app answers HTTP

    return func.HttpResponse(json.dumps({"error": problem}), status_code=400, mimetype="application/json")


def accepted(instance_id: str) -> Any:
    """202 with the run's id only: what a public (anonymous) starter answers. The Durable status URLs of
    ``create_check_status_response`` carry the extension's system key, which must not reach anonymous
    callers (https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-http-api)."""
    import json

    import azure.functions as func  # lazy: only the deployed app answers HTTP

    return func.HttpResponse(json.dumps({"id": instance_id}), status_code=202, mimetype="application/json")


BLOB_CREATED = "Microsoft.Storage.BlobCreated"
_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<key>.+)$")


def object_created_input(event_type: str, subject: str, data: Any, *, bucket: str, prefix: str, suffix: str,
                         fields: tuple[str, ...], extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A run's input for an Event Grid blob event, or None when the event is not for this trigger.

    ``fields`` are the pipeline parameters among ``bucket``, ``key`` and ``size`` that get the
    event's container, blob name and content length; ``extra`` gives the other parameters.
    """
    match = _SUBJECT.match(subject or "")
    if event_type != BLOB_CREATED or not match:
        return None
    container, key = match.group("container"), match.group("key")
    if container != bucket or not key.startswith(prefix) or not key.endswith(suffix):
        return None
    size = data.get("contentLength") if isinstance(data, dict) else None
    values = {"bucket": container, "key": key, "size": size}
    return {**(extra or {}), **{name: values[name] for name in fields}}
