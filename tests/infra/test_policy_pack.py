"""Strato's policy pack: its rules unit-tested directly, then fed the resources each cloud's component
records under Pulumi's mocks, through the real ``pulumi-policy`` policy objects: a compliant deployment
passes, a non-compliant one is rejected with the policy's message."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_policy")
pytest.importorskip("pulumi_aws")
pytest.importorskip("pulumi_gcp")
pytest.importorskip("pulumi_azure_native")

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from strato.infra.policy import MANDATORY, Finding, Resource, Settings, evaluate  # noqa: E402
from strato.infra.policy import rules as R  # noqa: E402

from ..conftest import ROOT  # noqa: E402
from . import test_aws as aws_mocks  # noqa: E402
from . import test_azure as azure_mocks  # noqa: E402
from . import test_gcp as gcp_mocks  # noqa: E402

DAILY_SALES = str(ROOT / "examples" / "daily_sales.py") + ":daily_sales"
INGEST_FILE = str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file"
TAGS = {"owner": "data-eng", "data-classification": "internal"}


def res(kind: str, name: str = "r", **props: Any) -> Resource:
    return Resource(kind, name, props, urn=f"urn:pulumi:dev::p::{kind}::{name}")


# --------------------------------------------------------------------------------- rules, directly
def test_governance_tags_are_required_on_taggable_resources_only() -> None:
    assert R.missing_tags(res("aws:s3/bucket:Bucket", tags=TAGS), Settings()) == []
    assert R.missing_tags(res("aws:s3/bucket:Bucket", tags={"owner": "x"}, tagsAll=TAGS), Settings()) == []
    assert R.missing_tags(res("aws:s3/bucket:Bucket", "b", tags={"data-classification": "internal"}), Settings()) == [
        "aws:s3/bucket:Bucket 'b' lacks the governance tag(s) 'owner': tag the pipeline (@pipeline(tags={...})) "
        "or pass them to the component's `tags`"]
    assert R.missing_tags(res("gcp:storage/bucket:Bucket", "g"), Settings(required_tags=("team",))) == [
        "gcp:storage/bucket:Bucket 'g' lacks the governance tag(s) 'team': tag the pipeline (@pipeline(tags={...})) "
        "or pass them to the component's `labels`"]
    assert R.missing_tags(res("azure-native:keyvault:Secret", "s", tags={**TAGS, "data-classification": "secret"}),
                          Settings())[0].endswith("use one of public, internal, confidential, restricted")
    for untaggable in ("aws:iam/rolePolicy:RolePolicy", "gcp:serviceaccount/account:Account",
                       "azure-native:authorization:RoleAssignment", "custom:thing:Thing", "notatoken"):
        assert R.missing_tags(res(untaggable), Settings()) == []


def test_public_storage_and_functions_are_refused() -> None:
    refused = [
        res("aws:s3/bucket:Bucket", acl="public-read"),
        res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", blockPublicAcls=True),
        res("aws:s3/bucketPolicy:BucketPolicy", policy=json.dumps({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::b/*"}]})),
        res("gcp:storage/bucket:Bucket", publicAccessPrevention="inherited"),
        res("gcp:storage/bucketIAMMember:BucketIAMMember", role="roles/storage.objectViewer", member="allUsers"),
        res("azure-native:storage:StorageAccount"),
        res("azure-native:storage:BlobContainer", publicAccess="Blob"),
    ]
    assert [bool(R.public_storage(r, Settings())) for r in refused] == [True] * len(refused)
    assert R.public_storage(res("azure-native:storage:BlobContainer", publicAccess="None"), Settings()) == []
    assert R.public_storage(res("aws:s3/bucketPolicy:BucketPolicy", policy=json.dumps({"Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*",
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}]})), Settings()) == []
    functions = [res("aws:lambda/permission:Permission", principal="*", function="f"),
                 res("aws:lambda/functionUrl:FunctionUrl", authorizationType="NONE"),
                 res("gcp:cloudrunv2/serviceIamMember:ServiceIamMember", role="roles/run.invoker", member="allUsers")]
    assert [bool(R.public_functions(r, Settings())) for r in functions] == [True] * 3
    assert R.public_functions(res("aws:lambda/permission:Permission", principal="events.amazonaws.com"),
                              Settings()) == []
    route = res("aws:apigatewayv2/route:Route", "route", authorizationType="NONE")
    assert R.public_http_trigger(route, Settings()) == [
        "aws:apigatewayv2/route:Route 'route' starts runs without authentication: allowed only for "
        "Http(public=True); make sure this pipeline is meant to be started by anyone"]
    assert R.public_http_trigger(res("aws:apigatewayv2/route:Route", authorizationType="AWS_IAM"), Settings()) == []


def test_wildcard_iam_actions_are_refused() -> None:
    def policy(*statements: dict) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})

    ok = policy({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::b/*"},
                {"Effect": "Deny", "Action": "*", "Resource": "*"})
    assert R.wildcard_iam(res("aws:iam/rolePolicy:RolePolicy", policy=ok), Settings()) == []
    bad = policy({"Effect": "Allow", "Action": ["s3:Get*", "sqs:SendMessage"], "Resource": "*"},
                 {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert R.wildcard_iam(res("aws:iam/rolePolicy:RolePolicy", "p", policy=bad), Settings()) == [
        "aws:iam/rolePolicy:RolePolicy 'p' allows wildcard actions ['s3:Get*', \"NotAction 'iam:*'\"]: list the "
        "actions the role needs"]
    assert R.wildcard_iam(res("aws:iam/role:Role", inlinePolicies=[{"policy": policy(
        {"Effect": "Allow", "Action": "*", "Resource": "*"})}]), Settings())
    assert R.wildcard_iam(res("aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                              policyArn="arn:aws:iam::aws:policy/AdministratorAccess"), Settings())
    assert R.wildcard_iam(res("gcp:projects/iAMMember:IAMMember", role="roles/editor"), Settings())
    assert R.wildcard_iam(res("gcp:storage/bucketIAMMember:BucketIAMMember", role="roles/storage.admin"), Settings())
    assert R.wildcard_iam(res("gcp:storage/bucketIAMMember:BucketIAMMember", role="roles/storage.objectUser"),
                          Settings()) == []
    owner = "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    assert R.wildcard_iam(res("azure-native:authorization:RoleAssignment", roleDefinitionId=owner), Settings())
    assert R.wildcard_iam(res("azure-native:authorization:RoleDefinition", permissions=[
        {"actions": ["Microsoft.Storage/*"]}]), Settings())


def test_restricted_data_stays_in_the_allowed_regions() -> None:
    restricted = {"owner": "x", "data-classification": "restricted"}
    eu = Settings(allowed_regions=("eu-west-1", "westeurope", "europe-west1"))
    bucket = Resource("aws:s3/bucket:Bucket", "b", {"tags": restricted}, region="us-east-1")
    assert R.restricted_regions(bucket, eu) == [
        "aws:s3/bucket:Bucket 'b' holds restricted data in 'us-east-1', outside the allowed regions eu-west-1, "
        "westeurope, europe-west1: deploy this pipeline to one of them"]
    assert R.restricted_regions(Resource("aws:s3/bucket:Bucket", "b", {"tags": restricted}, region="eu-west-1"),
                                eu) == []
    assert R.restricted_regions(res("azure-native:web:WebApp", tags=restricted, location="West Europe"), eu) == []
    assert R.restricted_regions(res("gcp:storage/bucket:Bucket", labels=restricted, location="EUROPE-WEST1"), eu) == []
    assert "unknown region" in R.restricted_regions(res("aws:s3/bucket:Bucket", tags=restricted), eu)[0]
    assert "no allowedRegions are configured" in R.restricted_regions(
        res("aws:s3/bucket:Bucket", tags=restricted), Settings())[0]
    assert R.restricted_regions(Resource("aws:s3/bucket:Bucket", "b", {"tags": TAGS}, region="us-east-1"), eu) == []


def test_classified_storage_must_be_encrypted() -> None:
    confidential = {"owner": "x", "data-classification": "confidential"}
    bucket = res("aws:s3/bucket:Bucket", "b", tags=confidential, bucket="b-123")
    sse = res("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              bucket="b-123", rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}])
    assert R.unencrypted_buckets([bucket, sse], Settings()) == []
    (found,) = R.unencrypted_buckets([bucket], Settings())
    assert found == (bucket, "aws:s3/bucket:Bucket 'b' holds confidential data without a server-side encryption "
                             "configuration: add an aws.s3.BucketServerSideEncryptionConfiguration (AES256 or aws:kms)")
    by_dependency = Resource(sse.type, "sse", {"rules": sse.props["rules"]}, refs={"bucket": (bucket.urn,)})
    assert R.unencrypted_buckets([bucket, by_dependency], Settings()) == []  # preview: the name is not known yet
    internal = res("aws:s3/bucket:Bucket", tags=TAGS, bucket="i")
    assert R.unencrypted_buckets([internal], Settings()) == []
    assert R.unencrypted_buckets([internal], Settings(encrypt_from="internal"))
    account = res("azure-native:storage:StorageAccount", tags=confidential, enableHttpsTrafficOnly=False,
                  minimumTlsVersion="TLS1_0")
    assert len(R.unencrypted_storage(account, Settings())) == 2
    assert R.unencrypted_storage(res("azure-native:web:WebApp", tags=confidential), Settings())
    block = res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket="b-123", blockPublicAcls=True,
                blockPublicPolicy=True, ignorePublicAcls=True, restrictPublicBuckets=True)
    assert R.unblocked_buckets([bucket, block], Settings()) == []
    assert R.unblocked_buckets([bucket], Settings())[0][0] == bucket


# ------------------------------------------------------------------- the components, under mocks
def recording(base: type) -> Any:
    """``base``'s mocks, also keeping each resource's outputs and id: what the engine hands a policy."""

    class Recording(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.recorded: list[tuple[str, str, dict[str, Any]]] = []

        def new_resource(self, args: Any) -> tuple[str, dict]:
            resource_id, outputs = super().new_resource(args)
            if args.typ == "aws:s3/bucket:Bucket":  # S3: a bucket's id is its name
                resource_id = outputs["bucket"]
            self.recorded.append((args.typ, args.name, {**azure_mocks.plain(outputs), "id": resource_id}))
            return resource_id, outputs

    return Recording()


@pytest.fixture
def mocks() -> Any:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())

    def use(base: type) -> Any:
        recorder = recording(base)
        pulumi.runtime.set_mocks(recorder, preview=False)
        return recorder

    return use


def resources(recorder: Any, region: str | None = None) -> list[Resource]:
    return [Resource(kind, name, props, urn=f"urn:pulumi:dev::strato::{kind}::{name}",
                     region=region if kind.startswith("aws:") else None) for kind, name, props in recorder.recorded]


def through_the_pack(found: list[Resource], config: dict[str, dict[str, Any]] | None = None) -> list[Finding]:
    """The policies as ``pulumi preview --policy-pack`` runs them: the engine's argument types, each
    policy's enforcement level and configuration."""
    from strato.infra.policy.pack import policies

    config = config or {}
    out: list[Finding] = []
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
    engine = [PolicyResource(r.type, r.props, r.urn, r.name, options,
                             PolicyProviderResource("pulumi:providers:aws", {"region": r.region}, "urn:p", "default")
                             if r.region else None, None, [], {}) for r in found]
    names = {r.urn: r.label() for r in found}
    for policy in policies():
        level = "advisory" if policy.enforcement_level == EnforcementLevel.ADVISORY else MANDATORY

        def report(message: str, urn: str | None = None, *, _p: Any = policy, _l: str = level) -> None:
            out.append(Finding(_p.name, _l, names.get(urn or "", ""), message))

        settings = config.get(policy.name, {})
        if isinstance(policy, ResourceValidationPolicy):
            for r in engine:
                policy.validate(ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, r.provider,
                                                       settings), report)  # type: ignore[operator]
        else:
            policy.validate(StackValidationArgs(engine, settings), report)  # type: ignore[attr-defined]
    return out


