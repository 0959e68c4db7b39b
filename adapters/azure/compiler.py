"""IR -> an Azure Durable Functions app (Python v2 programming model).

``compile_app`` writes, under ``out_dir/<pipeline>/``:

* ``function_app.py``: a ``df.DFApp`` with one orchestrator per pipeline and sub-pipeline, one
  activity per task (the task's code is imported by module and qualname when it first runs), an
  HTTP starter, a timer trigger for a schedule and an Event Grid trigger per ``ObjectCreated``;
* ``host.json`` (extension bundle 4.x), ``requirements.txt`` and ``local.settings.json.example``.

The orchestrators are generated code a reviewer can read: each node is a small step function that
waits for nothing but its inputs (``run_dag`` starts it when its own dependencies are done), guards
are plain ``if``s using ``strato.ir.compare``, retries are loops with durable timers and catches are
``try``/``except`` around the call. Bytes are deterministic: no paths, no clock, sorted where the IR
is unordered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from strato import ir
from strato.errors import Diagnostic
from strato.graph import dependencies, guard_chain

from . import naming, triggers
from .codegen import (
    Block,
    Call,
    Expr,
    ImportList,
    Raw,
    dict_expr,
    doc_text,
    list_expr,
    literal,
    py_str,
    tuple_expr,
)
from .naming import MAP_ORCHESTRATOR, RESOLVE_ACTIVITY, Names
from .orchestration import PART_NODES

CONTEXT_TYPE = "df.DurableOrchestrationContext"
STEP_LOCALS = ("context", "run", "params", "results", "key", "item", "error", "attempt", "df", "func")
BACKSLASH, TRIPLE = chr(92), chr(34) * 3
CONSUMPTION_TIMEOUT = 600  # seconds: the longest a function may run on the Consumption plan


@dataclass
class Activity:
    """One activity function: a task's code, shared by every pipeline that calls it."""

    spec: ir.TaskSpec
    function: str  # Azure function name
    python: str  # the activity's Python def
    ref: str  # the TaskRef constant
    caller: str  # the orchestrator-side call function (retries, timeout, catch)
    retry: str | None = None  # the Retry constant
    handler_caller: str | None = None  # the call as a catch handler: a handler's own catch does not apply


@dataclass
class Part:
    """A contiguous run of a large pipeline's nodes (in dependency order), run as a sub-orchestration.

    A part holds at most ``PART_NODES`` nodes itself (a leaf) or at most ``PART_NODES`` parts.
    """

    index: int  # 1-based, depth first: names the orchestrator and its instance id
    nodes: list[str]
    children: list[Part]
    function: str = ""
    python: str = ""


@dataclass
class App:
    """Every name in the generated module, allocated once so nothing collides."""

    root: ir.PipelineIR
    pipelines: dict[str, ir.PipelineIR]
    module: Names = field(default_factory=naming.module_names)
    functions: Names = field(default_factory=naming.function_names)
    activities: dict[tuple[str, str], Activity] = field(default_factory=dict)
    orchestrators: dict[str, tuple[str, str]] = field(default_factory=dict)  # pipeline -> (function, python)
    constants: dict[str, dict[str, str]] = field(default_factory=dict)  # pipeline -> role -> CONSTANT
    imports: dict[str, set[str]] = field(default_factory=dict)
    map_callers: set[str] = field(default_factory=set)  # the callers map nodes use, for large maps' chunks
    parts: dict[str, list[Part]] = field(default_factory=dict)  # pipeline -> its top-level parts (large ones)

    def use(self, module: str, *names: str) -> None:
        self.imports.setdefault(module, set()).update(names)

    def activity_for(self, pipeline: ir.PipelineIR, task: str) -> Activity:
        spec = pipeline.tasks[task]
        return self.activities[(spec.module, spec.qualname)]


HELPERS = {
    "strato.adapters.azure.orchestration": ("Caller", "Results", "Run", "Step", "TaskError", "activity",
                                            "activity_with_timeout", "fan_out_items", "finish", "inline", "map_chunk",
                                            "map_items", "pick", "retry_timer", "run_dag", "run_part", "run_parts",
                                            "sub_pipeline", "wait_timer"),
    "strato.adapters.azure.shim": ("TaskRef", "resolve_activity", "run_task"),
    "strato.adapters.azure.triggers": ("LocalSchedule", "accepted", "bad_request", "object_created_input",
                                       "start_input"),
    "strato.ir": ("RetrySpec", "compare", "error_matches"),
}


def compile_app(pipeline: ir.PipelineIR, out_dir: Path) -> tuple[list[Path], list[Diagnostic]]:
    """Write the app for ``pipeline``; return the files written and warnings."""
    target = Path(out_dir) / pipeline.name
    target.mkdir(parents=True, exist_ok=True)
    files = {
        "function_app.py": generate_function_app(pipeline),
        "host.json": _json(host_json(pipeline)),
        "requirements.txt": requirements_txt(),
        "local.settings.json.example": _json(local_settings()),
    }
    paths = []
    for name, text in files.items():
        path = target / name
        path.write_bytes(text.encode())
        paths.append(path)
    return paths, warnings(pipeline)


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def _all_pipelines(root: ir.PipelineIR) -> dict[str, ir.PipelineIR]:
    found = {root.name: root}
    for name in sorted(root.subpipelines):
        found.setdefault(name, root.subpipelines[name])
    return found


