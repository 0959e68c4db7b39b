"""Schedules and events as AWS sees them: data for ``infra/`` (EventBridge Scheduler, EventBridge
rules on S3 events, an HTTPS start endpoint) and for the emulator's trigger harness."""

from __future__ import annotations

import json
import re
from typing import Any

from strato import ir
from strato.errors import Diagnostic
from strato.ir import HttpSpec, ObjectCreatedSpec, ScheduleSpec

_UNIX_DAYS = {"0": "1", "1": "2", "2": "3", "3": "4", "4": "5", "5": "6", "6": "7", "7": "1"}


class TriggerError(ValueError):
    """A schedule or trigger AWS cannot express."""


def _dow(field: str) -> str:
    """Unix day-of-week (0-7, Sunday 0 or 7) to EventBridge's (1-7, Sunday 1); names pass through."""
    def one(part: str) -> str:
        if "/" in part:
            raise TriggerError(f"day-of-week step {part!r} has no EventBridge equivalent")
        if "-" in part:
            low, high = part.split("-", 1)
            return f"{one(low)}-{one(high)}"
        return _UNIX_DAYS.get(part, part.upper())

    return ",".join(one(part) for part in field.split(","))


def schedule_expression(schedule: ScheduleSpec) -> str:
    """``cron(...)`` or ``rate(...)`` for EventBridge Scheduler."""
    if schedule.every is not None:
        minutes = (schedule.every_seconds or 60) // 60
        for size, unit in ((1440, "day"), (60, "hour"), (1, "minute")):
            if minutes % size == 0:
                count = minutes // size
                return f"rate({count} {unit}{'s' if count != 1 else ''})"
    minute, hour, dom, month, dow = (schedule.cron or "").split()
    if dom != "*" and dow != "*":
        raise TriggerError(f"cron {schedule.cron!r} restricts both day-of-month and day-of-week; EventBridge needs "
                           "one of them to be '?': split it into two schedules")
    if dow == "*":
        dow = "?"
    else:
        dom, dow = "?", _dow(dow)
    return f"cron({minute} {hour} {dom} {month} {dow} *)"


def schedule_spec(pipeline: ir.PipelineIR) -> dict[str, Any] | None:
    """An EventBridge Scheduler schedule starting the pipeline's state machine."""
    if pipeline.schedule is None:
        return None
    return {"ScheduleExpression": schedule_expression(pipeline.schedule),
            "ScheduleExpressionTimezone": pipeline.schedule.timezone,
            "Input": json.dumps(pipeline.schedule.input or {}, sort_keys=True)}


def object_created_rule(trigger: ObjectCreatedSpec) -> dict[str, Any]:
    """The EventBridge pattern for S3 "Object Created" events in the bucket, prefix and suffix."""
    key: list[dict[str, str]] = []
    if trigger.prefix and trigger.suffix:
        prefix, suffix = (re.sub(r"([*\\])", r"\\\1", part) for part in (trigger.prefix, trigger.suffix))
        key = [{"wildcard": f"{prefix}*{suffix}"}]
    elif trigger.prefix:
        key = [{"prefix": trigger.prefix}]
    elif trigger.suffix:
        key = [{"suffix": trigger.suffix}]
    detail: dict[str, Any] = {"bucket": {"name": [trigger.bucket]}}
    if key:
        detail["object"] = {"key": key}
    return {"source": ["aws.s3"], "detail-type": ["Object Created"], "detail": detail}


def event_input(pipeline: ir.PipelineIR, trigger: ObjectCreatedSpec, event: dict[str, Any]) -> dict[str, Any]:
    """The run input an S3 "Object Created" event gives: event fields for parameters of those names."""
    names = {p.name for p in pipeline.params}
    detail = event.get("detail", {})
    fields = {"bucket": detail.get("bucket", {}).get("name"), "key": detail.get("object", {}).get("key"),
              "size": detail.get("object", {}).get("size")}
    return {**(trigger.input or {}), **{k: v for k, v in fields.items() if k in names}}


def input_transformer(pipeline: ir.PipelineIR, trigger: ObjectCreatedSpec) -> dict[str, Any]:
    """The same mapping as an EventBridge InputTransformer, for the rule's state machine target."""
    names = {p.name for p in pipeline.params}
    paths = {k: v for k, v in {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key",
                               "size": "$.detail.object.size"}.items() if k in names}
    template = {**{k: json.dumps(v) for k, v in (trigger.input or {}).items()}, **{k: f"<{k}>" for k in paths}}
    body = ", ".join(f'"{k}": {v}' for k, v in template.items())
    return {"InputPathsMap": paths, "InputTemplate": "{" + body + "}"}


def http_endpoint(pipeline: ir.PipelineIR, trigger: HttpSpec) -> dict[str, Any]:
    """An HTTPS endpoint (API Gateway -> StartExecution) whose JSON body is the run's input."""
    return {"path": trigger.path or f"/pipelines/{pipeline.name}", "method": "POST",
            "authorization": "AWS_IAM" if trigger.auth == "iam" else "NONE"}


def trigger_problems(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    out = []
    subject = f"pipeline {pipeline.name!r} (aws)"
    if pipeline.schedule is not None:
        try:
            schedule_expression(pipeline.schedule)
        except TriggerError as exc:
            out.append(Diagnostic(str(exc), pipeline.schedule.location or pipeline.location, subject))
    return out
