"""Run hooks: ``@pipeline(on_failure=..., on_success=...)`` calls a task with the run's outcome once the
run has ended, on the local runner and in each cloud's emulation (a top-level catch in ASL, try/except
in Workflows and in the Durable orchestrator); the run keeps its own outcome whatever the hook does.
``strato.hooks.webhook`` posts Slack/Teams-compatible JSON to a URL kept as a secret."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cli

PIPELINE = '''
import json
import os

import strato
from strato import Retry, pipeline, task


def _note(run: dict) -> None:
    context = strato.context()
    with open(os.environ["HOOK_LOG"], "a") as log:
        log.write(json.dumps({**run, "task_id": context.task_id, "attempt": context.attempt}) + "\\n")


@task(retry=Retry(max_retries=1, delay=1))
def alert(run: dict) -> None:
    if strato.context().attempt == 1:
        raise ConnectionError("the hook's first attempt fails")
    _note(run)


@task
def celebrate(run: dict) -> None:
    _note(run)


@task
def step(x: int, fail: str, where: str) -> int:
    if fail == where:
        raise ValueError(f"{where} failed")
    return x + 1


@pipeline
def inner(x: int, fail: str):
    return step(x, fail, "sub")


@pipeline(on_failure=alert, on_success=celebrate)
def hooked(x: int = 1, fail: str = "none"):
    first = step(x, fail, "task")
    items = step.map([1, 2], fail=fail, where="map")
    return {"first": first, "items": items, "sub": inner(first, fail)}
'''

BROKEN_HOOK = '''
from strato import pipeline, task


@task
def broken_alert(run: dict) -> None:
    raise RuntimeError("the alerting system is down")


@task
def fail(x: int) -> int:
    raise KeyError("no such row")


@task
def ok(x: int) -> int:
    return x


@pipeline(on_failure=broken_alert)
def broken_hook(x: int = 1):
    return fail(x)


@pipeline(on_success=broken_alert)
def broken_success(x: int = 1):
    return ok(x)
'''


def _write(tmp_path: Path, source: str, name: str) -> str:
    path = tmp_path / f"{name}_hooks.py"
    path.write_text(source)
    return f"{path}:{name}"


def _notes(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _run(cli: Cli, target: str, ref: str, payload: dict, **env: str) -> tuple[int, dict]:
    if target == "local":
        return cli.json("run", ref, "--input", json.dumps(payload), "--json", **env)
    return cli.json("emulate", ref, "--target", target, "--input", json.dumps(payload), "--json", timeout=300, **env)


@pytest.mark.parametrize("target", ["local", "aws", "gcp", "azure"])
def test_on_failure_gets_the_runs_error_and_the_run_fails_with_it(cli: Cli, tmp_path: Path, target: str) -> None:
    ref, log = _write(tmp_path, PIPELINE, "hooked"), tmp_path / "hooks.jsonl"
    for fail in ("task", "map", "sub"):  # a top-level task, a map item, a sub-pipeline's task
        code, result = _run(cli, target, ref, {"fail": fail}, HOOK_LOG=str(log))
        assert code == 1 and result["status"] == "FAILED", result
        assert result["error"] == {"error": "ValueError", "cause": f"{fail} failed"}
        (note,) = _notes(log)
        log.unlink()
        assert note["run_id"] and note["pipeline"] == "hooked" and note["backend"] == target
        assert {k: note[k] for k in ("status", "error", "task_id", "attempt")} == {
            "status": "FAILED", "error": {"error": "ValueError", "cause": f"{fail} failed"},
            "task_id": "#on_failure", "attempt": 2}  # the hook's own retry applies


@pytest.mark.parametrize("target", ["local", "aws", "gcp", "azure"])
def test_on_success_runs_after_the_output_and_keeps_it(cli: Cli, tmp_path: Path, target: str) -> None:
    ref, log = _write(tmp_path, PIPELINE, "hooked"), tmp_path / "hooks.jsonl"
    code, result = _run(cli, target, ref, {"x": 1}, HOOK_LOG=str(log))
    assert code == 0 and result["output"] == {"first": 2, "items": [2, 3], "sub": 3}, result
    (note,) = _notes(log)
    assert {k: note[k] for k in ("pipeline", "status", "error", "task_id", "backend")} == {
        "pipeline": "hooked", "status": "SUCCEEDED", "error": None, "task_id": "#on_success", "backend": target}


@pytest.mark.parametrize("target", ["local", "aws", "gcp", "azure"])
def test_a_failing_hook_never_changes_the_runs_outcome(cli: Cli, tmp_path: Path, target: str) -> None:
    ref = _write(tmp_path, BROKEN_HOOK, "broken_hook")
    code, result = _run(cli, target, ref, {})
    assert code == 1 and result["error"] == {"error": "KeyError", "cause": "'no such row'"}, result
    code, result = _run(cli, target, ref.replace(":broken_hook", ":broken_success"), {"x": 4})
    assert code == 0 and result["status"] == "SUCCEEDED" and result["output"] == 4, result


def test_the_hook_is_a_unit_of_the_local_run_with_its_log(cli: Cli, tmp_path: Path) -> None:
    ref, log = _write(tmp_path, PIPELINE, "hooked"), tmp_path / "hooks.jsonl"
    code, result = cli.json("run", ref, "--input", '{"fail": "task"}', "--json", HOOK_LOG=str(log))
    assert code == 1
    code, shown = cli.json("runs", "show", result["run_id"], "--json")
    units = {unit["key"]: unit for unit in shown["units"]}
    assert units["#on_failure"]["kind"] == "hook" and units["#on_failure"]["status"] == "SUCCEEDED"
    assert units["#on_failure"]["task"] == "alert"
    logs = cli("runs", "logs", result["run_id"], "#on_failure")
    assert "the hook's first attempt fails" in logs.stdout, logs.stdout
    # a broken hook's failure is on its unit, the run's error is the task's
    ref = _write(tmp_path, BROKEN_HOOK, "broken_hook")
    code, result = cli.json("run", ref, "--json")
    code, shown = cli.json("runs", "show", result["run_id"], "--json")
    hook = next(unit for unit in shown["units"] if unit["key"] == "#on_failure")
    assert hook["status"] == "FAILED" and hook["error"]["error"] == "RuntimeError"
    assert shown["error"]["error"] == "KeyError"


def test_a_resumed_run_calls_its_hook_again_when_it_ends(cli: Cli, tmp_path: Path) -> None:
    ref, log = _write(tmp_path, PIPELINE, "hooked"), tmp_path / "hooks.jsonl"
    code, failed = cli.json("run", ref, "--input", '{"fail": "task"}', "--json", HOOK_LOG=str(log))
    assert code == 1
    code, again = cli.json("resume", failed["run_id"], "--json", HOOK_LOG=str(log))
    assert code == 1 and again["error"] == failed["error"]
    assert [note["run_id"] for note in _notes(log)] == [failed["run_id"]] * 2


# ------------------------------------------------------------------------------------ webhook
class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"path": self.path, "type": self.headers["Content-Type"],
                                    "body": json.loads(body)})
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/services/T000/B000/secret-token", handler
    server.shutdown()


WEBHOOK = '''
from strato import Secret, pipeline, task
from strato.hooks import webhook


@task
def load(day: str) -> int:
    raise ValueError(f"no rows for {day}")


@pipeline(on_failure=webhook(Secret("alerts-webhook")))
def alerted(day: str = "2026-12-03"):
    return load(day)
'''


@pytest.mark.parametrize("target", ["local", "aws"])
def test_the_webhook_hook_posts_the_failure_as_text(cli: Cli, tmp_path: Path, receiver: Any, target: str) -> None:
    url, handler = receiver
    ref = _write(tmp_path, WEBHOOK, "alerted")
    code, result = _run(cli, target, ref, {}, STRATO_SECRET_ALERTS_WEBHOOK=url)
    assert code == 1 and result["error"] == {"error": "ValueError", "cause": "no rows for 2026-12-03"}
    (posted,) = handler.received
    assert posted["path"] == "/services/T000/B000/secret-token" and posted["type"] == "application/json"
    assert list(posted["body"]) == ["text"]
    text = posted["body"]["text"]
    assert "alerted" in text and "FAILED" in text and "ValueError: no rows for 2026-12-03" in text
    assert result["run_id"] in text and f"on {target}" in text
    # the URL is a secret: the pipeline holds its reference, no store row holds its value
    assert "secret-token" not in (cli.home / "strato.db").read_bytes().decode("utf-8", "replace")


def test_a_webhook_that_refuses_fails_the_hook_with_its_status_not_its_url(receiver: Any) -> None:
    from strato.hooks import WebhookFailed, notify_webhook

    url, handler = receiver
    handler.status = 500
    run = {"pipeline": "p", "run_id": "r1", "status": "FAILED", "backend": "local",
           "error": {"error": "ValueError", "cause": "x" * 2000}}
    with pytest.raises(WebhookFailed) as raised:
        notify_webhook(run, url)
    assert "HTTP 500" in str(raised.value) and "secret-token" not in str(raised.value)
    assert len(handler.received[0]["body"]["text"]) < 700  # a long cause is cut
    with pytest.raises(WebhookFailed, match="http"):
        notify_webhook(run, "file:///etc/passwd")


def test_bad_hooks_are_reported_where_they_are_declared(tmp_path: Path) -> None:
    from strato import pipeline, task
    from strato.errors import DefinitionError
    from strato.hooks import Hook

    @task
    def noop(x: int) -> int:
        return x

    @task
    def takes_nothing() -> None: ...

    @task
    def needs_channel(run: dict, channel: str) -> None: ...

    cases = {
        "on_failure must be a @task": dict(on_failure=42),
        "must take the run's outcome as its first parameter": dict(on_success=takes_nothing),
        "needs values for channel": dict(on_failure=needs_channel),
        "has no parameter(s) colour": dict(on_failure=Hook(needs_channel, {"channel": "#data", "colour": "red"})),
    }
    for expected, options in cases.items():
        @pipeline(**options)
        def p(x: int = 1):
            return noop(x)

        with pytest.raises(DefinitionError) as raised:
            _ = p.ir
        assert expected in str(raised.value) and "test_hooks.py" in str(raised.value), str(raised.value)

    @pipeline(on_failure=Hook(needs_channel, {"channel": "#data"}))
    def good(x: int = 1):
        return noop(x)

    from strato import ir

    assert good.ir.hooks["on_failure"] == ir.HookSpec("needs_channel", {"channel": ir.Literal("#data")}, "run")
    assert ir.from_json(good.ir.to_json()).hooks == good.ir.hooks  # the IR carries them, round trip exact

    @pipeline
    def plain(x: int = 1):
        return noop(x)

    assert "hooks" not in json.loads(plain.ir.to_json())  # no hooks, the IR (and its hash) as before
