"""The Google Cloud Pulumi component under Pulumi's mocks: the exact resource inputs `pulumi up` would send."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

pulumi = pytest.importorskip("pulumi")
pytest.importorskip("pulumi_gcp")

from strato import Http, pipeline, task  # noqa: E402
from strato.adapters.common.tasks import manifest  # noqa: E402
from strato.adapters.gcp import Adapter  # noqa: E402
from strato.adapters.gcp.naming import function_names  # noqa: E402
from strato.loader import load  # noqa: E402

from ..conftest import ROOT  # noqa: E402

PROJECT, REGION = "acme-data", "europe-west1"
BASE_URL = f"https://{REGION}-{PROJECT}.cloudfunctions.net"
SOURCE_OBJECT = "app-source-5f2c9a1"
DAILY_SALES = str(ROOT / "examples" / "daily_sales.py") + ":daily_sales"
INGEST_FILE = str(ROOT / "examples" / "file_ingestion.py") + ":ingest_file"
IAM_TYPES = ("gcp:storage/bucketIAMMember:BucketIAMMember", "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
             "gcp:projects/iAMMember:IAMMember", "gcp:serviceaccount/iAMMember:IAMMember")


class Recorder(pulumi.runtime.Mocks):
    """Records every resource; gives names, emails and URLs the way Google Cloud forms them."""

    def __init__(self) -> None:
        self.resources: list[Any] = []

    def new_resource(self, args: Any) -> tuple[str, dict]:
        outputs = dict(args.inputs)
        outputs.setdefault("project", PROJECT)
        kind, resource_id = args.typ, f"{args.name}-id"
        if kind == "gcp:storage/bucket:Bucket":
            outputs["name"] = resource_id = f"{args.name}-bucket"
        elif kind == "gcp:storage/bucketObject:BucketObject":
            outputs.update(name=SOURCE_OBJECT, generation=1718000000000000)  # Pulumi names it: no name input
        elif kind == "gcp:serviceaccount/account:Account":
            outputs["email"] = f"{args.inputs['accountId']}@{PROJECT}.iam.gserviceaccount.com"
            outputs["name"] = resource_id = f"projects/{PROJECT}/serviceAccounts/{outputs['email']}"
        elif kind == "gcp:cloudfunctionsv2/function:Function":
            outputs["url"] = f"{BASE_URL}/{args.inputs['name']}"  # 2nd gen: the deterministic cloudfunctions.net URL
        elif kind == "gcp:workflows/workflow:Workflow":
            resource_id = f"projects/{PROJECT}/locations/{args.inputs['region']}/workflows/{args.inputs['name']}"
        self.resources.append(args)
        return resource_id, outputs

    def call(self, args: Any) -> dict:
        return {}

    def of(self, kind: str) -> list[Any]:
        return [r for r in self.resources if r.typ == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [r.inputs for r in self.of(kind) if r.name == name]
        return found


@pytest.fixture
def recorder() -> Recorder:
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())  # Pulumi's mocks need one; earlier tests may leave none
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, preview=False)
    return mocks


def deploy(ref: Any, **kwargs: Any) -> Any:
    from strato.infra.gcp import StratoPipeline

    return StratoPipeline("app", ref, source=pulumi.AssetArchive({}), region=REGION, **kwargs)


def settled(deployed: Any) -> Any:
    """An output that resolves once the component, its workflow and its triggers are registered."""
    return pulumi.Output.all(deployed.workflow_id, *[r.urn for r in deployed.triggers])


def email(role: str) -> str:
    from strato.infra.gcp import account_id

    return f"{account_id('app', role)}@{PROJECT}.iam.gserviceaccount.com"


def check_least_privilege(recorder: Recorder, project_roles: set[tuple[str, str]]) -> None:
    """Every binding names its resource; project-level ones are exactly ``project_roles`` (role, account)."""
    bindings = [r for kind in IAM_TYPES for r in recorder.of(kind)]
    assert all(not b.inputs["member"].startswith(("allUsers", "allAuthenticatedUsers")) for b in bindings)
    at_project = {(b.inputs["role"], b.inputs["member"]) for b in recorder.of("gcp:projects/iAMMember:IAMMember")}
    assert at_project == {(role, f"serviceAccount:{email(account)}") for role, account in project_roles}
    assert all(b.inputs["project"] == PROJECT for b in recorder.of("gcp:projects/iAMMember:IAMMember"))

    payloads = recorder.of("gcp:storage/bucketIAMMember:BucketIAMMember")  # see test_least_privilege.py
    functions = recorder.of("gcp:cloudfunctionsv2/function:Function")
    assert sorted(b.inputs["member"] for b in payloads) == sorted(
        f"serviceAccount:{f.inputs['serviceConfig']['serviceAccountEmail']}" for f in functions)
    for binding in payloads:
        assert binding.inputs["bucket"] == "app-payloads-bucket"
        assert binding.inputs["condition"]["expression"] == (
            'resource.name.startsWith("projects/_/buckets/app-payloads-bucket/objects/strato/payloads/")')

    functions = {r.inputs["name"] for r in recorder.of("gcp:cloudfunctionsv2/function:Function")}
    invokers = recorder.of("gcp:cloudrunv2/serviceIamMember:ServiceIamMember")
    assert sorted(b.inputs["name"] for b in invokers) == sorted(functions)  # each function's own service
    assert {(b.inputs["role"], b.inputs["member"], b.inputs["location"]) for b in invokers} == {
        ("roles/run.invoker", f"serviceAccount:{email('workflow')}", REGION)}


def check_functions_and_workflow(recorder: Recorder, ref: str) -> dict[str, dict[str, Any]]:
    """One function per task with the shim's entry point, and the workflow that reaches them."""
    ir = load(ref).definition.ir
    functions = {r.inputs["name"]: r.inputs for r in recorder.of("gcp:cloudfunctionsv2/function:Function")}
    assert set(functions) == set(function_names(ir).values())
    assert "name" not in recorder.one("gcp:storage/bucketObject:BucketObject", "app-source")  # see the component
    for task_name, function_name in function_names(ir).items():
        function = functions[function_name]
        assert function["location"] == REGION
        assert function["buildConfig"]["entryPoint"] == "handler"
        assert function["buildConfig"]["runtime"] == "python312"
        assert function["buildConfig"]["source"]["storageSource"] == {
            "bucket": "app-source-bucket", "object": SOURCE_OBJECT, "generation": 1718000000000000}
        service = function["serviceConfig"]
        assert service["environmentVariables"] == {"STRATO_PAYLOAD_BUCKET": "app-payloads-bucket",
                                                   "STRATO_TASKS": json.dumps(manifest(ir, [task_name])),
                                                   "STRATO_HOME": "/tmp/strato"}
        assert service["serviceAccountEmail"] == email(f"task-{task_name}")  # its own account

    (workflow,) = recorder.of("gcp:workflows/workflow:Workflow")
    assert workflow.inputs["name"] == ir.name and workflow.inputs["region"] == REGION
    assert workflow.inputs["sourceContents"] == Adapter().build(ir).source
    assert workflow.inputs["serviceAccount"] == email("workflow")
    assert workflow.inputs["userEnvVars"] == {"STRATO_FUNCTIONS_URL": BASE_URL}
    called = set(re.findall(r'sys\.get_env\("STRATO_FUNCTIONS_URL"\) \+ "/([a-z0-9-]+)"', workflow.inputs[
        "sourceContents"]))
    assert called and called <= set(functions)  # every call in the YAML resolves to a deployed function's URL

    for bucket in recorder.of("gcp:storage/bucket:Bucket"):
        assert bucket.inputs["uniformBucketLevelAccess"] is True
        assert bucket.inputs["publicAccessPrevention"] == "enforced"
    (rule,) = recorder.one("gcp:storage/bucket:Bucket", "app-payloads")["lifecycleRules"]
    assert rule == {"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefixes": ["strato/payloads/"]}}
    return functions


