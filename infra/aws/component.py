"""``StratoPipeline``: the AWS resources a compiled pipeline needs, least privilege by default.

What it creates, all children of the component and tagged with the pipeline's tags:

- a private, encrypted S3 bucket for results and map lists that travel by reference (objects under
  ``strato/payloads/`` expire after ``payload_days``);
- one Lambda function per task (``strato.adapters.aws.shim.handler``) plus the runtime function that
  resolves values, or a Step Functions Activity for ``runtime="worker"`` tasks;
- the state machines (the pipeline, its sub-pipelines and any parts), their definitions filled in
  with the ARNs above;
- an EventBridge Scheduler schedule, EventBridge rules for ``ObjectCreated`` triggers and an
  IAM-authorised HTTP API for ``Http``.

A watched bucket must deliver its events to EventBridge. Turning that on means writing the bucket's
whole notification configuration, which would replace notifications someone else set up, so the
component does it only for the buckets passed as ``notification_buckets`` (buckets this stack owns);
for any other watched bucket it says, at deploy time, that EventBridge delivery must be on.

Every IAM policy names its resources: the task role reads and writes only the payload prefix of
its bucket, the state machine role invokes only these functions and starts only these machines.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from strato.adapters.aws import Adapter
from strato.adapters.aws.compiler import MAP_RESULTS, to_compact_json
from strato.adapters.aws.naming import function_name, machine_name, substitute
from strato.adapters.aws.triggers import http_endpoint, input_transformer, object_created_rule, schedule_spec
from strato.adapters.base import task_specs
from strato.adapters.common.tasks import MANIFEST_ENV, manifest
from strato.dsl.definitions import PipelineDefinition
from strato.ir import HttpSpec, ObjectCreatedSpec, PipelineIR, TaskSpec

from .. import Package, deployable_ir, deployment_package

RUNTIME = "runtime"
PAYLOAD_PREFIX = "strato/payloads/"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def _assume(service: str, account: str | None = None) -> str:
    """A trust policy for ``service``; with ``account``, only on behalf of this account (confused deputy:
    https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": account}}
    return _policy(statement)


def _s3_arns(uris: tuple[str, ...]) -> list[tuple[str, str]]:
    """``s3://bucket/prefix`` datasets as (bucket ARN, object ARN pattern); other datasets are not S3's."""
    out = []
    for uri in uris:
        if uri.startswith("s3://"):
            bucket, _, prefix = uri[5:].partition("/")
            if bucket:
                out.append((f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{prefix}*"))
    return out


def _filled(text: str, values: list[Any]) -> str:
    """A definition with its ARNs: functions (and Activities for worker tasks), state machines, and the
    payload bucket."""
    functions, activities, machines, bucket = values
    return substitute(text, functions[RUNTIME], functions, machines, {**functions, **activities}, bucket)


def _task_policy(spec: TaskSpec | None, values: list[str]) -> str:
    return _policy(*task_statements(spec, *values))


def task_statements(spec: TaskSpec | None, payload_objects: str, region: str, account: str) -> list[dict[str, Any]]:
    """What one function may do: its payload objects, the secrets the IR grants its task, and the S3
    datasets its task declares (``reads``: get and list; ``writes``: put)."""
    statements: list[dict[str, Any]] = [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": payload_objects}]
    if spec is None:
        return statements
    if spec.secrets:  # Secrets Manager appends a 6-character suffix to a secret's ARN
        statements.append({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": [
            f"arn:aws:secretsmanager:{region}:{account}:secret:{s}-??????" for s in spec.secrets]})
    reads, writes = _s3_arns(spec.reads), _s3_arns(spec.writes)
    if reads:
        statements.append({"Effect": "Allow", "Action": "s3:GetObject", "Resource": sorted(o for _, o in reads)})
        statements.append({"Effect": "Allow", "Action": "s3:ListBucket", "Resource": sorted({b for b, _ in reads})})
    if writes:
        statements.append({"Effect": "Allow", "Action": "s3:PutObject", "Resource": sorted(o for _, o in writes)})
    return statements


class StratoPipeline(pulumi.ComponentResource):
    """Deploys one pipeline (a ``@pipeline`` object or a ``path.py:name`` reference) to AWS."""

    state_machine_arn: pulumi.Output[str]
    payload_bucket: pulumi.Output[str]

    def __init__(self, name: str, pipeline: PipelineDefinition | str, code: Package = None, *,
                 lambda_runtime: str = "python3.12", default_memory: int = 512, payload_days: int = 30,
                 notification_buckets: Sequence[str] = (), tags: dict[str, str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("strato:aws:Pipeline", name, None, opts)
        ir = deployable_ir(pipeline, Adapter())
        compiled = Adapter().build(ir)
        # the Lambda package, built for the functions' Python when not given (`strato package --target aws`)
        code = deployment_package(pipeline, ir, Adapter(), code, python_version=lambda_runtime.removeprefix("python"))
        child = pulumi.ResourceOptions(parent=self)
        base_tags = {**ir.tags, "strato-pipeline": ir.name, **(tags or {})}
        identity, region = aws.get_caller_identity_output(), aws.get_region_output()
        account, region_name = identity.account_id, region.region

        # -------------------------------------------------------------------------- payloads
        bucket = aws.s3.Bucket(f"{name}-payloads", tags=base_tags, opts=child)
        aws.s3.BucketPublicAccessBlock(f"{name}-payloads", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(f"{name}-payloads", bucket=bucket.id, rules=[{
            "apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
        aws.s3.BucketLifecycleConfiguration(f"{name}-payloads", bucket=bucket.id, rules=[{
            "id": "expire-payloads", "status": "Enabled", "filter": {"prefix": PAYLOAD_PREFIX},
            "expiration": {"days": payload_days}}], opts=child)
        payload_objects = bucket.arn.apply(lambda arn: f"{arn}/{PAYLOAD_PREFIX}*")

        # ----------------------------------------------------------------------------- tasks
        # Each function has its own role and runs only its own task (STRATO_TASKS, from the IR).
        specs = task_specs(ir)
        functions: dict[str, aws.lambda_.Function] = {}
        activities: dict[str, aws.sfn.Activity] = {}
        for task in [*sorted(specs), RUNTIME]:
            spec = specs.get(task)
            resource_name = function_name(ir.name, task)
            task_tags = {**base_tags, **(spec.tags if spec else {})}
            if spec is not None and spec.runtime == "worker":
                activities[task] = aws.sfn.Activity(f"{name}-{task}", name=resource_name, tags=task_tags, opts=child)
                continue
            role = aws.iam.Role(f"{name}-{task}", assume_role_policy=_assume("lambda.amazonaws.com"),
                                tags=task_tags, opts=child)
            aws.iam.RolePolicyAttachment(f"{name}-{task}-logs", role=role.name, opts=child,
                                         policy_arn="arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole")
            aws.iam.RolePolicy(f"{name}-{task}", role=role.id, opts=child, policy=pulumi.Output.all(
                payload_objects, region_name, account).apply(functools.partial(_task_policy, spec)))
            catalog = json.dumps(manifest(ir, [task]) if spec else {}, sort_keys=True)
            # /tmp is the only writable folder of a Lambda function: STRATO_HOME (a task's local files) goes there
            environment = {"variables": {"STRATO_PAYLOAD_BUCKET": bucket.bucket, MANIFEST_ENV: catalog,
                                         "STRATO_HOME": "/tmp/strato"}}
            timeout = min(900, math.ceil(spec.timeout) + 5) if spec and spec.timeout else (900 if spec else 60)
            functions[task] = aws.lambda_.Function(
                f"{name}-{task}", name=resource_name, role=role.arn, runtime=lambda_runtime,
                handler="strato.adapters.aws.shim.handler", code=code, timeout=timeout,
                memory_size=(spec.memory if spec and spec.memory else default_memory if spec else 256),
                environment=environment, tags=task_tags, opts=child)

        # -------------------------------------------------------------------- state machines
        names = {pipeline_name: machine_name(ir.name, pipeline_name) for pipeline_name in compiled.machines}
        machine_arns = {pipeline_name: pulumi.Output.concat("arn:aws:states:", region_name, ":", account,
                                                            ":stateMachine:", machine)
                        for pipeline_name, machine in names.items()}
        states_role = aws.iam.Role(f"{name}-states", assume_role_policy=account.apply(
                                       lambda a: _assume("states.amazonaws.com", a)),
                                   tags=base_tags, opts=child)
        function_arns = [f.arn for f in functions.values()]
        executions = [pulumi.Output.concat("arn:aws:states:", region_name, ":", account, ":execution:", m, ":*")
                      for m in names.values()]
        states_policy = aws.iam.RolePolicy(f"{name}-states", role=states_role.id, opts=child, policy=pulumi.Output.all(
            function_arns, list(machine_arns.values()), executions, bucket.arn, account, region_name).apply(
            lambda v: _policy(
                {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": sorted(v[0])},
                {"Effect": "Allow", "Action": "states:StartExecution", "Resource": sorted(v[1])},
                {"Effect": "Allow", "Action": ["states:DescribeExecution", "states:StopExecution"],
                 "Resource": sorted(v[2])},
                {"Effect": "Allow", "Action": ["events:PutTargets", "events:PutRule", "events:DescribeRule"],
                 "Resource": f"arn:aws:events:{v[5]}:{v[4]}:rule/"
                             "StepFunctionsGetEventsForStepFunctionsExecutionRule"},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{v[3]}/{PAYLOAD_PREFIX}*"},
                # a Distributed Map's ResultWriter writes its result files and manifest here
                {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{v[3]}/{MAP_RESULTS}/*"})))

        function_map = {task: f.arn for task, f in functions.items()}
        activity_map = {task: a.id for task, a in activities.items()}  # an Activity's id is its ARN
        machines: dict[str, aws.sfn.StateMachine] = {}
        for pipeline_name in sorted(compiled.machines, key=lambda n: n == ir.name):  # the root last
            text = to_compact_json(compiled.machines[pipeline_name])
            definition = pulumi.Output.all(function_map, activity_map, machine_arns, bucket.bucket).apply(
                functools.partial(_filled, text))
            machines[pipeline_name] = aws.sfn.StateMachine(
                f"{name}-{pipeline_name}", name=names[pipeline_name], role_arn=states_role.arn,
                definition=definition, type="STANDARD", tags=base_tags,
                # after its role's policy: an execution started the moment a machine exists (a schedule's
                # first tick) would otherwise be refused Lambda and S3 access
                opts=pulumi.ResourceOptions(parent=self, depends_on=[states_policy, *machines.values()]))
        root = machines[ir.name]

        # -------------------------------------------------------------------------- triggers
        self.triggers = self._triggers(name, ir, root, base_tags, set(notification_buckets))
        self.state_machine_arn = root.arn
        self.payload_bucket = bucket.bucket
        self.register_outputs({"state_machine_arn": root.arn, "payload_bucket": bucket.bucket,
                               "functions": {t: f.name for t, f in functions.items()}})

    def _starter_role(self, name: str, service: str, machine: aws.sfn.StateMachine,
                      tags: dict[str, str]) -> aws.iam.Role:
        """A role ``service`` assumes to start this pipeline, and nothing else."""
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output().account_id
        role = aws.iam.Role(name, assume_role_policy=account.apply(lambda a: _assume(service, a)), tags=tags,
                            opts=child)
        aws.iam.RolePolicy(name, role=role.id, opts=child, policy=machine.arn.apply(
            lambda arn: _policy({"Effect": "Allow", "Action": "states:StartExecution", "Resource": arn})))
        return role

    def _triggers(self, name: str, ir: PipelineIR, root: aws.sfn.StateMachine, tags: dict[str, str],
                  owned_buckets: set[str]) -> list[pulumi.CustomResource]:
        """What starts the pipeline: the resources created, in order."""
        child = pulumi.ResourceOptions(parent=self)
        created: list[pulumi.CustomResource] = []
        spec = schedule_spec(ir)
        if spec is not None:
            role = self._starter_role(f"{name}-schedule", "scheduler.amazonaws.com", root, tags)
            created.append(aws.scheduler.Schedule(
                f"{name}-schedule", schedule_expression=spec["ScheduleExpression"],
                schedule_expression_timezone=spec["ScheduleExpressionTimezone"],
                flexible_time_window={"mode": "OFF"},
                target={"arn": root.arn, "role_arn": role.arn, "input": spec["Input"]}, opts=child))
        events_role = None
        watched = [t for t in ir.triggers if isinstance(t, ObjectCreatedSpec)]
        for i, trigger in enumerate(watched):
            events_role = events_role or self._starter_role(f"{name}-events", "events.amazonaws.com", root, tags)
            if trigger.bucket in owned_buckets:  # ours to configure: this replaces its notification configuration
                created.append(aws.s3.BucketNotification(f"{name}-s3-events-{i}", bucket=trigger.bucket,
                                                         eventbridge=True, opts=child))
            else:
                pulumi.log.warn(f"bucket {trigger.bucket!r} must send its events to Amazon EventBridge for "
                                f"pipeline {ir.name!r} to start on new objects: turn it on in the bucket's event "
                                "notification settings (EventBridgeConfiguration), or pass notification_buckets="
                                f"[{trigger.bucket!r}] if this stack owns the bucket's notification configuration",
                                resource=self)
            rule = aws.cloudwatch.EventRule(f"{name}-object-created-{i}", tags=tags, opts=child,
                                            event_pattern=json.dumps(object_created_rule(trigger), sort_keys=True))
            transformer = input_transformer(ir, trigger)
            created += [rule, aws.cloudwatch.EventTarget(
                f"{name}-object-created-{i}", rule=rule.name, arn=root.arn, role_arn=events_role.arn, opts=child,
                input_transformer={"input_paths": transformer["InputPathsMap"],
                                   "input_template": transformer["InputTemplate"]})]
        for i, http in enumerate(t for t in ir.triggers if isinstance(t, HttpSpec)):
            endpoint = http_endpoint(ir, http)
            role = self._starter_role(f"{name}-http-{i}", "apigateway.amazonaws.com", root, tags)
            api = aws.apigatewayv2.Api(f"{name}-http-{i}", protocol_type="HTTP", tags=tags, opts=child)
            integration = aws.apigatewayv2.Integration(
                f"{name}-http-{i}", api_id=api.id, integration_type="AWS_PROXY",
                integration_subtype="StepFunctions-StartExecution", credentials_arn=role.arn,
                payload_format_version="1.0",
                request_parameters={"StateMachineArn": root.arn, "Input": "$request.body"}, opts=child)
            route = aws.apigatewayv2.Route(f"{name}-http-{i}", api_id=api.id,
                                           route_key=f"{endpoint['method']} {endpoint['path']}",
                                           authorization_type=endpoint["authorization"],
                                           target=integration.id.apply(lambda i: f"integrations/{i}"), opts=child)
            created += [api, integration, route, aws.apigatewayv2.Stage(
                f"{name}-http-{i}", api_id=api.id, name="$default", auto_deploy=True, tags=tags, opts=child)]
        return created
