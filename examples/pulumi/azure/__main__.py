"""`pulumi up` deploys examples/file_ingestion.py to Azure Functions (Durable Functions, Linux Consumption).

Build the package first, from the repository root: the compiled app at its top level, the task module
beside it (the app imports it as `file_ingestion`) and Strato with the app's requirements under
`.python_packages` (a Linux Consumption app installs nothing itself):

    strato compile examples/file_ingestion.py:ingest_file --target azure --out build/
    mkdir -p build/package && cp build/ingest_file/* examples/file_ingestion.py build/package/
    pip install --target build/package/.python_packages/lib/site-packages --platform manylinux2014_x86_64 \\
        --python-version 3.11 --only-binary=:all: '.[azure]'

then, in this folder: `pulumi stack init dev && pulumi config set azure-native:location westeurope && pulumi up`.
Blobs written to the `landing` container under `incoming/` and ending in `.csv` start a run. The
Event Grid subscription is created once the app lists its functions; if it reports the function
missing on a first deployment, run `pulumi up` again.
"""

from pathlib import Path

import pulumi
import pulumi_azure_native.resources as resources

from strato.infra.azure import StratoPipeline

ROOT = Path(__file__).resolve().parents[3]

group = resources.ResourceGroup("strato-ingest")
ingest = StratoPipeline("ingest", str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file",
                        pulumi.FileArchive(str(ROOT / "build" / "package")),
                        resource_group_name=group.name, location=group.location,
                        tags={"environment": pulumi.get_stack()})

pulumi.export("function_app", ingest.function_app_name)
pulumi.export("hostname", ingest.default_hostname)
pulumi.export("storage_account", ingest.storage_account)
pulumi.export("payload_container", ingest.payload_container)
