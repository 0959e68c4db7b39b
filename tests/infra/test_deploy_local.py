"""``strato deploy --local``: the AWS component's Pulumi program, recorded under Pulumi's mocks, applied with
boto3 to a moto server the command starts, with the real ``strato package`` zip as every function's code;
``strato invoke --endpoint`` from another process then runs the deployed state machine to the local
runner's output."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

import pytest

pytest.importorskip("pulumi")
pytest.importorskip("pulumi_aws")
pytest.importorskip("moto")

from ..conftest import ROOT, Cli

DAILY_SALES = f"{ROOT / 'examples' / 'daily_sales.py'}:daily_sales"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def _start(cli: Cli, ref: str, **env: str) -> tuple[subprocess.Popen[str], str, list[str]]:
    """``strato deploy --local REF`` in the background, read up to its ``endpoint:`` line."""
    process = subprocess.Popen([sys.executable, "-m", "strato", "deploy", "--local", ref], cwd=ROOT,
                               env=cli.env(**AWS_ENV, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break
            continue
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if line.startswith("endpoint: "):
            return process, line.split(": ", 1)[1].strip(), lines
    process.kill()
    raise AssertionError("no endpoint line; printed:\n" + "\n".join(lines) + "\n" + (process.stderr.read()
                                                                                        if process.stderr else ""))


def test_deploy_local_then_invoke_runs_daily_sales_to_the_local_output(cli: Cli) -> None:
    process, endpoint, printed = _start(cli, DAILY_SALES)
    try:
        assert endpoint.startswith("http://127.0.0.1:")
        created = [line for line in printed if line.startswith("created ")]
        assert not [line for line in printed if line.startswith("skipped ")], printed  # everything was applied
        functions = [line for line in created if line.startswith("created aws:lambda/function:Function")]
        assert {line.split("(")[-1].rstrip(")") for line in functions} == {
            f"strato-daily_sales-{t}" for t in ("alert", "clean", "extract", "load", "summarize", "runtime")}
        assert any(line.startswith("created aws:sfn/stateMachine:StateMachine") for line in created)
        assert any(line.startswith("created aws:scheduler/schedule:Schedule") for line in created)
        assert any(line.startswith("created aws:iam/rolePolicy:RolePolicy daily-sales-states") for line in created)
        package = next(line for line in printed if line.startswith("package: "))
        assert package.split()[1].endswith("daily_sales.lambda.zip")
        for day in ("2024-03-01", "2024-03-02"):
            payload = json.dumps({"day": day})
            code, local = cli.json("run", DAILY_SALES, "--input", payload, "--json")
            code_aws, deployed = cli.json("invoke", DAILY_SALES, "--target", "aws", "--endpoint", endpoint, "--input",
                                          payload, "--json", "--poll", "0.2", timeout=180, **AWS_ENV)
            assert (code_aws, deployed["status"], deployed["output"], deployed["error"]) == (
                code, local["status"], local["output"], local["error"]), deployed
        # the run is in the local store under the execution's name, as a run of the aws backend
        code, shown = cli.json("runs", "show", deployed["run_id"], "--json")
        assert code == 0 and shown["backend"] == "aws" and shown["output"] == local["output"]
    finally:
        process.terminate()
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "stopped" in err


CHECK_HTTP_AND_SECRET = """
import json, sys
import boto3
from strato.infra.aws.local import deployed_locally

said, seen = [], {}
for ref in sys.argv[1:]:
    with deployed_locally(ref, say=said.append) as url:
        session = boto3.session.Session(region_name="us-east-1")
        if ref.endswith(":scoring"):
            gateway = session.client("apigatewayv2", endpoint_url=url)
            (api,) = gateway.get_apis()["Items"]
            seen["routes"] = gateway.get_routes(ApiId=api["ApiId"])["Items"]
            seen["integrations"] = gateway.get_integrations(ApiId=api["ApiId"])["Items"]
        else:
            secrets = session.client("secretsmanager", endpoint_url=url)
            seen["secret"] = secrets.get_secret_value(SecretId="db-password")["SecretString"]
print(json.dumps({"said": said, "seen": seen}, default=str))
"""


def test_an_http_trigger_and_a_secret_are_deployed_too(cli: Cli) -> None:
    """API Gateway's API, integration, route and stage (ids the local AWS gives, wired together) and the
    granted secret, created from STRATO_SECRET_<NAME> (in a process of its own: moto and Pulumi's mocks
    are process-wide)."""
    infra = ROOT / "tests" / "infra"
    result = subprocess.run([sys.executable, "-c", CHECK_HTTP_AND_SECRET, f"{infra / 'scoring.py'}:scoring",
                             f"{infra / 'secured.py'}:secured"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env=cli.env(**AWS_ENV, STRATO_SECRET_DB_PASSWORD="s3cret"))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    (route,), (integration,) = found["seen"]["routes"], found["seen"]["integrations"]
    assert route["RouteKey"] == "POST /score" and route["Target"] == f"integrations/{integration['IntegrationId']}"
    assert integration["IntegrationSubtype"] == "StepFunctions-StartExecution"
    assert found["seen"]["secret"] == "s3cret"
    assert "secret db-password: created from STRATO_SECRET_DB_PASSWORD" in found["said"]
    assert not [line for line in found["said"] if line.startswith("skipped ")], found["said"]


def test_deploy_refuses_what_it_cannot_do(cli: Cli) -> None:
    result = cli("deploy", DAILY_SALES)
    assert result.returncode == 2 and "pulumi up" in result.stderr and "Traceback" not in result.stderr
    result = cli("deploy", "--local", "--target", "gcp", DAILY_SALES)
    assert result.returncode == 2 and "strato emulate --target gcp" in result.stderr


def test_the_core_names_the_local_deployer_without_importing_infra() -> None:
    from strato.targets import LOCAL_DEPLOYERS

    assert LOCAL_DEPLOYERS["aws"] == "strato.infra.aws.local"
    assert os.path.isfile(ROOT / "infra" / "aws" / "local.py")
