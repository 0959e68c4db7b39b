"""AWS: a Strato pipeline as Step Functions state machines, Lambda functions and their triggers.

    import pulumi
    from strato.infra.aws import StratoPipeline

    deployed = StratoPipeline("daily-sales", "pipelines/daily_sales.py:daily_sales")
    pulumi.export("state_machine", deployed.state_machine_arn)

``code`` is the Lambda deployment package: the zip ``strato package REF --target aws`` writes (your
project, Strato's runtime and your declared dependencies, built for the Lambda runtime), a path to
one, or left out to have the component build it into ``build/`` when the program runs.
"""

from __future__ import annotations

from .component import StratoPipeline

__all__ = ["StratoPipeline"]
