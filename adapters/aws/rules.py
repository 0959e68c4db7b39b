"""AWS rules for what the IR carries: tags, and schedules and triggers as EventBridge sees them."""

from __future__ import annotations

import re
from typing import Any

from strato import ir
from strato.errors import Diagnostic

from ..common.pools import pool_warnings

MAX_TAGS, MAX_KEY, MAX_VALUE = 50, 128, 256
_ALLOWED = re.compile(r"^[\w\s.:/=+\-@]*$", re.UNICODE)


def tag_problems(tags: dict[str, str], where: Any, subject: str) -> list[Diagnostic]:
    out = []
    if len(tags) > MAX_TAGS:
        out.append(Diagnostic(f"{len(tags)} tags; AWS allows at most {MAX_TAGS} per resource", where, subject))
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            out.append(Diagnostic(f"tag {key!r}: the 'aws:' prefix is reserved by AWS", where, subject))
        if len(key) > MAX_KEY:
            out.append(Diagnostic(f"tag key {key[:30]!r}... is {len(key)} characters; AWS allows {MAX_KEY}",
                                  where, subject))
        if len(value) > MAX_VALUE:
            out.append(Diagnostic(f"tag {key!r} value is {len(value)} characters; AWS allows {MAX_VALUE}",
                                  where, subject))
        for label, text in (("key", key), ("value", value)):
            if not _ALLOWED.match(text):
                bad = sorted({c for c in text if not _ALLOWED.match(c)})
                out.append(Diagnostic(f"tag {label} {text!r} has {''.join(bad)!r}; AWS tags allow letters, digits, "
                                      "spaces and _ . : / = + - @", where, subject))
    return out


def check(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    """Every AWS rule the IR can break, located where the user wrote the offending thing."""
    out: list[Diagnostic] = []
    for p in (pipeline, *pipeline.subpipelines.values()):
        subject = f"pipeline {p.name!r} (aws)"
        out.extend(tag_problems(p.tags, p.location, subject))
        for spec in p.tasks.values():
            out.extend(tag_problems({k: v for k, v in spec.tags.items() if k not in p.tags}, spec.location,
                                    f"task {spec.name!r} (aws)"))
            if spec.memory is not None and spec.memory > 10240:
                out.append(Diagnostic(f"memory={spec.memory} MB; Lambda allows 128 to 10240", spec.location,
                                      f"task {spec.name!r} (aws)"))
            if spec.timeout is not None and spec.timeout > 900 and spec.runtime == "function":
                out.append(Diagnostic(f"timeout={spec.timeout:g}s; Lambda runs at most 900 s: use "
                                      "runtime='worker' for longer tasks", spec.location, f"task {spec.name!r} (aws)"))
            if "<locals>" in spec.qualname:
                out.append(Diagnostic(f"task {spec.name!r} is defined inside a function: it runs in emulation, but "
                                      "Lambda imports tasks by module and name, so define it at module level to "
                                      "deploy", spec.location, f"task {spec.name!r} (aws)", "warning"))

    from .triggers import trigger_problems

    out.extend(trigger_problems(pipeline))
    out.extend(pool_warnings(pipeline, "aws", "a map's max_concurrency becomes its MaxConcurrency;"
                                              " reserved concurrency on the task's Lambda caps it across executions"))
    return out
