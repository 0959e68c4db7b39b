"""``StratoPipeline``: the Azure resources a compiled Durable Functions app needs, least privilege by default.

What it creates, all children of the component and tagged with the pipeline's tags:

- two storage accounts (HTTPS only, TLS 1.2, no public blob access): a host account holding only the
  Functions host's and Durable's state, reached by identity alone (``AzureWebJobsStorage__accountName``,
  shared key access off), and a data account with a container for results that travel by reference
  (blobs under ``strato/payloads/``, the offload keys, are deleted after ``payload_days``) and a
  deployment container for the package;
- a Linux Consumption plan and a Python function app with a system-assigned identity that runs
  from the package blob, reads the package by identity and reaches the payload container through a
  Key Vault reference to a SAS that reads and writes that container only and expires within
  ``payload_days`` (:func:`sas_expiry`);
- role assignments on named resources only: on the host account, the data roles the host and Durable
  need (the account holds nothing else); ``Storage Blob Data Reader`` on the deployment container
  (never write: the app cannot replace its own package); ``Key Vault Secrets User`` on each secret it
  reads (and ``Monitoring Metrics Publisher`` on the Application Insights component when there is
  one); nothing on the data account as a whole, its resource group or subscription;
- an Event Grid system topic on the watched storage account and one subscription per
  ``ObjectCreated`` trigger, delivering ``BlobCreated`` events for its container, prefix and suffix
  to the generated Event Grid function. Schedules are timer triggers inside the app.

Shared key access is off on the host account: the Functions host and the Durable Functions Azure
Storage provider connect by identity (``AzureWebJobsStorage__accountName``: "Connecting to host storage
with an identity", https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity,
and https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-configure-managed-identity),
and a Linux Consumption app that runs from a package URL uses no Azure Files content share, the one
part of host storage that needs a key. It stays on for the data account only: the activities' blob
store (``strato.adapters.azure.payloads``) is built from a connection string whose SAS is a service
SAS signed with an account key, refused once shared key access is off
(https://learn.microsoft.com/azure/storage/common/shared-key-authorization-prevent), and uploading the
package blob also uses a key. A user delegation SAS would not need one, but lives at most seven days.

Key Vault keeps public network access on: a Consumption plan app has no virtual network integration
(https://learn.microsoft.com/azure/azure-functions/functions-networking-options#matrix-of-networking-features),
and App Service resolves Key Vault references to a network-restricted vault only over the app's
virtual network (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#access-network-restricted-vaults).
Access stays identity-only (RBAC, one role assignment per secret); a plan with virtual network
integration (Flex Consumption, Premium) could set ``public_network_access="Disabled"`` with a
private endpoint, which this component does not create.

No ``STRATO_TASKS`` app setting: unlike a Lambda or Cloud Function shim, each activity of the
generated app is bound to its one task when the app is generated (a ``TaskRef`` constant in
``function_app.py``, checked against the compiled app by :func:`check_package`), and its input
carries arguments only, so the app's task catalog is the deployed module itself.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pulumi
import pulumi_azure_native.authorization as authorization
import pulumi_azure_native.eventgrid as eventgrid
import pulumi_azure_native.keyvault as keyvault
import pulumi_azure_native.storage as storage
import pulumi_azure_native.web as web

from strato.adapters.azure import Adapter
from strato.adapters.azure.payloads import DEFAULT_CONTAINER
from strato.adapters.azure.triggers import BLOB_CREATED, ncrontab
from strato.adapters.common.offload import PREFIX
from strato.dsl.definitions import PipelineDefinition
from strato.ir import ObjectCreatedSpec, PipelineIR

from .. import Package, deployable_ir, deployment_package

PAYLOAD_PREFIX = PREFIX  # where offloaded results are written: strato/payloads/<sha256>.json
DEPLOYMENT_CONTAINER = "strato-deployments"
APP_FILES = ("function_app.py", "host.json", "requirements.txt")

# Built-in role definition ids (the same in every tenant).
ROLES = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
# What the host and Durable Functions (Azure Storage provider) need on AzureWebJobsStorage when it is
# an identity-based connection: blobs (keys, leases, large messages), queues (control and work items),
# tables (history, instances, diagnostics).
HOST_STORAGE_ROLES = ("Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor")
PACKAGE_READER = "Storage Blob Data Reader"  # what run-from-package by identity needs on the package blob
PAYLOAD_SAS_PERMISSIONS = "rw"  # read and write blobs of the container: no list, no delete
# Why the vault stays reachable publicly on a Consumption plan: see the module docstring.
CONSUMPTION_VAULT_NETWORK = "Enabled"
# Timer triggers must stay in UTC (strato.adapters.azure.triggers).
RESERVED_SETTINGS = frozenset({"WEBSITE_TIME_ZONE", "TZ"})


def compiled_app(ir: PipelineIR) -> dict[str, str]:
    """The generated app's files, compiled into a temporary directory by the Azure adapter."""
    with tempfile.TemporaryDirectory(prefix="strato-azure-") as tmp:
        result = Adapter().compile(ir, Path(tmp))
        return {path.name: path.read_text() for path in result.paths}