def warnings(pipeline: ir.PipelineIR) -> list[Diagnostic]:
    out = []
    for p in _all_pipelines(pipeline).values():
        for name in sorted(p.tasks):
            spec = p.tasks[name]
            if spec.timeout and spec.timeout > CONSUMPTION_TIMEOUT:
                out.append(Diagnostic(f"timeout {spec.timeout:g}s is longer than the 10 minutes a function may run "
                                      "on the Consumption plan; host.json raises functionTimeout, which needs a "
                                      "Premium or Dedicated plan", spec.location, f"task {name!r}", "warning"))
    return out


# ------------------------------------------------------------------------------- other files
def host_json(pipeline: ir.PipelineIR) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": "2.0",
        "extensionBundle": {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"},
        "extensions": {"durableTask": {"storageProvider": {"type": "AzureStorage"}}},
        "logging": {"logLevel": {"default": "Information", "DurableTask.Core": "Warning"}},
    }
    longest = max((spec.timeout or 0 for p in _all_pipelines(pipeline).values() for spec in p.tasks.values()),
                  default=0)
    if longest > 300:  # the default on the Consumption plan is 5 minutes
        seconds = int(longest) + 60
        data["functionTimeout"] = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    return data


def requirements_txt(declared: Sequence[str] = (), source: str | None = None) -> str:
    """What the app imports: Strato's core dependencies and its ``azure`` extra, as this installation
    declares them, then the project's own (``declared``, from ``source``, when packaging). A Linux
    Consumption app running from a package installs nothing: ``strato package --target azure`` installs
    exactly these into the package's ``.python_packages``, with Strato itself, which no registry has."""
    from strato.adapters.common.packaging import strato_requirements

    lines = ["# Installed into .python_packages/lib/site-packages by `strato package --target azure`, with",
             "# Strato itself; an app running from a package installs nothing.", *strato_requirements("azure")]
    if declared:
        lines += [f"# the project's dependencies ({source})", *declared]
    return "\n".join(lines) + "\n"


def local_settings() -> dict[str, Any]:
    return {
        "IsEncrypted": False,
        "Values": {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "STRATO_OFFLOAD_BYTES": "65536",
            "STRATO_BLOB_CONTAINER": "strato-payloads",
        },
    }


# ---------------------------------------------------------------------------- function_app.py
def generate_function_app(root: ir.PipelineIR) -> str:
    app = App(root, _all_pipelines(root))
    _allocate(app)
    body = Block()
    _tasks_section(app, body)
    _activities_section(app, body)
    _callers_section(app, body)
    for pipeline in app.pipelines.values():
        _orchestrator(app, pipeline, body)
    _map_chunks(app, body)
    _starters(app, body)
    head = Block()
    modules = sorted({spec.module for spec in (a.spec for a in app.activities.values())})
    head.docstring(
        f"Azure Durable Functions app for the Strato pipeline {root.name!r} (IR hash {root.hash[:12]}).\n\n"
        "Generated from the pipeline's IR by `strato compile --target azure`: edit the pipeline and compile "
        "again rather than editing this file. Each orchestrator starts a node as soon as the nodes it depends on "
        "have finished; activities run the task code, imported by module and qualname when first called "
        f"(module{'s' if len(modules) != 1 else ''}: {', '.join(modules) or 'none'}), so deploy that code with "
        "this app.")
    head.line()
    _imports(app, head)
    head.line()
    head.line("app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)")
    return head.text() + body.text()


def _allocate(app: App) -> None:
    for helpers in HELPERS.values():
        for name in helpers:
            app.module.reserve(name)
    for name in app.pipelines:  # orchestrators first: their names are what users see in the portal
        function = app.functions.take(name)
        app.orchestrators[name] = (function, app.module.take(naming.orchestrator_python(name)))
        app.constants[name] = {role: app.module.take(naming.pipeline_constant(name, role))
                               for role in ("required", "defaults", "schedule_input")}
    for name, pipeline in app.pipelines.items():
        parts = partition(pipeline)
        if parts:
            app.parts[name] = parts
            for part in _walk(parts):
                part.function = app.functions.take(naming.part_function(name, part.index))
                part.python = app.module.take(naming.orchestrator_python(part.function))
    for pipeline in app.pipelines.values():
        for task in sorted(pipeline.tasks):
            spec = pipeline.tasks[task]
            key = (spec.module, spec.qualname)
            if key in app.activities:
                continue
            function = app.functions.take(spec.name)
            app.activities[key] = Activity(spec, function, app.module.take(naming.activity_python(function)),
                                           app.module.take(naming.task_constant(function)),
                                           app.module.take(naming.caller_python(function)))
            if spec.retry is not None:
                app.activities[key].retry = app.module.take(naming.retry_constant(function))
    handlers = {(p.tasks[t.catch.handler].module, p.tasks[t.catch.handler].qualname)
                for p in app.pipelines.values() for t in p.tasks.values() if t.catch and t.catch.handler in p.tasks}
    for key in sorted(handlers):
        activity = app.activities[key]
        if activity.spec.catch is not None:
            activity.handler_caller = app.module.take(naming.handler_caller_python(activity.caller))


