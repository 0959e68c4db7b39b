"""``StratoPipeline``: the Google Cloud resources a compiled pipeline needs, least privilege by default.

What it creates, all children of the component and labelled with the pipeline's tags:

- a payload bucket (uniform bucket-level access, public access prevention enforced, objects under
  ``strato/payloads/`` deleted after ``payload_days``) and a source bucket holding the functions' code;
- one Cloud Functions (2nd gen) HTTP function per task and catch handler, named as the compiled
  workflow calls it (``strato.adapters.gcp.naming.function_names``), entry point ``handler`` (the shim);
- the workflow (``strato.adapters.gcp.naming.workflow_name``, as ``strato invoke`` finds it) with the
  compiled YAML and ``STRATO_FUNCTIONS_URL`` set to the functions' base URL;
- a Cloud Scheduler job for the schedule and an Eventarc trigger per ``ObjectCreated``, both starting
  executions through the Workflow Executions API, and a start path per ``Http`` trigger.

Service accounts, one per job so each holds only what that job needs:

- ``task-<task>``: one per task function (a catch handler included), granted exactly what its task
  needs (:func:`task_grants`): read and write of the objects under ``strato/payloads/`` of the payload
  bucket, read of the Cloud Storage prefixes its ``reads`` declare, write of those its ``writes``
  declare, and ``roles/secretmanager.secretAccessor`` on each of its own secrets only. Bucket
  grants are bucket bindings with an IAM Condition on the object name, ``resource.name.startsWith(
  "projects/_/buckets/<bucket>/objects/<prefix>")``, the form Cloud Storage documents for conditions
  (https://cloud.google.com/storage/docs/access-control/iam#conditions and
  https://cloud.google.com/iam/docs/conditions-attribute-reference#resource-name); listing is checked
  on the bucket, so a read grant also allows a list whose ``prefix`` is within the declared one
  (the ``storage.googleapis.com/objectListPrefix`` request attribute,
  https://cloud.google.com/iam/docs/conditions-attribute-reference#api-attributes). Conditions need
  uniform bucket-level access on the bucket, and the deployer needs ``setIamPolicy`` on buckets the
  stack does not own;
- ``workflow``: runs the workflow (and its parts, for a pipeline compiled into several workflows, with
  ``roles/workflows.invoker`` to start them); ``roles/run.invoker`` on each of this pipeline's functions' own
  Cloud Run service (2nd gen functions are invoked through their service) and nothing else but
  ``roles/logging.logWriter``;
- ``schedule`` / ``events`` / ``http-<i>``: start executions (``roles/workflows.invoker``; Eventarc's
  also ``roles/eventarc.eventReceiver``).

Workflows has no per-workflow IAM policy and does not honour IAM Conditions on resource names, so
``roles/workflows.invoker`` can only be granted on the project: it is given solely to the dedicated
starter accounts above, whose only power is starting workflows that run with their own identity.
``roles/eventarc.eventReceiver`` and ``roles/logging.logWriter`` likewise exist only at project level.
A project holds 100 service accounts by default: a pipeline uses one per task plus up to four.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from strato.adapters.base import task_specs
from strato.adapters.common.tasks import MANIFEST_ENV, manifest
from strato.adapters.gcp import Adapter
from strato.adapters.gcp.naming import FUNCTIONS_URL_ENV, function_names, workflow_name
from strato.adapters.gcp.payloads import BUCKET_ENV, PREFIX
from strato.adapters.gcp.rules import label_problems
from strato.adapters.gcp.triggers import eventarc_trigger, http_endpoint, scheduler_job
from strato.dsl.definitions import PipelineDefinition
from strato.errors import DefinitionError
from strato.ir import HttpSpec, ObjectCreatedSpec, PipelineIR, TaskSpec

from .. import Package, deployable_ir, deployment_package

ENTRY_POINT = "handler"  # main.py: ``from strato.adapters.gcp.shim import handler``
DEFAULT_TASK_TIMEOUT = 1800  # what the compiled workflow waits for a task without a timeout
MAX_FUNCTION_TIMEOUT = 3600  # 2nd gen HTTP functions
TIMEOUT_MARGIN = 5  # the workflow's own timeout fires first, so a slow task is a TaskTimeout
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
OBJECT_READ = "roles/storage.objectViewer"  # get and list objects
# Create, read, overwrite: Cloud Storage needs storage.objects.delete to replace an existing object
# (https://cloud.google.com/storage/docs/access-control/iam-permissions), so a task that rewrites its
# output, or a payload written twice under its content hash, needs more than objectCreator.
OBJECT_WRITE = "roles/storage.objectUser"
SECRET_READ = "roles/secretmanager.secretAccessor"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")


@dataclass(frozen=True)
class ObjectGrant:
    """A role on the objects under ``prefix`` of ``bucket`` (``bucket`` None: the payload bucket)."""

    bucket: str | None
    prefix: str
    role: str
    why: str  # "payloads", or the declared dataset

    def condition(self, bucket: str) -> dict[str, str] | None:
        """The IAM Condition limiting the binding to ``prefix`` (None for a whole bucket)."""
        if not self.prefix:
            return None
        objects = f"projects/_/buckets/{bucket}/objects/{self.prefix}"
        expression = f"resource.name.startsWith({json.dumps(objects)})"
        if self.role == OBJECT_READ:  # objects.list is checked on the bucket: allow lists within the prefix
            expression += (' || api.getAttribute("storage.googleapis.com/objectListPrefix", "")'
                           f".startsWith({json.dumps(self.prefix)})")
        return {"title": f"strato-{'payloads' if self.bucket is None else 'dataset'}-prefix"[:100],
                "description": f"{self.why}: objects under {self.prefix}"[:256], "expression": expression}


def gcs_prefix(uri: str) -> tuple[str, str] | str:
    """``gs://bucket/prefix`` as (bucket, prefix), or why the dataset gets no Cloud Storage grant."""
    if not uri.startswith("gs://"):
        return f"{uri!r} is not a Cloud Storage dataset (gs://bucket/prefix): no IAM granted for it"
    bucket, _, prefix = uri[5:].partition("/")
    if not _BUCKET.fullmatch(bucket):
        return f"{uri!r} does not name a valid Cloud Storage bucket: no IAM granted for it"
    return bucket, prefix


