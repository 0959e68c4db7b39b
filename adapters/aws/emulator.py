"""Running compiled state machines in moto, with every task run by the real Lambda shim.

moto interprets Amazon States Language for real (Parallel, Map, Choice, Retry, Catch, timeouts,
``startExecution.sync:2``) but cannot run a Lambda handler without Docker. The seam: a botocore
``before-call.lambda.Invoke`` handler on the session moto's interpreter uses, which runs
:func:`strato.adapters.aws.shim.handle` in-process and answers like Lambda (``FunctionError`` and an
``errorType``/``errorMessage`` payload on failure).

moto sleeps for real in ``Wait`` states and between retries; :class:`VirtualTimers` records those
delays and skips them, so emulated runs are fast and tests can assert the exact backoff.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import unquote

from strato import ir
from strato.adapters.common.emulation import TaskLoader, emulating
from strato.runtime import RunResult
from strato.secrets import env_var

from .compiler import to_compact_json
from .conformance import check_definition, violation
from .naming import function_name, machine_name, substitute
from .payloads import materialise
from .result_files import remembering_map_runs, writing_result_files
from .shim import error_of_states, handle

REGION, ACCOUNT = "us-east-1", "123456789012"
PAYLOAD_BUCKET = "strato-payloads"
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass
class VirtualTimers:
    """Stand-in for moto's real sleeps: records each delay (retries, waits) instead of sleeping."""

    delays: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def installed(self) -> Iterator[VirtualTimers]:
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

        timers = self

        class _Time:
            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

            def sleep(self, seconds: float) -> None:
                timers._record(seconds)

        def wait_interval(_self: Any, env: Any, wait_seconds: int) -> None:
            timers._record(wait_seconds)

        with mock.patch.object(retrier_decl, "time", _Time()), \
                mock.patch.object(WaitFunction, "_wait_interval", wait_interval):
            yield self

    def _record(self, seconds: float) -> None:
        with self.lock:
            self.delays.append(float(seconds))


