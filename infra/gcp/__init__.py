"""Google Cloud: a Strato pipeline as a Cloud Workflows workflow, Cloud Functions (2nd gen) and its triggers.

    import pulumi
    from strato.infra.gcp import StratoPipeline

    deployed = StratoPipeline("daily-sales", "pipelines/daily_sales.py:daily_sales", region="europe-west1")
    pulumi.export("workflow", deployed.workflow_id)

``source`` is the functions' source, which Cloud Build installs on deploy: the zip ``strato package
REF --target gcp`` writes (your project, Strato, ``main.py`` exposing the shim's ``handler`` and a
``requirements.txt`` with Strato's runtime and your declared dependencies), a path to one, or left
out to have the component build it into ``build/`` when the program runs.
"""

from __future__ import annotations

from .component import ObjectGrant, StratoPipeline, account_id, functions_base_url, gcs_prefix, task_grants

__all__ = ["ObjectGrant", "StratoPipeline", "account_id", "functions_base_url", "gcs_prefix", "task_grants"]
