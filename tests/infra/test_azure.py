"""The Azure Pulumi component under Pulumi's mocks: the exact resource inputs `pulumi up` would send."""

from __future__ import annotations

import ast
import re
from types import SimpleNamespace
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_azure_native")

from ..conftest import ROOT  # noqa: E402

SUBSCRIPTION, TENANT, GROUP = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "rg"
PRINCIPAL = "11111111-1111-1111-1111-111111111111"
RG_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}"
DAILY_SALES = str(ROOT / "examples" / "daily_sales.py") + ":daily_sales"
INGEST_FILE = str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file"
SECRET_MARKERS = ("AccountKey=", "SharedAccessSignature=", "sig=", "DefaultEndpointsProtocol=")


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the mocks mark a secret value


def plain(value: Any) -> Any:
    """``value`` with the mocks' secret wrappers taken off."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return plain(value["value"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Recorder(pulumi.runtime.Mocks):
    """Records every resource and invoke; gives ids the way Azure Resource Manager forms them."""

    def __init__(self) -> None:
        self.resources: list[Any] = []
        self.calls: list[Any] = []

    def new_resource(self, args: Any) -> tuple[str, dict]:
        inputs, kind = plain(dict(args.inputs)), args.typ.split(":")[-1]
        name = args.name
        if kind == "BlobContainer":
            name = inputs["containerName"]
            resource_id = (f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/{inputs['accountName']}"
                           f"/blobServices/default/containers/{name}")
        elif kind == "Secret":
            name = inputs["secretName"]
            resource_id = f"{RG_ID}/providers/Microsoft.KeyVault/vaults/{inputs['vaultName']}/secrets/{name}"
            inputs = {**inputs, "properties": {
                **inputs["properties"], "secretUri": f"https://{inputs['vaultName']}.vault.azure.net/secrets/{name}"}}
        elif kind == "Blob":
            name = inputs["blobName"]
            resource_id = f"{RG_ID}/blobs/{name}"
        elif kind == "RoleAssignment":
            resource_id = f"{inputs['scope']}/providers/Microsoft.Authorization/roleAssignments/{args.name}"
        else:
            provider = {"StorageAccount": "Microsoft.Storage/storageAccounts", "WebApp": "Microsoft.Web/sites",
                        "Vault": "Microsoft.KeyVault/vaults"}.get(kind, f"Mock/{kind}")
            resource_id = f"{RG_ID}/providers/{provider}/{name}"
        outputs = {"name": name, "id": resource_id, **inputs}
        if kind == "StorageAccount":
            outputs["primaryEndpoints"] = {"blob": f"https://{name}.blob.core.windows.net/"}
        elif kind == "Vault":
            outputs["properties"] = {**inputs["properties"], "vaultUri": f"https://{name}.vault.azure.net/"}
        elif kind == "WebApp":
            outputs.update(identity={"type": "SystemAssigned", "principalId": PRINCIPAL, "tenantId": TENANT},
                           defaultHostName=f"{name}.azurewebsites.net")
        self.resources.append(SimpleNamespace(typ=args.typ, name=args.name, inputs=inputs))
        return resource_id, outputs

    def call(self, args: Any) -> dict:
        self.calls.append(SimpleNamespace(token=args.token, args=plain(dict(args.args))))
        if args.token == "azure-native:authorization:getClientConfig":
            return {"clientId": "c", "objectId": "o", "subscriptionId": SUBSCRIPTION, "tenantId": TENANT}
        if args.token == "azure-native:storage:listStorageAccountServiceSAS":
            return {"serviceSasToken": "sv=2022-11-02&sr=c&sp=rw&sig=SIGNATURE"}
        return {}

    def of(self, kind: str) -> list[Any]:
        return [r for r in self.resources if r.typ == f"azure-native:{kind}"]


@pytest.fixture
def recorder() -> Recorder:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())  # Pulumi's mocks need one; earlier tests may leave none
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


def package_for(ref: str) -> Any:
    """A package holding the pipeline's compiled app, as a user builds it."""
    from strato.adapters.azure import Adapter
    from strato.infra import deployable_ir
    from strato.infra.azure.component import compiled_app

    files = compiled_app(deployable_ir(ref, Adapter()))
    return pulumi.AssetArchive({name: pulumi.StringAsset(text) for name, text in files.items()})