@pulumi.runtime.test
def test_the_daily_sales_example_deploys_least_privilege(recorder: Recorder) -> Any:
    deployed = deploy(DAILY_SALES)

    def check(_: Any) -> None:
        functions = check_functions_and_workflow(recorder, DAILY_SALES)
        clean = functions[function_names(load(DAILY_SALES).definition.ir)["clean"]]
        assert clean["serviceConfig"]["timeoutSeconds"] == 65  # timeout=60, plus a margin so the workflow's fires
        assert clean["serviceConfig"]["availableMemory"] == "512M"
        assert clean["labels"] == {"owner": "data-eng", "data-classification": "internal", "layer": "staging",
                                   "strato-pipeline": "daily_sales"}
        extract = functions[function_names(load(DAILY_SALES).definition.ir)["extract"]]
        assert extract["serviceConfig"]["timeoutSeconds"] == 1805  # the workflow waits 1800 s without a timeout

        check_least_privilege(recorder, {("roles/logging.logWriter", "workflow"),
                                         ("roles/workflows.invoker", "schedule")})
        (job,) = recorder.of("gcp:cloudscheduler/job:Job")
        assert job.inputs["schedule"] == "0 2 * * *" and job.inputs["timeZone"] == "UTC"
        target = job.inputs["httpTarget"]
        assert target["uri"] == (f"https://workflowexecutions.googleapis.com/v1/projects/{PROJECT}/locations/"
                                 f"{REGION}/workflows/daily_sales/executions")
        assert json.loads(base64.b64decode(target["body"])) == {"argument": "{}"}
        assert target["oauthToken"]["serviceAccountEmail"] == email("schedule")
        assert recorder.of("gcp:eventarc/trigger:Trigger") == []

    return settled(deployed).apply(check)


