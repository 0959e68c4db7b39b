"""The LocalStack tier: the same pipelines on LocalStack (host mode, no Docker), every task an
Activity served by the worker. It needs a Python >= 3.12 virtualenv with LocalStack, which
``make test`` creates at ``.venv-localstack`` when such a Python is on the machine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")

from strato.adapters.aws.compiler import compile_pipeline
from strato.adapters.base import emulated_loader
from strato.runtime import resolver_for

from ..conftest import ROOT, Cli, assert_emulation_matches_run
from . import pipelines

LOCALSTACK_PYTHON = Path(os.environ.get("STRATO_LOCALSTACK_PYTHON", ROOT / ".venv-localstack" / "bin" / "python"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not LOCALSTACK_PYTHON.exists():
        pytest.skip(f"LocalStack tier skipped: no LocalStack virtualenv at {LOCALSTACK_PYTHON} (make test creates it "
                    "when a Python >= 3.12 is installed)")
    state = tmp_path_factory.mktemp("localstack")
    port = _free_port()
    env = {**os.environ, "GATEWAY_LISTEN": f"127.0.0.1:{port}",
           "SERVICES": "stepfunctions,s3,events,iam,sqs,sts,logs,scheduler", "SKIP_SSL_CERT_DOWNLOAD": "1",
           "DISABLE_EVENTS": "1", "LOCALSTACK_VOLUME_DIR": str(state / "volume"),
           "FILESYSTEM_ROOT": str(state / "fs")}
    log = (state / "localstack.log").open("w")
    # LocalStack with the ResultWriter bridge: it writes a Distributed Map's result files, as AWS does
    launcher = ROOT / "adapters" / "aws" / "localstack_main.py"
    proc = subprocess.Popen([str(LOCALSTACK_PYTHON), str(launcher)], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/_localstack/health", timeout=1) as response:
                if json.load(response)["services"].get("stepfunctions") in ("available", "running"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"LocalStack did not start; see {state / 'localstack.log'}")
        time.sleep(0.2)
    yield endpoint
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def on_localstack(pipeline: Any, params: dict, endpoint: str) -> Any:
    from strato.adapters.aws.emulator import emulate

    ir = pipeline.ir
    resolver = resolver_for(pipeline.trace().ir)
    return emulate(ir, compile_pipeline(ir).machines, {**ir.defaults(), **params},
                   emulated_loader(ir, resolver), "localstack", endpoint=endpoint)


@pytest.mark.parametrize(("ref", "payload"), [
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-01"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-bad.csv"}),
    ("tests/pipelines/failing.py:failing", {}),
])
def test_examples_on_localstack_match_strato_run(cli: Cli, localstack: str, ref: str, payload: dict) -> None:
    assert_emulation_matches_run(cli, ref, payload, "--target", "aws", "--backend", "localstack",
                                 "--endpoint", localstack)


def test_sub_pipelines_catch_and_worker_retries_on_localstack(localstack: str) -> None:
    assert on_localstack(pipelines.nested, {"x": 1}, localstack).output == {"inner": {"sum": 11}, "twice": 22}
    caught = on_localstack(pipelines.catching, {"text": "x"}, localstack)
    assert caught.output == {"parsed": {"quarantined": {"error": "ValueError", "cause": "'x' is not a number"}}}
    result = on_localstack(pipelines.with_worker, {"tag": "ls", "failures": 1}, localstack)
    assert result.output == {"worker": {"tag": "ls", "attempts": 2}, "lambda": 3}


def test_strato_worker_serves_activities(cli: Cli, localstack: str) -> None:
    """`strato worker` registers the pipeline's worker activities and answers them."""
    import boto3

    proc = subprocess.Popen([sys.executable, "-m", "strato", "worker",
                             "tests/aws/pipelines.py:with_worker", "--target", "aws", "--endpoint", localstack],
                            cwd=ROOT, env=cli.env(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                                                  AWS_DEFAULT_REGION="us-east-1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sfn = boto3.client("stepfunctions", endpoint_url=localstack, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        name = "strato-with_worker-on_premises"
        deadline = time.monotonic() + 30
        while not any(a["name"] == name for a in sfn.list_activities()["activities"]):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the worker did not register its activity"
            time.sleep(0.2)
        arn = next(a["activityArn"] for a in sfn.list_activities()["activities"] if a["name"] == name)
        machine = sfn.create_state_machine(
            name="strato-worker-probe", roleArn="arn:aws:iam::000000000000:role/x", definition=json.dumps({
                "StartAt": "Run", "States": {"Run": {"Type": "Task", "Resource": arn, "End": True, "Parameters": {
                    "task": "on_premises",
                    "args": {"tag": {"literal": "cli"}}, "refs": {}, "params": {}}}}}))["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline + 30
            time.sleep(0.2)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {"tag": "cli", "attempts": 1}
    finally:
        proc.kill()  # the worker sits in a long poll; nothing to flush
        proc.wait(10)
