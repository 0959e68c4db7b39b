"""Governance: tags, data classification and compile-time policies.

Tags are key/value strings on pipelines and tasks; a task's tags extend its pipeline's. The
``data-classification`` tag takes one of :data:`CLASSIFICATIONS`, and a task may raise but never
lower its pipeline's classification. Policies are shareable objects checked at validation time;
their violations are validation errors. Cloud-specific tag rules live in each adapter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .errors import Diagnostic, Location

if TYPE_CHECKING:
    from .ir import PipelineIR

CLASSIFICATION_KEY = "data-classification"
CLASSIFICATIONS = ("public", "internal", "confidential", "restricted")
MAX_KEY, MAX_VALUE = 128, 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def tag_problems(tags: Any, subject: str, location: Location | None) -> list[Diagnostic]:
    """Cloud-neutral tag rules: string keys and values of sane length, a known classification."""
    if tags is None:
        return []
    if not isinstance(tags, dict):
        return [Diagnostic(f"tags must be a dict of str to str, got {type(tags).__name__}", location, subject)]
    out = []
    for key, value in tags.items():
        if not isinstance(key, str) or not key.strip():
            out.append(Diagnostic(f"tag key {key!r} must be a non-empty string", location, subject))
            continue
        if len(key) > MAX_KEY or _CONTROL.search(key):
            out.append(Diagnostic(f"tag key {key!r} must be at most {MAX_KEY} printable characters", location, subject))
        if not isinstance(value, str):
            out.append(Diagnostic(f"tag {key!r} has value {value!r}; tag values are strings", location, subject))
        elif len(value) > MAX_VALUE or _CONTROL.search(value):
            out.append(Diagnostic(f"tag {key!r} value must be at most {MAX_VALUE} printable characters",
                                  location, subject))
    level = tags.get(CLASSIFICATION_KEY)
    if isinstance(level, str) and level not in CLASSIFICATIONS:
        out.append(Diagnostic(f"{CLASSIFICATION_KEY} {level!r} is not one of {', '.join(CLASSIFICATIONS)}",
                              location, subject))
    return out


def classification_problems(pipeline_tags: dict, task_tags: dict, subject: str,
                            location: Location | None) -> list[Diagnostic]:
    outer, inner = pipeline_tags.get(CLASSIFICATION_KEY), task_tags.get(CLASSIFICATION_KEY)
    known = outer in CLASSIFICATIONS and inner in CLASSIFICATIONS
    if known and CLASSIFICATIONS.index(inner) < CLASSIFICATIONS.index(outer):
        return [Diagnostic(f"{CLASSIFICATION_KEY} {inner!r} is lower than the pipeline's {outer!r}; a task may "
                           "raise its pipeline's classification, never lower it", location, subject)]
    return []


# ------------------------------------------------------------------------------------ policies
class Policy:
    """A rule every pipeline must follow. Subclass and implement :meth:`check`, or use :func:`policy`."""

    name = "policy"

    def check(self, pipeline: PipelineIR) -> Iterable[Diagnostic | str]:
        raise NotImplementedError

    def violations(self, pipeline: PipelineIR) -> list[Diagnostic]:
        """Run the policy on a pipeline and on each of its sub-pipelines."""
        found: list[Diagnostic] = []
        for ir in _with_children(pipeline):
            for item in self.check(ir) or ():
                if isinstance(item, Diagnostic):
                    found.append(item)
                else:
                    found.append(Diagnostic(str(item), ir.location, f"policy {self.name}"))
        return found


def _with_children(ir: PipelineIR) -> Iterable[PipelineIR]:
    yield ir
    for child in ir.subpipelines.values():
        yield from _with_children(child)


class RequireTags(Policy):
    """Require tag keys on the pipeline (``scope="pipeline"``) or on every task (``scope="tasks"``)."""

    def __init__(self, *keys: str, scope: str = "pipeline"):
        if scope not in ("pipeline", "tasks"):
            raise ValueError("scope must be 'pipeline' or 'tasks'")
        self.keys, self.scope = keys, scope
        self.name = f"RequireTags({', '.join(map(repr, keys))})"

    def check(self, pipeline: PipelineIR) -> Iterable[Diagnostic]:
        if self.scope == "pipeline":
            missing = [k for k in self.keys if k not in pipeline.tags]
            if missing:
                yield Diagnostic(f"pipeline {pipeline.name!r} lacks required tag(s) {', '.join(map(repr, missing))}; "
                                 f"add tags={{{', '.join(f'{k!r}: ...' for k in missing)}}} to @pipeline",
                                 pipeline.location, f"policy {self.name}")
            return
        for spec in pipeline.tasks.values():
            missing = [k for k in self.keys if k not in spec.tags]
            if missing:
                yield Diagnostic(f"task {spec.name!r} lacks required tag(s) {', '.join(map(repr, missing))}",
                                 spec.location, f"policy {self.name}")


class AllowedValues(Policy):
    """Restrict a tag's value, wherever it is set, to ``values``."""

    def __init__(self, key: str, values: Sequence[str]):
        self.key, self.values = key, tuple(values)
        self.name = f"AllowedValues({key!r})"

    def check(self, pipeline: PipelineIR) -> Iterable[Diagnostic]:
        value = pipeline.tags.get(self.key)
        if value is not None and value not in self.values:
            allowed = ", ".join(map(repr, self.values))
            yield Diagnostic(f"tag {self.key!r}={value!r} is not allowed; use one of {allowed}",
                             pipeline.location, f"policy {self.name}")
        for spec in pipeline.tasks.values():
            value = spec.tags.get(self.key)
            if value is not None and value not in self.values and value != pipeline.tags.get(self.key):
                yield Diagnostic(f"task {spec.name!r}: tag {self.key!r}={value!r} is not allowed; use one of "
                                 f"{', '.join(map(repr, self.values))}", spec.location, f"policy {self.name}")


class _FunctionPolicy(Policy):
    def __init__(self, fn: Callable[[PipelineIR], Iterable[Diagnostic | str] | None]):
        self.fn, self.name = fn, fn.__name__

    def check(self, pipeline: PipelineIR) -> Iterable[Diagnostic | str]:
        return self.fn(pipeline) or ()


def policy(fn: Callable[[PipelineIR], Iterable[Diagnostic | str] | None]) -> Policy:
    """Turn ``fn(pipeline_ir) -> iterable of messages`` into a :class:`Policy`.

    >>> @policy
    ... def no_public_writes(p):
    ...     for t in p.tasks.values():
    ...         if t.tags.get("data-classification") != "public" and any(w.startswith("s3://public") for w in t.writes):
    ...             yield f"task {t.name!r} writes non-public data to a public bucket"
    """
    return _FunctionPolicy(fn)
