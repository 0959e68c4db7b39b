"""OpenLineage events reach a real HTTP receiver from the local runner and each cloud's emulation.

Events are checked against the structure the OpenLineage 2-0-2 spec (``OpenLineage.json``, the version the
client's ``schemaURL`` names) requires of a ``RunEvent``: run id a UUID, job namespace and name, an
event type from the spec's enum, datasets with namespace and name, and every facet with ``_producer`` and
``_schemaURL``. The schema below restates those requirements for ``jsonschema``.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from strato import lineage

from .conftest import Cli

jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("openlineage.client")

_FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
          "properties": {"_producer": {"type": "string", "format": "uri"},
                         "_schemaURL": {"type": "string", "format": "uri"}}}
_FACETS = {"type": "object", "additionalProperties": _FACET}
_DATASET = {"type": "object", "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "facets": _FACETS}}
RUN_EVENT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["run", "job", "eventTime", "producer"],
    "properties": {
        "eventType": {"enum": ["START", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string", "format": "uri"},
        "schemaURL": {"type": "string", "format": "uri"},
        "run": {"type": "object", "required": ["runId"],
                "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _FACETS}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "facets": _FACETS}},
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
}

PIPELINE = '''
import os
from strato import pipeline, task


@task(reads=["s3://landing/orders/2024.csv", "warehouse.customers"], tags={"data-classification": "confidential"})
def extract(day: str) -> int:
    return 314159


@task(writes=["gs://lake/orders/clean", "postgres://db.internal:5432/shop/public/orders"])
def load(rows: int) -> int:
    if os.path.exists(os.environ["LINEAGE_FAIL_FLAG"]):
        raise ValueError("the warehouse refused the rows")
    return rows


@pipeline(tags={"owner": "data-eng"})
def orders(day: str = "2024-03-01") -> int:
    return load(extract(day))
'''


class _Receiver(BaseHTTPRequestHandler):
    events: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.events.append({"path": self.path, **json.loads(body)})  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.events = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", server.events  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _valid(events: list[dict[str, Any]]) -> None:
    checker = jsonschema.Draft202012Validator(RUN_EVENT_SCHEMA, format_checker=jsonschema.FormatChecker())
    for event in events:
        assert event.pop("path") == "/api/v1/lineage"
        checker.validate(event)
        uuid.UUID(event["run"]["runId"])


def _by_job(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        jobs.setdefault(event["job"]["name"], []).append(event)
    return jobs


def _project(tmp_path: Path) -> tuple[str, Path]:
    (tmp_path / "orders_lineage.py").write_text(PIPELINE)
    return str(tmp_path / "orders_lineage.py") + ":orders", tmp_path / "fail-flag"


def test_successful_run_emits_run_and_task_events(cli: Cli, tmp_path: Path, receiver: Any) -> None:
    url, events = receiver
    ref, flag = _project(tmp_path)
    code, result = cli.json("run", ref, "--json", OPENLINEAGE_URL=url, LINEAGE_FAIL_FLAG=str(flag))
    assert code == 0 and result["status"] == "SUCCEEDED", result
    _valid(events)
    jobs = _by_job(events)
    assert [e["eventType"] for e in jobs["orders"]] == ["START", "COMPLETE"]
    run_id = jobs["orders"][0]["run"]["runId"]
    assert run_id == lineage.run_uuid(result["run_id"]) and jobs["orders"][1]["run"]["runId"] == run_id
    assert {e["job"]["namespace"] for e in events} == {"strato"}
    assert [e["eventType"] for e in jobs["orders.extract"]] == ["START", "COMPLETE"]
    assert [e["eventType"] for e in jobs["orders.load"]] == ["START", "COMPLETE"]
    extract = jobs["orders.extract"][0]
    assert extract["run"]["facets"]["parent"]["run"]["runId"] == run_id
    assert extract["run"]["facets"]["parent"]["job"] == {"namespace": "strato", "name": "orders", "facets": {}}
    assert [(d["namespace"], d["name"]) for d in extract["inputs"]] == [
        ("s3://landing", "orders/2024.csv"), ("strato", "warehouse.customers")]
    tags = {t["key"]: t["value"] for t in extract["job"]["facets"]["tags"]["tags"]}
    assert tags == {"owner": "data-eng", "data-classification": "confidential"}
    assert extract["job"]["facets"]["strato_dataClassification"]["classification"] == "confidential"
    load = jobs["orders.load"][1]
    assert [(d["namespace"], d["name"]) for d in load["outputs"]] == [
        ("gs://lake", "orders/clean"), ("postgres://db.internal:5432", "shop.public.orders")]
    assert "314159" not in json.dumps(events)  # no task result in an event


def test_failed_then_resumed_run(cli: Cli, tmp_path: Path, receiver: Any) -> None:
    url, events = receiver
    ref, flag = _project(tmp_path)
    flag.touch()
    code, failed = cli.json("run", ref, "--json", OPENLINEAGE_URL=url, LINEAGE_FAIL_FLAG=str(flag))
    assert code != 0 and failed["status"] == "FAILED", failed
    _valid(events)
    jobs = _by_job(events)
    assert [e["eventType"] for e in jobs["orders"]] == ["START", "FAIL"]
    assert jobs["orders"][1]["run"]["facets"]["errorMessage"]["message"] == (
        "ValueError: the warehouse refused the rows")
    assert [e["eventType"] for e in jobs["orders.load"]] == ["START", "FAIL"]
    assert "refused" in jobs["orders.load"][1]["run"]["facets"]["errorMessage"]["message"]

    flag.unlink()
    events.clear()
    code, resumed = cli.json("resume", failed["run_id"], "--json", OPENLINEAGE_URL=url, LINEAGE_FAIL_FLAG=str(flag))
    assert code == 0 and resumed["status"] == "SUCCEEDED", resumed
    _valid(events)
    jobs = _by_job(events)
    assert [e["eventType"] for e in jobs["orders"]] == ["START", "COMPLETE"]
    assert jobs["orders"][0]["run"]["runId"] == lineage.run_uuid(failed["run_id"])  # the same run, resumed
    assert "orders.extract" not in jobs  # finished before: not run again
    assert [e["eventType"] for e in jobs["orders.load"]] == ["START", "COMPLETE"]
    assert jobs["orders.load"][0]["run"]["runId"] == lineage.run_uuid(failed["run_id"], "load", 2)


def test_no_configuration_no_events(cli: Cli, tmp_path: Path, receiver: Any, monkeypatch: Any) -> None:
    url, events = receiver
    ref, flag = _project(tmp_path)
    code, _ = cli.json("run", ref, "--json", LINEAGE_FAIL_FLAG=str(flag), OPENLINEAGE_DISABLED="1",
                            OPENLINEAGE_URL=url)
    assert code == 0 and events == []
    for key in [k for k in os.environ if k.startswith("OPENLINEAGE")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not lineage.configured()
    (tmp_path / "openlineage.yml").write_text("transport:\n  type: console\n")
    assert lineage.configured()


@pytest.mark.parametrize(("uri", "expected"), [
    ("s3://bucket/a/b.csv", ("s3://bucket", "a/b.csv")),
    ("gs://bucket/a", ("gs://bucket", "a")),
    ("abfss://raw@acct.dfs.core.windows.net/x/y", ("abfss://raw@acct.dfs.core.windows.net", "x/y")),
    ("wasbs://raw@acct.blob.core.windows.net/x", ("wasbs://raw@acct.blob.core.windows.net", "x")),
    ("postgres://user:pw@host:5432/db/sch.tbl", ("postgres://host:5432", "db.sch.tbl")),
    ("warehouse.orders", ("strato", "warehouse.orders")),
])
def test_dataset_naming(uri: str, expected: tuple[str, str], monkeypatch: Any) -> None:
    monkeypatch.delenv("OPENLINEAGE_NAMESPACE", raising=False)
    assert lineage.dataset_name(uri) == expected


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_emulated_cloud_shims_emit_task_attempts(cli: Cli, tmp_path: Path, receiver: Any, target: str) -> None:
    url, events = receiver
    ref, flag = _project(tmp_path)
    code, result = cli.json("emulate", ref, "--target", target, "--json", OPENLINEAGE_URL=url,
                            LINEAGE_FAIL_FLAG=str(flag), timeout=300)
    assert code == 0 and result["status"] == "SUCCEEDED", result
    _valid(events)
    jobs = _by_job(events)
    assert [e["eventType"] for e in jobs["extract"]] == ["START", "COMPLETE"], sorted(jobs)
    assert [e["eventType"] for e in jobs["load"]] == ["START", "COMPLETE"]
    assert [(d["namespace"], d["name"]) for d in jobs["extract"][0]["inputs"]] == [
        ("s3://landing", "orders/2024.csv"), ("strato", "warehouse.customers")]
    assert [(d["namespace"], d["name"]) for d in jobs["load"][1]["outputs"]] == [
        ("gs://lake", "orders/clean"), ("postgres://db.internal:5432", "shop.public.orders")]
    assert "parent" not in jobs["load"][0]["run"]["facets"]  # the shim is not told the run id
