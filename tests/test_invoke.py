"""`strato invoke` against deployed pipelines served over real HTTP, and each run kept in the run store.

AWS: the compiled state machines are created in a ThreadedMotoServer in this process (its Lambda calls
answered by the real shim, as `strato emulate` does); `strato invoke --endpoint URL` runs in a
subprocess and talks to it over HTTP with boto3, as it would to LocalStack or AWS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

pytest.importorskip("moto")

from strato.adapters.aws.compiler import compile_pipeline
from strato.adapters.aws.emulator import Deployment, deployed_on_moto
from strato.adapters.base import emulated_loader
from strato.loader import load
from strato.runtime import RunStore, resolver_for

from .conftest import ROOT, Cli

SALES = "examples/daily_sales.py:daily_sales"


@contextmanager
def served_on_moto(ref: str) -> Iterator[str]:
    """The pipeline's state machines deployed in a moto server; yields its endpoint URL."""
    definition = load(str(ROOT / ref.split(":")[0]) + ":" + ref.split(":")[1]).definition
    ir = definition.ir
    deployment = Deployment(ir, compile_pipeline(ir).machines,
                            emulated_loader(ir, resolver_for(definition.trace().ir)))
    with deployed_on_moto(deployment, "moto-server") as (_, client_args, _sfn):
        yield client_args["endpoint_url"]


def invoke(cli: Cli, ref: str, endpoint: str, payload: dict, *extra: str) -> tuple[int, Any, str]:
    """`strato invoke --target aws` in a subprocess that knows the endpoint only from ``--endpoint``."""
    env = {k: v for k, v in cli.env().items() if k not in ("AWS_ENDPOINT_URL", "STRATO_PAYLOAD_BUCKET")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "strato", "invoke", ref, "--target", "aws", "--endpoint", endpoint,
                           "--input", json.dumps(payload), "--json", "--poll", "0.2", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    try:
        return done.returncode, json.loads(done.stdout), done.stderr
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}") from None


def test_invoke_on_aws_gives_the_output_of_strato_run_and_is_recorded(cli: Cli) -> None:
    with served_on_moto(SALES) as endpoint:
        code, invoked, stderr = invoke(cli, SALES, endpoint, {"day": "2024-03-01"})
    local_code, local = cli.json("run", SALES, "--input", '{"day": "2024-03-01"}', "--json")
    assert (code, invoked["status"], invoked["output"], invoked["error"]) == (
        local_code, local["status"], local["output"], local["error"]), stderr
    assert invoked["run_id"].startswith("strato-") and "started arn:aws:states:" in stderr

    code, runs = cli.json("runs", "list", "--json")
    assert code == 0 and {r["run_id"] for r in runs} == {invoked["run_id"], local["run_id"]}
    code, shown = cli.json("runs", "show", invoked["run_id"], "--json")
    assert (shown["backend"], shown["status"], shown["output"], shown["input"]) == (
        "aws", "SUCCEEDED", local["output"], {"day": "2024-03-01", "limit": 100, "warehouse": ""})
    table = cli("runs", "list").stdout
    row = next(line for line in table.splitlines() if invoked["run_id"] in line)
    assert " aws " in row and " local " in next(line for line in table.splitlines() if local["run_id"] in line)


def test_a_failed_execution_reports_the_task_error_as_strato_run_does(cli: Cli) -> None:
    ref = "tests/pipelines/failing.py:failing"
    with served_on_moto(ref) as endpoint:
        code, invoked, _ = invoke(cli, ref, endpoint, {})
    local_code, local = cli.json("run", ref, "--json")
    assert code == local_code == 1
    assert (invoked["status"], invoked["error"]) == ("FAILED", local["error"])
    assert invoked["error"]["error"] == "ZeroDivisionError"
    assert RunStore().get_run(invoked["run_id"]).error == local["error"]  # type: ignore[union-attr]
    resumed = cli("resume", invoked["run_id"])
    assert resumed.returncode == 2 and "ran on aws, not on the local runner" in resumed.stderr


