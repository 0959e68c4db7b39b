"""What starts a run on Azure: schedules (NCRONTAB timer triggers), HTTP starters and Blob events.

Compile time: :func:`ncrontab` turns a ``Schedule`` into the 6-field NCRONTAB of a timer trigger, or
raises :class:`ScheduleError` saying why it cannot (``rules.check`` reports it, located).

Run time (imported by the generated app's starters): :func:`start_input` checks an HTTP body
against the pipeline's parameters and :func:`object_created_input` maps an Event Grid
``BlobCreated`` event onto the ``bucket``/``key``/``size`` parameters.

Time zones: a timer trigger's NCRONTAB is evaluated in UTC. Only ``WEBSITE_TIME_ZONE`` changes that,
and Python function apps run on Linux, where that setting is not supported on the Consumption and
Flex Consumption plans (and it would apply to every schedule of the app). So a schedule must be in
UTC (or a zone that is UTC all year, e.g. ``Etc/UTC``); any other zone is a compile error that says
how to write it in UTC.
"""

from __future__ import annotations

import re
from typing import Any

from strato.adapters.common.errors import CompileError
from strato.ir import ScheduleSpec

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
    """The timer trigger's 6-field NCRONTAB (``second minute hour day month day-of-week``), in UTC."""
    if schedule.timezone not in UTC_ZONES:
        raise ScheduleError(
            f"timezone {schedule.timezone!r} cannot be honoured: Azure timer triggers run in UTC, and "
            "WEBSITE_TIME_ZONE is not supported for Python apps on Linux Consumption or Flex Consumption plans; "
            "use timezone='UTC' and write the cron in UTC")
    if schedule.every is not None:
        return _every(schedule)
    if schedule.cron is None:
        raise ScheduleError("give cron='m h dom mon dow' or every='15m'")
    fields = schedule.cron.lower().split()
    if len(fields) != 5:
        raise ScheduleError(f"cron {schedule.cron!r} must have 5 fields")
    out = [_field(value, *spec) for value, spec in zip(fields, _FIELDS, strict=True)]
    if out[2] != "*" and out[4] != "*":
        raise ScheduleError(f"cron {schedule.cron!r} restricts both day-of-month and day-of-week: unix cron runs "
                            "when either matches, NCRONTAB only when both do; use '*' for one of them")
    return " ".join(["0", *out])


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
