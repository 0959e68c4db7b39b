"""The function app package (``strato package REF --target azure``), for run-from-package.

A Linux Consumption app running from a package (``WEBSITE_RUN_FROM_PACKAGE``) installs nothing, so
everything travels in the zip
(https://learn.microsoft.com/azure/azure-functions/run-functions-from-deployment-package): the
compiled app (``function_app.py``, ``host.json``, ``requirements.txt``) and the project's files at the
root, where the app imports the task modules, and under ``.python_packages/lib/site-packages`` Strato
(its files: no registry has it) with exactly the ``requirements.txt`` the package holds: Strato's core
dependencies, its ``azure`` extra and the project's declared dependencies, installed for
``manylinux2014_x86_64`` and the app's Python version.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from strato.errors import UsageError
from strato.ir import PipelineIR

from ..common.packaging import (
    PackageResult,
    assemble,
    check_python_version,
    project_files,
    project_requirements,
    refuse_conflicts,
    stage,
    strato_requirements,
    tree_size,
    write_zip,
)

SITE_PACKAGES = ".python_packages/lib/site-packages"
APP_FILES = ("function_app.py", "host.json", "requirements.txt")


def package_name(pipeline: PipelineIR) -> str:
    return f"{pipeline.name}.azure-app.zip"


def build_package(pipeline: PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                  via_s3: bool = False) -> PackageResult:
    """Write ``out_dir/<pipeline>.azure-app.zip``."""
    from .compiler import compile_app, requirements_txt

    if via_s3:
        raise UsageError("--s3 is for --target aws; an Azure app package is uploaded to Blob Storage")
    check_python_version(python_version)
    out = out_dir / package_name(pipeline)
    files = project_files(project, skip=[out_dir])
    declared, source = project_requirements(project)
    files.pop("requirements.txt", None)  # the app's requirements.txt lists them
    refuse_conflicts(files, [*APP_FILES, ".python_packages/"], "Azure Functions")
    runtime = strato_requirements("azure")
    with tempfile.TemporaryDirectory(prefix="strato-package-") as tmp:
        paths, warnings = compile_app(pipeline, Path(tmp) / "app")
        app = {path.name: path for path in paths if path.name in APP_FILES}
        root = Path(tmp) / "package"
        assemble(root, files, SITE_PACKAGES, runtime + declared, runtime, python_version)
        stage(app, root)
        (root / "requirements.txt").write_text(requirements_txt(declared, source), encoding="utf-8")
        unzipped, count = tree_size(root)
        zipped = write_zip(root, out)
    return PackageResult(out, zipped, unzipped, count, warnings)
