"""``strato deploy --local``: the AWS component's resources, created in a local AWS and served.

The Pulumi program (a :class:`~strato.infra.aws.StratoPipeline` of the pipeline, with the Lambda package
``strato package`` builds) runs under Pulumi's mocks, which record every resource with the inputs
``pulumi up`` would send; each recorded resource is then created with boto3, as the Pulumi AWS provider
would create it, in a moto server this process starts (or at ``--endpoint``). The Lambda functions get
the real package as their code. Step Functions runs the state machines; its Lambda calls are answered
in this process by the shim, loading each function's own tasks (its ``STRATO_TASKS`` catalog) from the
unzipped package, as ``strato emulate`` does.

What moto has no API for is listed as recorded and not applied, never silently dropped.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
import tempfile
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi

from strato.adapters.aws.emulator import ACCOUNT, REGION, answer_invoke, moto_account, moto_bridged
from strato.adapters.common.tasks import TaskCatalog
from strato.errors import StratoError
from strato.loader import load
from strato.secrets import env_var

from .component import StratoPipeline

Printer = Callable[[str], None]


@dataclass
class Recorded:
    """One resource the program registered: its Pulumi type and name, the id the mocks gave, its inputs."""

    type: str
    name: str
    id: str
    inputs: dict[str, Any]


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi's mocks, answering with the ids and ARNs AWS would give, in the local account and region,
    so what one resource reads from another (a role's ARN, a function's) is what the local AWS has."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        kind, inputs = args.typ, dict(args.inputs)
        outputs = dict(inputs)
        if kind == "aws:s3/bucket:Bucket":
            physical = inputs.get("bucket") or _bucket_name(args.name)
            outputs.update(bucket=physical, arn=f"arn:aws:s3:::{physical}")
        elif kind == "aws:iam/role:Role":
            physical = inputs.get("name") or args.name[:64]
            outputs.update(name=physical, arn=f"arn:aws:iam::{ACCOUNT}:role/{physical}")
        elif kind == "aws:lambda/function:Function":
            physical = inputs["name"]
            outputs["arn"] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}"
        elif kind == "aws:sfn/stateMachine:StateMachine":
            physical = outputs["arn"] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{inputs['name']}"
        elif kind == "aws:sfn/activity:Activity":
            physical = f"arn:aws:states:{REGION}:{ACCOUNT}:activity:{inputs['name']}"
        elif kind.startswith("aws:apigatewayv2/"):  # ids API Gateway chooses: mapped to them when applied
            physical = f"recorded-{uuid.uuid4().hex}"
            outputs["name"] = inputs.get("name") or args.name
        elif kind == "aws:cloudwatch/eventRule:EventRule":
            physical = inputs.get("name") or args.name
            outputs.update(name=physical, arn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical}")
        else:
            physical = inputs.get("name") or args.name
            outputs.setdefault("name", physical)
            outputs.setdefault("arn", f"arn:aws:local:{REGION}:{ACCOUNT}:{args.name}")
        if kind != "strato:aws:Pipeline":
            self.resources.append(Recorded(kind, args.name, physical, inputs))
        return physical, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/local", "userId": "local",
                    "id": ACCOUNT}
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION, "description": "", "endpoint": ""}
        return {}


def _bucket_name(name: str) -> str:
    """A valid bucket name from a resource name (3-63 lowercase letters, digits, hyphens, dots)."""
    return (re.sub(r"[^a-z0-9.-]", "-", name.lower()).strip("-.") or "strato-bucket")[:63].ljust(3, "0")


def record(program: Callable[[], Any]) -> list[Recorded]:
    """Run ``program`` (it registers resources, and may return an output to wait for) under the mocks."""
    asyncio.set_event_loop(asyncio.new_event_loop())
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="strato-local", stack="local", preview=False)

    @pulumi.runtime.test
    def run() -> Any:
        return program()

    run()
    return mocks.resources


def record_pipeline(ref: str, package: Path) -> list[Recorded]:
    """The resources of ``StratoPipeline(<pipeline>, ref, code=package)``: what its ``pulumi up`` creates."""
    name = load(ref).definition.name.replace("_", "-")

    def program() -> Any:
        deployed = StratoPipeline(name, ref, code=str(package))
        return pulumi.Output.all(deployed.state_machine_arn, *[r.urn for r in deployed.triggers])

    return record(program)


# --------------------------------------------------------------------------------------------- apply
class NotApplied(Exception):
    """A resource the local AWS cannot hold; the message says why (printed, never silently dropped)."""


@dataclass
class Applied:
    resource: Recorded
    created: bool
    note: str = ""


@dataclass
class LocalAws:
    """boto3 clients of the local AWS, and what the deployment's functions need to run."""

    session: Any
    client_args: dict[str, Any]
    functions: dict[str, dict[str, str]] = field(default_factory=dict)  # function ARN -> its environment
    code: dict[str, bytes] = field(default_factory=dict)  # function ARN -> its package
    ids: dict[str, str] = field(default_factory=dict)  # an id the mocks gave -> the one the local AWS gave
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=REGION, **self.client_args)
        return self._clients[service]

    def apply(self, resources: list[Recorded]) -> list[Applied]:
        """Create each resource in order (the order the program registered them: dependencies first)."""
        out = []
        for resource in resources:
            create = _CREATORS.get(resource.type)
            if create is None:
                out.append(Applied(resource, False, "not applied: no local API for this resource type"))
                continue
            try:
                create(self, resource, self._mapped(resource.inputs))
            except NotApplied as exc:
                out.append(Applied(resource, False, f"not applied: {exc}"))
                continue
            out.append(Applied(resource, True))
        return out

    def _mapped(self, value: Any) -> Any:
        """``value`` with ids the mocks gave replaced by those the local AWS gave (API Gateway's)."""
        if isinstance(value, str):
            for recorded, real in self.ids.items():
                value = value.replace(recorded, real) if recorded in value else value
            return value
        if isinstance(value, dict):
            return {k: self._mapped(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mapped(v) for v in value]
        return value


def _tags(inputs: dict[str, Any], key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    return [{key: k, value: str(v)} for k, v in sorted((inputs.get("tags") or {}).items())]


def _given(inputs: dict[str, Any], *names: str) -> dict[str, Any]:
    """The inputs among ``names`` that are set, under the API's names (``roleArn`` -> ``RoleArn``)."""
    return {name[0].upper() + name[1:]: inputs[name] for name in names if inputs.get(name)}


def _bucket(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=r.id)
    if inputs.get("tags"):
        s3.put_bucket_tagging(Bucket=r.id, Tagging={"TagSet": _tags(inputs)})


def _public_access_block(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    names = {"BlockPublicAcls": "blockPublicAcls", "IgnorePublicAcls": "ignorePublicAcls",
             "BlockPublicPolicy": "blockPublicPolicy", "RestrictPublicBuckets": "restrictPublicBuckets"}
    aws.client("s3").put_public_access_block(Bucket=inputs["bucket"], PublicAccessBlockConfiguration={
        name: bool(inputs.get(given)) for name, given in names.items()})


def _encryption(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": rule["applyServerSideEncryptionByDefault"][
        "sseAlgorithm"]}} for rule in inputs["rules"]]
    aws.client("s3").put_bucket_encryption(Bucket=inputs["bucket"],
                                           ServerSideEncryptionConfiguration={"Rules": rules})


