"""The AWS Pulumi component under Pulumi's mocks: the exact resource inputs `pulumi up` would send."""

from __future__ import annotations

import json
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_aws")
pytest.importorskip("statelint")

from statelint.linter import Linter  # noqa: E402

from ..conftest import ROOT  # noqa: E402

ACCOUNT, REGION = "123456789012", "eu-west-1"


class Recorder(pulumi.runtime.Mocks):
    """Records every resource; gives ARNs the way AWS forms them."""

    def __init__(self) -> None:
        self.resources: list[Any] = []

    def new_resource(self, args: Any) -> tuple[str, dict]:
        outputs = dict(args.inputs)
        kind = args.typ
        if kind == "aws:lambda/function:Function":
            outputs["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{args.inputs['name']}"
        elif kind == "aws:sfn/activity:Activity":
            resource_id = f"arn:aws:states:{REGION}:{ACCOUNT}:activity:{args.inputs['name']}"
            self.resources.append(args)
            return resource_id, outputs
        elif kind == "aws:sfn/stateMachine:StateMachine":
            outputs["arn"] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{args.inputs['name']}"
        elif kind == "aws:s3/bucket:Bucket":
            outputs.update(bucket=f"{args.name}-bucket", arn=f"arn:aws:s3:::{args.name}-bucket")
        else:
            outputs.setdefault("arn", f"arn:aws:mock:{REGION}:{ACCOUNT}:{args.name}")
            outputs.setdefault("name", args.name)
        self.resources.append(args)
        return f"{args.name}-id", outputs

    def call(self, args: Any) -> dict:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/x", "userId": "x", "id": ACCOUNT}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION, "description": "", "endpoint": ""}
        return {}

    def of(self, kind: str) -> list[Any]:
        return [r for r in self.resources if r.typ == kind]


@pytest.fixture
def recorder() -> Recorder:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())  # Pulumi's mocks need one; earlier tests may leave none
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


def deploy(ref: str) -> Any:
    from strato.infra.aws import StratoPipeline

    return StratoPipeline("app", ref, code=pulumi.AssetArchive({}))


