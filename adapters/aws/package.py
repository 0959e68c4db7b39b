"""The Lambda deployment package (``strato package REF --target aws``).

One zip serves every function of the pipeline (each runs only its own task: the component sets
``STRATO_TASKS`` per function): the project's files at the root, Strato's runtime (its files and its
core dependencies, installed for ``manylinux2014_x86_64`` and the Lambda Python version), and the
project's declared dependencies. No emulator, and no boto3: the Lambda Python runtime provides it
(a project that lists boto3 itself gets the version it pinned). Handler:
``strato.adapters.aws.shim.handler``.

Limits (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): 50 MB zipped for a
direct upload (larger packages go through S3), 250 MB unzipped (262,144,000 bytes, the figure the
Lambda API's error quotes) whatever the upload path.
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
    check_python_version,
    megabytes,
    project_files,
    project_requirements,
    refuse_conflicts,
    strato_requirements,
    tree_size,
    write_zip,
)

HANDLER = "strato.adapters.aws.shim.handler"
DIRECT_UPLOAD_BYTES = 50 * MB
UNZIPPED_BYTES = 250 * MB


def package_name(pipeline: PipelineIR) -> str:
    return f"{pipeline.name}.lambda.zip"


def build_package(pipeline: PipelineIR, project: Path, out_dir: Path, *, python_version: str = "3.12",
                  via_s3: bool = False) -> PackageResult:
    """Write ``out_dir/<pipeline>.lambda.zip``; refuse, writing nothing, what Lambda would refuse."""
    check_python_version(python_version)
    out = out_dir / package_name(pipeline)
    files = project_files(project, skip=[out_dir])
    refuse_conflicts(files, ["strato/"], "Lambda")
    runtime = strato_requirements()  # the aws extra is boto3, which the Lambda runtime has
    declared, _ = project_requirements(project)
    with tempfile.TemporaryDirectory(prefix="strato-package-") as tmp:
        root = Path(tmp) / "package"
        assemble(root, files, "", runtime + declared, runtime, python_version)
        unzipped, count = tree_size(root)
        if unzipped > UNZIPPED_BYTES:
            raise StratoError(f"the Lambda package for {pipeline.name!r} would be {megabytes(unzipped)} unzipped; "
                              f"Lambda takes at most {megabytes(UNZIPPED_BYTES)} (262,144,000 bytes) unzipped: trim "
                              "the project's dependencies or its files (nothing was written)")
        zipped = write_zip(root, out)
    if zipped > DIRECT_UPLOAD_BYTES and not via_s3:
        out.unlink()
        raise StratoError(f"the Lambda package for {pipeline.name!r} is {megabytes(zipped)} zipped "
                          f"({megabytes(unzipped)} unzipped); Lambda takes at most {megabytes(DIRECT_UPLOAD_BYTES)} "
                          "zipped by direct upload. Upload it through S3 instead (build it with --s3, then give the "
                          "functions its S3 location), or trim the project's dependencies (nothing was written)")
    return PackageResult(out, zipped, unzipped, count)