def data_and_host_accounts(recorder: Recorder) -> tuple[Any, Any]:
    """The data account (payloads, package) and the host account (the Functions host's state)."""
    accounts = {r.name[-2:]: r for r in recorder.of("storage:StorageAccount")}
    assert set(accounts) == {"st", "hs"}
    return accounts["st"], accounts["hs"]


def deploy(ref: str, **kwargs: Any) -> Any:
    from strato.infra.azure import StratoPipeline

    return StratoPipeline("app", ref, package_for(ref), resource_group_name=GROUP, location="westeurope", **kwargs)


def settled(deployed: Any) -> Any:
    """An output that resolves once the component, its app settings (after the roles) and its triggers exist."""
    return pulumi.Output.all(deployed.function_app_name, deployed.app_settings.urn,
                             *[r.urn for r in deployed.triggers])


@pulumi.runtime.test
def test_the_daily_sales_example_deploys_least_privilege(recorder: Recorder) -> Any:
    deployed = deploy(DAILY_SALES)

    def check(_: Any) -> None:
        account, host = data_and_host_accounts(recorder)
        for each in (account, host):
            hardening = {k: each.inputs.get(k) for k in ("enableHttpsTrafficOnly", "minimumTlsVersion",
                                                         "allowBlobPublicAccess", "allowCrossTenantReplication")}
            assert hardening == {"enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2",
                                 "allowBlobPublicAccess": False, "allowCrossTenantReplication": False}
        assert host.inputs["allowSharedKeyAccess"] is False and account.inputs["allowSharedKeyAccess"] is True
        account_name = account.name
        host_id = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/{host.name}"
        account_id = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/{account_name}"
        containers = {r.inputs["containerName"]: r.inputs for r in recorder.of("storage:BlobContainer")}
        assert set(containers) == {"strato-payloads", "strato-deployments"}
        assert all(c["publicAccess"] == "None" for c in containers.values())
        (policy,) = recorder.of("storage:ManagementPolicy")
        (rule,) = policy.inputs["policy"]["rules"]
        assert rule["definition"]["filters"]["prefixMatch"] == ["strato-payloads/strato/payloads/"]  # offload keys
        assert rule["definition"]["actions"]["baseBlob"]["delete"] == {"daysAfterModificationGreaterThan": 30}

        (plan,) = recorder.of("web:AppServicePlan")
        assert plan.inputs["sku"] == {"name": "Y1", "tier": "Dynamic"} and plan.inputs["reserved"] is True
        (app,) = recorder.of("web:WebApp")
        assert app.inputs["identity"] == {"type": "SystemAssigned"} and app.inputs["httpsOnly"] is True
        assert app.inputs["kind"] == "functionapp,linux"
        assert app.inputs["siteConfig"]["linuxFxVersion"] == "Python|3.12"  # what strato package builds for
        assert app.inputs["siteConfig"]["ftpsState"] == "Disabled"
        assert app.inputs["tags"]["strato-pipeline"] == "daily_sales" and app.inputs["tags"]["owner"] == "data-eng"

        (settings,) = recorder.of("web:WebAppApplicationSettings")
        values = settings.inputs["properties"]
        assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
        assert values["STRATO_BLOB_CONTAINER"] == "strato-payloads"
        assert values["AzureWebJobsStorage__accountName"] == host.name and "AzureWebJobsStorage" not in values
        assert re.fullmatch(rf"https://{account_name}\.blob\.core\.windows\.net/strato-deployments/"
                            r"package-[0-9a-f]{16}\.zip", values["WEBSITE_RUN_FROM_PACKAGE"])
        assert values["WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID"] == "SystemAssigned"
        assert re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=https://[a-z0-9]+\.vault\.azure\.net/secrets/"
                            r"strato-blob-connection\)", values["STRATO_BLOB_CONNECTION"])
        assert not [k for k, v in values.items() for m in SECRET_MARKERS if m in str(v)]  # no secret literal
        assert "STRATO_TASKS" not in values  # each activity is bound to its task in the generated app
        assert "WEBSITE_TIME_ZONE" not in values and deployed.schedule == "0 0 2 * * *"  # the app's timer, in UTC

        (sas,) = [c.args for c in recorder.calls if c.token == "azure-native:storage:listStorageAccountServiceSAS"]
        assert sas["canonicalizedResource"] == f"/blob/{account_name}/strato-payloads"  # the payload container only
        assert (sas["resource"], sas["permissions"], sas["protocols"]) == ("c", "rw", "https")
        (secret,) = recorder.of("keyvault:Secret")
        assert secret.inputs["properties"]["value"] == (f"BlobEndpoint=https://{account_name}.blob.core.windows.net/;"
                                                        "SharedAccessSignature=sv=2022-11-02&sr=c&sp=rw&sig=SIGNATURE")
        (vault,) = recorder.of("keyvault:Vault")
        assert vault.inputs["properties"]["enableRbacAuthorization"] is True
        secret_id = f"{RG_ID}/providers/Microsoft.KeyVault/vaults/{vault.name}/secrets/strato-blob-connection"

        roles = recorder.of("authorization:RoleAssignment")
        scopes = {r.inputs["roleDefinitionId"].rsplit("/", 1)[-1]: r.inputs["scope"] for r in roles}
        assert scopes == {"b7e6dc6d-f1e8-4753-8033-0f276bb0955b": host_id,  # Storage Blob Data Owner
                          "974c5e8b-45b9-4653-ba55-5f855dd0fb88": host_id,  # Storage Queue Data Contributor
                          "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": host_id,  # Storage Table Data Contributor
                          "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1":  # Storage Blob Data Reader: the package only
                              f"{account_id}/blobServices/default/containers/strato-deployments",
                          "4633458b-17de-408a-b874-0445c86b69e6": secret_id}  # Key Vault Secrets User
        for r in roles:
            assert r.inputs["principalId"] == PRINCIPAL and r.inputs["principalType"] == "ServicePrincipal"
            assert not re.fullmatch(r"/subscriptions/[^/]+(/resourceGroups/[^/]+)?/?", r.inputs["scope"])
            assert r.inputs["roleDefinitionId"].startswith(
                f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions/")
        assert deployed.triggers == [] and not recorder.of("eventgrid:SystemTopic")  # a timer inside the app

    return settled(deployed).apply(check)


@pulumi.runtime.test
def test_object_created_triggers_subscribe_to_blob_created_events(recorder: Recorder) -> Any:
    deployed = deploy(INGEST_FILE)

    def check(_: Any) -> None:
        account, _ = data_and_host_accounts(recorder)
        account_id = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/{account.name}"
        assert "landing" in {r.inputs["containerName"] for r in recorder.of("storage:BlobContainer")}
        (topic,) = recorder.of("eventgrid:SystemTopic")
        assert topic.inputs["source"] == account_id
        assert topic.inputs["topicType"] == "Microsoft.Storage.StorageAccounts"
        (subscription,) = recorder.of("eventgrid:SystemTopicEventSubscription")
        assert subscription.inputs["filter"] == {
            "includedEventTypes": ["Microsoft.Storage.BlobCreated"], "isSubjectCaseSensitive": True,
            "subjectBeginsWith": "/blobServices/default/containers/landing/blobs/incoming/",
            "subjectEndsWith": ".csv"}
        destination = subscription.inputs["destination"]
        assert destination["endpointType"] == "AzureFunction"
        assert destination["resourceId"] == f"{RG_ID}/providers/Microsoft.Web/sites/app-app/functions/" \
                                            "ingest_file_object_created"
        assert subscription.inputs["eventDeliverySchema"] == "EventGridSchema"
        assert len(deployed.triggers) == 3  # the landing container, the topic, the subscription

    return settled(deployed).apply(check)


@pulumi.runtime.test
def test_events_from_an_existing_account_create_no_containers(recorder: Recorder) -> Any:
    landing = f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/landingzone"
    deployed = deploy(INGEST_FILE, events_storage_account_id=landing)

    def check(_: Any) -> None:
        assert "landing" not in {r.inputs["containerName"] for r in recorder.of("storage:BlobContainer")}
        (topic,) = recorder.of("eventgrid:SystemTopic")
        assert topic.inputs["source"] == landing

    return settled(deployed).apply(check)


@pulumi.runtime.test  # what the refused component registered before raising is settled in this test's loop
def test_a_stale_package_or_a_time_zone_setting_is_refused(recorder: Recorder) -> None:
    from strato.infra.azure import StratoPipeline

    stale = pulumi.AssetArchive({"function_app.py": pulumi.StringAsset("# an older app\n"),
                                 "host.json": pulumi.StringAsset("{}")})
    with pytest.raises(ValueError, match=r"function_app\.py, host\.json differ"):
        StratoPipeline("stale", DAILY_SALES, stale, resource_group_name=GROUP, location="westeurope")
    with pytest.raises(ValueError, match="UTC"):
        deploy(DAILY_SALES, app_settings={"WEBSITE_TIME_ZONE": "Europe/Paris"})


def test_a_package_directory_is_checked_and_named_by_its_content(tmp_path: Any) -> None:
    from strato.adapters.azure import Adapter
    from strato.infra import deployable_ir
    from strato.infra.azure.component import check_package, compiled_app

    app = compiled_app(deployable_ir(INGEST_FILE, Adapter()))
    for name, text in app.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "file_ingestion.py").write_text("# task code\n")
    first = check_package(pulumi.FileArchive(str(tmp_path)), app)
    assert re.fullmatch(r"package-[0-9a-f]{16}\.zip", first)
    (tmp_path / "file_ingestion.py").write_text("# new task code\n")
    assert check_package(pulumi.FileArchive(str(tmp_path)), app) != first
    with pytest.raises(ValueError, match=r"function_app\.py differ"):  # the app of another pipeline
        check_package(pulumi.FileArchive(str(tmp_path)), compiled_app(deployable_ir(DAILY_SALES, Adapter())))


