"""Azure Durable Functions app for the Strato pipeline 'revenue_report' (IR hash a56f06dee45d).

Generated from the pipeline's IR by `strato compile --target azure`: edit the pipeline and compile again rather
than editing this file. Each orchestrator starts a node as soon as the nodes it depends on have finished;
activities run the task code, imported by module and qualname when first called (module: revenue_report), so
deploy that code with this app.
"""

from typing import Any

import azure.durable_functions as df
import azure.functions as func

from strato.adapters.azure.orchestration import (
    Results,
    Run,
    Step,
    TaskError,
    activity,
    activity_with_timeout,
    finish,
    retry_timer,
    run_dag,
    sub_pipeline,
)
from strato.adapters.azure.shim import TaskRef, resolve_activity, run_task
from strato.adapters.azure.triggers import bad_request, start_input
from strato.ir import RetrySpec, error_matches

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


# ------------------------------------------------------------------------------------------------------------- tasks
BUILD_REPORT_TASK = TaskRef("build_report", "revenue_report", "build_report")
READ_SALES_TASK = TaskRef("read_sales", "revenue_report", "read_sales")
SESSION_TAG_TASK = TaskRef("session_tag", "revenue_report", "session_tag")
CHECK_RATES_TASK = TaskRef("check_rates", "revenue_report", "check_rates")
FETCH_RATES_TASK = TaskRef("fetch_rates", "revenue_report", "fetch_rates")
FETCH_RATES_RETRY = RetrySpec(
    max_retries=3,
    delay=0.1,
    backoff=2.0,
    max_delay=None,
    jitter=False,
    on=("ConnectionError",),
)


# ------------------------------------------------------------------------------------- activities: run one task each


@app.function_name(name="build_report")
@app.activity_trigger(input_name="args")
def build_report_activity(args: dict[str, Any]) -> Any:
    """Convert each order to the base currency (amount / rate) and total by currency and country.
    (revenue_report.build_report)
    """
    return run_task(BUILD_REPORT_TASK, args)


@app.function_name(name="read_sales")
@app.activity_trigger(input_name="args")
def read_sales_activity(args: dict[str, Any]) -> Any:
    """The day's orders as ``{order_id, country, currency, amount}``, from the landing bucket's CSV.
    (revenue_report.read_sales)
    """
    return run_task(READ_SALES_TASK, args)


@app.function_name(name="session_tag")
@app.activity_trigger(input_name="args")
def session_tag_activity(args: dict[str, Any]) -> Any:
    """The key of the simulated outage: the given tag, or a fresh one so each run sees its own outage.
    (revenue_report.session_tag)
    """
    return run_task(SESSION_TAG_TASK, args)


@app.function_name(name="check_rates")
@app.activity_trigger(input_name="args")
def check_rates_activity(args: dict[str, Any]) -> Any:
    """Refuse rates for another day, another base or with non-positive values before anyone uses them.
    (revenue_report.check_rates)
    """
    return run_task(CHECK_RATES_TASK, args)


@app.function_name(name="fetch_rates")
@app.activity_trigger(input_name="args")
def fetch_rates_activity(args: dict[str, Any]) -> Any:
    """Fetch the day's rates from a service that fails its first ``fail_times`` calls with ConnectionError.
    (revenue_report.fetch_rates)
    """
    return run_task(FETCH_RATES_TASK, args)


@app.function_name(name="strato_resolve")
@app.activity_trigger(input_name="payload")
def strato_resolve_activity(payload: dict[str, Any]) -> Any:
    """Read back results offloaded to Blob Storage where an orchestrator needs the value itself."""
    return resolve_activity(payload)


# ------------------------------------------------------ calling tasks from an orchestrator: timeouts, retries, catch


