"""OpenLineage events for runs and task attempts.

Configured the client's standard way (``OPENLINEAGE_URL``, ``OPENLINEAGE_CONFIG``, an ``openlineage.yml``
in the working directory or ``~/.openlineage/``, or ``OPENLINEAGE__TRANSPORT__*`` variables); when none
is present nothing is imported and nothing is sent, so lineage costs nothing unless asked for.

Jobs live in the namespace ``$OPENLINEAGE_NAMESPACE`` (default ``strato``): a run is the job named after
its pipeline, a task attempt the job ``pipeline.task_id`` whose parent run facet names its run. OpenLineage
run ids are UUIDs derived from Strato's ids (uuid5), so a resumed run keeps its OpenLineage run id and
any process that knows the Strato run id links to the same run. Datasets come from a task's
``reads``/``writes``, parsed as the OpenLineage naming spec says; events never carry a task's arguments,
results or secret values, only the error's class and message on failure.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import ir
from .governance import CLASSIFICATION_KEY

__all__ = ["attempt_event", "configured", "dataset_name", "run_event", "run_uuid", "shim_attempt", "task_event"]

PRODUCER = "https://github.com/strato-data/strato"
_CLASSIFICATION_SCHEMA = PRODUCER + "/blob/main/docs/lineage.json#/definitions/DataClassificationJobFacet"
_UUID_ROOT = uuid.UUID("6f1c2d1e-52a7-4c55-9d0b-2f7f1a5b8e10")  # fixed: the same Strato id, the same UUID
_log = logging.getLogger("strato.lineage")
_client: Any = None
_client_key: tuple | None = None


def configured() -> bool:
    """Whether any OpenLineage configuration is present (cheap: environment and two file checks)."""
    env = os.environ
    if env.get("OPENLINEAGE_DISABLED", "").lower() in ("1", "true", "yes"):
        return False
    if env.get("OPENLINEAGE_URL") or env.get("OPENLINEAGE_CONFIG"):
        return True
    if any(key.startswith("OPENLINEAGE__TRANSPORT") for key in env):
        return True
    return Path("openlineage.yml").is_file() or (Path.home() / ".openlineage" / "openlineage.yml").is_file()


def namespace() -> str:
    return os.environ.get("OPENLINEAGE_NAMESPACE") or "strato"


def run_uuid(*parts: object) -> str:
    """The OpenLineage run id of a Strato run (``run_uuid(run_id)``) or attempt (``run_id, key, n``)."""
    return str(uuid.uuid5(_UUID_ROOT, "/".join(str(p) for p in parts)))


def dataset_name(uri: str) -> tuple[str, str]:
    """``(namespace, name)`` of a ``reads``/``writes`` entry, per the OpenLineage naming spec.

    ``s3://bucket/key`` → (``s3://bucket``, ``key``), likewise ``gs://``; ``abfss://container@account...
    /path`` → (``abfss://container@account...``, ``path``), likewise ``wasbs://``; ``postgres://host:port/
    db/schema.table`` → (``postgres://host:port``, ``db.schema.table``); ``file:///p`` → (``file``, ``/p``);
    a plain name such as ``warehouse.orders`` is a table in the job namespace (``$OPENLINEAGE_NAMESPACE``).
    """
    if "://" not in uri:
        return namespace(), uri
    scheme, rest = uri.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        return "file", rest if rest.startswith("/") else "/" + rest
    authority, _, path = rest.partition("/")
    if scheme in ("postgres", "postgresql", "mysql", "redshift", "mssql", "sqlserver"):
        authority = authority.rsplit("@", 1)[-1]  # never credentials in a namespace
        return f"{'postgres' if scheme == 'postgresql' else scheme}://{authority}", ".".join(
            p for p in path.split("/") if p)
    return f"{scheme}://{authority}", path


def _get_client() -> Any:
    global _client, _client_key
    key = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("OPENLINEAGE")))
    if _client is None or key != _client_key:
        from openlineage.client import OpenLineageClient

        _client, _client_key = OpenLineageClient(), key
    return _client


def _emit(event: Any) -> None:
    try:
        _get_client().emit(event)
    except Exception as exc:  # lineage is reporting: it never fails a run
        _log.warning("OpenLineage event not sent: %s", exc)


def _now(at: float | None) -> str:
    moment = datetime.fromtimestamp(at, UTC) if at is not None else datetime.now(UTC)
    return moment.isoformat()


def _job_facets(tags: dict[str, str]) -> dict[str, Any]:
    from openlineage.client.facet_v2 import JobFacet, tags_job

    facets: dict[str, Any] = {}
    if tags:
        facets["tags"] = tags_job.TagsJobFacet(tags=[tags_job.TagsJobFacetFields(key=k, value=v, source="USER")
                                                     for k, v in sorted(tags.items())], producer=PRODUCER)
    if CLASSIFICATION_KEY in tags:
        facet = JobFacet(producer=PRODUCER).with_additional_properties(classification=tags[CLASSIFICATION_KEY])
        facet._schemaURL = _CLASSIFICATION_SCHEMA
        facets["strato_dataClassification"] = facet
    return facets


def _run_facets(error: dict | None, parent: tuple[str, str] | None) -> dict[str, Any]:
    from openlineage.client.facet_v2 import error_message_run, parent_run

    facets: dict[str, Any] = {}
    if parent is not None:
        facets["parent"] = parent_run.ParentRunFacet(run=parent_run.Run(runId=parent[0]), producer=PRODUCER,
                                                     job=parent_run.Job(namespace=namespace(), name=parent[1]))
    if error is not None:
        message = f"{error.get('error', 'Error')}: {error.get('cause', '')}".rstrip(": ")
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="python",
                                                                        producer=PRODUCER)
    return facets


def _event(kind: str, run_id: str, job: str, tags: dict[str, str], at: float | None, error: dict | None,
           parent: tuple[str, str] | None, reads: Iterable[str] = (), writes: Iterable[str] = (),
           checks: list[dict[str, Any]] | None = None) -> None:
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState

    event = RunEvent(eventType=RunState[kind], eventTime=_now(at), producer=PRODUCER,
                     run=Run(runId=run_id, facets=_run_facets(error, parent)),
                     job=Job(namespace=namespace(), name=job, facets=_job_facets(tags)),
                     inputs=[InputDataset(*dataset_name(uri)) for uri in reads],
                     outputs=[OutputDataset(*dataset_name(uri), facets=_assertions(checks)) for uri in writes])
    _emit(event)


def _assertions(checks: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The task's data-quality check outcomes (``strato.checks``) as the ``dataQualityAssertions`` facet
    of the datasets it writes: the checks judge the result the task writes."""
    if not checks:
        return {}
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    return {"dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet(assertions=[
        dq.Assertion(assertion=c["name"], success=bool(c["passed"]), severity=c["severity"],
                     description=c.get("message")) for c in checks], producer=PRODUCER)}