def _imports(app: App, block: Block) -> None:
    block.line("from typing import Any")
    block.line()
    block.line("import azure.durable_functions as df")
    block.line("import azure.functions as func")
    block.line()
    for module in sorted(app.imports):
        block.stmt(f"from {module} import ", ImportList(sorted(app.imports[module], key=_isort_key)))


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's isort order: CONSTANTS, then Classes, then functions (order-by-type)."""
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def _def(block: Block, name: str, params: list[str], returns: str, prefix: str = "def") -> None:
    """A function header, its parameters one per line when it would be too long."""
    block.stmt(f"{prefix} ", Call(name, [Raw(p) for p in params]), f" -> {returns}:")


# ------------------------------------------------------------------------------------ sections
def _section(block: Block, title: str) -> None:
    block.line()
    block.line()
    block.line(f"# {'-' * (114 - len(title))} {title}")


def _tasks_section(app: App, block: Block) -> None:
    _section(block, "tasks")
    app.use("strato.adapters.azure.shim", "TaskRef")
    for activity in app.activities.values():
        spec = activity.spec
        fields = [Raw(py_str(spec.name)), Raw(py_str(spec.module)), Raw(py_str(spec.qualname))]
        if spec.secrets:  # the only secrets the activity resolves (granted by the IR)
            fields.append(Raw("secrets=(" + "".join(f"{py_str(s)}, " for s in spec.secrets) + ")"))
        block.stmt(f"{activity.ref} = ", Call("TaskRef", fields))
        if activity.retry is not None:
            app.use("strato.ir", "RetrySpec")
            retry = spec.retry
            assert retry is not None
            block.stmt(f"{activity.retry} = ", Call("RetrySpec", kwargs=[
                ("max_retries", literal(retry.max_retries)), ("delay", literal(float(retry.delay))),
                ("backoff", literal(float(retry.backoff))),
                ("max_delay", literal(None if retry.max_delay is None else float(retry.max_delay))),
                ("jitter", literal(retry.jitter)),
                ("on", Raw("None") if retry.on is None else tuple_expr(literal(n) for n in retry.on)),
            ]))


def _activities_section(app: App, block: Block) -> None:
    _section(block, "activities: run one task each")
    app.use("strato.adapters.azure.shim", "run_task", "resolve_activity")
    for activity in app.activities.values():
        spec = activity.spec
        block.line()
        block.line()
        block.line(f"@app.function_name(name={py_str(activity.function)})")
        block.line('@app.activity_trigger(input_name="args")')
        _def(block, activity.python, ["args: dict[str, Any]"], "Any")
        inner = block.nested()
        summary = doc_text(spec.doc)
        where = f"{spec.module}.{spec.qualname}"
        inner.docstring(f"{summary} ({where})" if summary else f"Run task {spec.name!r} ({where}).")
        inner.line(f"return run_task({activity.ref}, args)")
    block.line()
    block.line()
    block.line(f"@app.function_name(name={py_str(RESOLVE_ACTIVITY)})")
    block.line('@app.activity_trigger(input_name="payload")')
    block.line(f"def {naming.activity_python(RESOLVE_ACTIVITY)}(payload: dict[str, Any]) -> Any:")
    inner = block.nested()
    inner.docstring("Read back results offloaded to Blob Storage where an orchestrator needs the value itself.")
    inner.line("return resolve_activity(payload)")
    app.module.reserve(naming.activity_python(RESOLVE_ACTIVITY))


def _describe_options(spec: ir.TaskSpec, catch: bool = True) -> str:
    parts = []
    retry = spec.retry
    if retry is not None:
        on = "any error" if retry.on is None else " or ".join(retry.on)
        parts.append(f"up to {retry.max_retries} retries on {on}")
    if spec.timeout:
        parts.append(f"a timeout of {spec.timeout:g}s")
    if spec.catch is not None and catch:
        on = "any error" if spec.catch.on is None else " or ".join(spec.catch.on)
        parts.append(f"catch {on} with {spec.catch.handler}")
    return ", ".join(parts) if parts else "no retry, timeout or catch"


def _callers_section(app: App, block: Block) -> None:
    _section(block, "calling tasks from an orchestrator: timeouts, retries, catch")
    app.use("strato.adapters.azure.orchestration", "Run", "Step")
    for activity in app.activities.values():
        _caller(app, activity, block, activity.caller, activity.spec.catch)
        if activity.handler_caller is not None:
            _caller(app, activity, block, activity.handler_caller, None)


