"""Least privilege from the pipeline itself, under Pulumi's mocks: each identity a component creates is
granted exactly what its tasks declare (payloads, ``reads``/``writes`` datasets, ``Secret``\\ s), on
named resources only."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_gcp")

from ..conftest import ROOT  # noqa: E402
from . import test_gcp as gcp_mocks  # noqa: E402

DATASETS = "tests/infra/datasets.py:datasets"
DAILY_SALES = str(ROOT / "examples" / "daily_sales.py") + ":daily_sales"
PAYLOADS = 'resource.name.startsWith("projects/_/buckets/app-payloads-bucket/objects/strato/payloads/")'
READ, WRITE, SECRET = "roles/storage.objectViewer", "roles/storage.objectUser", "roles/secretmanager.secretAccessor"


# ------------------------------------------------------------------------------------------ GCP
@pytest.fixture
def gcp_recorder() -> Any:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = gcp_mocks.Recorder()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


def gcp_bindings(recorder: Any) -> dict[str, set[tuple[str, ...]]]:
    """Every IAM binding the component made, by member: (kind, resource, role, condition expression)."""
    out: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for b in recorder.of("gcp:storage/bucketIAMMember:BucketIAMMember"):
        condition = (b.inputs.get("condition") or {}).get("expression", "")
        out[b.inputs["member"]].add(("bucket", b.inputs["bucket"], b.inputs["role"], condition))
    for b in recorder.of("gcp:secretmanager/secretIamMember:SecretIamMember"):
        out[b.inputs["member"]].add(("secret", b.inputs["secretId"], b.inputs["role"], ""))
    for b in recorder.of("gcp:cloudrunv2/serviceIamMember:ServiceIamMember"):
        out[b.inputs["member"]].add(("run-service", b.inputs["name"], b.inputs["role"], ""))
    for b in recorder.of("gcp:projects/iAMMember:IAMMember"):
        out[b.inputs["member"]].add(("project", b.inputs["project"], b.inputs["role"], ""))
    return dict(out)


def account(role: str) -> str:
    return f"serviceAccount:{gcp_mocks.email(role)}"


def prefixed(bucket: str, prefix: str, listing: bool = False) -> str:
    expression = f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/{prefix}")'
    if listing:
        expression += f' || api.getAttribute("storage.googleapis.com/objectListPrefix", "").startsWith("{prefix}")'
    return expression


@pulumi.runtime.test
def test_gcp_each_task_account_holds_exactly_its_declared_access(gcp_recorder: Any) -> Any:
    deployed = gcp_mocks.deploy(DATASETS)

    def check(_: Any) -> None:
        functions = {r.inputs["description"].split()[2]: r.inputs
                     for r in gcp_recorder.of("gcp:cloudfunctionsv2/function:Function")}
        accounts = {task: f["serviceConfig"]["serviceAccountEmail"] for task, f in functions.items()}
        assert len(set(accounts.values())) == 3  # one account per task function
        payloads = ("bucket", "app-payloads-bucket", WRITE, PAYLOADS)
        assert gcp_bindings(gcp_recorder) == {
            account("task-extract"): {payloads,
                                      ("bucket", "raw-zone", READ, prefixed("raw-zone", "orders/", listing=True)),
                                      ("secret", "api-token", SECRET, "")},
            account("task-enrich"): {payloads, ("bucket", "reference-data", READ, "")},  # the whole bucket
            account("task-publish"): {payloads,
                                      ("bucket", "curated", READ, prefixed("curated", "daily/", listing=True)),
                                      ("bucket", "curated", WRITE, prefixed("curated", "daily/")),
                                      ("secret", "db-password", SECRET, "")},
            # the workflow may invoke the pipeline's functions and nothing else
            account("workflow"): {("run-service", f["name"], "roles/run.invoker", "") for f in functions.values()}
                                 | {("project", gcp_mocks.PROJECT, "roles/logging.logWriter", "")},
        }
        for task, email in accounts.items():
            assert email == gcp_mocks.email(f"task-{task}")

    return gcp_mocks.settled(deployed).apply(check)


@pulumi.runtime.test
def test_gcp_the_daily_sales_tasks_get_their_payloads_only(gcp_recorder: Any) -> Any:
    deployed = gcp_mocks.deploy(DAILY_SALES)  # file:// and sqlite:// datasets: nothing on Cloud Storage

    def check(_: Any) -> None:
        bindings = gcp_bindings(gcp_recorder)
        tasks = {m: b for m, b in bindings.items() if "-task-" in m}
        assert len(tasks) == 5
        assert set(map(frozenset, tasks.values())) == {frozenset({("bucket", "app-payloads-bucket", WRITE,
                                                                  PAYLOADS)})}

    return gcp_mocks.settled(deployed).apply(check)


def test_gcp_grants_follow_the_declared_uris() -> None:
    from strato import ir as strato_ir
    from strato.infra.gcp import ObjectGrant, gcs_prefix, task_grants

    spec = strato_ir.TaskSpec("t", "m", "t", (), reads=("gs://raw/a/", "gs://Bad_Bucket/x", "bq://p.d.t", "gs://"),
                              writes=("gs://out/b/", "gs://out/b/"))
    grants, skipped = task_grants(spec)
    assert grants == [ObjectGrant(None, "strato/payloads/", WRITE, "payloads"),
                      ObjectGrant("raw", "a/", READ, "gs://raw/a/"), ObjectGrant("out", "b/", WRITE, "gs://out/b/")]
    assert skipped == [
        "task 't': 'gs://Bad_Bucket/x' does not name a valid Cloud Storage bucket: no IAM granted for it",
        "task 't': 'bq://p.d.t' is not a Cloud Storage dataset (gs://bucket/prefix): no IAM granted for it",
        "task 't': 'gs://' does not name a valid Cloud Storage bucket: no IAM granted for it"]
    assert gcs_prefix("gs://raw") == ("raw", "")
    quoted = ObjectGrant("raw", 'a"b/', READ, "x").condition("raw")
    assert quoted is not None and json.dumps('projects/_/buckets/raw/objects/a"b/') in quoted["expression"]


@pulumi.runtime.test
def test_gcp_skipped_datasets_are_reported_at_deploy_time(gcp_recorder: Any, monkeypatch: Any) -> Any:
    said: list[str] = []
    monkeypatch.setattr(pulumi.log, "info", lambda message, resource=None, *a, **k: said.append(message))
    deployed = gcp_mocks.deploy(DATASETS)

    def check(_: Any) -> None:
        assert "task 'extract': 's3://raw-zone/orders/' is not a Cloud Storage dataset (gs://bucket/prefix): no IAM " \
               "granted for it" in said
        assert any("'warehouse.sales'" in m for m in said)

    return gcp_mocks.settled(deployed).apply(check)


# ---------------------------------------------------------------------------------------- Azure
ROLE_IDS = {"b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
            "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
            "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
            "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
            "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User"}


@pytest.fixture
def azure_mocks() -> Any:
    pytest.importorskip("pulumi_azure_native")
    import asyncio

    from . import test_azure

    asyncio.set_event_loop(asyncio.new_event_loop())
    recorder = test_azure.Recorder()
    pulumi.runtime.set_mocks(recorder, preview=False)
    return test_azure, recorder


@pulumi.runtime.test
def test_azure_the_app_identity_holds_container_and_secret_scoped_roles_only(azure_mocks: Any) -> Any:
    mocks, recorder = azure_mocks
    deployed = mocks.deploy(DATASETS, secrets={"api-token": "t", "db-password": "p"}, payload_days=14)

    def check(_: Any) -> None:
        data, host = mocks.data_and_host_accounts(recorder)
        storage = f"{mocks.RG_ID}/providers/Microsoft.Storage/storageAccounts"
        (vault,) = recorder.of("keyvault:Vault")
        secrets = f"{mocks.RG_ID}/providers/Microsoft.KeyVault/vaults/{vault.name}/secrets"
        granted = sorted((ROLE_IDS[r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]], r.inputs["scope"])
                         for r in recorder.of("authorization:RoleAssignment"))
        assert granted == sorted([
            ("Storage Blob Data Owner", f"{storage}/{host.name}"),  # the host's own state, nothing else there
            ("Storage Queue Data Contributor", f"{storage}/{host.name}"),
            ("Storage Table Data Contributor", f"{storage}/{host.name}"),
            ("Storage Blob Data Reader", f"{storage}/{data.name}/blobServices/default/containers/strato-deployments"),
            ("Key Vault Secrets User", f"{secrets}/strato-blob-connection"),
            ("Key Vault Secrets User", f"{secrets}/api-token"),
            ("Key Vault Secrets User", f"{secrets}/db-password")])
        # nothing writes the package, nothing holds the data account, its group or subscription
        assert not [scope for _, scope in granted if scope in (f"{storage}/{data.name}", mocks.RG_ID)]
        assert {r.inputs["principalId"] for r in recorder.of("authorization:RoleAssignment")} == {mocks.PRINCIPAL}

        (sas,) = [c.args for c in recorder.calls if c.token == "azure-native:storage:listStorageAccountServiceSAS"]
        assert sas["canonicalizedResource"] == f"/blob/{data.name}/strato-payloads"
        assert (sas["resource"], sas["permissions"]) == ("c", "rw")
        from strato.infra.azure.component import sas_expiry

        assert sas["sharedAccessExpiryTime"] == sas_expiry(14) == deployed.payload_sas_expiry
        (connection,) = [r for r in recorder.of("keyvault:Secret")
                         if r.inputs["secretName"] == "strato-blob-connection"]
        expires = connection.inputs["properties"]["attributes"]["expires"]
        assert datetime.fromtimestamp(expires, UTC) == datetime.fromisoformat(sas_expiry(14).replace("Z", "+00:00"))

        assert host.inputs["allowSharedKeyAccess"] is False  # identity-only host storage
        assert data.inputs["allowSharedKeyAccess"] is True  # the payload SAS is signed with its key
        assert vault.inputs["properties"]["publicNetworkAccess"] == "Enabled"  # Consumption: see the component
        assert vault.inputs["properties"]["enableRbacAuthorization"] is True
        (settings,) = recorder.of("web:WebAppApplicationSettings")
        assert settings.inputs["properties"]["AzureWebJobsStorage__accountName"] == host.name

    return mocks.settled(deployed).apply(check)


def test_azure_the_payload_sas_lives_no_longer_than_the_payloads() -> None:
    from strato.infra.azure.component import sas_expiry

    today = date(2026, 3, 1)
    assert sas_expiry(30, today=today) == "2026-03-31T00:00:00Z"
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sas_expiry(30, soon) == soon
    with pytest.raises(ValueError, match=r"is later than payload_days=30 from today \(2026-03-31T00:00:00Z\)"):
        sas_expiry(30, "2027-01-01T00:00:00Z", today=today)
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        sas_expiry(30, "next tuesday")
    with pytest.raises(ValueError, match="is in the past"):
        sas_expiry(30, "2020-01-01T00:00:00Z")
