"""Each example Pulumi project (``examples/pulumi/<cloud>/``) runs as ``pulumi up`` runs it: its
``__main__.py`` with the stack's config, under Pulumi's mocks, creating the full set of resources,
with the deployment package the component builds itself (``strato package``)."""

from __future__ import annotations

import asyncio
import re
import runpy
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
yaml = pytest.importorskip("yaml")

from strato.adapters.common import packaging  # noqa: E402

from ..conftest import ROOT  # noqa: E402

PROJECTS = ROOT / "examples" / "pulumi"


def project_name(cloud: str) -> str:
    return yaml.safe_load((PROJECTS / cloud / "Pulumi.yaml").read_text())["name"]


def run_project(cloud: str, mocks: Any, config: dict[str, str]) -> dict[str, Any]:
    """The project's program as the Pulumi engine runs it (project name, stack ``dev``, its config)."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    name = project_name(cloud)
    pulumi.runtime.set_mocks(mocks, project=name, stack="dev", preview=False)
    pulumi.runtime.set_all_config({key if ":" in key else f"{name}:{key}": value for key, value in config.items()})
    namespace: dict[str, Any] = {}

    @pulumi.runtime.test
    def program() -> None:
        namespace.update(runpy.run_path(str(PROJECTS / cloud / "__main__.py"), run_name="__main__"))

    try:
        program()
    finally:
        pulumi.runtime.set_all_config({})
    return namespace


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run in a scratch folder (the component builds the package into build/ there), with the
    dependencies' download left out: the package's contents are tests/test_package.py's subject."""
    monkeypatch.setattr(packaging, "pip_install", lambda *a, **k: None)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def kinds(mocks: Any) -> Counter[str]:
    return Counter(r.typ for r in mocks.resources)


def archive_path(archive: Any) -> Path:
    assert isinstance(archive, pulumi.FileArchive), archive
    return Path(archive.path).resolve()


def load_recorder(cloud: str) -> Any:
    from importlib import import_module

    return import_module(f"tests.infra.test_{cloud}").Recorder()


def lifecycle_days(inputs: dict[str, Any]) -> int:
    return inputs["rules"][0]["expiration"]["days"]