def mandatory(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == MANDATORY]


@pytest.mark.parametrize("ref", [DAILY_SALES, INGEST_FILE], ids=["internal", "confidential"])
@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
@pulumi.runtime.test
def test_each_component_deploys_the_examples_compliantly(mocks: Any, cloud: str, ref: str) -> Any:
    module = {"aws": aws_mocks, "gcp": gcp_mocks, "azure": azure_mocks}[cloud]
    recorder = mocks(module.Recorder)
    deployed = module.deploy(ref)

    def check(_: Any) -> None:
        found = resources(recorder, aws_mocks.REGION)
        taggable = [r for r in found if R.tag_property(r.type)]
        assert len(taggable) >= 5  # buckets or accounts, functions or the app, and more were judged
        assert evaluate(found) == []
        assert through_the_pack(found) == []

    return module.settled(deployed).apply(check)


SCORING = "tests/infra/scoring.py:scoring"  # restricted, with a public HTTP start route


@pulumi.runtime.test
def test_a_non_compliant_aws_deployment_is_rejected_with_each_policys_message(mocks: Any) -> Any:
    import pulumi_aws as aws

    recorder = mocks(aws_mocks.Recorder)
    deployed = aws_mocks.deploy(SCORING)
    # beside the component, what a careless stack adds: a public bucket, unencrypted, and a wildcard role policy
    aws.s3.Bucket("open", acl="public-read", tags={"owner": "x", "data-classification": "confidential"})
    aws.iam.RolePolicy("admin", role="r", policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    config = {"strato-restricted-regions": {"allowedRegions": ["eu-central-1"]}}

    def check(_: Any) -> None:
        found = resources(recorder, aws_mocks.REGION)
        findings = through_the_pack(found, config)
        assert findings == evaluate(found, Settings(allowed_regions=("eu-central-1",)))  # the same judgement
        by_policy = {p: [f.message for f in findings if f.policy == p] for p in {f.policy for f in findings}}
        assert set(by_policy) == {"strato-required-tags", "strato-no-public-storage", "strato-s3-public-access-blocked",
                                  "strato-public-http-trigger", "strato-no-wildcard-iam", "strato-restricted-regions",
                                  "strato-s3-encryption-required"}
        assert "aws:s3/bucket:Bucket 'app-payloads' lacks the governance tag(s) 'owner': tag the pipeline " \
               "(@pipeline(tags={...})) or pass them to the component's `tags`" in by_policy["strato-required-tags"]
        assert by_policy["strato-no-public-storage"] == [
            "aws:s3/bucket:Bucket 'open' has the public ACL 'public-read': remove it (objects are shared through IAM)"]
        assert by_policy["strato-s3-public-access-blocked"] == [
            "aws:s3/bucket:Bucket 'open' has no public access block with all four settings on: add an "
            "aws.s3.BucketPublicAccessBlock for it"]
        assert by_policy["strato-no-wildcard-iam"] == [
            "aws:iam/rolePolicy:RolePolicy 'admin' allows wildcard actions ['*']: list the actions the role needs"]
        assert "aws:lambda/function:Function 'app-score' holds restricted data in 'eu-west-1', outside the allowed " \
               "regions eu-central-1: deploy this pipeline to one of them" in by_policy["strato-restricted-regions"]
        assert by_policy["strato-s3-encryption-required"] == [
            "aws:s3/bucket:Bucket 'open' holds confidential data without a server-side encryption configuration: "
            "add an aws.s3.BucketServerSideEncryptionConfiguration (AES256 or aws:kms)"]
        # the public route is the documented exception: reported, never blocking
        (public,) = [f for f in findings if f.policy == "strato-public-http-trigger"]
        assert public.level == "advisory" and public.resource == "aws:apigatewayv2/route:Route 'app-http-0'"

    return aws_mocks.settled(deployed).apply(check)


@pulumi.runtime.test
def test_a_restricted_pipeline_in_an_allowed_region_passes_but_for_the_advisory(mocks: Any) -> Any:
    recorder = mocks(aws_mocks.Recorder)
    deployed = aws_mocks.deploy(SCORING)
    settings = Settings(required_tags=("data-classification",), allowed_regions=(aws_mocks.REGION,))

    def check(_: Any) -> None:
        findings = evaluate(resources(recorder, aws_mocks.REGION), settings)
        assert mandatory(findings) == [] and [f.policy for f in findings] == ["strato-public-http-trigger"]

    return aws_mocks.settled(deployed).apply(check)


@pulumi.runtime.test
def test_non_compliant_gcp_and_azure_resources_are_rejected(mocks: Any) -> Any:
    import pulumi_azure_native.authorization as authorization
    import pulumi_azure_native.storage as storage
    import pulumi_gcp as gcp

    recorder = mocks(azure_mocks.Recorder)
    deployed = azure_mocks.deploy(DAILY_SALES)
    storage.StorageAccount("loose", resource_group_name="rg", kind="StorageV2", sku={"name": "Standard_LRS"},
                           tags={"owner": "x", "data-classification": "confidential"}, enable_https_traffic_only=False)
    authorization.RoleAssignment("owner", principal_id="p", scope="/subscriptions/s", role_definition_id=(
        "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"))
    gcp.storage.BucketIAMMember("everyone", bucket="b", role="roles/storage.objectViewer", member="allUsers")

    def check(_: Any) -> None:
        findings = through_the_pack(resources(recorder))
        assert {(f.policy, f.resource) for f in findings} == {
            ("strato-no-public-storage", "azure-native:storage:StorageAccount 'loose'"),
            ("strato-encryption-required", "azure-native:storage:StorageAccount 'loose'"),
            ("strato-no-wildcard-iam", "azure-native:authorization:RoleAssignment 'owner'"),
            ("strato-no-public-storage", "gcp:storage/bucketIAMMember:BucketIAMMember 'everyone'")}
        assert "azure-native:storage:StorageAccount 'loose' accepts plain HTTP: set enable_https_traffic_only=True" in [
            f.message for f in findings]

    return azure_mocks.settled(deployed).apply(check)


def test_the_pack_folder_is_found_from_an_installed_strato() -> None:
    out = subprocess.run([sys.executable, "-m", "strato.infra.policy", "--path"], capture_output=True, text=True,
                         check=True, timeout=60)
    folder = Path(out.stdout.strip())
    assert (folder / "PulumiPolicy.yaml").is_file() and (folder / "__main__.py").is_file()
    assert "runtime: python" in (folder / "PulumiPolicy.yaml").read_text()
