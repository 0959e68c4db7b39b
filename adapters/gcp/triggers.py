"""Schedules and events as Google Cloud sees them: data for ``infra/`` (a Cloud Scheduler job, an
Eventarc trigger, an authenticated start endpoint), all starting executions of the workflow.

Placeholders in braces (``{project}``, ``{region}``, ``{workflow}``, ``{service_account}``) are filled
by infra at deploy time, so these specs, like the compiled workflow, hold no project id.
"""

from __future__ import annotations

import json
import re
from typing import Any

from strato import ir
from strato.errors import Diagnostic
from strato.ir import HttpSpec, ObjectCreatedSpec, ScheduleSpec

from .naming import workflow_name

EXECUTIONS_URL = "https://workflowexecutions.googleapis.com/v1/projects/{project}/locations/{region}/workflows/" \
                 "{workflow}/executions"
FINALIZED = "google.cloud.storage.object.v1.finalized"


class TriggerError(ValueError):
    """A schedule or trigger Google Cloud cannot express."""


def schedule_cron(schedule: ScheduleSpec) -> str:
    """Unix cron for Cloud Scheduler; ``every`` must divide an hour or a day evenly to be one cron line."""
    if schedule.every is None:
        return schedule.cron or ""
    minutes = (schedule.every_seconds or 60) // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes < 1440 and 24 % (minutes // 60) == 0:
        hours = minutes // 60
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 1440:
        return "0 0 * * *"
    raise TriggerError(f"every={schedule.every!r} cannot be one Cloud Scheduler cron line (the interval must divide "
                       "an hour or a day evenly, or be '1d'); write cron='...' instead")


def scheduler_job(pipeline: ir.PipelineIR) -> dict[str, Any] | None:
    """A Cloud Scheduler job calling the Workflow Executions API with the schedule's input."""
    schedule = pipeline.schedule
    if schedule is None:
        return None
    return {"name": f"strato-{workflow_name(pipeline.name)}-schedule", "schedule": schedule_cron(schedule),
            "time_zone": schedule.timezone,
            "http_target": {"uri": EXECUTIONS_URL.replace("{workflow}", workflow_name(pipeline.name)),
                            "http_method": "POST",
                            "body": json.dumps({"argument": json.dumps(schedule.input or {}, sort_keys=True)},
                                               sort_keys=True),
                            "oauth_token": {"service_account_email": "{service_account}",
                                            "scope": "https://www.googleapis.com/auth/cloud-platform"}}}


def path_pattern(trigger: ObjectCreatedSpec) -> str:
    """The object-name pattern for a prefix and suffix (Eventarc path-pattern syntax, ``**`` any depth)."""
    head, _, partial = trigger.prefix.rpartition("/")
    return f"{'/' + head + '/' if head else '/'}**/{partial}*{trigger.suffix}"


def eventarc_trigger(pipeline: ir.PipelineIR, trigger: ObjectCreatedSpec) -> dict[str, Any]:
    """An Eventarc trigger on object finalisation in the bucket, destined for the workflow.

    The event's object name is matched against ``path_pattern`` (prefix and suffix); the run input is
    built by :func:`event_input`.
    """
    return {"event_filters": [{"attribute": "type", "value": FINALIZED},
                              {"attribute": "bucket", "value": trigger.bucket}],
            "path_pattern": path_pattern(trigger), "prefix": trigger.prefix, "suffix": trigger.suffix,
            "destination": {"workflow": workflow_name(pipeline.name)},
            "service_account": "{service_account}"}


def event_matches(trigger: ObjectCreatedSpec, event: dict[str, Any]) -> bool:
    data = event.get("data", event)
    name = data.get("name") or ""
    return data.get("bucket") == trigger.bucket and name.startswith(trigger.prefix) and name.endswith(trigger.suffix)


def event_input(pipeline: ir.PipelineIR, trigger: ObjectCreatedSpec, event: dict[str, Any]) -> dict[str, Any]:
    """The run input a Cloud Storage CloudEvent gives: event fields for parameters of those names.

    The compiled workflow does the same to the CloudEvent Eventarc passes as its argument (see
    ``compiler._Subworkflow._event_input``); ``size``, a decimal string in the event, becomes a number.
    """
    names = {p.name for p in pipeline.params}
    data = event.get("data", event)
    size = data.get("size")
    fields = {"bucket": data.get("bucket"), "key": data.get("name"),
              "size": int(size) if isinstance(size, str) and re.fullmatch(r"[0-9]+", size) else size}
    return {**(trigger.input or {}), **{k: v for k, v in fields.items() if k in names}}


def http_endpoint(pipeline: ir.PipelineIR, trigger: HttpSpec) -> dict[str, Any]:
    """Starting a run over HTTPS: the Executions API, IAM-authenticated (``roles/workflows.invoker``)."""
    return {"path": trigger.path or f"/pipelines/{pipeline.name}", "method": "POST",
            "target": EXECUTIONS_URL.replace("{workflow}", workflow_name(pipeline.name)),
            "body": {"argument": "<the run input as a JSON string>"},
            "authentication": "iam" if trigger.auth == "iam" else "none",
            "invoker_role": "roles/workflows.invoker"}


def trigger_specs(pipeline: ir.PipelineIR) -> dict[str, Any]:
    """Everything infra needs to start the workflow: schedule, events and endpoints."""
    return {"schedule": scheduler_job(pipeline),
            "events": [eventarc_trigger(pipeline, t) for t in pipeline.triggers if isinstance(t, ObjectCreatedSpec)],
            "http": [http_endpoint(pipeline, t) for t in pipeline.triggers if isinstance(t, HttpSpec)]}


def trigger_problems(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    out = []
    if pipeline.schedule is not None:
        try:
            schedule_cron(pipeline.schedule)
        except TriggerError as exc:
            out.append(Diagnostic(str(exc), pipeline.schedule.location or pipeline.location,
                                  f"pipeline {pipeline.name!r} (gcp)"))
    for trigger in pipeline.triggers:
        if isinstance(trigger, HttpSpec) and trigger.auth == "none":
            out.append(Diagnostic("Http(auth='none'): starting a workflow execution always needs IAM on Google "
                                  "Cloud; the endpoint will require roles/workflows.invoker", trigger.location
                                  or pipeline.location, f"pipeline {pipeline.name!r} (gcp)", "warning"))
    return out