def _lifecycle(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    rules = []
    for rule in inputs["rules"]:
        item: dict[str, Any] = {"ID": rule["id"], "Status": rule["status"],
                                "Filter": {"Prefix": (rule.get("filter") or {}).get("prefix", "")}}
        if rule.get("expiration"):
            item["Expiration"] = {"Days": int(rule["expiration"]["days"])}
        rules.append(item)
    aws.client("s3").put_bucket_lifecycle_configuration(Bucket=inputs["bucket"],
                                                        LifecycleConfiguration={"Rules": rules})


def _notification(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    config: dict[str, Any] = {"EventBridgeConfiguration": {}} if inputs.get("eventbridge") else {}
    aws.client("s3").put_bucket_notification_configuration(Bucket=inputs["bucket"],
                                                           NotificationConfiguration=config)


def _role(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    aws.client("iam").create_role(RoleName=r.id, AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
                                  Tags=_tags(inputs))


def _role_policy(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    aws.client("iam").put_role_policy(RoleName=inputs["role"], PolicyName=r.name, PolicyDocument=inputs["policy"])


def _attachment(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    iam = aws.client("iam")
    try:
        iam.attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
    except iam.exceptions.NoSuchEntityException:
        raise NotApplied(f"{inputs['policyArn']} is not in the local IAM") from None


def _function(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    code = _archive_bytes(inputs.get("code"))
    variables = {k: str(v) for k, v in ((inputs.get("environment") or {}).get("variables") or {}).items()}
    created = aws.client("lambda").create_function(
        FunctionName=inputs["name"], Runtime=inputs["runtime"], Role=inputs["role"], Handler=inputs["handler"],
        Code={"ZipFile": code}, Timeout=int(inputs.get("timeout", 3)), MemorySize=int(inputs.get("memorySize", 128)),
        Environment={"Variables": variables}, Tags={k: str(v) for k, v in (inputs.get("tags") or {}).items()})
    aws.functions[created["FunctionArn"]] = variables
    aws.code[created["FunctionArn"]] = code


def _activity(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    aws.client("stepfunctions").create_activity(name=inputs["name"], tags=_tags(inputs, "key", "value"))


def _state_machine(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    from strato.adapters.aws.conformance import check_definition

    check_definition(inputs["name"], json.loads(inputs["definition"]))  # what CreateStateMachine would refuse
    aws.client("stepfunctions").create_state_machine(
        name=inputs["name"], definition=inputs["definition"], roleArn=inputs["roleArn"],
        type=inputs.get("type", "STANDARD"), tags=_tags(inputs, "key", "value"))


def _event_rule(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    args = {"Name": r.id, "Tags": _tags(inputs),
            **_given(inputs, "eventPattern", "scheduleExpression", "roleArn", "description")}
    aws.client("events").put_rule(**args)


def _event_target(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    target: dict[str, Any] = {"Id": inputs.get("targetId") or r.name[:64], "Arn": inputs["arn"]}
    if inputs.get("roleArn"):
        target["RoleArn"] = inputs["roleArn"]
    if inputs.get("input"):
        target["Input"] = inputs["input"]
    transformer = inputs.get("inputTransformer")
    if transformer:
        target["InputTransformer"] = {"InputPathsMap": transformer.get("inputPaths") or {},
                                      "InputTemplate": transformer["inputTemplate"]}
    aws.client("events").put_targets(Rule=inputs["rule"], Targets=[target])


def _schedule(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    target = inputs["target"]
    args: dict[str, Any] = {
        "Name": r.id, "ScheduleExpression": inputs["scheduleExpression"],
        "FlexibleTimeWindow": {"Mode": inputs.get("flexibleTimeWindow", {}).get("mode", "OFF")},
        "Target": {"Arn": target["arn"], "RoleArn": target["roleArn"], **({"Input": target["input"]}
                                                                          if "input" in target else {})}}
    if inputs.get("scheduleExpressionTimezone"):
        args["ScheduleExpressionTimezone"] = inputs["scheduleExpressionTimezone"]
    aws.client("scheduler").create_schedule(**args)


def _api(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    created = aws.client("apigatewayv2").create_api(Name=inputs.get("name") or r.name,
                                                    ProtocolType=inputs.get("protocolType", "HTTP"),
                                                    Tags={k: str(v) for k, v in (inputs.get("tags") or {}).items()})
    aws.ids[r.id] = created["ApiId"]


def _integration(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    args = {"ApiId": inputs["apiId"], "IntegrationType": inputs["integrationType"],
            **_given(inputs, "integrationSubtype", "credentialsArn", "requestParameters", "payloadFormatVersion")}
    created = aws.client("apigatewayv2").create_integration(**args)
    aws.ids[r.id] = created["IntegrationId"]


def _route(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    args = {"ApiId": inputs["apiId"], "RouteKey": inputs["routeKey"], **_given(inputs, "target", "authorizationType")}
    aws.client("apigatewayv2").create_route(**args)


def _stage(aws: LocalAws, r: Recorded, inputs: dict[str, Any]) -> None:
    aws.client("apigatewayv2").create_stage(ApiId=inputs["apiId"], StageName=inputs.get("name") or "$default",
                                            AutoDeploy=bool(inputs.get("autoDeploy")))


_CREATORS: dict[str, Callable[[LocalAws, Recorded, dict[str, Any]], None]] = {
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _public_access_block,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _encryption,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _lifecycle,
    "aws:s3/bucketNotification:BucketNotification": _notification,
    "aws:iam/role:Role": _role,
    "aws:iam/rolePolicy:RolePolicy": _role_policy,
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": _attachment,
    "aws:lambda/function:Function": _function,
    "aws:sfn/activity:Activity": _activity,
    "aws:sfn/stateMachine:StateMachine": _state_machine,
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": _event_target,
    "aws:scheduler/schedule:Schedule": _schedule,
    "aws:apigatewayv2/api:Api": _api,
    "aws:apigatewayv2/integration:Integration": _integration,
    "aws:apigatewayv2/route:Route": _route,
    "aws:apigatewayv2/stage:Stage": _stage,
}


def _archive_bytes(code: Any) -> bytes:
    """The zip a function's ``code`` archive stands for: a zip file as it is, a folder zipped."""
    path = getattr(code, "path", None)
    if path is not None and Path(path).is_file():
        return Path(path).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if path is not None and Path(path).is_dir():
            for file in sorted(Path(path).rglob("*")):
                if file.is_file():
                    archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- serve
class LocalFunctions:
    """Answers the state machines' ``lambda.Invoke`` calls: each function runs only the tasks of its own
    catalog, imported from its package (unzipped once), as the deployed function would."""

    def __init__(self, aws: LocalAws, work_dir: Path):
        self.loaders: dict[str, Any] = {}
        unpacked: dict[bytes, Path] = {}
        for arn, variables in aws.functions.items():
            code = aws.code[arn]
            if code not in unpacked:
                target = work_dir / f"package{len(unpacked)}"
                with zipfile.ZipFile(io.BytesIO(code)) as archive:
                    archive.extractall(target)
                unpacked[code] = target
            catalog = TaskCatalog.deployed(variables, root=unpacked[code])

            def loader(name: str, catalog: TaskCatalog = catalog) -> Any:
                return catalog.load(name)

            loader.secrets = lambda name, catalog=catalog: catalog.grants.get(name, frozenset())  # type: ignore[attr-defined]
            self.loaders[arn] = loader
        self.folders = sorted(str(path) for path in unpacked.values())

    def invoke(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        return answer_invoke(params, self.loaders.get)


def secrets_wanted(resources: list[Recorded]) -> list[str]:
    """The secrets the deployment's functions are granted (their catalogs say)."""
    names: set[str] = set()
    for resource in resources:
        if resource.type == "aws:lambda/function:Function":
            text = ((resource.inputs.get("environment") or {}).get("variables") or {}).get("STRATO_TASKS") or "{}"
            for entry in json.loads(text).values():
                if isinstance(entry, dict):
                    names.update(entry.get("secrets") or [])
    return sorted(names)


def seed_secrets(aws: LocalAws, names: list[str], say: Printer) -> None:
    """Create each granted secret found in ``STRATO_SECRET_<NAME>`` (a real account has them already)."""
    client = aws.client("secretsmanager")
    for name in names:
        if env_var(name) in os.environ:
            client.create_secret(Name=name, SecretString=os.environ[env_var(name)])
            say(f"secret {name}: created from {env_var(name)}")
        else:
            say(f"secret {name}: not set ({env_var(name)} is empty); tasks granted it will fail to read it")


@contextmanager
def deployed_locally(ref: str, *, port: int = 0, endpoint: str | None = None, work_dir: Path | None = None,
                     say: Printer = print) -> Iterator[str]:
    """Package, record and apply the pipeline ``ref`` to a local AWS; yields its endpoint while it serves."""
    from strato.adapters.aws import Adapter
    from strato.infra import deployable_ir, pipeline_project

    with ExitStack() as stack:
        work = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="strato-deploy-")))
        loaded = load(ref)
        ir = deployable_ir(loaded.definition, Adapter())
        built = Adapter().package(ir, pipeline_project(loaded.ref), work / "build")
        say(f"package: {built.path} ({built.path.stat().st_size / 1e6:.1f} MB)")
        resources = record_pipeline(loaded.ref, built.path)
        if endpoint is None:
            # AWS's managed policies (AWSLambdaBasicExecutionRole, which each function's role attaches)
            stack.enter_context(mock.patch.dict(os.environ, {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}))
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's request log
            session, client_args = stack.enter_context(moto_account("moto-server", port=port))
            stack.enter_context(moto_bridged())
        else:
            import boto3

            settings = {"AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
                        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
                        "AWS_DEFAULT_REGION": REGION}
            stack.enter_context(mock.patch.dict(os.environ, settings))
            session, client_args = boto3.session.Session(region_name=REGION), {"endpoint_url": endpoint}
        aws = LocalAws(session, client_args)
        try:
            applied = aws.apply(resources)
        except Exception as exc:  # botocore's errors say which call and why
            raise StratoError(f"deploy --local: creating the recorded resources failed: {exc}") from None
        for item in applied:
            r = item.resource
            say(f"{'created' if item.created else 'skipped'} {r.type} {r.name}"
                + (f" ({r.id})" if r.id != r.name else "") + (f": {item.note}" if item.note else ""))
        seed_secrets(aws, secrets_wanted(resources), say)
        url = client_args["endpoint_url"]
        if endpoint is None:  # this process runs the functions, in its own context of the moto server's threads
            functions = LocalFunctions(aws, work)
            added = [folder for folder in functions.folders if folder not in sys.path]
            sys.path.extend(added)  # where the tasks' code is imported from (after this installation's)
            stack.callback(_forget, added)
            payloads = next((r.id for r in resources if r.type == "aws:s3/bucket:Bucket" and
                             r.name.endswith("-payloads")), None)
            if payloads:
                stack.enter_context(mock.patch.dict(os.environ, {"STRATO_PAYLOAD_BUCKET": payloads}))
            session.events.register("before-call.lambda.Invoke", functions.invoke)
            stack.callback(session.events.unregister, "before-call.lambda.Invoke", functions.invoke)
        yield url


def _forget(folders: list[str]) -> None:
    for folder in folders:
        if folder in sys.path:
            sys.path.remove(folder)


def serve(ref: str, *, port: int = 0, endpoint: str | None = None, say: Printer = print,
          stop: threading.Event | None = None) -> None:
    """Deploy ``ref`` locally, print ``endpoint: URL`` and serve until ``stop`` is set (or interrupted)."""
    stop = stop or threading.Event()
    with deployed_locally(ref, port=port, endpoint=endpoint, say=say) as url:
        say(f"endpoint: {url}")
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


__all__ = ["Applied", "LocalAws", "LocalFunctions", "Recorded", "RecordingMocks", "deployed_locally", "record",
           "record_pipeline", "serve"]