def call_build_report(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'build_report': no retry, timeout or catch."""
    return activity(context, "build_report", args, run.call_context(key, "revenue_report"))


def call_read_sales(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'read_sales': no retry, timeout or catch."""
    return activity(context, "read_sales", args, run.call_context(key, "revenue_report"))


def call_session_tag(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'session_tag': no retry, timeout or catch."""
    return activity(context, "session_tag", args, run.call_context(key, "revenue_report"))


def call_check_rates(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'check_rates': no retry, timeout or catch."""
    return activity(context, "check_rates", args, run.call_context(key, "revenue_report"))


def call_fetch_rates(context: df.DurableOrchestrationContext, run: Run, key: str, args: dict[str, Any]) -> Step:
    """Task 'fetch_rates': up to 3 retries on ConnectionError, a timeout of 30s."""
    attempt = 1
    while True:
        try:
            return (yield from activity_with_timeout(
                context,
                "fetch_rates",
                args,
                task="fetch_rates",
                seconds=30.0,
                run_context=run.call_context(key, "revenue_report", attempt),
            ))
        except TaskError as error:
            if attempt > FETCH_RATES_RETRY.max_retries or not error_matches(error.name, FETCH_RATES_RETRY.on):
                raise
            yield retry_timer(context, run, key, attempt, FETCH_RATES_RETRY)
            attempt += 1


# ------------------------------------------------------------------------------------------- pipeline revenue_report
REVENUE_REPORT_REQUIRED: tuple[str, ...] = ("day",)
REVENUE_REPORT_DEFAULTS: dict[str, Any] = {"fail_times": 2, "run_tag": "", "state_dir": "", "data_root": ""}


@app.function_name(name="revenue_report")
@app.orchestration_trigger(context_name="context")
def revenue_report_orchestrator(context: df.DurableOrchestrationContext) -> Step:
    """The day's revenue in EUR; ``fail_times`` sets how long the rates service is down (retries cover 3).

    The root pipeline. Each node starts when the nodes it depends on are done:

      session_tag: after nothing
      exchange_rates: after session_tag
      read_sales: after nothing
      build_report: after exchange_rates, read_sales
    """
    run = Run.start(context, REVENUE_REPORT_DEFAULTS)
    params = run.params

    def session_tag(results: Results) -> Step:
        return (yield from call_session_tag(context, run, "session_tag", {"run_tag": params["run_tag"]}))

    def exchange_rates(results: Results) -> Step:
        return (yield from sub_pipeline(
            context,
            run,
            "exchange_rates",
            "exchange_rates",
            {
                "day": params["day"],
                "run_tag": results["session_tag"],
                "fail_times": params["fail_times"],
                "state_dir": params["state_dir"],
                "data_root": params["data_root"],
            },
        ))

    def read_sales(results: Results) -> Step:
        return (yield from call_read_sales(
            context,
            run,
            "read_sales",
            {"day": params["day"], "data_root": params["data_root"]},
        ))

    def build_report(results: Results) -> Step:
        return (yield from call_build_report(
            context,
            run,
            "build_report",
            {"sales": results["read_sales"], "rates": results["exchange_rates"]},
        ))

    results = yield from run_dag(context, {
        "session_tag": (session_tag, ()),
        "exchange_rates": (exchange_rates, ("session_tag",)),
        "read_sales": (read_sales, ()),
        "build_report": (build_report, ("exchange_rates", "read_sales")),
    })
    return (yield from finish(context, run, results["build_report"]))


# ------------------------------------------------------------------------------------------- pipeline exchange_rates
EXCHANGE_RATES_DEFAULTS: dict[str, Any] = {"fail_times": 0, "state_dir": "", "data_root": ""}


@app.function_name(name="exchange_rates")
@app.orchestration_trigger(context_name="context")
def exchange_rates_orchestrator(context: df.DurableOrchestrationContext) -> Step:
    """Fetched and checked rates for one day, as a reusable sub-pipeline.

    A sub-pipeline (a sub-orchestration of its caller). Each node starts when the nodes it depends on are done:

      fetch_rates: after nothing
      check_rates: after fetch_rates
    """
    run = Run.start(context, EXCHANGE_RATES_DEFAULTS)
    params = run.params

    def fetch_rates(results: Results) -> Step:
        return (yield from call_fetch_rates(
            context,
            run,
            "fetch_rates",
            {
                "day": params["day"],
                "run_tag": params["run_tag"],
                "fail_times": params["fail_times"],
                "state_dir": params["state_dir"],
                "data_root": params["data_root"],
            },
        ))

    def check_rates(results: Results) -> Step:
        return (yield from call_check_rates(
            context,
            run,
            "check_rates",
            {"fetched": results["fetch_rates"], "day": params["day"]},
        ))

    results = yield from run_dag(context, {
        "fetch_rates": (fetch_rates, ()),
        "check_rates": (check_rates, ("fetch_rates",)),
    })
    return (yield from finish(context, run, results["check_rates"]))


# ------------------------------------------------------------------------ starting runs: HTTP, schedule, blob events


@app.function_name(name="revenue_report_start")
@app.route(route="pipelines/revenue_report", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@app.durable_client_input(client_name="client")
async def revenue_report_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    """POST the parameters of 'revenue_report' as a JSON object to start a run: 202 with the status URLs, or 400 for
    bad input. Callers authenticate with a function key (or the app's identity provider).
    """
    params, problem = start_input(req.get_body(), REVENUE_REPORT_REQUIRED, REVENUE_REPORT_DEFAULTS)
    if problem is not None:
        return bad_request(problem)
    instance_id = await client.start_new("revenue_report", client_input=params)
    return client.create_check_status_response(req, instance_id)
