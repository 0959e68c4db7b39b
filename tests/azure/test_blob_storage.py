"""Large results through real Blob Storage: the shim's ``AzureBlobStore`` against Azurite.

The emulated app gets the storage account the way a deployed one does, through app settings
(``AzureWebJobsStorage`` / ``STRATO_BLOB_CONNECTION``, ``STRATO_BLOB_CONTAINER``), so these tests
take the production path from the activity to the storage service. The settings plumbing itself is
also checked without Azurite.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.functions")
pytest.importorskip("azure.durable_functions")
pytest.importorskip("azure.storage.blob")

from strato.adapters.azure.payloads import AzureBlobStore, store_from_environment
from strato.adapters.common.envelopes import REF
from strato.adapters.common.errors import PayloadError
from strato.adapters.common.stores import LocalBlobStore
from tests.aws import pipelines as aws_pipelines
from tests.azure import pipelines
from tests.azure.conftest import run_locally

SCHEDULED, COMPLETED = 4, 5


def instant(name: str, value: Any) -> float:
    return 0.0


def container_name() -> str:
    return f"strato-{uuid.uuid4().hex[:12]}"  # fresh per test: each starts without its container


def blob_names(connection: str, container: str) -> list[str]:
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(connection).get_container_client(container)
    return sorted(blob.name for blob in client.list_blobs())


def references(history: list[dict[str, Any]], name: str) -> list[Any]:
    """The results of activity ``name`` as they stand in the history."""
    ids = {e["EventId"] for e in history if e["EventType"] == SCHEDULED and e["Name"] == name}
    return [json.loads(e["Result"]) for e in history if e["EventType"] == COMPLETED and e["TaskScheduledId"] in ids]


# ------------------------------------------------------------------------------ without Azurite
def test_settings_choose_the_store_like_the_environment_does(tmp_path: Path) -> None:
    assert isinstance(store_from_environment({"STRATO_BLOB_DIR": str(tmp_path)}), LocalBlobStore)
    # the generated local.settings.json's value: the SDK expands it to Azurite's default endpoint
    store = store_from_environment({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert isinstance(store, AzureBlobStore) and store.container_name == "strato-payloads"
    assert store.container.url == "http://127.0.0.1:10000/devstoreaccount1/strato-payloads"
    store = store_from_environment({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                    "STRATO_BLOB_CONNECTION": "UseDevelopmentStorage=true;"
                                                              "DevelopmentStorageProxyUri=http://10.0.0.9",
                                    "STRATO_BLOB_CONTAINER": "payloads"})
    assert store.container_name == "payloads"
    with pytest.raises(PayloadError, match="large results need Blob Storage"):
        store_from_environment({})


def test_the_emulator_reads_the_apps_settings(emulated: Any, tmp_path: Path) -> None:
    directory = tmp_path / "elsewhere"
    app = emulated(pipelines.large, durations=instant,
                   settings={"STRATO_BLOB_DIR": str(directory), "STRATO_OFFLOAD_BYTES": "1024"})
    result = app.run({"n": 40})
    assert result.output == run_locally(pipelines.large, {"n": 40}).output
    assert len(list(directory.rglob("*.json"))) == 1  # where the settings said, at their threshold
    assert not (app.work_dir / "blobs").exists()


# --------------------------------------------------------------------------------- with Azurite
def test_put_and_get_round_trip_and_the_container_is_created(azurite: Any) -> None:
    container = container_name()
    store = AzureBlobStore(azurite.connection_string, container)
    data = json.dumps({"rows": list(range(1000))}).encode()
    uri = store.put("results/abc.json", data)  # the container did not exist
    assert uri == f"az://{container}/results/abc.json"
    assert store.get(uri) == data
    assert store.put("results/abc.json", data) == uri  # a content-hash key written twice is harmless
    other = store.put("results/other.json", b"[]")
    assert store.get(other) == b"[]"
    assert blob_names(azurite.connection_string, container) == ["results/abc.json", "results/other.json"]
    # another client (a second worker) finds the container there already
    AzureBlobStore(azurite.connection_string, container).put("results/third.json", b"{}")
    # a reference outside the app's payload container, or not az:// at all, is refused without a request
    for bad in ("az://another/results/abc.json", f"s3://{container}/results/abc.json", f"az://{container}"):
        with pytest.raises(PayloadError):
            store.get(bad)


def test_missing_blobs_and_containers_are_file_not_found(azurite: Any) -> None:
    container = container_name()
    store = AzureBlobStore(azurite.connection_string, container)
    with pytest.raises(FileNotFoundError, match="ContainerNotFound"):
        store.get(f"az://{container}/results/nothing.json")
    store.put("results/some.json", b"1")
    with pytest.raises(FileNotFoundError, match=r"'results/nothing.json' in container .*BlobNotFound"):
        store.get(f"az://{container}/results/nothing.json")


def test_a_large_result_travels_through_azurite(emulated: Any, azurite: Any) -> None:
    """tests/aws's ``large_payload`` (about 330 KB) over the default 64 KiB threshold."""
    container = container_name()
    app = emulated(aws_pipelines.large_payload, durations=instant,
                   settings={"AzureWebJobsStorage": azurite.connection_string, "STRATO_BLOB_CONTAINER": container})
    result = app.run({"rows": 3000})
    local = run_locally(aws_pipelines.large_payload, {"rows": 3000})
    assert (result.status, result.output) == ("SUCCEEDED", local.output)
    assert result.output["summary"] == {"count": 3000, "last": 2999}
    (ref,) = references(app.history(), "big_table")
    assert ref.keys() == {REF, "bytes"} and ref["bytes"] > 300_000
    assert ref[REF].startswith(f"az://{container}/strato/payloads/")
    assert blob_names(azurite.connection_string, container) == [ref[REF].split("/", 3)[3]]
    assert not (app.work_dir / "blobs").exists()
    # only references travel between tasks: no task's input in the history holds the table
    inputs = [e["Input"] or "" for e in app.history() if e["EventType"] == SCHEDULED and e["Name"] != "strato_resolve"]
    assert max(len(text) for text in inputs) < 1024


