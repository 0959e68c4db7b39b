"""The AWS emulator's fixed cost: moto's Step Functions interpreter loads without moto's Batch and EC2
models (about 0.9 s of each `strato emulate --target aws`), and moto's Batch still loads whole after."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("moto")

CHECK = """
import sys
from strato.adapters.aws.emulator import moto_account

with moto_account() as (session, client_args):
    session.client("stepfunctions", region_name="us-east-1").list_state_machines()
    assert "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_factory" \\
        in sys.modules
    assert "moto.ec2.models" not in sys.modules, "moto's EC2 models were loaded"
import moto.batch
assert hasattr(moto.batch, "batch_backends"), "moto.batch is a stand-in, not the package"
print("ok")
"""


def test_the_interpreter_loads_without_moto_batch_and_ec2_and_batch_still_loads() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


REUSE = """
import boto3
from strato import pipeline, task
from strato.runtime.tasks import resolver_for
from strato.targets import get_adapter

@task
def double(x: int) -> int:
    return 2 * x

@task
def shout(text: str) -> str:
    return text.upper()

@pipeline
def first(x: int = 2):
    return double(x)

@pipeline
def second(text: str = "hi"):
    return shout(text)

mine = boto3.session.Session()
boto3.DEFAULT_SESSION = mine
aws = get_adapter("aws")
outputs, sessions = [], []
for p, params in ((first, {"x": 2}), (second, {"text": "hi"}), (first, {"x": 5})):
    graph = p.trace().ir
    result = aws.emulate(graph, params, resolver_for(graph), work_dir=None)
    outputs.append((result.status, result.output))
    from strato.adapters.aws import emulator
    sessions.append(id(emulator._shared_session()))
    assert boto3.DEFAULT_SESSION is mine, "the caller's default session was not put back"
# a handler left behind by the first run would answer the second's Lambda calls with the wrong task
assert outputs == [("SUCCEEDED", 4), ("SUCCEEDED", "HI"), ("SUCCEEDED", 10)], outputs
assert len(set(sessions)) == 1
print("ok")
"""


def test_runs_in_one_process_share_one_session_and_leave_no_handler_behind() -> None:
    """Each emulated run reuses the process's boto3 session (its parsed service models), answers its own
    Lambda calls only, and gives the caller back their default session."""
    result = subprocess.run([sys.executable, "-c", REUSE], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
