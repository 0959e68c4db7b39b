"""Azure Durable Functions app for the Strato pipeline 'ingest_file' (IR hash 0dd929519c80).

Generated from the pipeline's IR by `strato compile --target azure`: edit the pipeline and compile again rather
than editing this file. Each orchestrator starts a node as soon as the nodes it depends on have finished;
activities run the task code, imported by module and qualname when first called (module: file_ingestion), so
deploy that code with this app.
"""

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from strato.adapters.azure.orchestration import Results, Run, Step, TaskError, activity, finish, inline, pick, run_dag
from strato.adapters.azure.shim import TaskRef, resolve_activity, run_task
from strato.adapters.azure.triggers import bad_request, object_created_input, start_input
from strato.ir import compare, error_matches

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


# ------------------------------------------------------------------------------------------------------------- tasks
NORMALISE_ORDERS_TASK = TaskRef("normalise_orders", "file_ingestion", "normalise_orders")
QUARANTINE_TASK = TaskRef("quarantine", "file_ingestion", "quarantine")
QUARANTINE_FILE_TASK = TaskRef("quarantine_file", "file_ingestion", "quarantine_file")
READ_CSV_TASK = TaskRef("read_csv", "file_ingestion", "read_csv")
SUMMARIZE_TASK = TaskRef("summarize", "file_ingestion", "summarize")
VALIDATE_ORDERS_TASK = TaskRef("validate_orders", "file_ingestion", "validate_orders")
WRITE_JSONL_TASK = TaskRef("write_jsonl", "file_ingestion", "write_jsonl")


# ------------------------------------------------------------------------------------- activities: run one task each


@app.function_name(name="normalise_orders")
@app.activity_trigger(input_name="args")
def normalise_orders_activity(args: dict[str, Any]) -> Any:
    """Trim and case-fold fields, convert times to UTC, compute line totals and totals per currency.
    (file_ingestion.normalise_orders)
    """
    return run_task(NORMALISE_ORDERS_TASK, args)


@app.function_name(name="quarantine")
@app.activity_trigger(input_name="args")
def quarantine_activity(args: dict[str, Any]) -> Any:
    """Catch handler: a bad file is quarantined, not a failed run. Its result stands in for the validation's.
    (file_ingestion.quarantine)
    """
    return run_task(QUARANTINE_TASK, args)


@app.function_name(name="quarantine_file")
@app.activity_trigger(input_name="args")
def quarantine_file_activity(args: dict[str, Any]) -> Any:
    """Copy the rejected file aside with the reason next to it, so someone can fix and re-drop it.
    (file_ingestion.quarantine_file)
    """
    return run_task(QUARANTINE_FILE_TASK, args)


@app.function_name(name="read_csv")
@app.activity_trigger(input_name="args")
def read_csv_activity(args: dict[str, Any]) -> Any:
    """Parse the object as CSV. Only parsing here: rules live in ``validate_orders`` so they can be caught.
    (file_ingestion.read_csv)
    """
    return run_task(READ_CSV_TASK, args)


@app.function_name(name="summarize")
@app.activity_trigger(input_name="args")
def summarize_activity(args: dict[str, Any]) -> Any:
    """One summary for either branch: the results of the branch that did not run are ``None``.
    (file_ingestion.summarize)
    """
    return run_task(SUMMARIZE_TASK, args)


@app.function_name(name="validate_orders")
@app.activity_trigger(input_name="args")
def validate_orders_activity(args: dict[str, Any]) -> Any:
    """Check the header and every row against the orders schema; raise ValueError naming each bad row.
    (file_ingestion.validate_orders)
    """
    return run_task(VALIDATE_ORDERS_TASK, args)


@app.function_name(name="write_jsonl")
@app.activity_trigger(input_name="args")
def write_jsonl_activity(args: dict[str, Any]) -> Any:
    """Load the records as JSON lines; the whole file is replaced, so re-ingesting a file is idempotent.
    (file_ingestion.write_jsonl)
    """
    return run_task(WRITE_JSONL_TASK, args)


@app.function_name(name="strato_resolve")
@app.activity_trigger(input_name="payload")
def strato_resolve_activity(payload: dict[str, Any]) -> Any:
    """Read back results offloaded to Blob Storage where an orchestrator needs the value itself."""
    return resolve_activity(payload)


# ------------------------------------------------------ calling tasks from an orchestrator: timeouts, retries, catch


