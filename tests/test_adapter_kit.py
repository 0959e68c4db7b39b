"""The adapter kit every cloud builds on: envelopes and blob stores, the task catalog a deployed shim
runs from (and refuses everything else with), emulation overrides, inline reads, adapter errors."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from strato import pipeline, task, when
from strato.adapters.base import emulated_loader
from strato.adapters.common import emulation, offload, reads, tasks
from strato.adapters.common.envelopes import REF, is_ref, sub_ref
from strato.adapters.common.errors import AdapterError, PayloadError, UnknownBackend, UnknownTask, check_backend
from strato.adapters.common.stores import BlobStore, LocalBlobStore
from strato.errors import StratoError, UsageError


@task
def rows(n: int) -> list[dict[str, Any]]:
    return [{"ok": i % 2 == 0, "blob": "x" * 10} for i in range(n)]


@task
def summary(n: int) -> dict[str, Any]:
    return {"count": n, "meta": {"source": "s3://raw", "ok": True}}


@task
def use(value: Any) -> Any:
    return value


@pipeline
def reading(n: int = 3):  # type: ignore[no-untyped-def]
    listed = rows(n)
    summed = summary(n)
    with when(listed[0]["ok"] == True):  # noqa: E712 - a comparison the orchestrator evaluates
        use(summed["meta"]["source"])
    with when(summed["count"] > 1):
        use(listed)
    return use.map(listed)


# ------------------------------------------------------------------------------------ envelopes
def test_offload_round_trip_keeps_what_the_orchestrator_reads(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, "gs")
    value = {"count": 3, "meta": {"ok": True, "big": "y" * 5000}, "rows": list(range(100))}
    small = offload.offload({"a": 1}, store, threshold=1024)
    assert small == {"a": 1}
    ref = offload.offload(value, store, threshold=1024, keep=[["meta", "ok"], ["count"]])
    assert is_ref(ref) and ref[REF].startswith("gs://strato-payloads/strato/payloads/")
    assert ref["count"] == 3 and ref["meta"] == {"ok": True} and ref["bytes"] == len(offload.encode(value))
    assert offload.materialise(ref, store) == value
    assert offload.materialise([ref, 5], store) == [value, 5]
    assert offload.read_ref(sub_ref(ref, ["rows", 7]), store) == 7
    assert offload.read_ref(sub_ref(ref, ["missing", 0]), store) is None


def test_same_value_same_key(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, "s3", "bucket")
    first = offload.store_value({"b": 1, "a": 2}, store)
    again = offload.store_value({"a": 2, "b": 1}, store)
    assert first[REF] == again[REF]
    assert isinstance(store, BlobStore)


def test_local_store_stays_inside_its_root(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "root", "gs")
    (tmp_path / "secret.json").write_text("{}")
    for uri in ("gs://strato-payloads/../../secret.json", "gs://../secret.json", "s3://strato-payloads/x",
                "gs://strato-payloads", "not a uri"):
        with pytest.raises(PayloadError):
            store.get(uri)
    with pytest.raises(PayloadError):
        store.put("../../escape.json", b"{}")
    assert not (tmp_path / "escape.json").exists()


def test_missing_store_or_blob_is_a_clear_error(tmp_path: Path) -> None:
    ref = {REF: "gs://strato-payloads/strato/payloads/none.json", "bytes": 2}
    with pytest.raises(PayloadError, match="no payload store is configured"):
        offload.materialise(ref, None)
    with pytest.raises(PayloadError, match="missing from the payload store"):
        offload.materialise(ref, LocalBlobStore(tmp_path, "gs"))


def test_non_json_numbers_are_refused() -> None:
    with pytest.raises(ValueError):
        offload.encode({"x": float("nan")})


# ---------------------------------------------------------------------------------- task catalog
def test_catalog_runs_only_its_own_tasks() -> None:
    catalog = tasks.TaskCatalog.from_ir(reading.ir)
    assert set(catalog.targets) == {"rows", "summary", "use"}
    assert catalog.load("rows")(2) == rows.fn(2)
    crafted = ["x", "subprocess:getoutput", "os:system", "os.system", "../../etc/passwd", "rows/../use", "", None,
               42, ["rows"], {"task": "rows"}, "rows\x00", "ROWS", "a" * 10_000]
    for name in crafted:
        with pytest.raises(UnknownTask, match="is not a task of this deployment") as caught:
            catalog.load(name)
        assert len(str(caught.value)) < 300  # a huge crafted name is not echoed whole


def test_catalog_entries_must_be_module_and_qualname() -> None:
    for bad in ({"t": "os"}, {"t": "os:system; rm"}, {"t": "../x:y"}, {"t": 5}, {"t": "a b:c"}):
        with pytest.raises(UnknownTask, match="is not 'module:qualname'"):
            tasks.TaskCatalog(bad, "test")


def test_deployed_catalog_from_environment_or_packaged_file(tmp_path: Path) -> None:
    target = {"rows": f"{rows.fn.__module__}:rows"}
    from_env = tasks.TaskCatalog.deployed({tasks.MANIFEST_ENV: json.dumps(target)}, root=tmp_path)
    assert from_env.load("rows") is rows.fn
    with pytest.raises(UnknownTask, match="no task catalog"):
        tasks.TaskCatalog.deployed({}, root=tmp_path)
    (tmp_path / tasks.MANIFEST_FILE).write_text(json.dumps(target))
    assert tasks.TaskCatalog.deployed({}, root=tmp_path).load("rows") is rows.fn
    (tmp_path / tasks.MANIFEST_FILE).write_text("[1, 2]")
    with pytest.raises(UnknownTask, match="must be a JSON object"):
        tasks.TaskCatalog.deployed({}, root=tmp_path)
    with pytest.raises(UnknownTask, match="is not JSON"):
        tasks.TaskCatalog.deployed({tasks.MANIFEST_ENV: "{"}, root=tmp_path)


def test_load_task_without_a_catalog_runs_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(tasks.MANIFEST_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownTask, match="no task catalog"):
        tasks.load_task("rows")
    monkeypatch.setenv(tasks.MANIFEST_ENV, json.dumps(tasks.manifest(reading.ir, ["summary"])))
    assert tasks.load_task("summary") is summary.fn
    with pytest.raises(UnknownTask):
        tasks.load_task("rows")


# ------------------------------------------------------------------------------------- emulation
def test_emulation_overrides_are_per_context_and_reach_server_threads(tmp_path: Path) -> None:
    loader = emulated_loader(reading.ir, lambda spec: {"rows": rows.fn}.get(spec.name, use.fn))
    store = LocalBlobStore(tmp_path, "gs")
    seen: dict[str, Any] = {}

    def in_thread() -> None:
        seen["loader"], seen["store"] = emulation.loader_override(), emulation.store_override()

    with emulation.emulating(loader=loader, store=store):
        assert tasks.load_task("rows") is rows.fn
        with pytest.raises(UnknownTask, match="not a task of pipeline 'reading'"):
            tasks.load_task("os:system")
        plain = threading.Thread(target=in_thread)
        plain.start()
        plain.join()
        assert seen == {"loader": None, "store": None}  # a new thread starts with an empty context
        wrapped = threading.Thread(target=emulation.in_this_context(in_thread))
        wrapped.start()
        wrapped.join()
        assert seen == {"loader": loader, "store": store}
    assert emulation.loader_override() is None and emulation.store_override() is None


# ----------------------------------------------------------------------------------------- reads
def test_inline_reads_cover_conditions_on_list_elements_and_map_items() -> None:
    # rows[0]["ok"] (an element of a task's list) and the map over rows both need the list itself
    # inline; of summary only the compared field, not what a task receives as an argument.
    assert reads.read_inline(reading.ir) == {"rows": [[]], "summary": [["count"]]}


def test_inline_reads_of_a_map_result_are_per_item() -> None:
    @task
    def double(x: int) -> dict[str, int]:
        return {"x": 2 * x}

    @pipeline
    def mapped(xs: list[int]):  # type: ignore[no-untyped-def]
        out = double.map(xs)
        with when(out[0]["x"] > 2):
            use(out)
        return out

    assert reads.read_inline(mapped.ir) == {"double": [["x"]]}


# ------------------------------------------------------------------------------------------ errors
def test_adapter_errors_are_strato_errors() -> None:
    assert issubclass(AdapterError, StratoError) and issubclass(UnknownBackend, UsageError)
    assert check_backend("aws", None, ("moto", "localstack")) == "moto"
    assert check_backend("aws", "localstack", ("moto", "localstack")) == "localstack"
    with pytest.raises(UnknownBackend, match="'nope' for target 'aws'; choose one of moto, localstack"):
        check_backend("aws", "nope", ("moto", "localstack"))