@pulumi.runtime.test
def test_the_daily_sales_example_deploys_least_privilege(recorder: Recorder) -> Any:
    deployed = deploy(str(ROOT / "examples" / "daily_sales.py") + ":daily_sales")

    def check(_: Any) -> None:
        functions = {r.inputs["name"]: r.inputs for r in recorder.of("aws:lambda/function:Function")}
        assert set(functions) == {f"strato-daily_sales-{t}" for t in ("alert", "clean", "extract", "load",
                                                                        "summarize", "runtime")}
        clean = functions["strato-daily_sales-clean"]
        assert clean["handler"] == "strato.adapters.aws.shim.handler" and clean["timeout"] == 65  # 60 s timeout + 5
        assert clean["tags"]["owner"] == "data-eng" and clean["tags"]["layer"] == "staging"
        assert clean["environment"]["variables"]["STRATO_PAYLOAD_BUCKET"] == "app-payloads-bucket"
        assert clean["environment"]["variables"]["STRATO_HOME"] == "/tmp/strato"  # the writable folder

        (machine,) = recorder.of("aws:sfn/stateMachine:StateMachine")
        definition = machine.inputs["definition"]
        assert "${" not in definition
        assert [p for p in Linter.validate(definition) if "ReaderConfig" not in p] == []  # see tests/aws lint()
        assert f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:strato-daily_sales-extract" in definition

        policies = {r.name: json.loads(r.inputs["policy"]) for r in recorder.of("aws:iam/rolePolicy:RolePolicy")}
        statements = [s for p in policies.values() for s in p["Statement"]]
        resources = [r for s in statements
                     for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])]
        assert "*" not in resources and all(r.startswith("arn:aws:") for r in resources)  # named ARNs only
        invoke = next(s for s in policies["app-states"]["Statement"] if s["Action"] == "lambda:InvokeFunction")
        assert sorted(invoke["Resource"]) == sorted(f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{n}"
                                                    for n in functions)
        # each function has its own role, running only its own task
        for task in ("alert", "clean", "extract", "load", "summarize"):
            variables = functions[f"strato-daily_sales-{task}"]["environment"]["variables"]
            assert json.loads(variables["STRATO_TASKS"]) == {task: f"daily_sales:{task}"}
            assert functions[f"strato-daily_sales-{task}"]["role"] == f"arn:aws:mock:{REGION}:{ACCOUNT}:app-{task}"
            (payloads,) = policies[f"app-{task}"]["Statement"][:1]
            assert payloads["Resource"] == "arn:aws:s3:::app-payloads-bucket/strato/payloads/*"
        assert json.loads(functions["strato-daily_sales-runtime"]["environment"]["variables"]["STRATO_TASKS"]) == {}
        trust = {r.name: json.loads(r.inputs["assumeRolePolicy"]) for r in recorder.of("aws:iam/role:Role")}
        assert trust["app-states"]["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}

        (schedule,) = recorder.of("aws:scheduler/schedule:Schedule")
        assert schedule.inputs["scheduleExpression"] == "cron(0 2 * * ? *)"
        assert schedule.inputs["scheduleExpressionTimezone"] == "UTC"
        (block,) = recorder.of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        assert all(block.inputs[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                             "restrictPublicBuckets"))

    return settled(deployed).apply(check)


def settled(deployed: Any) -> Any:
    """An output that resolves once the component and its triggers are registered."""
    return pulumi.Output.all(deployed.state_machine_arn, *[r.urn for r in deployed.triggers])


@pulumi.runtime.test
def test_object_created_triggers_and_sub_pipelines(recorder: Recorder) -> Any:
    deployed = deploy(str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file")

    def check(_: Any) -> None:
        (rule,) = recorder.of("aws:cloudwatch/eventRule:EventRule")
        assert json.loads(rule.inputs["eventPattern"])["detail"]["object"]["key"] == [{"wildcard": "incoming/*.csv"}]
        (target,) = recorder.of("aws:cloudwatch/eventTarget:EventTarget")
        assert target.inputs["inputTransformer"]["inputPaths"] == {"bucket": "$.detail.bucket.name",
                                                                   "key": "$.detail.object.key"}
        # the watched bucket's notification configuration is not this stack's: it is left alone
        assert recorder.of("aws:s3/bucketNotification:BucketNotification") == []

    return settled(deployed).apply(check)


@pulumi.runtime.test
def test_a_bucket_the_stack_owns_gets_eventbridge_delivery(recorder: Recorder) -> Any:
    from strato.infra.aws import StratoPipeline

    deployed = StratoPipeline("app", str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file",
                              code=pulumi.AssetArchive({}), notification_buckets=["landing"])

    def check(_: Any) -> None:
        (notification,) = recorder.of("aws:s3/bucketNotification:BucketNotification")
        assert notification.inputs == {"bucket": "landing", "eventbridge": True}

    return settled(deployed).apply(check)


@pulumi.runtime.test
def test_sub_pipelines_and_worker_tasks(recorder: Recorder) -> Any:
    deployed = deploy("tests/aws/pipelines.py:with_worker")

    def check(_: Any) -> None:
        (activity,) = recorder.of("aws:sfn/activity:Activity")
        assert activity.inputs["name"] == "strato-with_worker-on_premises"
        (machine,) = recorder.of("aws:sfn/stateMachine:StateMachine")
        assert f"arn:aws:states:{REGION}:{ACCOUNT}:activity:strato-with_worker-on_premises" in machine.inputs[
            "definition"]

    return settled(deployed).apply(check)


def test_a_task_role_grants_its_secrets_and_declared_s3_datasets() -> None:
    from strato import ir as strato_ir
    from strato.infra.aws.component import task_statements

    spec = strato_ir.TaskSpec("load", "m", "load", (), reads=("s3://raw/orders/", "warehouse.orders"),
                              writes=("s3://curated/daily/",), secrets=("db-password",))
    statements = task_statements(spec, "arn:aws:s3:::payloads/strato/payloads/*", REGION, ACCOUNT)
    assert statements == [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": "arn:aws:s3:::payloads/strato/payloads/*"},
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db-password-??????"]},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": ["arn:aws:s3:::raw/orders/*"]},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::raw"]},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": ["arn:aws:s3:::curated/daily/*"]},
    ]
    assert task_statements(None, "arn:aws:s3:::payloads/strato/payloads/*", REGION, ACCOUNT) == statements[:1]
