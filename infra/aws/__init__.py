"""AWS: a Strato pipeline as Step Functions state machines, Lambda functions and their triggers.

    import pulumi
    from strato.infra.aws import StratoPipeline

    deployed = StratoPipeline("daily-sales", "pipelines/daily_sales.py:daily_sales",
                              code=pulumi.FileArchive("build/package"))
    pulumi.export("state_machine", deployed.state_machine_arn)

``code`` is the Lambda deployment package: your task modules plus ``strato[aws]`` and its
dependencies, built for the Lambda runtime (``pip install --target build/package --platform
manylinux2014_x86_64 --only-binary=:all: 'strato[aws]'`` and your code beside it).
"""

from __future__ import annotations

from .component import StratoPipeline

__all__ = ["StratoPipeline"]