def test_an_offloaded_output_is_read_back_from_the_payload_bucket(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_OFFLOAD_BYTES", "10000")  # the shim in this process offloads
    ref = "tests/aws/pipelines.py:large_payload"
    with served_on_moto(ref) as endpoint:
        code, invoked, stderr = invoke(cli, ref, endpoint, {"rows": 3000})
    assert code == 0, stderr
    assert invoked["output"]["summary"] == {"count": 3000, "last": 2999}
    assert len(invoked["output"]["table"]["rows"]) == 3000


def test_a_missing_deployment_is_a_clear_error(cli: Cli) -> None:
    import boto3

    with served_on_moto("tests/pipelines/failing.py:failing") as endpoint:
        sfn = boto3.client("stepfunctions", endpoint_url=endpoint, region_name="us-east-1")
        for machine in sfn.list_state_machines()["stateMachines"]:  # the server outlives one test's deployment
            if machine["name"] == "daily_sales":
                sfn.delete_state_machine(stateMachineArn=machine["stateMachineArn"])
        done = cli("invoke", SALES, "--target", "aws", "--endpoint", endpoint, "--input", '{"day": "2024-03-01"}')
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no state machine named 'daily_sales'" in done.stderr and "--state-machine-arn" in done.stderr


def test_aws_options_are_refused_for_another_target(cli: Cli) -> None:
    done = cli("invoke", SALES, "--target", "gcp", "--region", "eu-west-1", "--input", '{"day": "2024-03-01"}')
    assert done.returncode == 2 and "--region do not apply to --target gcp" in done.stderr


# Azure -------------------------------------------------------------------------------------------------
# The Functions host cannot run here and the replay host answers no HTTP, so the app is served by a
# local HTTP server speaking the documented Durable Functions HTTP API
# (https://learn.microsoft.com/azure/azure-functions/durable/durable-functions-http-api): a POST runs
# the generated app's real HTTP starter (its `create_check_status_response` answer included) against
# the replay host, and the instance's statusQueryGetUri answers 202 while it runs, then 200 (Completed)
# or 500 (Failed) with the status body.

KEY = "function-key-1"


@contextmanager
def served_on_azure(ref: str, work_dir: Any) -> Iterator[str]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import azure.functions as func

    from strato.adapters.azure.naming import start_function
    from strato.adapters.azure.replay.app import emulation
    from strato.adapters.azure.replay.client import trigger

    definition = load(str(ROOT / ref.split(":")[0]) + ":" + ref.split(":")[1]).definition
    em = emulation(definition.ir, resolver_for(definition.trace().ir), work_dir)
    starter = f"/api/pipelines/{definition.ir.name}"
    runs: list[threading.Thread] = []

    class Handler(BaseHTTPRequestHandler):
        def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {"Content-Type": "application/json"}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            if self.path != starter:
                return self.answer(404, b"{}")
            if self.headers.get("x-functions-key") != KEY:  # AuthLevel.FUNCTION, as the Functions host checks
                return self.answer(401, b"")
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = func.HttpRequest("POST", f"http://127.0.0.1:{self.server.server_port}{self.path}",
                                       headers=dict(self.headers), body=body)
            response = trigger(em.host, start_function(definition.ir.name, 0), request)
            if response.status_code == 202:
                instance = em.host.instances[json.loads(response.get_body())["id"]]

                def run() -> None:
                    with em.activate():
                        em.host.run(instance)

                runs.append(threading.Thread(target=run))
                runs[-1].start()
            self.answer(response.status_code, response.get_body(), dict(response.headers))

        def do_GET(self) -> None:
            prefix = "/runtime/webhooks/durabletask/instances/"
            instance = em.host.instances.get(self.path.split("?")[0].removeprefix(prefix))
            if not self.path.startswith(prefix) or instance is None:
                return self.answer(404, b"")
            done = not runs[-1].is_alive()
            runtime_status = instance.status if done else "Running"
            body = {"name": instance.name, "instanceId": instance.id, "runtimeStatus": runtime_status,
                    "input": json.loads(instance.input or "null"), "customStatus": None,
                    "output": instance.output if runtime_status == "Completed" else instance.error}
            code = {"Completed": 200, "Failed": 500}.get(runtime_status, 202)
            self.answer(code, json.dumps(body).encode())

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        for thread in runs:
            thread.join()


FAILING = "tests/pipelines/failing.py:failing"


@pytest.mark.parametrize(("ref", "payload"), [(SALES, {"day": "2024-03-02"}), (FAILING, {})])
def test_invoke_on_azure_follows_the_status_endpoint_to_the_output_of_strato_run(
        cli: Cli, tmp_path: Any, ref: str, payload: dict) -> None:
    pytest.importorskip("azure.durable_functions")
    with served_on_azure(ref, tmp_path / "app") as endpoint:
        code, invoked = cli.json("invoke", ref, "--target", "azure", "--endpoint", endpoint, "--key", KEY,
                                 "--input", json.dumps(payload), "--json", "--poll", "0.1")
        refused = cli("invoke", ref, "--target", "azure", "--endpoint", endpoint, "--input", json.dumps(payload),
                      STRATO_AZURE_FUNCTION_KEY="")
    local_code, local = cli.json("run", ref, "--input", json.dumps(payload), "--json")
    assert (code, invoked["status"], invoked["output"], invoked["error"]) == (
        local_code, local["status"], local["output"], local["error"])
    _, shown = cli.json("runs", "show", invoked["run_id"], "--json")
    assert (shown["backend"], shown["status"]) == ("azure", local["status"])
    assert refused.returncode == 2 and "pass the function's key with --key" in refused.stderr


def test_azure_needs_the_app_endpoint(cli: Cli) -> None:
    done = cli("invoke", SALES, "--target", "azure", "--input", '{"day": "2024-03-01"}')
    assert done.returncode == 2 and "azure needs --endpoint" in done.stderr


def test_an_emulated_run_is_recorded_with_its_emulator(cli: Cli) -> None:
    code, emulated = cli.json("emulate", SALES, "--target", "aws", "--input", '{"day": "2024-03-01"}', "--json")
    assert code == 0
    _, shown = cli.json("runs", "show", emulated["run_id"], "--json")
    assert (shown["backend"], shown["status"], shown["output"]) == ("aws:moto", "SUCCEEDED", emulated["output"])
    assert "aws:moto" in next(line for line in cli("runs", "list").stdout.splitlines() if emulated["run_id"] in line)
