"""`pulumi up` deploys examples/daily_sales.py to AWS (Step Functions, one Lambda function per task).

The walk-through (stack, `pulumi up`, starting and following a run, `pulumi destroy`) is in the
repository's README, section "`pulumi up`". Every config key is in `Pulumi.dev.yaml.example`.
"""

from pathlib import Path

import pulumi

from strato.infra.aws import StratoPipeline

ROOT = Path(__file__).resolve().parents[3]
config = pulumi.Config()

sales = StratoPipeline(
    "daily-sales", str(ROOT / "examples" / "daily_sales.py") + ":daily_sales",
    # a zip `strato package --target aws` built; left unset, the component builds it into build/
    code=config.get("package"),
    payload_days=config.get_int("payload-days") or 30,
    tags={"environment": pulumi.get_stack()})

pulumi.export("state_machine", sales.state_machine_arn)
pulumi.export("payload_bucket", sales.payload_bucket)
