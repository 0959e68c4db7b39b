"""The Cloud Functions source (``strato package REF --target gcp``).

Cloud Functions builds the source itself (Cloud Build runs ``pip install -r requirements.txt`` for
the function's runtime), so the zip holds source only: the project's files, Strato's files (vendored
as ``strato/``, since no registry has Strato), ``main.py`` exposing the shim as ``handler`` (the
functions' entry point) and a ``requirements.txt`` with Strato's runtime dependencies (its core ones
and the part of the ``gcp`` extra the shim imports) followed by the project's declared ones.

Limits (https://cloud.google.com/functions/quotas#resource_limits): 100 MB compressed source, 500 MB
uncompressed source plus modules (the uncompressed check here covers the source only; Cloud Build
adds the dependencies).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from strato.errors import StratoError
from strato.ir import PipelineIR

from ..common.packaging import (
    MB,
    PackageResult,
    assemble,
    megabytes,
    project_files,
    project_requirements,
    refuse_conflicts,
    strato_requirements,
    tree_size,
    write_zip,
)

ENTRY_POINT = "handler"
MAIN = f"from strato.adapters.gcp.shim import handler\n\n__all__ = [\"{ENTRY_POINT}\"]\n"
# What a deployed function imports from the gcp extra (the rest of it, PyYAML and the Workflows client,
# serve `strato compile` and `strato invoke` on the deployer's machine).
FUNCTION_RUNTIME = ("functions-framework", "google-cloud-storage", "google-cloud-secret-manager")
SOURCE_BYTES = 100 * MB
UNZIPPED_BYTES = 500 * MB


def package_name(pipeline: PipelineIR) -> str:
    return f"{pipeline.name}.gcp-source.zip"


def requirements_txt(declared: list[str], source: str | None) -> str:
    runtime = strato_requirements("gcp", only=FUNCTION_RUNTIME)
    lines = ["# Strato's runtime (Strato itself is the strato/ folder beside this file)", *runtime]
    if declared:
        lines += [f"# the project's dependencies ({source})", *declared]
    return "\n".join(lines) + "\n"


def build_package(pipeline: PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                  via_s3: bool = False) -> PackageResult:
    """Write ``out_dir/<pipeline>.gcp-source.zip`` (``python_version`` is the functions' runtime's business:
    Cloud Build installs the requirements for it)."""
    from strato.errors import UsageError

    if via_s3:
        raise UsageError("--s3 is for --target aws; a Cloud Functions source goes through Cloud Storage anyway")
    out = out_dir / package_name(pipeline)
    files = project_files(project, skip=[out_dir])
    declared, source = project_requirements(project)
    files.pop("requirements.txt", None)  # merged into the package's own below
    refuse_conflicts(files, ["strato/", "main.py"], "Cloud Functions")
    runtime = strato_requirements("gcp", only=FUNCTION_RUNTIME)
    with tempfile.TemporaryDirectory(prefix="strato-package-") as tmp:
        root = Path(tmp) / "package"
        assemble(root, files, "", [], runtime, None)
        (root / "main.py").write_text(MAIN, encoding="utf-8")
        (root / "requirements.txt").write_text(requirements_txt(declared, source), encoding="utf-8")
        unzipped, count = tree_size(root)
        if unzipped > UNZIPPED_BYTES:
            raise StratoError(f"the Cloud Functions source for {pipeline.name!r} would be {megabytes(unzipped)} "
                              f"uncompressed; Cloud Functions takes at most {megabytes(UNZIPPED_BYTES)} (nothing was "
                              "written)")
        zipped = write_zip(root, out)
    if zipped > SOURCE_BYTES:
        out.unlink()
        raise StratoError(f"the Cloud Functions source for {pipeline.name!r} is {megabytes(zipped)} compressed; Cloud "
                          f"Functions takes at most {megabytes(SOURCE_BYTES)}: leave data files out of the project "
                          "folder (nothing was written)")
    return PackageResult(out, zipped, unzipped, count)
