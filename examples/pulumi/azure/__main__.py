"""`pulumi up` deploys examples/file_ingestion.py to Azure Functions (Durable Functions, Linux Consumption).

Blobs written to the `landing` container under `incoming/` and ending in `.csv` start a run. The
Event Grid subscription is created once the app lists its functions; if it reports the function
missing on a first deployment, run `pulumi up` again. The walk-through (stack, `pulumi up`, starting
and following a run, `pulumi destroy`) is in the repository's README, section "`pulumi up`". Every
config key is in `Pulumi.dev.yaml.example`.
"""

from pathlib import Path

import pulumi
import pulumi_azure_native.resources as resources

from strato.infra.azure import StratoPipeline

ROOT = Path(__file__).resolve().parents[3]
config = pulumi.Config()

group = resources.ResourceGroup("strato-ingest", tags={"environment": pulumi.get_stack()})
ingest = StratoPipeline(
    "ingest", str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file",
    # an app zip `strato package --target azure` built; left unset, the component builds it into build/
    config.get("package"),
    resource_group_name=group.name, location=group.location,
    payload_days=config.get_int("payload-days") or 30,
    tags={"environment": pulumi.get_stack()})

pulumi.export("resource_group", group.name)
pulumi.export("function_app", ingest.function_app_name)
pulumi.export("hostname", ingest.default_hostname)
pulumi.export("storage_account", ingest.storage_account)
pulumi.export("payload_container", ingest.payload_container)