def call_normalise_orders(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'normalise_orders': no retry, timeout or catch."""
    return activity(context, "normalise_orders", args, run.call_context(key, "ingest_file"))


def call_quarantine(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'quarantine': no retry, timeout or catch."""
    return activity(context, "quarantine", args, run.call_context(key, "ingest_file"))


def call_quarantine_file(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'quarantine_file': no retry, timeout or catch."""
    return activity(context, "quarantine_file", args, run.call_context(key, "ingest_file"))


def call_read_csv(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'read_csv': no retry, timeout or catch."""
    return activity(context, "read_csv", args, run.call_context(key, "ingest_file"))


def call_summarize(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'summarize': no retry, timeout or catch."""
    return activity(context, "summarize", args, run.call_context(key, "ingest_file"))


def call_validate_orders(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'validate_orders': catch ValueError with quarantine."""
    try:
        return (yield from activity(context, "validate_orders", args, run.call_context(key, "ingest_file")))
    except TaskError as error:
        if not error_matches(error.name, ("ValueError",)):
            raise
        return (yield from call_quarantine(context, run, f"{key}#catch", {"error": error.error}))


def call_write_jsonl(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'write_jsonl': no retry, timeout or catch."""
    return activity(context, "write_jsonl", args, run.call_context(key, "ingest_file"))


# ---------------------------------------------------------------------------------------------- pipeline ingest_file
INGEST_FILE_REQUIRED: tuple[str, ...] = ("bucket", "key")
INGEST_FILE_DEFAULTS: dict[str, Any] = {"storage_root": "", "out_dir": ""}


@app.function_name(name="ingest_file")
@app.orchestration_trigger(context_name="context")
def ingest_file_orchestrator(context: df.DurableOrchestrationContext) -> Step:
    """Load one landed orders file, or quarantine it when it breaks the schema.

    The root pipeline. Each node starts when the nodes it depends on are done:

      read_csv: after nothing
      validate_orders: after read_csv
      normalise_orders: after validate_orders
      write_jsonl: after normalise_orders, validate_orders
      quarantine_file: after validate_orders
      summarize: after normalise_orders, quarantine_file, read_csv, write_jsonl
    """
    run = Run.start(context, INGEST_FILE_DEFAULTS)
    params = run.params

    def when_1(results: Results) -> Step:
        """when validate_orders["status"] == "valid"
        """
        status = yield from inline(context, pick(results["validate_orders"], ["status"]))
        return compare(status, "==", "valid")

    def read_csv(results: Results) -> Step:
        return (yield from call_read_csv(
            context,
            run,
            "read_csv",
            {"bucket": params["bucket"], "key": params["key"], "storage_root": params["storage_root"]},
        ))

    def validate_orders(results: Results) -> Step:
        return (yield from call_validate_orders(context, run, "validate_orders", {"table": results["read_csv"]}))

    def normalise_orders(results: Results) -> Step:
        if not (yield from when_1(results)):
            return None  # the branch did not run: the result is null
        return (yield from call_normalise_orders(
            context,
            run,
            "normalise_orders",
            {"rows": pick(results["validate_orders"], ["rows"])},
        ))

    def write_jsonl(results: Results) -> Step:
        if not (yield from when_1(results)):
            return None  # the branch did not run: the result is null
        return (yield from call_write_jsonl(
            context,
            run,
            "write_jsonl",
            {
                "records": pick(results["normalise_orders"], ["records"]),
                "bucket": params["bucket"],
                "key": params["key"],
                "out_dir": params["out_dir"],
            },
        ))

    def quarantine_file(results: Results) -> Step:
        if (yield from when_1(results)):
            return None  # the branch did not run: the result is null
        return (yield from call_quarantine_file(
            context,
            run,
            "quarantine_file",
            {
                "bucket": params["bucket"],
                "key": params["key"],
                "error": pick(results["validate_orders"], ["error"]),
                "reason": pick(results["validate_orders"], ["reason"]),
                "storage_root": params["storage_root"],
                "out_dir": params["out_dir"],
            },
        ))

    def summarize(results: Results) -> Step:
        return (yield from call_summarize(
            context,
            run,
            "summarize",
            {
                "source": pick(results["read_csv"], ["source"]),
                "batch": results["normalise_orders"],
                "written": results["write_jsonl"],
                "held": results["quarantine_file"],
            },
        ))

    results = yield from run_dag(context, {
        "read_csv": (read_csv, ()),
        "validate_orders": (validate_orders, ("read_csv",)),
        "normalise_orders": (normalise_orders, ("validate_orders",)),
        "write_jsonl": (write_jsonl, ("normalise_orders", "validate_orders")),
        "quarantine_file": (quarantine_file, ("validate_orders",)),
        "summarize": (summarize, ("normalise_orders", "quarantine_file", "read_csv", "write_jsonl")),
    })
    return (yield from finish(context, run, results["summarize"]))


# ------------------------------------------------------------------------ starting runs: HTTP, schedule, blob events


@app.function_name(name="ingest_file_start")
@app.route(route="pipelines/ingest_file", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def ingest_file_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST the parameters of 'ingest_file' as a JSON object to start a run: 202 with the status URLs, or 400 for bad
    input. Callers authenticate with a function key (or the app's identity provider).
    """
    params, problem = start_input(req.get_body(), INGEST_FILE_REQUIRED, INGEST_FILE_DEFAULTS)
    if problem is not None:
        return bad_request(problem)
    instance_id = await client.start_new("ingest_file", client_input=params)
    return client.create_check_status_response(req, instance_id)


@app.function_name(name="ingest_file_object_created")
@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def ingest_file_object_created(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    """A Blob Storage BlobCreated event (Event Grid) for container 'landing' under 'incoming/' ending in '.csv'
    starts a run.
    """
    params = object_created_input(
        event.event_type,
        event.subject,
        event.get_json(),
        bucket="landing",
        prefix="incoming/",
        suffix=".csv",
        fields=("bucket", "key"),
        extra={},
    )
    if params is not None:
        await client.start_new("ingest_file", client_input=params)