@pulumi.runtime.test
def test_object_created_starts_the_workflow_through_eventarc(recorder: Recorder) -> Any:
    deployed = deploy(INGEST_FILE)

    def check(_: Any) -> None:
        functions = check_functions_and_workflow(recorder, INGEST_FILE)
        assert function_names(load(INGEST_FILE).definition.ir)["quarantine"] in functions  # the catch handler
        check_least_privilege(recorder, {("roles/logging.logWriter", "workflow"),
                                         ("roles/workflows.invoker", "events"),
                                         ("roles/eventarc.eventReceiver", "events")})
        (trigger,) = recorder.of("gcp:eventarc/trigger:Trigger")
        assert trigger.inputs["matchingCriterias"] == [
            {"attribute": "type", "value": "google.cloud.storage.object.v1.finalized"},
            {"attribute": "bucket", "value": "landing"}]
        assert trigger.inputs["destination"] == {
            "workflow": f"projects/{PROJECT}/locations/{REGION}/workflows/ingest_file"}
        assert trigger.inputs["serviceAccount"] == email("events") and trigger.inputs["location"] == REGION
        assert recorder.of("gcp:cloudscheduler/job:Job") == []

    return settled(deployed).apply(check)


@task(memory=1024, timeout=120, tags={"team": "ops"})
def ping(name: str) -> dict:
    return {"hello": name}


@pipeline(triggers=[Http(path="/ping", auth="iam")], tags={"owner": "ops"})
def pinged(name: str = "world"):
    return ping(name)


@pulumi.runtime.test
def test_http_triggers_start_through_an_impersonated_account(recorder: Recorder) -> Any:
    deployed = deploy(pinged, http_invokers=["group:ops@example.com"], labels={"env": "test"})

    def check(values: list[Any]) -> None:
        assert values[0] == (f"https://workflowexecutions.googleapis.com/v1/projects/{PROJECT}/locations/{REGION}/"
                             "workflows/pinged/executions")  # the start path: the Executions API, with IAM
        (function,) = recorder.of("gcp:cloudfunctionsv2/function:Function")
        assert function.inputs["serviceConfig"]["availableMemory"] == "1024M"
        assert function.inputs["serviceConfig"]["timeoutSeconds"] == 125
        assert function.inputs["labels"] == {"owner": "ops", "team": "ops", "env": "test", "strato-pipeline": "pinged"}
        check_least_privilege(recorder, {("roles/logging.logWriter", "workflow"),
                                         ("roles/workflows.invoker", "http-0")})
        (caller,) = recorder.of("gcp:serviceaccount/iAMMember:IAMMember")
        assert caller.inputs == {"serviceAccountId": f"projects/{PROJECT}/serviceAccounts/{email('http-0')}",
                                 "role": "roles/iam.serviceAccountTokenCreator", "member": "group:ops@example.com"}

    return pulumi.Output.all(*deployed.http_endpoints, settled(deployed)).apply(check)


def test_the_functions_base_url_must_reach_every_function() -> None:
    from strato.infra.gcp import functions_base_url

    assert functions_base_url({"a": f"{BASE_URL}/a", "b": f"{BASE_URL}/b"}) == BASE_URL
    with pytest.raises(ValueError, match="not '<base>/b'"):
        functions_base_url({"a": f"{BASE_URL}/a", "b": "https://b-x2y3-ew.a.run.app"})
    with pytest.raises(ValueError, match="one base URL"):
        functions_base_url({"a": f"{BASE_URL}/a", "b": "https://us-central1-other.cloudfunctions.net/b"})


def test_service_account_ids_are_valid() -> None:
    from strato.infra.gcp import account_id

    for name, role in [("app", "tasks"), ("x", "flow"), ("1-Daily_Sales", "workflow"), ("a" * 40, "schedule")]:
        value = account_id(name, role)
        assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", value), value
    assert account_id("a" * 40, "tasks") != account_id("a" * 40, "events")


def _big() -> Any:
    from ..pipelines.generated import dense_dag

    return dense_dag(300)


@pulumi.runtime.test
def test_a_pipeline_compiled_into_parts_deploys_each_part_run_by_the_workflow_account(recorder: Recorder) -> Any:
    big = _big()
    deployed = deploy(big)
    compiled = Adapter().build(big.ir)
    assert len(compiled.parts) >= 3

    def check(_: Any) -> None:
        workflows = {r.inputs["name"]: r.inputs for r in recorder.of("gcp:workflows/workflow:Workflow")}
        assert set(workflows) == {"dense_300", *compiled.part_sources}
        for name, source in compiled.part_sources.items():
            assert workflows[name]["sourceContents"] == source
            assert workflows[name]["serviceAccount"] == email("workflow")
            assert workflows[name]["userEnvVars"] == {"STRATO_FUNCTIONS_URL": BASE_URL}
        # starting a part is an execution: the workflow's own account may start them, on the project only
        check_least_privilege(recorder, {("roles/logging.logWriter", "workflow"),
                                         ("roles/workflows.invoker", "workflow")})

    return settled(deployed).apply(check)