def task_grants(spec: TaskSpec) -> tuple[list[ObjectGrant], list[str]]:
    """What one task function's account gets on Cloud Storage, and the datasets it gets nothing for (why).

    Its payload objects (read and write), the prefixes its ``reads`` declare (read) and those its
    ``writes`` declare (write); a dataset declared both ways gets both. Secrets are granted apart
    (``spec.secrets``)."""
    grants = [ObjectGrant(None, PREFIX, OBJECT_WRITE, "payloads")]
    skipped: list[str] = []
    for uris, role in ((spec.reads, OBJECT_READ), (spec.writes, OBJECT_WRITE)):
        for uri in uris:
            found = gcs_prefix(uri)
            if isinstance(found, str):
                skipped.append(f"task {spec.name!r}: {found}")
            elif (grant := ObjectGrant(found[0], found[1], role, uri)) not in grants:
                grants.append(grant)
    return grants, skipped


def account_id(name: str, role: str) -> str:
    """A service account id (6-30 characters, lowercase letter first) for ``role`` in component ``name``."""
    base = re.sub(r"[^a-z0-9-]+", "-", f"{name}-{role}".lower()).strip("-")
    if not base[:1].isalpha():
        base = "s-" + base
    if len(base) > 30:
        base = f"{base[:21].rstrip('-')}-{hashlib.sha256(base.encode()).hexdigest()[:8]}"
    return base if len(base) >= 6 else f"{base}-sa"