def test_the_aws_project_deploys_daily_sales_with_the_package_it_builds(no_pip: Path) -> None:
    mocks = load_recorder("aws")
    namespace = run_project("aws", mocks, {"aws:region": "eu-west-1", "payload-days": "7"})
    assert kinds(mocks) == Counter({
        "strato:aws:Pipeline": 1, "aws:s3/bucket:Bucket": 1,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
        "aws:iam/role:Role": 8, "aws:iam/rolePolicy:RolePolicy": 8,  # 6 functions, the state machine, the schedule
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment": 6, "aws:lambda/function:Function": 6,
        "aws:sfn/stateMachine:StateMachine": 1, "aws:scheduler/schedule:Schedule": 1})
    functions = {r.inputs["name"]: r.inputs for r in mocks.of("aws:lambda/function:Function")}
    assert set(functions) == {f"strato-daily_sales-{t}" for t in ("alert", "clean", "extract", "load", "summarize",
                                                                  "runtime")}
    package = no_pip / "build" / "daily_sales.lambda.zip"
    assert package.is_file() and "daily_sales.py" in zipfile.ZipFile(package).namelist()
    for inputs in functions.values():
        assert archive_path(inputs["code"]) == package.resolve()
        assert inputs["runtime"] == "python3.12" and inputs["handler"] == "strato.adapters.aws.shim.handler"
    (lifecycle,) = mocks.of("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert lifecycle_days(lifecycle.inputs) == 7
    assert namespace["sales"].__class__.__name__ == "StratoPipeline"


def test_the_gcp_project_deploys_daily_sales_with_every_config_key(no_pip: Path) -> None:
    from strato.adapters.gcp.package import build_package
    from strato.loader import load

    built = build_package(load(f"{ROOT / 'examples' / 'daily_sales.py'}:daily_sales").definition.ir,
                          ROOT / "examples", no_pip / "prebuilt")
    mocks = load_recorder("gcp")
    run_project("gcp", mocks, {"gcp:project": "my-project", "region": "us-central1", "payload-days": "3",
                               "package": str(built.path)})
    assert kinds(mocks) == Counter({
        "strato:gcp:Pipeline": 1, "gcp:storage/bucket:Bucket": 2, "gcp:storage/bucketObject:BucketObject": 1,
        "gcp:serviceaccount/account:Account": 7,  # one per task function, workflow, schedule
        "gcp:storage/bucketIAMMember:BucketIAMMember": 5,  # each task's payload prefix
        "gcp:cloudfunctionsv2/function:Function": 5,
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": 5, "gcp:projects/iAMMember:IAMMember": 2,
        "gcp:workflows/workflow:Workflow": 1, "gcp:cloudscheduler/job:Job": 1})
    (source,) = mocks.of("gcp:storage/bucketObject:BucketObject")
    assert archive_path(source.inputs["source"]) == built.path.resolve()
    assert not (no_pip / "build").exists()  # given a package, the component builds none
    functions = mocks.of("gcp:cloudfunctionsv2/function:Function")
    assert {f.inputs["location"] for f in functions} == {"us-central1"}
    assert {f.inputs["buildConfig"]["runtime"] for f in functions} == {"python312"}
    payloads = next(r for r in mocks.of("gcp:storage/bucket:Bucket") if r.name.endswith("-payloads"))
    assert payloads.inputs["lifecycleRules"][0]["condition"]["age"] == 3


def test_the_azure_project_deploys_file_ingestion_with_the_package_it_builds(no_pip: Path) -> None:
    mocks = load_recorder("azure")
    run_project("azure", mocks, {"azure-native:location": "westeurope", "payload-days": "5"})
    assert kinds(mocks) == Counter({
        "azure-native:resources:ResourceGroup": 1, "strato:azure:Pipeline": 1,
        "azure-native:storage:StorageAccount": 2,  # the host's state apart from the data
        "azure-native:storage:BlobContainer": 3,  # payloads, package, landing
        "azure-native:storage:ManagementPolicy": 1, "azure-native:storage:Blob": 1,
        "azure-native:keyvault:Vault": 1, "azure-native:keyvault:Secret": 1,
        "azure-native:web:AppServicePlan": 1, "azure-native:web:WebApp": 1,
        "azure-native:web:WebAppApplicationSettings": 1, "azure-native:authorization:RoleAssignment": 5,
        "azure-native:eventgrid:SystemTopic": 1, "azure-native:eventgrid:SystemTopicEventSubscription": 1})
    (blob,) = mocks.of("storage:Blob")
    assert archive_path(blob.inputs["source"]) == (no_pip / "build" / "ingest_file.azure-app.zip").resolve()
    (app,) = mocks.of("web:WebApp")
    assert app.inputs["siteConfig"]["linuxFxVersion"] == "Python|3.12"
    (policy,) = mocks.of("storage:ManagementPolicy")
    rule = policy.inputs["policy"]["rules"][0]["definition"]["actions"]["baseBlob"]["delete"]
    assert rule["daysAfterModificationGreaterThan"] == 5


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_each_project_is_complete_and_its_example_stack_names_every_config_key(cloud: str) -> None:
    folder = PROJECTS / cloud
    project = yaml.safe_load((folder / "Pulumi.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    requirements = (folder / "requirements.txt").read_text().splitlines()
    provider = {"aws": "pulumi-aws", "gcp": "pulumi-gcp", "azure": "pulumi-azure-native"}[cloud]
    assert any(line.startswith(f"{provider}>=") for line in requirements)
    assert any(line.startswith("pulumi>=") for line in requirements)
    assert any(line.startswith("-e ../../..") for line in requirements)  # Strato, from this checkout
    read = set(re.findall(r'config\.(?:get|require)\w*\("([^"]+)"\)', (folder / "__main__.py").read_text()))
    example = (folder / "Pulumi.dev.yaml.example").read_text()
    listed = set(re.findall(r"^\s*#?\s*([\w-]+:[\w-]+):", example, re.MULTILINE))
    provider_key = {"aws": "aws:region", "gcp": "gcp:project", "azure": "azure-native:location"}[cloud]
    assert listed == {f"{project['name']}:{key}" for key in read} | {provider_key}
    assert yaml.safe_load(example)["config"]  # valid YAML as it stands


def test_a_package_path_that_does_not_exist_is_refused_with_what_to_do(no_pip: Path) -> None:
    with pytest.raises(ValueError, match=r"package 'missing\.zip' does not exist: build it with `strato package REF "
                                         r"--target aws`"):
        run_project("aws", load_recorder("aws"), {"aws:region": "eu-west-1", "package": "missing.zip"})
