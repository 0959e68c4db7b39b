"""Azure: a Strato pipeline as a Durable Functions app on a Linux Consumption plan, with its storage and triggers.

    import pulumi
    from strato.infra.azure import StratoPipeline

    deployed = StratoPipeline("daily-sales", "pipelines/daily_sales.py:daily_sales",
                              resource_group_name=group.name, location=group.location)
    pulumi.export("function_app", deployed.function_app_name)

``package`` is what the app runs from (``WEBSITE_RUN_FROM_PACKAGE``; a Linux Consumption app installs
nothing, so the dependencies travel in it): the zip ``strato package REF --target azure`` writes (the
compiled app and your project at the top level, Strato and the app's ``requirements.txt`` installed
under ``.python_packages``), a path to one, or left out to have the component build it into
``build/`` when the program runs.

The component compiles the pipeline again and refuses a package whose ``function_app.py`` or
``host.json`` differ from it (a stale app would miss triggers).
"""

from __future__ import annotations

from .component import StratoPipeline

__all__ = ["StratoPipeline"]
