"""Running a compiled workflow in the Workflows interpreter, every task through the real shim.

The interpreter executes the YAML exactly as compiled (virtual clock: retries' backoff and waits take
no real time). Function URLs are ``$STRATO_FUNCTIONS_URL/<function name>``; the emulator points that
variable at a transport that reaches the shim: in-process through ``functions_framework.create_app``
and WSGI (``backend="wsgi"``, the default), or over real HTTP to functions-framework's server on
127.0.0.1 (``backend="http"``). A task's ``timeout`` is enforced in real time around the call, as the
Workflows HTTP client would, and surfaces as ``TimeoutError`` -> ``TaskTimeout``. Offloaded results go
to a ``LocalBlobStore`` under the work directory (``gs://strato-payloads/...`` URIs, no network),
exactly as the deployed shim writes them to Cloud Storage. The task loader and the store reach the
shim through :func:`~strato.adapters.common.emulation.emulating`; the threads that serve a call
(the timeout's, werkzeug's per request) run in the emulation's context.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from strato import ir
from strato.adapters.common.emulation import TaskLoader, emulating, in_this_context
from strato.adapters.common.offload import materialise as common_materialise
from strato.adapters.common.stores import BlobStore, LocalBlobStore
from strato.runtime import RunResult
from strato.runtime.results import new_run_id

from .errors import workflow_error
from .naming import FUNCTIONS_URL_ENV

EMULATED_FUNCTIONS_URL = "https://functions.strato.invalid"
BACKENDS = ("wsgi", "http")
MAIN_PY = "from strato.adapters.gcp.shim import handler  # noqa: F401 - the function's entry point\n"


class TimeLimited:
    """Wraps a transport so a request not answered within its ``timeout`` (real seconds) times out."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.in_context = in_this_context(lambda work: work())  # the emulation's context, on any thread

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Any:
        from .interpreter import RequestTimeout

        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["response"] = self.inner.request(method, url, headers, body, timeout, auth)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc

        worker = threading.Thread(target=self.in_context, args=(work,), daemon=True, name="strato-gcp-call")
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise RequestTimeout(f"no response within {timeout:g}s")
        if "error" in box:
            raise box["error"]
        return box["response"]


def _app(work_dir: Path) -> Any:
    import functions_framework

    source = work_dir / "main.py"
    source.write_text(MAIN_PY)
    return functions_framework.create_app(target="handler", source=str(source), signature_type="http")


@contextmanager
def _served(app: Any) -> Iterator[str]:
    """functions-framework's Flask app on a free 127.0.0.1 port (werkzeug, threaded) while in use."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:  # keep --json output clean
            pass

    server = make_server("127.0.0.1", 0, in_this_context(app), threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="strato-gcp-functions")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def emulate(pipeline: ir.PipelineIR, source: str, params: dict[str, Any], load: TaskLoader, work_dir: Path,
            backend: str = "wsgi", clock: Any = None, store: BlobStore | None = None,
            parts: dict[str, str] | None = None) -> tuple[RunResult, Any]:
    """Run the compiled ``source`` with ``params``; returns the run's result and the interpreter execution.

    ``params`` is the execution's argument as Workflows receives it: the run input, or a CloudEvent
    for a pipeline with ``ObjectCreated`` triggers. ``store`` holds offloaded results (default: a
    directory under ``work_dir``). ``parts`` are the sources of a split pipeline's other workflows by
    workflow id, deployed beside it: the root runs them through the Workflow Executions connector.
    """
    from .interpreter import UrllibTransport, VirtualClock, WsgiTransport, load_workflow

    if backend not in BACKENDS:
        raise ValueError(f"unknown gcp backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    work_dir.mkdir(parents=True, exist_ok=True)
    workflow = load_workflow(source)
    deployed = {name: load_workflow(text) for name, text in (parts or {}).items()}
    app = _app(work_dir)
    clock = clock or VirtualClock()
    store = store if store is not None else LocalBlobStore(work_dir / "payloads", "gs")
    with emulating(loader=load, store=store):
        if backend == "http":
            with _served(app) as base:
                execution = workflow.run(params, transport=TimeLimited(UrllibTransport(lambda auth, url: "emulated")),
                                         clock=clock, env={FUNCTIONS_URL_ENV: base}, deployed=deployed)
        else:
            execution = workflow.run(params, transport=TimeLimited(WsgiTransport(app)), clock=clock,
                                     env={FUNCTIONS_URL_ENV: EMULATED_FUNCTIONS_URL}, deployed=deployed)
    run_id = new_run_id()
    if execution.state == "SUCCEEDED":  # an output too large for the workflow comes back as an envelope
        return RunResult(run_id, "SUCCEEDED", common_materialise(execution.result, store), None), execution
    return RunResult(run_id, "FAILED", None, workflow_error(execution.error)), execution