def event_grid_functions(function_app: str) -> list[str]:
    """The Event Grid functions' names, in the order of the pipeline's ``ObjectCreated`` triggers."""
    return re.findall(r'@app\.function_name\(name="([^"]+)"\)\n@app\.event_grid_trigger\(', function_app)


def _archive_files(archive: pulumi.Archive | pulumi.Asset, prefix: str = "") -> dict[str, bytes] | None:
    """The files of a local archive (a directory, a zip, or assets in memory); None when not readable here."""
    if isinstance(archive, pulumi.StringAsset):
        return {prefix: archive.text.encode()}
    if isinstance(archive, pulumi.FileAsset):
        return {prefix: Path(archive.path).read_bytes()}
    if isinstance(archive, pulumi.AssetArchive):
        out: dict[str, bytes] = {}
        for key, item in archive.assets.items():
            files = _archive_files(item, f"{prefix}{key}" if isinstance(item, pulumi.Asset) else f"{prefix}{key}/")
            if files is None:
                return None
            out.update(files)
        return out
    if isinstance(archive, pulumi.FileArchive):
        path = Path(archive.path)
        if path.is_dir():
            return {f"{prefix}{p.relative_to(path).as_posix()}": p.read_bytes()
                    for p in sorted(path.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                return {f"{prefix}{n}": z.read(n) for n in sorted(z.namelist()) if not n.endswith("/")}
    return None


def check_package(package: pulumi.Archive, app: dict[str, str]) -> str:
    """The package blob's name (content-addressed when the package is local), after checking that it
    holds this pipeline's app: a stale ``function_app.py`` would run old code and miss triggers."""
    files = _archive_files(package)
    if files is None:
        pulumi.log.warn("the package is not a local archive, so it cannot be checked against the compiled app; "
                        "make sure it is what `strato package REF --target azure` built")
        return "package.zip"
    stale = [name for name in APP_FILES if name != "requirements.txt" and files.get(name) != app[name].encode()]
    if stale:
        raise ValueError(f"the package's {', '.join(stale)} differ from the pipeline's compiled app (or are missing "
                         "at its top level): rebuild it with `strato package REF --target azure`")
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return f"package-{digest.hexdigest()[:16]}.zip"


def sas_expiry(payload_days: int, requested: str | None = None, today: date | None = None) -> str:
    """When the payload SAS expires: ``payload_days`` from today (midnight UTC, so ``pulumi up`` twice in
    a day signs the same token), or ``requested`` if that is sooner. A leaked token is worth no more
    than the payloads it could reach, which expire after ``payload_days``; run ``pulumi up`` (in CI, on a
    schedule) well within that time to sign a new one."""
    today = today or datetime.now(UTC).date()
    latest = datetime.combine(today + timedelta(days=payload_days), datetime.min.time(), UTC)
    if requested is None:
        return latest.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        chosen = datetime.fromisoformat(requested.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"payload_sas_expiry {requested!r} is not an ISO 8601 time such as "
                         f"{latest:%Y-%m-%dT%H:%M:%SZ}") from None
    chosen = chosen if chosen.tzinfo else chosen.replace(tzinfo=UTC)
    if chosen > latest:
        raise ValueError(f"payload_sas_expiry {requested!r} is later than payload_days={payload_days} from today "
                         f"({latest:%Y-%m-%dT%H:%M:%SZ}): the payload SAS may live no longer than the payloads it "
                         "reaches; choose an earlier time or raise payload_days")
    if chosen <= datetime.now(UTC):
        raise ValueError(f"payload_sas_expiry {requested!r} is in the past: the app could not reach its payloads")
    return chosen.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _alnum(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower()) or "strato"


class StratoPipeline(pulumi.ComponentResource):
    """Deploys one pipeline (a ``@pipeline`` object or a ``path.py:name`` reference) to Azure Functions."""

    function_app_name: pulumi.Output[str]
    default_hostname: pulumi.Output[str]
    storage_account: pulumi.Output[str]
    host_storage_account: pulumi.Output[str]
    payload_sas_expiry: str  # when the payload container's SAS lapses: `pulumi up` before then
    payload_container: pulumi.Output[str]
    schedule: str | None  # the timer trigger's NCRONTAB, in UTC
    app_settings: web.WebAppApplicationSettings
    triggers: list[pulumi.CustomResource]

    def __init__(self, name: str, pipeline: PipelineDefinition | str, package: Package = None, *,
                 resource_group_name: pulumi.Input[str], location: pulumi.Input[str],
                 python_version: str = "3.12", payload_container: str = DEFAULT_CONTAINER, payload_days: int = 30,
                 payload_sas_expiry: str | None = None, events_storage_account_id: pulumi.Input[str] | None = None,
                 log_analytics_workspace_id: pulumi.Input[str] | None = None,
                 app_settings: dict[str, pulumi.Input[str]] | None = None,
                 secrets: dict[str, pulumi.Input[str]] | None = None,
                 tags: dict[str, str] | None = None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("strato:azure:Pipeline", name, None, opts)
        ir = deployable_ir(pipeline, Adapter())
        needed = sorted({s for p in (ir, *ir.subpipelines.values()) for spec in p.tasks.values() for s in spec.secrets})
        missing = [s for s in needed if s not in (secrets or {})]
        if missing:
            raise ValueError(f"the pipeline's tasks are given secrets {', '.join(map(repr, missing))}: pass their "
                             "values as secrets={name: pulumi.Config().require_secret(name)}; they are stored in "
                             "the pipeline's Key Vault, which the app reads by identity")
        app_files = compiled_app(ir)
        # the run-from-package zip, built for the app's Python when not given (`strato package --target azure`)
        package = deployment_package(pipeline, ir, Adapter(), package, python_version=python_version)
        blob_name = check_package(package, app_files)
        self.schedule = ncrontab(ir.schedule) if ir.schedule is not None else None  # UTC, as the app's timer
        extra = dict(app_settings or {})
        if RESERVED_SETTINGS & set(extra):
            raise ValueError(f"app settings {sorted(RESERVED_SETTINGS & set(extra))} would move timer triggers off "
                             "UTC, which Linux Consumption plans do not support; write the schedule in UTC")
        child = pulumi.ResourceOptions(parent=self)
        base_tags = {**ir.tags, "strato-pipeline": ir.name, **(tags or {})}
        client = authorization.get_client_config_output()
        rg = resource_group_name

        # --------------------------------------------------------------------------- storage
        hardened = {"kind": "StorageV2", "sku": {"name": "Standard_LRS"}, "enable_https_traffic_only": True,
                    "minimum_tls_version": "TLS1_2", "allow_blob_public_access": False,
                    "default_to_o_auth_authentication": True, "allow_cross_tenant_replication": False}
        # The host's and Durable's state, by identity only (see the module docstring).
        host_account = storage.StorageAccount(f"{_alnum(name)[:14]}hs", resource_group_name=rg, location=location,
                                              allow_shared_key_access=False, tags=base_tags, opts=child, **hardened)
        # Payloads and the package: the payload SAS is signed with this account's key.
        account = storage.StorageAccount(f"{_alnum(name)[:14]}st", resource_group_name=rg, location=location,
                                         allow_shared_key_access=True, tags=base_tags, opts=child, **hardened)
        payloads = storage.BlobContainer(f"{name}-payloads", resource_group_name=rg, account_name=account.name,
                                         container_name=payload_container, public_access="None", opts=child)
        deployments = storage.BlobContainer(f"{name}-deployments", resource_group_name=rg,
                                            account_name=account.name, container_name=DEPLOYMENT_CONTAINER,
                                            public_access="None", opts=child)
        storage.ManagementPolicy(f"{name}-expire-payloads", resource_group_name=rg, account_name=account.name,
                                 management_policy_name="default", opts=pulumi.ResourceOptions(
                                     parent=self, depends_on=[payloads]), policy={"rules": [{
                                         "name": "expire-payloads", "enabled": True, "type": "Lifecycle",
                                         "definition": {
                                             "filters": {"blob_types": ["blockBlob"],
                                                         "prefix_match": [f"{payload_container}/{PAYLOAD_PREFIX}"]},
                                             "actions": {"base_blob": {"delete": {
                                                 "days_after_modification_greater_than": payload_days}}}}}]})
        blob = storage.Blob(f"{name}-package", resource_group_name=rg, account_name=account.name,
                            container_name=deployments.name, blob_name=blob_name, type="Block", source=package,
                            content_type="application/zip", opts=child)
        blob_endpoint = account.primary_endpoints.apply(lambda e: e.blob)
        package_url = pulumi.Output.concat(blob_endpoint, DEPLOYMENT_CONTAINER, "/", blob.name)

        # ------------------------------------------- the payload container's SAS, in Key Vault
        self.payload_sas_expiry = expiry = sas_expiry(payload_days, payload_sas_expiry)
        sas = storage.list_storage_account_service_sas_output(
            resource_group_name=rg, account_name=account.name, resource="c", permissions=PAYLOAD_SAS_PERMISSIONS,
            protocols="https",
            canonicalized_resource=pulumi.Output.concat("/blob/", account.name, "/", payloads.name),
            shared_access_expiry_time=expiry)
        plain: pulumi.Output[str] = pulumi.Output.concat("BlobEndpoint=", blob_endpoint,
                                                         ";SharedAccessSignature=", sas.service_sas_token)
        connection: pulumi.Output[str] = pulumi.Output.secret(plain)
        vault = keyvault.Vault(f"{_alnum(name)[:14]}kv", resource_group_name=rg, location=location, tags=base_tags,
                               properties={"tenant_id": client.tenant_id, "sku": {"family": "A", "name": "standard"},
                                           "enable_rbac_authorization": True, "soft_delete_retention_in_days": 7,
                                           "public_network_access": CONSUMPTION_VAULT_NETWORK}, opts=child)
        expires = int(datetime.fromisoformat(expiry.replace("Z", "+00:00")).timestamp())  # flagged near expiry
        secret = keyvault.Secret(f"{name}-payload-connection", resource_group_name=rg, vault_name=vault.name,
                                 secret_name="strato-blob-connection", tags=base_tags, opts=child,
                                 properties={"value": connection, "attributes": {"expires": expires}})

        # ------------------------------------------------------------------------ the app
        plan = web.AppServicePlan(f"{name}-plan", resource_group_name=rg, location=location, kind="functionapp",
                                  reserved=True, sku={"name": "Y1", "tier": "Dynamic"}, tags=base_tags, opts=child)
        app = web.WebApp(
            f"{name}-app", resource_group_name=rg, location=location, kind="functionapp,linux", reserved=True,
            server_farm_id=plan.id, https_only=True, client_affinity_enabled=False,
            identity={"type": "SystemAssigned"}, key_vault_reference_identity="SystemAssigned",
            site_config={"linux_fx_version": f"Python|{python_version}", "ftps_state": "Disabled",
                         "min_tls_version": "1.2", "http20_enabled": True},
            tags=base_tags, opts=child)
        principal = app.identity.apply(lambda i: i.principal_id if i else None)

        # ------------------------------------------------------------------------- roles
        def role(label: str, role_name: str, scope: pulumi.Input[str]) -> authorization.RoleAssignment:
            return authorization.RoleAssignment(
                f"{name}-{label}", principal_id=principal, principal_type="ServicePrincipal", scope=scope,
                role_definition_id=pulumi.Output.concat("/subscriptions/", client.subscription_id,
                                                        "/providers/Microsoft.Authorization/roleDefinitions/",
                                                        ROLES[role_name]),
                description=f"Strato pipeline {ir.name}: {role_name}", opts=child)

        roles = [role(_alnum(r), r, host_account.id) for r in HOST_STORAGE_ROLES]  # host state only
        roles.append(role("package-reader", PACKAGE_READER, deployments.id))  # read, never replace, the package
        roles.append(role("secret-reader", "Key Vault Secrets User", secret.id))
        for secret_name in needed:  # the tasks' own secrets: read on exactly these, nothing else in the vault
            stored = keyvault.Secret(f"{name}-secret-{secret_name}", resource_group_name=rg, vault_name=vault.name,
                                     secret_name=secret_name, tags=base_tags,
                                     properties={"value": pulumi.Output.secret((secrets or {})[secret_name])},
                                     opts=child)
            roles.append(role(f"secret-{secret_name}", "Key Vault Secrets User", stored.id))

        settings: dict[str, pulumi.Input[str]] = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "FUNCTIONS_EXTENSION_VERSION": "~4",
            "AzureWebJobsStorage__accountName": host_account.name,  # identity-based: host, Durable, timers
            "WEBSITE_RUN_FROM_PACKAGE": package_url,
            "WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID": "SystemAssigned",
            "STRATO_BLOB_CONTAINER": payloads.name,
            "STRATO_BLOB_CONNECTION": pulumi.Output.concat("@Microsoft.KeyVault(SecretUri=",
                                                           secret.properties.apply(lambda p: p.secret_uri), ")"),
        }
        if needed:  # where activities read their tasks' secrets (strato.adapters.azure.secrets)
            settings["STRATO_KEY_VAULT_URL"] = vault.properties.apply(lambda p: p.vault_uri)
        if log_analytics_workspace_id is not None:
            import pulumi_azure_native.applicationinsights as insights

            component = insights.Component(
                f"{name}-insights", resource_group_name=rg, location=location, kind="web", application_type="web",
                workspace_resource_id=log_analytics_workspace_id, disable_local_auth=True,
                ingestion_mode="LogAnalytics", tags=base_tags, opts=child)
            roles.append(role("telemetry", "Monitoring Metrics Publisher", component.id))
            settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] = component.connection_string
            settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] = "Authorization=AAD"
        clash = sorted(set(extra) & set(settings))
        if clash:
            raise ValueError(f"app settings {clash} are set by the component")
        # A separate resource, after the roles: the app's first start can read its storage and its secret.
        self.app_settings = web.WebAppApplicationSettings(
            f"{name}-settings", name=app.name, resource_group_name=rg, properties={**settings, **extra},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*roles, blob]))

        # -------------------------------------------------------------------------- triggers
        self.triggers = self._triggers(name, ir, app, app_files["function_app.py"], account,
                                       events_storage_account_id, rg, location, base_tags,
                                       {payload_container, DEPLOYMENT_CONTAINER})
        self.function_app_name = app.name
        self.default_hostname = app.default_host_name
        self.storage_account = account.name
        self.host_storage_account = host_account.name
        self.payload_container = payloads.name
        self.register_outputs({"function_app_name": app.name, "default_hostname": app.default_host_name,
                               "storage_account": account.name, "host_storage_account": host_account.name,
                               "payload_container": payloads.name, "payload_sas_expiry": expiry,
                               "package_url": package_url})

    def _triggers(self, name: str, ir: PipelineIR, app: web.WebApp, function_app: str,
                  account: storage.StorageAccount, source_id: pulumi.Input[str] | None, rg: pulumi.Input[str],
                  location: pulumi.Input[str], tags: dict[str, str],
                  existing: set[str]) -> list[pulumi.CustomResource]:
        """An Event Grid subscription per ``ObjectCreated``, on one system topic of the watched account.

        Without ``events_storage_account_id`` the containers are created in the component's account.
        An account has at most one system topic: pass the account of an existing topic's source only
        if it has none yet.
        """
        objects = [t for t in ir.triggers if isinstance(t, ObjectCreatedSpec)]
        if not objects:
            return []
        functions = event_grid_functions(function_app)
        if len(functions) != len(objects):
            raise ValueError(f"the compiled app has {len(functions)} Event Grid functions for {len(objects)} "
                             "ObjectCreated triggers")
        child = pulumi.ResourceOptions(parent=self)
        created: list[pulumi.CustomResource] = []
        if source_id is None:
            source_id = account.id
            for bucket in sorted({t.bucket for t in objects} - existing):
                created.append(storage.BlobContainer(f"{name}-watch-{bucket}", resource_group_name=rg,
                                                     account_name=account.name, container_name=bucket,
                                                     public_access="None", opts=child))
        topic = eventgrid.SystemTopic(f"{name}-blob-events", resource_group_name=rg, location=location,
                                      source=source_id, topic_type="Microsoft.Storage.StorageAccounts", tags=tags,
                                      opts=child)
        created.append(topic)
        after = pulumi.ResourceOptions(parent=self, depends_on=[self.app_settings])  # the function must exist
        for i, (trigger, function) in enumerate(zip(objects, functions, strict=True)):
            created.append(eventgrid.SystemTopicEventSubscription(
                f"{name}-object-created-{i}", resource_group_name=rg, system_topic_name=topic.name,
                event_delivery_schema="EventGridSchema",
                destination={"endpoint_type": "AzureFunction",
                             "resource_id": pulumi.Output.concat(app.id, "/functions/", function),
                             "max_events_per_batch": 1, "preferred_batch_size_in_kilobytes": 64},
                filter={"included_event_types": [BLOB_CREATED], "is_subject_case_sensitive": True,
                        "subject_begins_with": f"/blobServices/default/containers/{trigger.bucket}/blobs/"
                                               f"{trigger.prefix}",
                        **({"subject_ends_with": trigger.suffix} if trigger.suffix else {})},
                retry_policy={"max_delivery_attempts": 30, "event_time_to_live_in_minutes": 1440}, opts=after))
        return created
