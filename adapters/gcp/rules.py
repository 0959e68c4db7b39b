"""GCP rules for what the IR carries: labels (from tags), function limits, schedules and triggers.

Labels are checked, never mangled: a tag GCP would refuse is a located error naming the rule, so
what the user wrote is what lands on the resources.
"""

from __future__ import annotations

import re
from typing import Any

from strato import ir
from strato.errors import Diagnostic

from ..common.pools import pool_warnings

MAX_LABELS, MAX_LENGTH = 64, 63
MAX_TASK_TIMEOUT = 1800  # a Workflows HTTP call waits at most 1800 s
MAX_MEMORY_MB = 32768  # Cloud Functions 2nd gen
_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")
_VALUE = re.compile(r"^[a-z0-9_-]*$")


def label_problems(labels: dict[str, str], where: Any, subject: str) -> list[Diagnostic]:
    out = []
    if len(labels) > MAX_LABELS:
        out.append(Diagnostic(f"{len(labels)} labels; GCP allows at most {MAX_LABELS} per resource", where, subject))
    for key, value in labels.items():
        if not 1 <= len(key) <= MAX_LENGTH:
            out.append(Diagnostic(f"label key {key[:30]!r} is {len(key)} characters; GCP allows 1 to {MAX_LENGTH}",
                                  where, subject))
        elif not _KEY.match(key):
            out.append(Diagnostic(f"label key {key!r}: GCP label keys start with a lowercase letter and use only "
                                  "lowercase letters, digits, '_' and '-'", where, subject))
        if not isinstance(value, str) or len(value) > MAX_LENGTH:
            out.append(Diagnostic(f"label {key!r} value is {len(str(value))} characters; GCP allows at most "
                                  f"{MAX_LENGTH}", where, subject))
        elif not _VALUE.match(value):
            out.append(Diagnostic(f"label {key!r} value {value!r}: GCP label values use only lowercase letters, "
                                  "digits, '_' and '-'", where, subject))
    return out


def check(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    """Every GCP rule the IR can break, located where the user wrote the offending thing."""
    out: list[Diagnostic] = []
    for p in (pipeline, *pipeline.subpipelines.values()):
        subject = f"pipeline {p.name!r} (gcp)"
        out.extend(label_problems(p.tags, p.location, subject))
        for spec in p.tasks.values():
            task_subject = f"task {spec.name!r} (gcp)"
            own = {k: v for k, v in spec.tags.items() if k not in p.tags or p.tags[k] != v}
            out.extend(label_problems(own, spec.location, task_subject))
            if len(spec.tags) > MAX_LABELS and len(own) <= MAX_LABELS:
                out.append(Diagnostic(f"{len(spec.tags)} labels with the pipeline's; GCP allows at most "
                                      f"{MAX_LABELS} per resource", spec.location, task_subject))
            if spec.timeout is not None and spec.timeout > MAX_TASK_TIMEOUT:
                out.append(Diagnostic(f"timeout={spec.timeout:g}s; a Cloud Workflows HTTP call waits at most "
                                      f"{MAX_TASK_TIMEOUT} s", spec.location, task_subject))
            if spec.memory is not None and spec.memory > MAX_MEMORY_MB:
                out.append(Diagnostic(f"memory={spec.memory} MB; Cloud Functions (2nd gen) allows at most "
                                      f"{MAX_MEMORY_MB}", spec.location, task_subject))
            if "<locals>" in spec.qualname:
                out.append(Diagnostic(f"task {spec.name!r} is defined inside a function: it runs in emulation, but "
                                      "the Cloud Function imports tasks by module and name, so define it at module "
                                      "level to deploy", spec.location, task_subject, "warning"))

    from .triggers import trigger_problems

    out.extend(trigger_problems(pipeline))
    out.extend(pool_warnings(pipeline, "gcp", "a map's max_concurrency becomes its concurrency_limit;"
                                              " a Cloud Function's max instances caps it across executions"))
    return out