class Deployment:
    """Compiled definitions plus the functions (or activities) behind them, in one AWS account.

    ``activities=True`` serves every task as a Step Functions Activity (what the LocalStack backend
    does, as its Lambda needs a download); ``namespace`` prefixes every name, so several
    deployments of one pipeline can live in one long-running emulator.
    """

    def __init__(self, root: ir.PipelineIR, definitions: dict[str, dict[str, Any]], load: TaskLoader, *,
                 account: str = ACCOUNT, namespace: str = "", activities: bool = False):
        self.root, self.definitions, self.load = root, definitions, load
        self.account, self.namespace, self.use_activities = account, namespace, activities
        tasks = sorted({task for p in (root, *root.subpipelines.values()) for task in p.tasks})
        self.functions = {task: self._function_arn(function_name(root.name, task)) for task in tasks}
        self.runtime = self._function_arn(function_name(root.name, "runtime"))
        self.activity_names = {task: namespace + function_name(root.name, task) for task in [*tasks, "runtime"]}
        self.activities: dict[str, str] = {}
        self.machines = {name: f"arn:aws:states:{REGION}:{account}:stateMachine:{self.machine_name(name)}"
                         for name in definitions}
        self.invocations = 0

    def machine_name(self, pipeline: str) -> str:
        return self.namespace + machine_name(self.root.name, pipeline)

    def _function_arn(self, name: str) -> str:
        return f"arn:aws:lambda:{REGION}:{self.account}:function:{self.namespace}{name}"

    def definition_json(self, pipeline: str) -> str:
        text = to_compact_json(self.definitions[pipeline])
        if self.use_activities:
            return substitute(text, self.activities["runtime"], self.activities, self.machines, self.activities,
                              PAYLOAD_BUCKET)
        return substitute(text, self.runtime, self.functions, self.machines, payload_bucket=PAYLOAD_BUCKET)

    def seed_secrets(self, session: Any, client_args: dict[str, Any]) -> None:
        """Put the granted secrets found in ``STRATO_SECRET_<NAME>`` into the account's Secrets Manager,
        where the shim reads them as a deployed one does."""
        names = sorted({s for p in (self.root, *self.root.subpipelines.values()) for spec in p.tasks.values()
                        for s in spec.secrets})
        present = [name for name in names if env_var(name) in os.environ]
        if not present:
            return
        client = session.client("secretsmanager", region_name=REGION, **client_args)
        for name in present:
            try:
                client.create_secret(Name=name, SecretString=os.environ[env_var(name)])
            except client.exceptions.ResourceExistsException:  # a long-running LocalStack keeps them
                client.put_secret_value(SecretId=name, SecretString=os.environ[env_var(name)])

    def create(self, sfn: Any) -> None:
        for name, definition in self.definitions.items():  # what CreateStateMachine would refuse
            check_definition(name, definition)
        if self.use_activities:
            self.activities = {task: sfn.create_activity(name=name)["activityArn"]
                               for task, name in self.activity_names.items()}
        for name in sorted(self.definitions, key=lambda n: n == self.root.name):  # children first
            sfn.create_state_machine(name=self.machine_name(name), definition=self.definition_json(name),
                                     roleArn=f"arn:aws:iam::{self.account}:role/strato-emulator", type="STANDARD")

    # the Lambda seam --------------------------------------------------------------------------------
    def invoke(self, params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        """Answer ``lambda.Invoke`` the way Lambda does, running the shim in this process."""
        known = set(self.functions.values()) | {self.runtime}
        self.invocations += 1
        return answer_invoke(params, lambda arn: self.load if arn in known else None)


def answer_invoke(params: dict[str, Any], loader_for: Callable[[str], TaskLoader | None]) -> tuple[Any, dict[str, Any]]:
    """A botocore ``before-call.lambda.Invoke`` answer, as Lambda gives it: the shim's result, or
    ``FunctionError`` with an ``errorType``/``errorMessage`` payload. ``loader_for`` gives the task
    loader of a function ARN (None: no such function)."""
    from botocore.awsrequest import AWSResponse
    from botocore.response import StreamingBody

    path = unquote(params.get("url_path", ""))
    target = path.split("/functions/", 1)[-1].split("/invocations", 1)[0]
    body = params.get("body") or b"{}"
    event = json.loads(body.decode() if isinstance(body, bytes) else body)
    headers: dict[str, str] = {}
    try:
        loader = loader_for(target)
        if loader is None:
            raise LookupError(f"no function {target} in this deployment")
        with emulating(loader=loader):  # moto calls from its own threads: install it here
            payload = json.dumps(handle(event)).encode()
        parsed: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
    except Exception as exc:
        payload = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
        parsed = {"StatusCode": 200, "ExecutedVersion": "$LATEST", "FunctionError": "Unhandled"}
        headers["x-amz-function-error"] = "Unhandled"
    parsed["Payload"] = StreamingBody(io.BytesIO(payload), len(payload))
    parsed["ResponseMetadata"] = {"HTTPStatusCode": 200, "HTTPHeaders": headers}
    return AWSResponse("http://lambda.emulated", 200, headers, None), parsed


@contextmanager
def _sfn_integration_casing() -> Iterator[None]:
    """Make moto's ``states:startExecution`` integration speak both casings, as AWS does.

    moto (5.2) passes the ASL parameter names (``StateMachineArn``) to boto3, which wants
    ``stateMachineArn``, and hands boto3's ``executionArn``/``output`` back where the integration
    (and AWS's documented ``.sync:2`` result) use ``ExecutionArn``/``Output``.
    """
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn

    service = state_task_service_sfn.StateTaskServiceSfn
    original_call = service._eval_service_task

    def boto_cased(name: str) -> str:
        return name[0].lower() + name[1:]

    def sfn_cased(response: Any) -> None:
        if isinstance(response, dict):
            for key in [k for k in response if k[:1].islower()]:
                response[key[0].upper() + key[1:]] = response.pop(key)

    def eval_service_task(self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: dict,
                          state_credentials: Any) -> None:
        parameters = {boto_cased(k): v for k, v in normalised_parameters.items()}
        original_call(self, env, resource_runtime_part, parameters, state_credentials)
        sfn_cased(env.stack[-1])

    def normalise_response(self: Any, response: Any, boto_service_name: Any = None,
                           service_action_name: Any = None) -> None:
        sfn_cased(response)

    with mock.patch.object(service, "_eval_service_task", eval_service_task), \
            mock.patch.object(service, "_normalise_response", normalise_response):
        yield


@contextmanager
def _states_errors_through_branches() -> Iterator[None]:
    """Let ``States.*`` errors (a timeout, a failed sub-pipeline) leave a Parallel branch or a Map
    item with their name, as on AWS; moto (5.2) rebuilds them as custom names, which it forbids."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    def error_name(error_name: str | None) -> Any:
        if error_name is not None and error_name.startswith("States."):
            return StatesErrorName.from_name(error_name)
        return CustomErrorName(error_name)

    with mock.patch.object(branches_decl, "CustomErrorName", error_name), \
            mock.patch.object(iteration_worker, "CustomErrorName", error_name):
        yield


@contextmanager
def _bare_string_child_outputs() -> Iterator[None]:
    """Let a sub-pipeline whose output is a bare string return it through ``startExecution.sync:2``:
    moto (5.2) stores such an output unquoted and then fails parsing it as JSON in the parent ("Expecting
    value"), where AWS returns the string."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_sfn

    service = state_task_service_sfn.StateTaskServiceSfn

    def sync2_output_of(typ: type, value: Any) -> None:
        if typ is state_task_service_sfn.DescribeExecutionOutput:
            for key in ("input", "output"):
                if isinstance(value.get(key), str):
                    value[key] = _output(value[key])

    with mock.patch.object(service, "_sync2_api_output_of", staticmethod(sync2_output_of)):
        yield


@contextmanager
def _one_lambda_client_per_run() -> Iterator[None]:
    """moto's interpreter creates a new boto3 Lambda client for every Task state it runs (client creation
    is most of a millisecond-scale state's cost); within one run they all share one per region and set of
    credentials. Not across runs: a client copies the session's event handlers when it is made, and each
    run registers its own Lambda handler."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils.boto_client_for
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, repr(state_credentials))
        with lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = original(region=region, service=service, state_credentials=state_credentials)
        return client

    with mock.patch.object(lambda_eval_utils, "boto_client_for", boto_client_for):
        yield


@contextmanager
def _s3_puts_one_at_a_time() -> Iterator[None]:
    """Serialise moto's S3 ``put_object``: moto (5.2) closes the buffer of the object a put replaces while
    another thread may still be reading it, so two tasks offloading the same content (the same
    content-addressed key) at once failed one of them with "I/O operation on closed file"; S3 takes
    concurrent puts of one key."""
    from moto.s3.responses import S3Response

    original = S3Response.put_object
    lock = threading.Lock()

    def put_object(self: Any) -> Any:  # the put and the response reading the new object's ETag, together
        with lock:
            return original(self)

    with mock.patch.object(S3Response, "put_object", put_object):
        yield


@contextmanager
def _map_result_files() -> Iterator[None]:
    """Write a Distributed Map's results as AWS's ``ResultWriter`` does: moto (5.2) writes only the
    manifest, listing no result files (:mod:`.result_files`)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
        MapRunRecordPoolManager,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    evaluator = resource_eval_s3.ResourceEvalS3
    with mock.patch.object(evaluator, "_handle_put_object", staticmethod(writing_result_files(evaluator))), \
            mock.patch.object(MapRunRecordPoolManager, "add", remembering_map_runs(MapRunRecordPoolManager)):
        yield


def _output(text: str | None) -> Any:
    """An execution's output is JSON text; moto (5.2) gives a bare string output unquoted."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def run_execution(sfn: Any, deployment: Deployment, params: dict[str, Any], timeout: float = 600) -> RunResult:
    """Start the root state machine and wait for the execution to finish."""
    name = f"strato-{uuid.uuid4().hex[:20]}"  # moto needs a name: unnamed executions collide
    arn = sfn.start_execution(stateMachineArn=deployment.machines[deployment.root.name], name=name,
                              input=json.dumps(params))["executionArn"]
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            break
        if time.monotonic() > deadline:
            sfn.stop_execution(executionArn=arn)
            return RunResult(name, "FAILED", None, {"error": "EmulatorTimeout",
                                                    "cause": f"the execution ran longer than {timeout:g}s"})
        # polling the emulator, which runs the execution on its own threads: each poll is a request through
        # botocore and moto that takes the GIL from the execution, so a longer run is polled less often
        time.sleep(pause)
        pause = min(pause * 1.5, 0.05)
    # what Step Functions would have failed and moto did not
    refused = violation(sfn, deployment.machines, described["startDate"])
    if refused is not None:
        return RunResult(name, "FAILED", None, refused)
    if described["status"] == "SUCCEEDED":
        return RunResult(name, "SUCCEEDED", materialise(_output(described.get("output"))), None)
    error = error_of_states({"Error": described.get("error"), "Cause": described.get("cause")})
    return RunResult(name, "FAILED", None, error)


def _load_moto_states_parser() -> None:
    """Import moto's Step Functions interpreter without moto's Batch service.

    The interpreter's Batch integration imports ``moto.batch.utils`` for one enum, and ``moto.batch``'s
    package imports every moto EC2 model on the way: about 0.9 s of a 2.5 s ``strato emulate``, for an
    integration Strato never compiles. The package is stood in for while the interpreter loads, so
    only ``moto.batch.utils`` (and its exceptions) load; the stand-in is removed after, and a later
    ``import moto.batch`` loads the whole package as usual.
    """
    import importlib
    import importlib.util
    import sys
    import types

    factory = "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory"
    if factory in sys.modules or "moto.batch" in sys.modules:
        return
    spec = importlib.util.find_spec("moto.batch")
    if spec is None or not spec.submodule_search_locations:
        return
    stand_in = types.ModuleType("moto.batch")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["moto.batch"] = stand_in
    try:
        importlib.import_module(factory)
    finally:
        if sys.modules.get("moto.batch") is stand_in:
            del sys.modules["moto.batch"]


@functools.cache
def _shared_session() -> Any:
    """One boto3 session for every emulated run in this process: a session caches the service models it
    has parsed (S3's, Lambda's and Step Functions' JSON, about 0.1 s per run), a new one parses them again.
    Its credentials are the emulator's fixed test ones; handlers a run registers on it, it unregisters."""
    import boto3

    return boto3.session.Session()


@contextmanager
def moto_account(backend: str = "moto", port: int = 0) -> Iterator[Any]:
    """An emulated account: moto in-process, or a ``ThreadedMotoServer`` (on ``port``, 0: any free one)
    spoken to over HTTP."""
    import boto3
    from moto import mock_aws

    _load_moto_states_parser()
    with ExitStack() as stack:
        quiet = logging.getLogger("moto")  # moto logs whole state machine trees on task errors
        stack.callback(quiet.setLevel, quiet.level)
        quiet.setLevel(logging.CRITICAL)
        if backend == "moto-server":
            from moto.server import ThreadedMotoServer

            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
            server.start()
            stack.callback(server.stop)
            host, port = server.get_host_and_port()
            stack.enter_context(mock.patch.dict(os.environ, {"MOTO_PORT": str(port)}))
            import urllib.request

            request = urllib.request.Request(f"http://{host}:{port}/moto-api/config", method="POST",
                                             data=json.dumps(MOTO_CONFIG).encode(),
                                             headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request).close()
            client_args = {"endpoint_url": f"http://{host}:{port}"}
        elif backend == "moto":
            stack.enter_context(mock_aws(config=MOTO_CONFIG))
            client_args = {}
        else:
            raise ValueError(f"unknown AWS emulator backend {backend!r}; use moto or moto-server")
        stack.enter_context(mock.patch.dict(os.environ, {"AWS_ACCESS_KEY_ID": "testing",
                                                         "AWS_SECRET_ACCESS_KEY": "testing",
                                                         "AWS_DEFAULT_REGION": REGION,
                                                         "STRATO_PAYLOAD_BUCKET": PAYLOAD_BUCKET}))
        if "endpoint_url" in client_args:  # the shim's S3 client talks to the same server
            stack.enter_context(mock.patch.dict(os.environ, {"AWS_ENDPOINT_URL": client_args["endpoint_url"]}))
        # moto's interpreter builds its clients from boto3's default session: the process's shared emulator
        # session stands in for it during the run (and the caller's is put back after)
        session = _shared_session()
        stack.callback(setattr, boto3, "DEFAULT_SESSION", boto3.DEFAULT_SESSION)
        boto3.DEFAULT_SESSION = session
        session.client("s3", region_name=REGION, **client_args).create_bucket(Bucket=PAYLOAD_BUCKET)
        yield session, client_args


class ObjectCreatedHarness:
    """S3 -> EventBridge -> SQS, then a run per event: what the EventBridge -> Step Functions target
    does on AWS, which moto does not deliver (it does deliver to SQS)."""

    def __init__(self, session: Any, client_args: dict[str, Any], deployment: Deployment):
        from .triggers import object_created_rule

        self.deployment = deployment
        self.s3 = session.client("s3", region_name=REGION, **client_args)
        self.sqs = session.client("sqs", region_name=REGION, **client_args)
        events = session.client("events", region_name=REGION, **client_args)
        self.queue = self.sqs.create_queue(QueueName="strato-object-created")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.triggers = [t for t in deployment.root.triggers if isinstance(t, ir.ObjectCreatedSpec)]
        for i, trigger in enumerate(self.triggers):
            buckets = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
            if trigger.bucket not in buckets:
                self.s3.create_bucket(Bucket=trigger.bucket)
            self.s3.put_bucket_notification_configuration(
                Bucket=trigger.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}})
            events.put_rule(Name=f"strato-{i}", EventPattern=json.dumps(object_created_rule(trigger)))
            events.put_targets(Rule=f"strato-{i}", Targets=[{"Id": "queue", "Arn": queue_arn}])

    def runs(self, sfn: Any) -> list[RunResult]:
        """Start and finish one run per delivered event, in order."""
        from .triggers import event_input, object_created_rule

        results: list[RunResult] = []
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return results
            for message in messages:
                event = json.loads(message["Body"])
                self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
                for trigger in self.triggers:
                    bucket = object_created_rule(trigger)["detail"]["bucket"]["name"][0]
                    if event.get("detail", {}).get("bucket", {}).get("name") == bucket:
                        params = event_input(self.deployment.root, trigger, event)
                        results.append(run_execution(sfn, self.deployment, {**self.deployment.root.defaults(),
                                                                            **params}))
                        break


@contextmanager
def localstack_account(endpoint: str) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A LocalStack account at ``endpoint`` (it keeps its state across runs: names are namespaced)."""
    import boto3

    settings = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION,
                "STRATO_PAYLOAD_BUCKET": PAYLOAD_BUCKET, "AWS_ENDPOINT_URL": endpoint}
    with mock.patch.dict(os.environ, settings):
        session = boto3.session.Session(region_name=REGION)
        s3 = session.client("s3", endpoint_url=endpoint)
        if PAYLOAD_BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
            s3.create_bucket(Bucket=PAYLOAD_BUCKET)
        yield session, {"endpoint_url": endpoint}


def emulate_on_localstack(root: ir.PipelineIR, definitions: dict[str, dict[str, Any]], params: dict[str, Any],
                          load: TaskLoader, endpoint: str) -> RunResult:
    """Deploy to LocalStack with every task as an Activity, served by an in-process ``strato worker``."""
    import boto3

    from .worker import serve

    deployment = Deployment(root, definitions, load, account="000000000000",
                            namespace=f"s{uuid.uuid4().hex[:8]}-", activities=True)
    with localstack_account(endpoint) as (session, client_args):
        sfn = session.client("stepfunctions", **client_args)
        deployment.seed_secrets(session, client_args)
        deployment.create(sfn)
        stop = threading.Event()
        with emulating(loader=load):  # the worker threads start in this context
            serve(lambda: boto3.session.Session(region_name=REGION).client("stepfunctions", **client_args),
                  sorted(deployment.activities.values()), stop, threads_per_activity=2)
        try:
            return run_execution(sfn, deployment, params)
        finally:
            stop.set()


def emulate(root: ir.PipelineIR, definitions: dict[str, dict[str, Any]], params: dict[str, Any],
            load: TaskLoader, backend: str = "moto",
            timers: VirtualTimers | None = None, endpoint: str | None = None) -> RunResult:
    """Deploy ``definitions`` to a fresh emulated account and run the root pipeline once."""
    if backend == "localstack":
        if not endpoint:
            raise ValueError("the localstack backend needs --endpoint, e.g. http://127.0.0.1:4566")
        return emulate_on_localstack(root, definitions, params, load, endpoint)
    deployment = Deployment(root, definitions, load)
    with deployed_on_moto(deployment, backend, timers) as (_, _, sfn):
        return run_execution(sfn, deployment, params)


@contextmanager
def deployed_on_moto(deployment: Deployment, backend: str = "moto",
                     timers: VirtualTimers | None = None) -> Iterator[tuple[Any, dict[str, Any], Any]]:
    """A fresh moto account with ``deployment`` created in it, Lambda calls answered by the shim and
    moto's gaps bridged; yields the session, the client arguments and a Step Functions client."""
    with moto_account(backend) as (session, client_args), moto_bridged(timers):
        session.events.register("before-call.lambda.Invoke", deployment.invoke)
        try:
            sfn = session.client("stepfunctions", region_name=REGION, **client_args)
            deployment.seed_secrets(session, client_args)
            deployment.create(sfn)
            yield session, client_args, sfn
        finally:
            session.events.unregister("before-call.lambda.Invoke", deployment.invoke)


@contextmanager
def moto_bridged(timers: VirtualTimers | None = None) -> Iterator[VirtualTimers]:
    """moto's gaps to AWS bridged (each patch says which), its sleeps recorded by ``timers`` instead."""
    with (timers or VirtualTimers()).installed() as installed, _sfn_integration_casing(), \
            _states_errors_through_branches(), _bare_string_child_outputs(), _map_result_files(), \
            _s3_puts_one_at_a_time(), _one_lambda_client_per_run():
        yield installed
