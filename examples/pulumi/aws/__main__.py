"""`pulumi up` deploys examples/daily_sales.py to AWS.

Build the Lambda package first (task code plus Strato for the Lambda runtime), from the repository root:

    pip install --target build/package --platform manylinux2014_x86_64 --only-binary=:all: '.[aws]'
    cp examples/daily_sales.py build/package/

then, in this folder: `pulumi stack init dev && pulumi config set aws:region eu-west-1 && pulumi up`.
"""

from pathlib import Path

import pulumi

from strato.infra.aws import StratoPipeline

ROOT = Path(__file__).resolve().parents[3]

sales = StratoPipeline("daily-sales", str(ROOT / "examples" / "daily_sales.py") + ":daily_sales",
                       code=pulumi.FileArchive(str(ROOT / "build" / "package")),
                       tags={"environment": pulumi.get_stack()})

pulumi.export("state_machine", sales.state_machine_arn)
pulumi.export("payload_bucket", sales.payload_bucket)