def test_a_fan_out_over_an_offloaded_list_reads_elements_from_azurite(emulated: Any, azurite: Any) -> None:
    container = container_name()
    app = emulated(pipelines.large, durations=instant,
                   settings={"STRATO_BLOB_CONNECTION": azurite.connection_string, "STRATO_BLOB_CONTAINER": container,
                             "STRATO_OFFLOAD_BYTES": "1024"})
    result = app.run({"n": 40})
    assert result.output == run_locally(pipelines.large, {"n": 40}).output
    assert len(blob_names(azurite.connection_string, container)) == 1
    items = [json.loads(e["Input"]) for e in app.history() if e["EventType"] == SCHEDULED and e["Name"] == "prefix"]
    assert len(items) == 40 and all(REF in json.dumps(i) for i in items)


def test_strato_emulate_sends_large_results_to_the_storage_endpoint(cli: Any, azurite: Any) -> None:
    """`strato emulate --target azure --endpoint <connection string>` offloads into that account."""
    from azure.storage.blob import BlobServiceClient

    args = ["--input", '{"rows": 3000}', "--json"]
    code, emulated = cli.json("emulate", "tests/aws/pipelines.py:large_payload", "--target", "azure",
                              "--endpoint", azurite.connection_string, *args,
                              STRATO_BLOB_CONTAINER="cli-payloads", STRATO_OFFLOAD_BYTES="10000")
    local_code, local = cli.json("run", "tests/aws/pipelines.py:large_payload", *args)
    assert code == local_code == 0
    assert emulated["output"] == local["output"]
    container = BlobServiceClient.from_connection_string(azurite.connection_string).get_container_client(
        "cli-payloads")
    assert len(list(container.list_blobs())) >= 1  # the large table went to the storage account
    bad = cli("emulate", "tests/aws/pipelines.py:large_payload", "--target", "azure", "--endpoint", "http://x")
    assert bad.returncode == 1 and "storage connection string" in bad.stderr
