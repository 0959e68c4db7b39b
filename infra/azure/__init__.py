"""Azure: a Strato pipeline as a Durable Functions app on a Linux Consumption plan, with its storage and triggers.

    import pulumi
    from strato.infra.azure import StratoPipeline

    deployed = StratoPipeline("daily-sales", "pipelines/daily_sales.py:daily_sales",
                              pulumi.FileArchive("build/package"),
                              resource_group_name=group.name, location=group.location)
    pulumi.export("function_app", deployed.function_app_name)

``package`` is what the app runs from (``WEBSITE_RUN_FROM_PACKAGE``; a Linux Consumption app installs
nothing, so the dependencies travel in it): the compiled app at the top level, the task modules beside
it under the names the app imports (the module names in ``function_app.py``'s docstring; a
``path.py:name`` reference is imported as the file's stem) and ``strato[azure]`` with the app's
``requirements.txt`` under ``.python_packages``::

    strato compile pipelines/daily_sales.py:daily_sales --target azure --out build/
    mkdir -p build/package && cp build/daily_sales/* pipelines/daily_sales.py build/package/
    pip install --target build/package/.python_packages/lib/site-packages \\
        --platform manylinux2014_x86_64 --python-version 3.11 --only-binary=:all: 'strato[azure]'

The component compiles the pipeline again and refuses a package whose ``function_app.py`` or
``host.json`` differ from it (a stale app would miss triggers).
"""

from __future__ import annotations

from .component import StratoPipeline

__all__ = ["StratoPipeline"]
