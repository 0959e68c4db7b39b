"""Azure Durable Functions app for the Strato pipeline 'daily_sales' (IR hash 4ec9d2cb525d).

Generated from the pipeline's IR by `strato compile --target azure`: edit the pipeline and compile again rather
than editing this file. Each orchestrator starts a node as soon as the nodes it depends on have finished;
activities run the task code, imported by module and qualname when first called (module: daily_sales), so deploy
that code with this app.
"""

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from strato.adapters.azure.orchestration import (
    Caller,
    Results,
    Run,
    Step,
    TaskError,
    activity,
    activity_with_timeout,
    fan_out_items,
    finish,
    inline,
    map_chunk,
    map_items,
    pick,
    retry_timer,
    run_dag,
)
from strato.adapters.azure.shim import TaskRef, resolve_activity, run_task
from strato.adapters.azure.triggers import bad_request, start_input
from strato.ir import RetrySpec, compare, error_matches

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


# ------------------------------------------------------------------------------------------------------------- tasks
ALERT_TASK = TaskRef("alert", "daily_sales", "alert")
CLEAN_TASK = TaskRef("clean", "daily_sales", "clean")
EXTRACT_TASK = TaskRef("extract", "daily_sales", "extract")
LOAD_TASK = TaskRef("load", "daily_sales", "load")
LOAD_RETRY = RetrySpec(max_retries=3, delay=0.5, backoff=2.0, max_delay=None, jitter=False, on=("OperationalError",))
SUMMARIZE_TASK = TaskRef("summarize", "daily_sales", "summarize")


# ------------------------------------------------------------------------------------- activities: run one task each


@app.function_name(name="alert")
@app.activity_trigger(input_name="args")
def alert_activity(args: dict[str, Any]) -> Any:
    """No files arrived: say so (a real team would page or post to chat here). (daily_sales.alert)"""
    return run_task(ALERT_TASK, args)


@app.function_name(name="clean")
@app.activity_trigger(input_name="args")
def clean_activity(args: dict[str, Any]) -> Any:
    """Parse one file, keep valid and first-seen orders (at most ``limit``), count what was dropped.
    (daily_sales.clean)
    """
    return run_task(CLEAN_TASK, args)


@app.function_name(name="extract")
@app.activity_trigger(input_name="args")
def extract_activity(args: dict[str, Any]) -> Any:
    """List the CSV files dropped for ``day`` (yesterday, UTC, when empty: the scheduled case). (daily_sales.extract)"""
    return run_task(EXTRACT_TASK, args)


@app.function_name(name="load")
@app.activity_trigger(input_name="args")
def load_activity(args: dict[str, Any]) -> Any:
    """Replace the day's rows in the warehouse table (idempotent: a retried or re-run load is safe).
    (daily_sales.load)
    """
    return run_task(LOAD_TASK, args)


@app.function_name(name="summarize")
@app.activity_trigger(input_name="args")
def summarize_activity(args: dict[str, Any]) -> Any:
    """Revenue per region and the best-selling product by units. (daily_sales.summarize)"""
    return run_task(SUMMARIZE_TASK, args)


@app.function_name(name="strato_resolve")
@app.activity_trigger(input_name="payload")
def strato_resolve_activity(payload: dict[str, Any]) -> Any:
    """Read back results offloaded to Blob Storage where an orchestrator needs the value itself."""
    return resolve_activity(payload)


# ------------------------------------------------------ calling tasks from an orchestrator: timeouts, retries, catch


