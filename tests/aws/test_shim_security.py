"""The Lambda shim and the Activity worker run only the tasks of their own deployment: an event names a
task by id, the function's catalog (STRATO_TASKS, set by the infra component) says where its code is,
and anything else is refused before anything runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto")

from strato.adapters.aws import shim
from strato.adapters.base import emulated_loader
from strato.adapters.common.errors import UnknownTask
from strato.runtime import resolver_for

from ..conftest import ROOT, Cli

MARKER: dict[str, int] = {"runs": 0}


def touch(path: str) -> str:
    MARKER["runs"] += 1
    Path(path).write_text("ran")
    return "ran"


def crafted(tmp_path: Path) -> list[Any]:
    marker = str(tmp_path / "pwned")
    args = {"cmd": {"literal": f"touch {marker}"}, "path": {"literal": marker}}
    return [
        {"task": "x", "fn": "subprocess:getoutput", "args": args},  # the payload of the report
        {"task": "subprocess:getoutput", "args": args},
        {"task": "os:system", "args": {"command": {"literal": f"touch {marker}"}}},
        {"task": "os.system", "args": args},
        {"task": "../../tests/aws/test_shim_security:touch", "args": args},
        {"task": "tests.aws.test_shim_security:touch", "args": args},
        {"task": "touch_other", "args": args},
        {"task": ["touch"], "args": args},
        {"task": {"module": "os"}, "args": args},
        {"task": None, "args": args},
        {"args": args},
        {"task": "flaky", "fn": "tests.aws.test_shim_security:touch", "args": args},  # a known id redirected
        "touch",
        ["touch"],
    ]


def test_crafted_events_run_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_TASKS", json.dumps({"flaky": "tests.aws.pipelines:flaky"}))  # as deployed
    MARKER["runs"] = 0
    for event in crafted(tmp_path):
        with pytest.raises((UnknownTask, shim.EventError)) as refused:
            shim.handler(event, None)  # type: ignore[arg-type]
        assert "nothing was run" in str(refused.value) or "not a task of this deployment" in str(refused.value)
    assert MARKER["runs"] == 0 and not (tmp_path / "pwned").exists()
    # the function's own task still runs
    ok = shim.handler({"task": "flaky", "args": {"tag": {"literal": "t"}, "failures": {"literal": 0}},
                       "params": {}, "refs": {}}, None)
    assert ok == "t ok after 1"


def test_a_function_without_a_catalog_runs_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRATO_TASKS", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownTask, match="no task catalog"):
        shim.handler({"task": "flaky", "args": {}}, None)


def test_crafted_activity_inputs_are_failed_not_run(tmp_path: Path) -> None:
    """The worker answers an Activity with a refused input as a failure, running nothing."""
    from strato.adapters.aws.worker import answer
    from strato.adapters.common.emulation import emulating

    from . import pipelines

    class Sfn:
        def __init__(self) -> None:
            self.outcomes: list[tuple[str, str]] = []

        def send_task_failure(self, taskToken: str, error: str, cause: str) -> None:
            self.outcomes.append(("failure", error))

        def send_task_success(self, taskToken: str, output: str) -> None:
            self.outcomes.append(("success", output))

    sfn = Sfn()
    MARKER["runs"] = 0
    ir = pipelines.with_worker.ir
    with emulating(loader=emulated_loader(ir, resolver_for(ir))):
        for event in crafted(tmp_path):
            assert answer(sfn, "token", event) is False
    assert {error for _, error in sfn.outcomes} <= {"UnknownTask", "EventError"}
    assert MARKER["runs"] == 0 and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_an_unknown_backend_is_a_usage_error(cli: Cli, target: str) -> None:
    proc = cli("emulate", str(ROOT / "examples" / "daily_sales.py") + ":daily_sales", "--target", target,
               "--backend", "nope", "--input", '{"day": "2024-03-01"}')
    assert proc.returncode == 2, proc.stderr
    assert f"unknown --backend 'nope' for target '{target}'; choose one of" in proc.stderr
    assert "Traceback" not in proc.stderr