def _caller(app: App, activity: Activity, block: Block, name: str, catch: ir.CatchSpec | None) -> None:
    spec = activity.spec
    block.line()
    block.line()
    _def(block, name, [f"context: {CONTEXT_TYPE}", "run: Run", "key: str", "args: dict[str, Any]"], "Step")
    inner = block.nested()
    if name == activity.handler_caller:
        inner.docstring(f"Task {spec.name!r} as a catch handler: {_describe_options(spec, catch=False)}.")
    else:
        inner.docstring(f"Task {spec.name!r}: {_describe_options(spec)}.")
    counted = ", attempt" if spec.retry is not None else ""
    run_context = Raw(f"run.call_context(key, {py_str(app.root.name)}{counted})")  # strato.context() in the task
    if spec.timeout:
        app.use("strato.adapters.azure.orchestration", "activity_with_timeout")
        attempt: Expr = Call("activity_with_timeout", [Raw("context"), Raw(py_str(activity.function)), Raw("args")],
                             [("task", Raw(py_str(spec.name))), ("seconds", literal(float(spec.timeout))),
                              ("run_context", run_context)])
    else:
        app.use("strato.adapters.azure.orchestration", "activity")
        attempt = Call("activity", [Raw("context"), Raw(py_str(activity.function)), Raw("args"), run_context])
    if spec.retry is None and catch is None:
        inner.stmt("return ", attempt)
        return
    app.use("strato.adapters.azure.orchestration", "TaskError")
    if spec.retry is not None or (catch is not None and catch.on is not None):
        app.use("strato.ir", "error_matches")
    body = inner
    if catch is not None:
        inner.line("try:")
        body = inner.nested()
    if spec.retry is not None:
        app.use("strato.adapters.azure.orchestration", "retry_timer")
        retry = activity.retry
        body.line("attempt = 1")
        body.line("while True:")
        loop = body.nested()
        loop.line("try:")
        loop.nested().stmt("return (yield from ", attempt, ")")
        loop.line("except TaskError as error:")
        handler = loop.nested()
        handler.line(f"if attempt > {retry}.max_retries or not error_matches(error.name, {retry}.on):")
        handler.nested().line("raise")
        handler.line(f"yield retry_timer(context, run, key, attempt, {retry})")
        handler.line("attempt += 1")
    else:
        body.stmt("return (yield from ", attempt, ")")
    if catch is not None:
        pipeline_handler = _handler_spec(app, spec)
        inner.line("except TaskError as error:")
        handler = inner.nested()
        if catch.on is not None:  # catch=Catch(handler) without on= takes any error
            handler.line(f"if not error_matches(error.name, {tuple_expr(literal(n) for n in catch.on).flat()}):")
            handler.nested().line("raise")
        first = pipeline_handler.spec.params[0].name if pipeline_handler.spec.params else "error"
        handler.stmt("return (yield from ", Call(pipeline_handler.handler_caller or pipeline_handler.caller, [
            Raw("context"), Raw("run"), Raw('f"{key}#catch"'), dict_expr([(literal(first), Raw("error.error"))])]),
            ")")


def _handler_spec(app: App, spec: ir.TaskSpec) -> Activity:
    """The catch handler's activity: a task of the pipeline that declares the catching task."""
    assert spec.catch is not None
    for pipeline in app.pipelines.values():
        handler = pipeline.tasks.get(spec.catch.handler)
        if handler is not None and spec.name in pipeline.tasks and (
                pipeline.tasks[spec.name].module, pipeline.tasks[spec.name].qualname) == (spec.module, spec.qualname):
            return app.activities[(handler.module, handler.qualname)]
    raise KeyError(spec.catch.handler)


# -------------------------------------------------------------------------------- orchestrators
class _Values:
    """IR values as Python expressions over ``params`` and a step's ``results``."""

    def __init__(self, app: App):
        self.app = app

    def path(self, base: str, path: tuple[Any, ...]) -> Expr:
        if not path:
            return Raw(base)
        self.app.use("strato.adapters.azure.orchestration", "pick")
        return Call("pick", [Raw(base), list_expr(literal(p) for p in path)])

    def value(self, value: ir.Value) -> Expr:
        if isinstance(value, ir.Literal):
            return literal(value.value)
        if isinstance(value, ir.Ref):
            return self.path(f"results[{py_str(value.node)}]", value.path)
        if isinstance(value, ir.Param):
            if not value.path:
                return Raw(f"params[{py_str(value.name)}]")
            return self.path(f"params[{py_str(value.name)}]", value.path)
        if isinstance(value, ir.ListOf):
            return list_expr(self.value(v) for v in value.items)
        return dict_expr((literal(k), self.value(v)) for k, v in value.entries)

    def args(self, args: dict[str, ir.Value], first: tuple[str, Expr] | None = None) -> Expr:
        pairs = [(literal(first[0]), first[1])] if first else []
        pairs += [(literal(k), self.value(v)) for k, v in args.items()]
        return dict_expr(pairs)


