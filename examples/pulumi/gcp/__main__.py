"""`pulumi up` deploys examples/daily_sales.py to Google Cloud.

The functions' source is assembled here from this repository (Cloud Build installs the requirements
on deploy): the task module, the ``strato`` package (``framework/``, with ``adapters/`` as
``strato/adapters``), a ``main.py`` exposing the shim's ``handler`` and a ``requirements.txt``. In this folder:

    pulumi stack init dev
    pulumi config set gcp:project my-project
    pulumi config set region europe-west1
    pulumi up

The project needs the Cloud Functions, Cloud Build, Cloud Run, Workflows, Cloud Scheduler and
Eventarc APIs enabled. Start a run with ``strato invoke examples/daily_sales.py:daily_sales --target gcp
--project my-project --location europe-west1``.
"""

from pathlib import Path

import pulumi

from strato.infra.gcp import StratoPipeline

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = ["click>=8.1", "rich>=13", "croniter>=2", "pydantic>=2.6", "tzdata", "google-cloud-storage>=2.10",
                "functions-framework>=3.5", "PyYAML>=6"]

source = pulumi.AssetArchive({
    "main.py": pulumi.StringAsset("from strato.adapters.gcp.shim import handler\n\n__all__ = [\"handler\"]\n"),
    "requirements.txt": pulumi.StringAsset("\n".join(REQUIREMENTS) + "\n"),
    "strato": pulumi.FileArchive(str(ROOT / "framework")),  # the repository's folders, as installed
    "strato/adapters": pulumi.FileArchive(str(ROOT / "adapters")),
    "daily_sales.py": pulumi.FileAsset(str(ROOT / "examples" / "daily_sales.py")),
    "data": pulumi.FileArchive(str(ROOT / "examples" / "data")),
})

config = pulumi.Config()
sales = StratoPipeline("daily-sales", str(ROOT / "examples" / "daily_sales.py") + ":daily_sales", source=source,
                       region=config.get("region") or "europe-west1", labels={"environment": pulumi.get_stack()})

pulumi.export("workflow", sales.workflow_id)
pulumi.export("payload_bucket", sales.payload_bucket)
pulumi.export("functions_url", sales.functions_url)