def _label_value(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def functions_base_url(urls: dict[str, str]) -> str:
    """The one base URL with ``<base>/<function name>`` equal to every function's ``url``.

    A 2nd gen function's ``url`` is its deterministic ``https://<region>-<project>.cloudfunctions.net/<name>``
    (``service_config.uri`` is the Cloud Run ``*.run.app`` URL, which carries a hash and cannot be
    formed from a name), which is exactly the shape the compiled workflow calls.
    """
    bases = set()
    for function, url in urls.items():
        if not url.endswith("/" + function):
            raise ValueError(f"function {function!r} has URL {url!r}, not '<base>/{function}': the compiled "
                             f"workflow could not reach it through {FUNCTIONS_URL_ENV}")
        bases.add(url[: -len(function) - 1])
    if len(bases) != 1:
        raise ValueError(f"the functions do not share one base URL ({sorted(bases)}); {FUNCTIONS_URL_ENV} "
                         "can hold only one")
    return bases.pop()


class StratoPipeline(pulumi.ComponentResource):
    """Deploys one pipeline (a ``@pipeline`` object or a ``path.py:name`` reference) to Google Cloud."""

    workflow_id: pulumi.Output[str]
    workflow_name: pulumi.Output[str]
    payload_bucket: pulumi.Output[str]
    functions_url: pulumi.Output[str]
    function_names: dict[str, pulumi.Output[str]]
    http_endpoints: list[pulumi.Output[str]]
    task_accounts: dict[str, gcp.serviceaccount.Account]  # by task id
    triggers: list[pulumi.CustomResource]

    def __init__(self, name: str, pipeline: PipelineDefinition | str, source: Package = None, *, region: str,
                 project: str | None = None, python_runtime: str = "python312", default_memory: int = 512,
                 payload_days: int = 30, event_location: str | None = None, http_invokers: Sequence[str] = (),
                 labels: dict[str, str] | None = None, opts: pulumi.ResourceOptions | None = None):
        """``source`` is the functions' source (``strato package --target gcp``: task modules, Strato,
        ``main.py`` exposing the shim's ``handler``, ``requirements.txt``), built when left out; ``project``
        defaults to the provider's; ``event_location`` is where Eventarc triggers live (the watched buckets'
        location, default ``region``); ``http_invokers`` are the members (``user:...``, ``group:...``)
        allowed to start runs for ``Http`` triggers."""
        super().__init__("strato:gcp:Pipeline", name, None, opts)
        problems = label_problems(labels or {}, None, f"StratoPipeline {name!r} labels")
        if problems:
            raise DefinitionError(problems)
        ir = deployable_ir(pipeline, Adapter())
        compiled = Adapter().build(ir)
        source = deployment_package(pipeline, ir, Adapter(), source)  # Cloud Build installs its requirements
        child = pulumi.ResourceOptions(parent=self)
        base_labels = {**ir.tags, "strato-pipeline": _label_value(ir.name), **(labels or {})}
        self._name, self._region, self._project, self._labels = name, region, project, base_labels

        # -------------------------------------------------------------------------- buckets
        bucket = gcp.storage.Bucket(
            f"{name}-payloads", project=project, location=region, uniform_bucket_level_access=True,
            public_access_prevention="enforced", labels=base_labels, force_destroy=True, opts=child,
            lifecycle_rules=[{"action": {"type": "Delete"},
                              "condition": {"age": payload_days, "matches_prefixes": [PREFIX]}}])
        project_id: pulumi.Output[str] = pulumi.Output.from_input(project) if project else bucket.project
        self._project_id = project_id
        code_bucket = gcp.storage.Bucket(
            f"{name}-source", project=project, location=region, uniform_bucket_level_access=True,
            public_access_prevention="enforced", labels=base_labels, force_destroy=True, opts=child)
        # no fixed object name: a new archive replaces the object under a new generated name (create before
        # delete would otherwise delete the new upload), and its generation redeploys the functions
        code = gcp.storage.BucketObject(f"{name}-source", bucket=code_bucket.name, source=source, opts=child)

        # ---------------------------------------------------------------------------- tasks
        # One account per function, granted exactly what its task declares (task_grants, its secrets).
        specs = task_specs(ir)
        names = function_names(ir)
        functions: dict[str, gcp.cloudfunctionsv2.Function] = {}
        self.task_accounts: dict[str, gcp.serviceaccount.Account] = {}
        for task, function in names.items():
            spec = specs[task]
            account = self._account(f"task-{task}", f"Strato {ir.name}: runs task {task}")
            self.task_accounts[task] = account
            grants = self._task_grants(task, spec, account, bucket)
            timeout = min(MAX_FUNCTION_TIMEOUT, math.ceil(spec.timeout or DEFAULT_TASK_TIMEOUT) + TIMEOUT_MARGIN)
            functions[task] = gcp.cloudfunctionsv2.Function(
                f"{name}-{task}", name=function, project=project, location=region,
                opts=pulumi.ResourceOptions(parent=self, depends_on=grants),
                description=f"Strato task {task} of pipeline {ir.name}",
                labels={**base_labels, **spec.tags, **(labels or {})},  # the task's tags, then the deployer's
                build_config={"runtime": python_runtime, "entry_point": ENTRY_POINT, "source": {"storage_source": {
                    "bucket": code_bucket.name, "object": code.name, "generation": code.generation}}},
                service_config={"available_memory": f"{spec.memory or default_memory}M", "timeout_seconds": timeout,
                                "service_account_email": account.email, "all_traffic_on_latest_revision": True,
                                "environment_variables": {  # the function runs its own task only
                                    BUCKET_ENV: bucket.name, MANIFEST_ENV: json.dumps(manifest(ir, [task]),
                                                                                     sort_keys=True),
                                    # the only writable folder in a function's file system
                                    "STRATO_HOME": "/tmp/strato"}})

        # ------------------------------------------------------------------------- workflow
        flow_account = self._account("workflow", f"Strato {ir.name}: runs the workflow")
        invokers = [gcp.cloudrunv2.ServiceIamMember(  # a 2nd gen function is invoked through its Run service
            f"{name}-invoke-{task}", project=project_id, location=region, name=fn.name, role="roles/run.invoker",
            member=self._member(flow_account), opts=child) for task, fn in functions.items()]
        logs = self._project_role(f"{name}-workflow-logs", "roles/logging.logWriter", flow_account)
        base_url = pulumi.Output.all(**{task: fn.url for task, fn in functions.items()}).apply(
            lambda urls: functions_base_url({names[task]: url for task, url in urls.items()}))
        # A pipeline over what one workflow's source holds is compiled into parts, workflows of their
        # own that the root starts through the Workflow Executions connector: the same account runs
        # them, and it may start executions (workflows.invoker exists only on the project).
        parts = [gcp.workflows.Workflow(
            f"{name}-{part}", name=part, project=project, region=region,
            description=f"Strato pipeline {ir.name} (IR {ir.hash[:12]}): part {part}", source_contents=source,
            service_account=flow_account.email, user_env_vars={FUNCTIONS_URL_ENV: base_url},
            call_log_level="LOG_ERRORS_ONLY", labels=base_labels, deletion_protection=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*invokers, logs]))
            for part, source in compiled.part_sources.items()]
        if parts:
            parts.append(self._project_role(f"{name}-workflow-parts", "roles/workflows.invoker", flow_account))
        self.part_names = list(compiled.part_sources)
        workflow = gcp.workflows.Workflow(
            f"{name}-workflow", name=workflow_name(ir.name), project=project, region=region,
            description=f"Strato pipeline {ir.name} (IR {ir.hash[:12]})", source_contents=compiled.source,
            service_account=flow_account.email, user_env_vars={FUNCTIONS_URL_ENV: base_url},
            call_log_level="LOG_ERRORS_ONLY", labels=base_labels, deletion_protection=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*invokers, logs, *parts]))

        # ------------------------------------------------------------------------- triggers
        self.http_endpoints = []
        self.triggers = self._triggers(ir, workflow, event_location or region, list(http_invokers))
        self.workflow_id = workflow.id
        self.workflow_name = workflow.name
        self.payload_bucket = bucket.name
        self.functions_url = base_url
        self.function_names = {task: fn.name for task, fn in functions.items()}
        self.register_outputs({"workflow_id": workflow.id, "workflow_name": workflow.name,
                               "payload_bucket": bucket.name, "source_bucket": code_bucket.name,
                               "functions_url": base_url, "functions": self.function_names,
                               "http_endpoints": self.http_endpoints})

    def _task_grants(self, task: str, spec: TaskSpec, account: gcp.serviceaccount.Account,
                     payloads: gcp.storage.Bucket) -> list[pulumi.CustomResource]:
        """The bindings of one task function's account: its objects (task_grants) and its own secrets."""
        name, member = f"{self._name}-{task}", self._member(account)
        child = pulumi.ResourceOptions(parent=self)
        grants, skipped = task_grants(spec)
        for reason in skipped:
            pulumi.log.info(reason, resource=self)
        created: list[pulumi.CustomResource] = []
        for i, grant in enumerate(grants):
            label = "payloads" if grant.bucket is None else f"{'reads' if grant.role == OBJECT_READ else 'writes'}-{i}"
            bucket: pulumi.Output[str] = payloads.name if grant.bucket is None else pulumi.Output.from_input(
                grant.bucket)
            created.append(gcp.storage.BucketIAMMember(
                f"{name}-{label}", bucket=bucket, role=grant.role, member=member, opts=child,
                condition=bucket.apply(grant.condition) if grant.prefix else None))
        created += [gcp.secretmanager.SecretIamMember(
            f"{name}-secret-{secret}", project=self._project, secret_id=secret, role=SECRET_READ, member=member,
            opts=child) for secret in spec.secrets]
        return created

    def _account(self, role: str, purpose: str) -> gcp.serviceaccount.Account:
        return gcp.serviceaccount.Account(f"{self._name}-{role}", account_id=account_id(self._name, role),
                                          project=self._project, display_name=purpose[:100],
                                          opts=pulumi.ResourceOptions(parent=self))

    @staticmethod
    def _member(account: gcp.serviceaccount.Account) -> pulumi.Output[str]:
        return pulumi.Output.concat("serviceAccount:", account.email)

    def _project_role(self, name: str, role: str, account: gcp.serviceaccount.Account) -> gcp.projects.IAMMember:
        """A project-level role, for roles Google Cloud grants nowhere narrower (see the module docstring)."""
        return gcp.projects.IAMMember(name, project=self._project_id, role=role, member=self._member(account),
                                      opts=pulumi.ResourceOptions(parent=self))

    def _executions_url(self, template: str) -> pulumi.Output[str]:
        return self._project_id.apply(lambda p: template.replace("{project}", p).replace("{region}", self._region))

    def _triggers(self, ir: PipelineIR, workflow: gcp.workflows.Workflow, event_location: str,
                  http_invokers: list[str]) -> list[pulumi.CustomResource]:
        """What starts the pipeline: the resources created, in order."""
        name = self._name
        child = pulumi.ResourceOptions(parent=self)
        created: list[pulumi.CustomResource] = []
        job = scheduler_job(ir)
        if job is not None:
            account = self._account("schedule", f"Strato {ir.name}: starts scheduled runs")
            grant = self._project_role(f"{name}-schedule-invoker", "roles/workflows.invoker", account)
            target = job["http_target"]
            created.append(gcp.cloudscheduler.Job(
                f"{name}-schedule", name=job["name"], project=self._project, region=self._region,
                schedule=job["schedule"], time_zone=job["time_zone"], attempt_deadline="60s",
                description=f"Starts Strato pipeline {ir.name}",
                http_target={"uri": self._executions_url(target["uri"]), "http_method": target["http_method"],
                             "body": base64.b64encode(target["body"].encode()).decode(),
                             "headers": {"Content-Type": "application/json"},
                             "oauth_token": {"service_account_email": account.email, "scope": CLOUD_PLATFORM}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[grant, workflow])))
        events = [t for t in ir.triggers if isinstance(t, ObjectCreatedSpec)]
        if events:
            account = self._account("events", f"Strato {ir.name}: starts runs on new objects")
            grants = [self._project_role(f"{name}-events-invoker", "roles/workflows.invoker", account),
                      self._project_role(f"{name}-events-receiver", "roles/eventarc.eventReceiver", account)]
            for i, trigger in enumerate(events):
                spec = eventarc_trigger(ir, trigger)
                created.append(gcp.eventarc.Trigger(
                    f"{name}-object-created-{i}", project=self._project, location=event_location,
                    matching_criterias=spec["event_filters"], destination={"workflow": workflow.id},
                    service_account=account.email, labels=self._labels,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=grants)))
        for i, http in enumerate(t for t in ir.triggers if isinstance(t, HttpSpec)):
            endpoint = http_endpoint(ir, http)
            account = self._account(f"http-{i}", f"Strato {ir.name}: starts runs over HTTPS")
            created.append(self._project_role(f"{name}-http-{i}-invoker", "roles/workflows.invoker", account))
            for j, member in enumerate(http_invokers):  # callers impersonate the starter account, nothing else
                created.append(gcp.serviceaccount.IAMMember(
                    f"{name}-http-{i}-caller-{j}", service_account_id=account.name,
                    role="roles/iam.serviceAccountTokenCreator", member=member, opts=child))
            self.http_endpoints.append(self._executions_url(endpoint["target"]))
        return created
