"""`strato invoke --target gcp` end to end in-process, with the Executions client's transport replaced."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("google.cloud.workflows")

from click.testing import CliRunner
from google.cloud.workflows import executions_v1

from strato.cli import main

from ..conftest import ROOT
from .test_client_triggers import State, _client


def test_invoke_prints_the_run_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    client, transport = _client(executions_v1.Execution(state=State.SUCCEEDED, result=json.dumps({"ratio": 2.0})))
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    result = CliRunner().invoke(main, ["invoke", str(ROOT / "tests" / "pipelines" / "failing.py") + ":failing",
                                       "--target", "gcp", "--project", "p", "--location", "europe-west1",
                                       "--input", '{"a": 6, "b": 3}', "--json", "--poll", "0"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"run_id": "abc123", "status": "SUCCEEDED", "output": {"ratio": 2.0},
                                         "error": None}
    kind, create = transport.requests[0]
    assert kind == "create" and json.loads(create.execution.argument) == {"a": 6, "b": 3}


def test_invoke_timeout_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = _client(executions_v1.Execution(state=State.SUCCEEDED, result="1"))
    client.transport.polls = 1000
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
    result = CliRunner().invoke(main, ["invoke", str(ROOT / "tests" / "pipelines" / "failing.py") + ":failing",
                                       "--target", "gcp", "--project", "p", "--location", "l", "--timeout", "0",
                                       "--poll", "0"])
    assert result.exit_code == 1 and "still ACTIVE" in result.stderr and "Traceback" not in result.stderr