def run_event(kind: str, pipeline: ir.PipelineIR, run_id: str, at: float | None = None,
              error: dict | None = None) -> None:
    """A run's START, COMPLETE, FAIL or ABORT; nothing when lineage is not configured."""
    if configured():
        _event(kind, run_uuid(run_id), pipeline.name, pipeline.tags, at, error, None)


def task_event(kind: str, pipeline: str, spec: ir.TaskSpec, task_id: str, run_id: str | None, attempt_id: str,
               at: float | None = None, error: dict | None = None, checks: list[dict[str, Any]] | None = None
               ) -> None:
    """A task attempt's START, COMPLETE or FAIL, linked to its run when ``run_id`` is known.

    ``attempt_id`` identifies the attempt (Strato run id, call key and attempt number locally).
    """
    if not configured():
        return
    parent = (run_uuid(run_id), pipeline) if run_id is not None else None
    _event(kind, run_uuid(attempt_id), f"{pipeline}.{task_id}", spec.tags, at, error, parent, spec.reads,
           spec.writes, checks)


def attempt_event(kind: str, pipeline: str, spec: ir.TaskSpec, key: str, run_id: str, attempt: int,
                  at: float | None = None, error: dict | None = None,
                  checks: list[dict[str, Any]] | None = None) -> None:
    """The local runner's task attempt event: job ``pipeline.task_id`` (no map index), parent its run."""
    if configured():
        from .run_context import split_key

        task_event(kind, pipeline, spec, split_key(key)[0], run_id, f"{run_id}/{key}/{attempt}", at, error,
                   checks)


@contextmanager
def shim_attempt(task_id: str, fn: Callable[..., Any]) -> Iterator[None]:
    """A cloud task shim's attempt: START, then COMPLETE or FAIL (with the error) around the call.

    The shim is not told the Strato run id, so the attempt gets a fresh run id and no parent facet; the
    job is ``$STRATO_PIPELINE.task_id`` when the function's environment names its pipeline, else the
    task id. Datasets and tags come from the ``@task`` definition the function belongs to.
    """
    if not configured():
        yield
        return
    import sys

    definition = getattr(sys.modules.get(getattr(fn, "__module__", "") or ""), getattr(fn, "__qualname__", ""), None)
    spec = definition.spec() if callable(getattr(definition, "spec", None)) else None  # type: ignore[union-attr]
    if not isinstance(spec, ir.TaskSpec):
        spec = ir.TaskSpec(name=task_id, module="", qualname="", params=())
    pipeline = os.environ.get("STRATO_PIPELINE")
    job = f"{pipeline}.{task_id}" if pipeline else task_id
    attempt = str(uuid.uuid4())
    _event("START", attempt, job, spec.tags, None, None, None, spec.reads, spec.writes)
    from .checks import collecting

    with collecting() as checks:
        try:
            yield
        except Exception as exc:
            _event("FAIL", attempt, job, spec.tags, None, {"error": type(exc).__name__, "cause": str(exc)}, None,
                   spec.reads, spec.writes, checks)
            raise
    _event("COMPLETE", attempt, job, spec.tags, None, None, None, spec.reads, spec.writes, checks)