def _orchestrator(app: App, pipeline: ir.PipelineIR, block: Block) -> None:
    function, python = app.orchestrators[pipeline.name]
    const = app.constants[pipeline.name]
    values = _Values(app)
    deps = dependencies(pipeline)
    is_root = pipeline is app.root
    parts = app.parts.get(pipeline.name)
    _section(block, f"pipeline {pipeline.name}")
    if is_root:
        required = [p.name for p in pipeline.params if p.required]
        block.stmt(f"{const['required']}: tuple[str, ...] = ", tuple_expr(literal(n) for n in required))
    block.stmt(f"{const['defaults']}: dict[str, Any] = ", literal(pipeline.defaults()))
    block.line()
    block.line()
    block.line(f"@app.function_name(name={py_str(function)})")
    block.line('@app.orchestration_trigger(context_name="context")')
    _def(block, python, [f"context: {CONTEXT_TYPE}"], "Step")
    inner = block.nested()
    summary = doc_text(pipeline.doc) or f"Pipeline {pipeline.name!r}."
    role = "The root pipeline" if is_root else "A sub-pipeline (a sub-orchestration of its caller)"
    app.use("strato.adapters.azure.orchestration", "Run", "finish")
    if parts:
        app.use("strato.adapters.azure.orchestration", "run_parts")
        inner.docstring(f"{summary}\n\n{role}. Its {len(pipeline.nodes):,} nodes run in {len(parts)} parts "
                        f"(sub-orchestrations of at most {PART_NODES} nodes or parts each, so that no history "
                        "grows with the pipeline); each part starts when the parts it reads from are done.")
        inner.line(f"run = Run.start(context, {const['defaults']})")
        _run_and_finish(app, pipeline, inner, lambda body: body.stmt(
            "results = yield from run_parts(context, run, ", _parts_expr(pipeline, parts, deps), ")"),
            values.value(pipeline.output))
        users = _users(pipeline)
        for part in _walk(parts):
            _part_orchestrator(app, pipeline, part, block, users)
        return
    listing = "\n".join(f"  {node}: after {', '.join(ds) if ds else 'nothing'}" for node, ds in deps.items())
    inner.docstring(f"{summary}\n\n{role}. Each node starts when the nodes it depends on are done:\n\n{listing}")
    app.use("strato.adapters.azure.orchestration", "Results", "run_dag")
    inner.line(f"run = Run.start(context, {const['defaults']})")
    header_at = len(inner.lines)
    step_fns = _steps(app, pipeline, pipeline.nodes, inner, values)
    inner.line()
    _run_and_finish(app, pipeline, inner, lambda body: body.stmt(
        "results = yield from run_dag(context, ", _nodes_expr(pipeline.nodes, deps, step_fns), ")"),
        values.value(pipeline.output))
    if any("params[" in line for line in inner.lines[header_at:]):  # only when a node reads a parameter
        inner.lines.insert(header_at, f"{inner.indent}params = run.params")


def _run_and_finish(app: App, pipeline: ir.PipelineIR, inner: Block, run: Callable[[Block], Any],
                    output: Expr) -> None:
    """The orchestrator's end: run the nodes (``run`` writes that line), return the output. The root
    pipeline's hooks go around it: ``on_failure`` in an ``except`` that raises the run's error again,
    ``on_success`` before the output is returned (``run_hook`` ignores a hook's own failure)."""
    hooks = pipeline.hooks if pipeline is app.root else {}
    if not hooks:
        run(inner)
        inner.stmt("return (yield from finish(context, run, ", output, "))")
        return
    app.use("strato.adapters.azure.orchestration", "run_hook")

    def call_hook(block: Block, kind: str, error: str) -> None:
        hook = hooks[kind]
        spec = pipeline.tasks[hook.task]
        caller = app.activities[(spec.module, spec.qualname)].caller
        args = dict_expr((literal(k), literal(ir.value_to_dict(v)["literal"])) for k, v in sorted(hook.args.items()))
        block.stmt("yield from ", Call("run_hook", [Raw("context"), Raw("run"), Raw(caller), literal(kind),
                                                    literal(app.root.name), literal(hook.param), args, Raw(error)]))

    body = inner
    if "on_failure" in hooks:
        inner.line("try:")
        body = inner.nested()
    run(body)
    body.stmt("output = yield from finish(context, run, ", output, ")")
    if "on_failure" in hooks:
        inner.line("except Exception as failure:")
        handler = inner.nested()
        call_hook(handler, "on_failure", "failure")
        handler.line("raise")
    if "on_success" in hooks:
        call_hook(inner, "on_success", "None")
    inner.line("return output")


def _steps(app: App, pipeline: ir.PipelineIR, nodes: Sequence[ir.Node], inner: Block,
           values: _Values) -> dict[str, str]:
    """The step functions of ``nodes`` (and of the branches guarding them), local to an orchestrator;
    returns each node's function name."""
    names = Names([*app.module.taken, *STEP_LOCALS])
    used = {g.branch for node in nodes for g in guard_chain(pipeline, node.guard)}
    branches = [branch for branch in pipeline.branches if branch.id in used]
    branch_fns = {branch.id: names.take(branch.id if branch.id.startswith("when") else f"when_{branch.id}")
                  for branch in branches}
    step_fns = {node.id: names.take(node.id) for node in nodes}
    for branch in branches:
        _branch(app, pipeline, branch, branch_fns[branch.id], inner, values)
    for node in nodes:
        _step(app, pipeline, node, step_fns[node.id], branch_fns, inner, values)
    return step_fns


def _nodes_expr(nodes: Sequence[ir.Node], deps: dict[str, tuple[str, ...]], step_fns: dict[str, str]) -> Expr:
    return dict_expr((literal(node.id), tuple_expr([Raw(step_fns[node.id]),
                                                    tuple_expr(literal(d) for d in deps[node.id])]))
                     for node in nodes)


# ------------------------------------------------------------------------------ large pipelines
def partition(pipeline: ir.PipelineIR) -> list[Part]:
    """A large pipeline's nodes as a tree of parts (none when it has at most ``PART_NODES`` nodes).

    Parts are contiguous runs of a dependency order, so every part reads only from parts before it
    and they form a DAG; independent runs of nodes (chains started one after another in the
    pipeline's code, say) land in parts that run at the same time. A tree of depth ``k`` holds up
    to ``PART_NODES ** k`` nodes, each orchestration scheduling at most ``PART_NODES`` calls.
    """
    order = _dependency_order(pipeline)
    if len(order) <= PART_NODES:
        return []
    counter = iter(range(1, len(order) + 1))

    def split(ids: list[str]) -> list[Part]:
        size = PART_NODES
        while size * PART_NODES < len(ids):
            size *= PART_NODES
        out = []
        for start in range(0, len(ids), size):
            chunk = ids[start:start + size]
            part = Part(next(counter), chunk, [])
            if len(chunk) > PART_NODES:
                part.children = split(chunk)
            out.append(part)
        return out

    return split(order)