def call_alert(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'alert': no retry, timeout or catch."""
    return activity(context, "alert", args, run.call_context(key, "daily_sales"))


def call_clean(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'clean': a timeout of 60s."""
    return activity_with_timeout(
        context,
        "clean",
        args,
        task="clean",
        seconds=60.0,
        run_context=run.call_context(key, "daily_sales"),
    )


def call_extract(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'extract': no retry, timeout or catch."""
    return activity(context, "extract", args, run.call_context(key, "daily_sales"))


def call_load(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'load': up to 3 retries on OperationalError."""
    attempt = 1
    while True:
        try:
            return (yield from activity(context, "load", args, run.call_context(key, "daily_sales", attempt)))
        except TaskError as error:
            if attempt > LOAD_RETRY.max_retries or not error_matches(error.name, LOAD_RETRY.on):
                raise
            yield retry_timer(context, run, key, attempt, LOAD_RETRY)
            attempt += 1


def call_summarize(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'summarize': no retry, timeout or catch."""
    return activity(context, "summarize", args, run.call_context(key, "daily_sales"))


# ---------------------------------------------------------------------------------------------- pipeline daily_sales
DAILY_SALES_REQUIRED: tuple[str, ...] = ()
DAILY_SALES_DEFAULTS: dict[str, Any] = {"day": "", "limit": 100, "warehouse": ""}


@app.function_name(name="daily_sales")
@app.orchestration_trigger(context_name="context")
def daily_sales_orchestrator(context: df.DurableOrchestrationContext) -> Step:
    """Load one day of sales into the warehouse and summarise it.

    The root pipeline. Each node starts when the nodes it depends on are done:

      extract: after nothing
      clean: after extract
      load: after clean, extract
      summarize: after clean, extract
      alert: after extract
    """
    run = Run.start(context, DAILY_SALES_DEFAULTS)
    params = run.params

    def when_1(results: Results) -> Step:
        """when extract["count"] > 0"""
        count = yield from inline(context, pick(results["extract"], ["count"]))
        return compare(count, ">", 0)

    def extract(results: Results) -> Step:
        return (yield from call_extract(context, run, "extract", {"day": params["day"]}))

    def clean(results: Results) -> Step:
        items = yield from fan_out_items(context, pick(results["extract"], ["files"]))
        return (yield from map_items(
            context,
            run,
            "clean",
            items,
            call_clean,
            "path",
            {"limit": params["limit"]},
            max_concurrency=8,
        ))

    def load(results: Results) -> Step:
        if not (yield from when_1(results)):
            return None  # the branch did not run: the result is null
        return (yield from call_load(
            context,
            run,
            "load",
            {"batches": results["clean"], "day": pick(results["extract"], ["day"]), "warehouse": params["warehouse"]},
        ))

    def summarize(results: Results) -> Step:
        if not (yield from when_1(results)):
            return None  # the branch did not run: the result is null
        return (yield from call_summarize(context, run, "summarize", {"batches": results["clean"]}))

    def alert(results: Results) -> Step:
        if (yield from when_1(results)):
            return None  # the branch did not run: the result is null
        return (yield from call_alert(context, run, "alert", {"day": pick(results["extract"], ["day"])}))

    results = yield from run_dag(context, {
        "extract": (extract, ()),
        "clean": (clean, ("extract",)),
        "load": (load, ("clean", "extract")),
        "summarize": (summarize, ("clean", "extract")),
        "alert": (alert, ("extract",)),
    })
    return (yield from finish(context, run, {
        "day": pick(results["extract"], ["day"]),
        "files": pick(results["extract"], ["count"]),
        "loaded": results["load"],
        "summary": results["summarize"],
        "alert": results["alert"],
    }))


# --------------------------------------------------------------------------------------- large maps: chunks of items
MAP_CALLERS: dict[str, Caller] = {"call_clean": call_clean}


@app.function_name(name="strato_map_items")
@app.orchestration_trigger(context_name="context")
def strato_map_items_orchestrator(context: df.DurableOrchestrationContext) -> Step:
    """A chunk of a map with more items than one orchestration runs (see orchestration.map_items)."""
    return (yield from map_chunk(context, MAP_CALLERS))


# ------------------------------------------------------------------------ starting runs: HTTP, schedule, blob events


@app.function_name(name="daily_sales_start")
@app.route(route="pipelines/daily_sales", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def daily_sales_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST the parameters of 'daily_sales' as a JSON object to start a run: 202 with the status URLs, or 400 for bad
    input. Callers authenticate with a function key (or the app's identity provider).
    """
    params, problem = start_input(req.get_body(), DAILY_SALES_REQUIRED, DAILY_SALES_DEFAULTS)
    if problem is not None:
        return bad_request(problem)
    instance_id = await client.start_new("daily_sales", client_input=params)
    return client.create_check_status_response(req, instance_id)


DAILY_SALES_SCHEDULE_INPUT: dict[str, Any] = {}


@app.function_name(name="daily_sales_schedule")
@app.timer_trigger(arg_name="timer", schedule="0 0 2 * * *")
@app.durable_client_input(client_name="client")
async def daily_sales_schedule(timer: func.TimerRequest, client: df.DurableOrchestrationClient) -> None:
    """Start a run on the schedule (cron '0 2 * * *', UTC): NCRONTAB '0 0 2 * * *'."""
    await client.start_new("daily_sales", client_input=DAILY_SALES_SCHEDULE_INPUT)
