"""`strato invoke --target gcp` end to end in-process, with the Executions client's transport replaced."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("google.cloud.workflows")

from google.cloud.workflows import executions_v1

from strato.adapters.gcp.client import workflow_path
from strato.cli import main

from ..conftest import ROOT
from .test_client_triggers import State, _client

REF = str(ROOT / "tests" / "pipelines" / "failing.py") + ":failing"


def _main(*args: str) -> int:
    """``strato ARGS`` in this process: its exit code (stdout and stderr are left to capsys)."""
    with pytest.raises(SystemExit) as exit_:
        main(list(args))
    return exit_.value.code if isinstance(exit_.value.code, int) else 1


def test_invoke_prints_the_run_as_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    client, transport = _client(executions_v1.Execution(state=State.SUCCEEDED, result=json.dumps({"ratio": 2.0})))
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    code = _main("invoke", REF, "--target", "gcp", "--project", "p", "--location", "europe-west1",
                 "--input", '{"a": 6, "b": 3}', "--json", "--poll", "0")
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out) == {"run_id": "abc123", "status": "SUCCEEDED", "output": {"ratio": 2.0}, "error": None}
    kind, create = transport.requests[0]
    assert kind == "create" and json.loads(create.execution.argument) == {"a": 6, "b": 3}
    assert create.parent == workflow_path("p", "europe-west1", "failing")


def test_project_and_location_default_to_the_environment_read_when_the_command_runs(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (first, from_env), (second, given) = (_client(executions_v1.Execution(state=State.SUCCEEDED, result="1"))
                                          for _ in range(2))
    clients = iter([first, second])
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: next(clients))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-env")
    monkeypatch.setenv("STRATO_GCP_LOCATION", "asia-east1")
    assert _main("invoke", REF, "--target", "gcp", "--json", "--poll", "0") == 0, capsys.readouterr().err
    assert from_env.requests[0][1].parent == workflow_path("from-env", "asia-east1", "failing")
    # an option given wins over the variable
    assert _main("invoke", REF, "--target", "gcp", "--project", "given", "--json", "--poll", "0") == 0
    assert given.requests[0][1].parent == workflow_path("given", "asia-east1", "failing")


def test_invoke_timeout_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = _client(executions_v1.Execution(state=State.SUCCEEDED, result="1"))
    client.transport.polls = 1000
    monkeypatch.setattr(executions_v1, "ExecutionsClient", lambda: client)
    code = _main("invoke", REF, "--target", "gcp", "--project", "p", "--location", "l", "--timeout", "0",
                 "--poll", "0")
    err = capsys.readouterr().err
    assert code == 1 and "still ACTIVE" in err and "Traceback" not in err
