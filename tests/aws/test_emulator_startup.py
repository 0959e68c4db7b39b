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