@pytest.mark.parametrize("ref", [DAILY_SALES, INGEST_FILE])
def test_the_deployed_app_binds_exactly_the_pipelines_tasks(ref: str) -> None:
    """Without STRATO_TASKS, the package's function_app.py is the catalog: one TaskRef per task of the IR
    (a catch handler included), each naming that task's own module and qualname, and nothing else."""
    from strato.adapters.azure import Adapter
    from strato.adapters.common.tasks import manifest
    from strato.infra import deployable_ir
    from strato.infra.azure.component import compiled_app

    ir = deployable_ir(ref, Adapter())
    source = compiled_app(ir)["function_app.py"]
    calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)]
    refs = [[arg.value for arg in c.args if isinstance(arg, ast.Constant)] for c in calls
            if isinstance(c.func, ast.Name) and c.func.id == "TaskRef"]
    bound = {name: f"{module}:{qualname}" for name, module, qualname in refs}
    assert bound == manifest(ir)
    assert source.count("run_task(") == len(bound)  # each activity runs its own constant, no other code path


SECURED = "tests/infra/secured.py:secured"


@pulumi.runtime.test  # as above: nothing half-registered is left for the next test's loop
def test_a_pipeline_with_secrets_needs_their_values(recorder: Recorder) -> None:
    with pytest.raises(ValueError, match="given secrets 'db-password': pass their values as secrets="):
        deploy(SECURED)


@pulumi.runtime.test
def test_the_app_reads_exactly_its_tasks_secrets_from_the_vault(recorder: Recorder) -> Any:
    deployed = deploy(SECURED, secrets={"db-password": pulumi.Output.secret("hunter2")})

    def check(_: Any) -> None:
        (vault,) = recorder.of("keyvault:Vault")
        stored = {r.inputs["secretName"]: r for r in recorder.of("keyvault:Secret")}
        assert set(stored) == {"strato-blob-connection", "db-password"}
        secret_id = f"{RG_ID}/providers/Microsoft.KeyVault/vaults/{vault.name}/secrets/db-password"
        readers = [r.inputs["scope"] for r in recorder.of("authorization:RoleAssignment")
                   if r.inputs["roleDefinitionId"].endswith("4633458b-17de-408a-b874-0445c86b69e6")]
        assert secret_id in readers and len(readers) == 2  # the payload connection and the task's secret
        (settings,) = recorder.of("web:WebAppApplicationSettings")
        assert settings.inputs["properties"]["STRATO_KEY_VAULT_URL"] == f"https://{vault.name}.vault.azure.net/"
        assert "hunter2" not in str(settings.inputs["properties"])

    return settled(deployed).apply(check)
