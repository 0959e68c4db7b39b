"""Azure's rules for a pipeline before it compiles: resource tag syntax and expressible schedules.

:func:`check` is the adapter's ``check``: everything Azure refuses, as located diagnostics, so
``strato validate``/``compile`` report it where the pipeline says it rather than at deploy time.
Tags go on the function app and its resources (``strato.infra.azure``), hence Azure's tag limits.
"""

from __future__ import annotations

from typing import Any

from strato import ir
from strato.errors import Diagnostic

from ..common.pools import pool_warnings
from .triggers import ScheduleError, ncrontab

TAG_NAME_MAX, TAG_VALUE_MAX, TAG_COUNT_MAX = 512, 256, 50
TAG_NAME_FORBIDDEN = "<>%&\\?/"


def check(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    """Everything Azure refuses in this pipeline and its sub-pipelines, located."""
    out: list[Diagnostic] = []
    if pipeline.schedule is not None:
        try:
            ncrontab(pipeline.schedule)
        except ScheduleError as exc:
            out.append(Diagnostic(str(exc), pipeline.schedule.location or pipeline.location,
                                  f"pipeline {pipeline.name!r} schedule"))
    for p in (pipeline, *(pipeline.subpipelines[name] for name in sorted(pipeline.subpipelines))):
        out.extend(tag_problems(p.tags, p.location, f"pipeline {p.name!r}"))
        for name in sorted(p.tasks):
            spec = p.tasks[name]
            out.extend(tag_problems(spec.tags, spec.location or p.location, f"task {name!r}"))
    out.extend(pool_warnings(pipeline, "azure", "a map's max_concurrency bounds its fan-out; the Functions "
                                                "host's concurrency settings cap activities across instances"))
    return out


def tag_problems(tags: dict[str, str], location: Any, subject: str) -> list[Diagnostic]:
    """Azure resource tags: names <= 512 without ``<>%&\\?/``, values <= 256, at most 50, case-insensitive."""
    out = []
    if len(tags) > TAG_COUNT_MAX:
        out.append(Diagnostic(f"has {len(tags)} tags; Azure allows at most {TAG_COUNT_MAX} per resource",
                              location, subject))
    seen: dict[str, str] = {}
    for name in sorted(tags):
        value = tags[name]
        bad = sorted({c for c in name if c in TAG_NAME_FORBIDDEN})
        if bad:
            out.append(Diagnostic(f"tag name {name!r} contains {' '.join(bad)}; Azure tag names cannot contain "
                                  f"any of {TAG_NAME_FORBIDDEN}", location, subject))
        if len(name) > TAG_NAME_MAX:
            out.append(Diagnostic(f"tag name {name[:40]!r}... is {len(name)} characters; Azure allows "
                                  f"{TAG_NAME_MAX}", location, subject))
        if not isinstance(value, str) or len(value) > TAG_VALUE_MAX:
            size = len(value) if isinstance(value, str) else "not a string"
            out.append(Diagnostic(f"tag {name!r} value is {size} characters; Azure allows {TAG_VALUE_MAX}",
                                  location, subject))
        other = seen.setdefault(name.lower(), name)
        if other != name:
            out.append(Diagnostic(f"tags {other!r} and {name!r} differ only in case; Azure tag names are "
                                  "case-insensitive", location, subject))
    return out
