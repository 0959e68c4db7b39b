"""Google Cloud: a Strato pipeline as a Cloud Workflows workflow, Cloud Functions (2nd gen) and its triggers.

    import pulumi
    from strato.infra.gcp import StratoPipeline

    deployed = StratoPipeline("daily-sales", "pipelines/daily_sales.py:daily_sales",
                              source=pulumi.FileArchive("build/gcp-source"), region="europe-west1")
    pulumi.export("workflow", deployed.workflow_id)

``source`` is the functions' source, built by Cloud Build on deploy: your task modules, Strato's
``framework`` and ``adapters`` packages (or ``strato[gcp]`` in ``requirements.txt``), a
``requirements.txt`` with the ``gcp`` extra's dependencies, and a ``main.py`` containing
``from strato.adapters.gcp.shim import handler`` (the functions' entry point). ``examples/pulumi/gcp/``
assembles one from this repository.
"""

from __future__ import annotations

from .component import ObjectGrant, StratoPipeline, account_id, functions_base_url, gcs_prefix, task_grants

__all__ = ["ObjectGrant", "StratoPipeline", "account_id", "functions_base_url", "gcs_prefix", "task_grants"]