def _dependency_order(pipeline: ir.PipelineIR) -> list[str]:
    """Node ids in the pipeline's own order, moved after their dependencies where needed."""
    deps = dependencies(pipeline)
    seen: set[str] = set()
    order: list[str] = []
    for node in pipeline.nodes:
        stack = [(node.id, False)]
        while stack:
            name, expanded = stack.pop()
            if name in seen:
                continue
            if expanded:
                seen.add(name)
                order.append(name)
                continue
            stack.append((name, True))
            stack.extend((dep, False) for dep in reversed(deps.get(name, ())) if dep not in seen)
    return order


def _walk(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        out.append(part)
        out.extend(_walk(part.children))
    return out


def _parts_expr(pipeline: ir.PipelineIR, parts: list[Part], deps: dict[str, tuple[str, ...]]) -> Expr:
    """``{name: (orchestrator, nodes read from outside, sibling parts read from)}`` for :func:`run_parts`."""
    home = {node: part.index for part in parts for node in part.nodes}
    entries = []
    for part in parts:
        members = set(part.nodes)
        needs = list(dict.fromkeys(d for node in part.nodes for d in deps[node] if d not in members))
        after = sorted({home[d] for d in needs if d in home})
        entries.append((literal(str(part.index)), tuple_expr([
            literal(part.function), tuple_expr(literal(d) for d in needs),
            tuple_expr(literal(str(a)) for a in after)])))
    return dict_expr(entries)


def _exports(pipeline: ir.PipelineIR, part: Part, users: dict[str, list[str]]) -> list[str]:
    """The part's nodes whose results are read outside it: by other nodes or the pipeline's output."""
    members = set(part.nodes)
    output = set(ir.value_refs(pipeline.output))
    return [node for node in part.nodes if node in output or any(u not in members for u in users[node])]


def _users(pipeline: ir.PipelineIR) -> dict[str, list[str]]:
    """Who reads each node: the nodes that depend on it."""
    users: dict[str, list[str]] = {node.id: [] for node in pipeline.nodes}
    for node, ds in dependencies(pipeline).items():
        for dep in ds:
            users[dep].append(node)
    return users


def _part_orchestrator(app: App, pipeline: ir.PipelineIR, part: Part, block: Block,
                       users: dict[str, list[str]]) -> None:
    const = app.constants[pipeline.name]
    deps = dependencies(pipeline)
    values = _Values(app)
    exports = tuple_expr(literal(n) for n in _exports(pipeline, part, users))
    block.line()
    block.line()
    block.line(f"@app.function_name(name={py_str(part.function)})")
    block.line('@app.orchestration_trigger(context_name="context")')
    _def(block, part.python, [f"context: {CONTEXT_TYPE}"], "Step")
    inner = block.nested()
    span = f"nodes {part.nodes[0]} to {part.nodes[-1]} ({len(part.nodes):,})"
    if part.children:
        app.use("strato.adapters.azure.orchestration", "run_parts")
        inner.docstring(f"Part {part.index} of pipeline {pipeline.name!r}: {span}, in {len(part.children)} parts.")
        inner.line(f"run = Run.start(context, {const['defaults']})")
        inner.stmt("return (yield from ", Call("run_parts", [Raw("context"), Raw("run"), _parts_expr(
            pipeline, part.children, deps)], [("exports", exports)]), ")")
        return
    app.use("strato.adapters.azure.orchestration", "Results", "run_part")
    nodes = [pipeline.node_by_id[n] for n in part.nodes]
    listing = "\n".join(f"  {n}: after {', '.join(deps[n]) if deps[n] else 'nothing'}" for n in part.nodes)
    inner.docstring(f"Part {part.index} of pipeline {pipeline.name!r}: {span}. Each starts when the nodes it "
                    f"depends on are done (those of other parts are given):\n\n{listing}")
    inner.line(f"run = Run.start(context, {const['defaults']})")
    header_at = len(inner.lines)
    step_fns = _steps(app, pipeline, nodes, inner, values)
    inner.line()
    inner.stmt("return (yield from ", Call("run_part", [Raw("context"), Raw("run"), _nodes_expr(nodes, deps, step_fns)],
                                          [("exports", exports)]), ")")
    if any("params[" in line for line in inner.lines[header_at:]):
        inner.lines.insert(header_at, f"{inner.indent}params = run.params")


def _map_chunks(app: App, block: Block) -> None:
    """The orchestrator that runs one chunk of a large map (``orchestration.map_items``)."""
    if not app.map_callers:
        return
    app.use("strato.adapters.azure.orchestration", "Caller", "map_chunk")
    callers = app.module.take("MAP_CALLERS")
    python = app.module.take(naming.orchestrator_python(MAP_ORCHESTRATOR))
    _section(block, "large maps: chunks of items")
    block.stmt(f"{callers}: dict[str, Caller] = ", dict_expr((literal(name), Raw(name))
                                                              for name in sorted(app.map_callers)))
    block.line()
    block.line()
    block.line(f"@app.function_name(name={py_str(MAP_ORCHESTRATOR)})")
    block.line('@app.orchestration_trigger(context_name="context")')
    _def(block, python, [f"context: {CONTEXT_TYPE}"], "Step")
    inner = block.nested()
    inner.docstring("A chunk of a map with more items than one orchestration runs (see orchestration.map_items).")
    inner.line(f"return (yield from map_chunk(context, {callers}))")


def _branch(app: App, pipeline: ir.PipelineIR, branch: ir.Branch, name: str, block: Block, values: _Values) -> None:
    block.line()
    block.line(f"def {name}(results: Results) -> Step:")
    inner = block.nested()
    inner.docstring(f"when {condition_text(branch.condition)}")
    operands: dict[int, str] = {}
    local = Names(["results", "context", "run", "params", *app.module.taken])
    for i, operand in enumerate(ir.condition_operands(branch.condition)):
        base = operand.path[-1] if operand.path and isinstance(operand.path[-1], str) else (
            operand.node if isinstance(operand, ir.Ref) else operand.name)
        var = local.take(str(base))
        operands[i] = var
        expr = values.value(operand)
        app.use("strato.adapters.azure.orchestration", "inline")  # a generator even when it reads parameters only
        inner.stmt(f"{var} = yield from ", Call("inline", [Raw("context"), expr]))
    counter = iter(range(len(operands)))
    app.use("strato.ir", "compare")
    inner.stmt("return ", Raw(_condition_expr(branch.condition, operands, counter)))


def condition_text(condition: ir.Condition) -> str:
    """A condition as a person writes it, for docstrings (ASCII, no backslashes)."""
    if isinstance(condition, ir.Compare):
        left = condition.left
        base = left.node if isinstance(left, ir.Ref) else left.name
        path = "".join(f"[{json.dumps(p)}]" for p in left.path)
        text = f"{base}{path} {condition.op} {json.dumps(condition.right)}"
    elif isinstance(condition, ir.Not):
        text = f"not ({condition_text(condition.item)})"
    else:
        joiner = " and " if isinstance(condition, ir.AllOf) else " or "
        text = joiner.join(f"({condition_text(c)})" for c in condition.items)
    return text.replace(BACKSLASH, "/").replace(TRIPLE, "'")


def _condition_expr(condition: ir.Condition, operands: dict[int, str], counter: Any) -> str:
    if isinstance(condition, ir.Compare):
        return f"compare({operands[next(counter)]}, {py_str(condition.op)}, {literal(condition.right).flat()})"
    if isinstance(condition, ir.Not):
        return f"not {_condition_expr(condition.item, operands, counter)}"
    joiner = " and " if isinstance(condition, ir.AllOf) else " or "
    return "(" + joiner.join(_condition_expr(c, operands, counter) for c in condition.items) + ")"


def _step(app: App, pipeline: ir.PipelineIR, node: ir.Node, name: str, branch_fns: dict[str, str], block: Block,
          values: _Values) -> None:
    block.line()
    block.line(f"def {name}(results: Results) -> Step:")
    inner = block.nested()
    chain = list(reversed(list(guard_chain(pipeline, node.guard))))
    if chain:
        tests = [f"{'not ' if g.arm else ''}(yield from {branch_fns[g.branch]}(results))" for g in chain]
        inner.line(f"if {' or '.join(tests)}:")
        inner.nested().line("return None  # the branch did not run: the result is null")
    key = Raw(py_str(node.id))
    if isinstance(node, ir.TaskNode):
        activity = app.activity_for(pipeline, node.task)
        call = Call(activity.caller, [Raw("context"), Raw("run"), key, values.args(node.args)])
        inner.stmt("return (yield from ", call, ")")
    elif isinstance(node, ir.MapNode):
        activity = app.activity_for(pipeline, node.task)
        app.use("strato.adapters.azure.orchestration", "map_items", "fan_out_items")
        app.map_callers.add(activity.caller)
        items = values.value(node.items)
        inner.stmt("items = yield from ", Call("fan_out_items", [Raw("context"), items]))
        kwargs = [("max_concurrency", literal(node.max_concurrency))] if node.max_concurrency else []
        inner.stmt("return (yield from ", Call("map_items", [
            Raw("context"), Raw("run"), key, Raw("items"), Raw(activity.caller), literal(node.item_param),
            values.args(node.args)], kwargs), ")")
    elif isinstance(node, ir.WaitNode):
        app.use("strato.adapters.azure.orchestration", "wait_timer")
        inner.line(f"yield wait_timer(context, {float(node.seconds)!r})")
        inner.line("return None")
    else:
        app.use("strato.adapters.azure.orchestration", "sub_pipeline")
        function, _ = app.orchestrators[node.pipeline]
        call = Call("sub_pipeline", [Raw("context"), Raw("run"), Raw(py_str(function)), key, values.args(node.args)])
        inner.stmt("return (yield from ", call, ")")


# ------------------------------------------------------------------------------------ starters
def _starters(app: App, block: Block) -> None:
    root = app.root
    function, _ = app.orchestrators[root.name]
    const = app.constants[root.name]
    _section(block, "starting runs: HTTP, schedule, blob events")
    https = [t for t in root.triggers if isinstance(t, ir.HttpSpec)] or [ir.HttpSpec(f"/pipelines/{root.name}")]
    app.use("strato.adapters.azure.triggers", "start_input", "bad_request")
    for i, trigger in enumerate(https):
        name = app.functions.take(naming.start_function(root.name, i))
        python = app.module.take(name)
        route = (trigger.path or f"/pipelines/{root.name}").lstrip("/")
        auth = "ANONYMOUS" if trigger.auth == "none" else "FUNCTION"
        block.line()
        block.line()
        block.line(f"@app.function_name(name={py_str(name)})")
        block.line(f'@app.route(route={py_str(route)}, methods=["POST"], auth_level=func.AuthLevel.{auth})')
        block.line('@app.durable_client_input(client_name="client")')
        _def(block, python, ["req: func.HttpRequest", "client: df.DurableOrchestrationClient"], "func.HttpResponse",
             "async def")
        inner = block.nested()
        inner.docstring(f"POST the parameters of {root.name!r} as a JSON object to start a run: 202 with the "
                        + ("status URLs, or 400 for bad input. Callers authenticate with a function key (or the "
                           "app's identity provider)." if auth == "FUNCTION" else
                           "run's id (a public endpoint gets no status URLs), or 400 for bad input."))
        inner.line(f"params, problem = start_input(req.get_body(), {const['required']}, {const['defaults']})")
        inner.line("if problem is not None:")
        inner.nested().line("return bad_request(problem)")
        inner.line(f"instance_id = await client.start_new({py_str(function)}, client_input=params)")
        if auth == "ANONYMOUS":  # no status URLs: they carry the extension's system key
            app.use("strato.adapters.azure.triggers", "accepted")
            inner.line("return accepted(instance_id)")
        else:
            inner.line("return client.create_check_status_response(req, instance_id)")
    if root.schedule is not None:
        schedule = root.schedule
        name = app.functions.take(naming.schedule_function(root.name))
        python = app.module.take(name)
        expression = triggers.ncrontab(schedule)
        what = f"cron {schedule.cron!r}" if schedule.cron else f"every {schedule.every}"
        check = None
        block.line()
        block.line()
        block.stmt(f"{const['schedule_input']}: dict[str, Any] = ", literal(schedule.input or {}))
        if triggers.needs_check(schedule) and schedule.cron is not None:
            app.use("strato.adapters.azure.triggers", "LocalSchedule")
            check = app.module.take(naming.pipeline_constant(root.name, "schedule"))
            block.stmt(f"{check} = ", Call("LocalSchedule", [literal(schedule.cron), literal(schedule.timezone),
                                                             literal(expression)]))
        block.line()
        block.line()
        block.line(f"@app.function_name(name={py_str(name)})")
        block.line(f'@app.timer_trigger(arg_name="timer", schedule={py_str(expression)})')
        block.line('@app.durable_client_input(client_name="client")')
        _def(block, python, ["timer: func.TimerRequest", "client: df.DurableOrchestrationClient"], "None", "async def")
        inner = block.nested()
        if check is None:
            inner.docstring(f"Start a run on the schedule ({what}, {schedule.timezone}): NCRONTAB {expression!r}.")
        else:
            inner.docstring(f"Start a run on the schedule ({what}, {schedule.timezone}). Timer triggers run in UTC: "
                            f"NCRONTAB {expression!r} fires at every UTC time the schedule can fall on (either side "
                            f"of a DST change), and {check}.due() starts the run only at the times croniter gives "
                            "for the cron in its zone.")
            inner.line(f"if not {check}.due():")
            inner.nested().line("return  # not one of the schedule's own times (the other side of a DST change)")
        inner.line(f"await client.start_new({py_str(function)}, client_input={const['schedule_input']})")
    params = {p.name for p in root.params}
    objects = [t for t in root.triggers if isinstance(t, ir.ObjectCreatedSpec)]
    for i, watched in enumerate(objects):
        app.use("strato.adapters.azure.triggers", "object_created_input")
        name = app.functions.take(naming.object_created_function(root.name, i))
        python = app.module.take(name)
        fields = tuple(f for f in ir.ObjectCreatedSpec.EVENT_FIELDS if f in params)
        block.line()
        block.line()
        block.line(f"@app.function_name(name={py_str(name)})")
        block.line('@app.event_grid_trigger(arg_name="event")')
        block.line('@app.durable_client_input(client_name="client")')
        _def(block, python, ["event: func.EventGridEvent", "client: df.DurableOrchestrationClient"], "None",
             "async def")
        inner = block.nested()
        where = f"container {watched.bucket!r}" + (f" under {watched.prefix!r}" if watched.prefix else "") + (
            f" ending in {watched.suffix!r}" if watched.suffix else "")
        inner.docstring(f"A Blob Storage BlobCreated event (Event Grid) for {where} starts a run.")
        inner.stmt("params = ", Call("object_created_input", [Raw("event.event_type"), Raw("event.subject"),
                                                               Raw("event.get_json()")], [
            ("bucket", literal(watched.bucket)), ("prefix", literal(watched.prefix)),
            ("suffix", literal(watched.suffix)), ("fields", tuple_expr(literal(f) for f in fields)),
            ("extra", literal(watched.input or {}))]))
        inner.line("if params is not None:")
        inner.nested().line(f"await client.start_new({py_str(function)}, client_input=params)")
