"""`pulumi up` deploys examples/daily_sales.py to Google Cloud (Workflows, one Cloud Function per task).

The walk-through (stack, `pulumi up`, starting and following a run, `pulumi destroy`) is in the
repository's README, section "`pulumi up`". Every config key is in `Pulumi.dev.yaml.example`. The
project needs the Cloud Functions, Cloud Build, Cloud Run, Workflows, Cloud Scheduler and Eventarc
APIs enabled.
"""

from pathlib import Path

import pulumi

from strato.infra.gcp import StratoPipeline

ROOT = Path(__file__).resolve().parents[3]
config = pulumi.Config()

sales = StratoPipeline(
    "daily-sales", str(ROOT / "examples" / "daily_sales.py") + ":daily_sales",
    # a source zip `strato package --target gcp` built; left unset, the component builds it into build/
    source=config.get("package"),
    region=config.get("region") or "europe-west1",
    payload_days=config.get_int("payload-days") or 30,
    labels={"environment": pulumi.get_stack()})

pulumi.export("workflow", sales.workflow_id)
pulumi.export("workflow_name", sales.workflow_name)
pulumi.export("payload_bucket", sales.payload_bucket)
pulumi.export("functions_url", sales.functions_url)
