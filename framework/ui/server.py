"""The web server of ``strato ui``: Starlette routes over :class:`~strato.ui.data.StoreView`, run by uvicorn.

Starlette and uvicorn (the ``ui`` extra) are imported inside :func:`create_app` and :func:`serve`, so
importing this module (or ``strato``) costs nothing until the UI is started. Pages are static HTML
shells whose script reads the JSON API and builds the DOM with text nodes only: values from the store
(task names, errors, outputs) are user data and never parsed as HTML. A Content-Security-Policy that
allows only this server's own scripts backs that up.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import DefinitionError, StratoError, UsageError
from ..runtime.store import StoreError, _store_error
from . import DEFAULT_HOST, DEFAULT_PORT
from .data import NotFound, StoreView

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

HERE = Path(__file__).resolve().parent
PAGES = {"runs": "runs.html", "run": "run.html", "pipelines": "pipelines.html", "pipeline": "pipeline.html"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
ACTION_HEADER = "x-strato-action"
ACTION_WAIT = 2.0
"""Seconds an action's process is watched before answering: a quick refusal (the pipeline changed,
the run is owned elsewhere) comes back as its message; a longer one goes on in the background."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) resolves only to loopback addresses."""
    if host.strip("[]") in LOOPBACK_NAMES:
        return True
    try:
        infos = socket.getaddrinfo(host.strip("[]"), None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)


def available_actions() -> list[str]:
    """The run actions this installation's CLI has: ``resume`` always, ``rerun`` once it exists."""
    from ..cli import command_names

    commands = command_names()
    return [name for name in ("resume", "rerun") if name in commands]


class _HostGuard:
    """Refuse requests whose Host is not a loopback name when bound to loopback: a web page elsewhere
    cannot reach the store through DNS rebinding. Pure ASGI so streaming and static files pass through."""

    def __init__(self, app: Any, allowed: set[str] | None):
        self.app, self.allowed = app, allowed

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            headers = dict(scope.get("headers") or [])
            host = headers.get(b"host", b"").decode("latin-1")
            name = (urlsplit(f"//{host}").hostname or "") if host else ""
            if name not in self.allowed:
                from starlette.responses import PlainTextResponse

                response = PlainTextResponse(f"strato ui answers only to {', '.join(sorted(self.allowed))}",
                                             status_code=421)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(home: Path, allow_actions: bool = False, loopback_only: bool = True) -> Starlette:
    """The ASGI app over the run store ``home/strato.db``.

    ``loopback_only`` accepts only loopback Host headers (the server is bound to loopback);
    ``allow_actions`` adds the resume (and, when the CLI has it, rerun) endpoints and buttons.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    view = StoreView(home)
    actions = available_actions() if allow_actions else []

    def page(name: str) -> Any:
        async def endpoint(request: Request) -> Response:
            return FileResponse(HERE / "templates" / PAGES[name], media_type="text/html")
        return endpoint

    def answer(fn: Any) -> Any:
        """A JSON endpoint: the user's mistakes become 4xx answers with a message, never a traceback."""
        import functools

        from starlette.concurrency import run_in_threadpool

        @functools.wraps(fn)
        async def endpoint(request: Request) -> Response:
            try:
                data = await run_in_threadpool(fn, request)
            except NotFound as exc:
                return JSONResponse({"error": str(exc)}, status_code=404)
            except UsageError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            except DefinitionError as exc:
                return JSONResponse({"error": f"{len(exc.diagnostics)} error(s)",
                                     "diagnostics": [str(d) for d in exc.diagnostics]}, status_code=422)
            except StratoError as exc:
                return JSONResponse({"error": str(exc)}, status_code=503 if isinstance(exc, StoreError) else 400)
            except ModuleNotFoundError as exc:
                from ..cli import _missing_extra

                extra = _missing_extra(exc.name or "")
                if extra is None:
                    raise
                return JSONResponse({"error": f"this needs the {extra} extra, which is not installed (no module "
                                              f"named {exc.name!r}); install it with: pip install 'strato[{extra}]'"},
                                    status_code=400)
            except sqlite3.Error as exc:
                return JSONResponse({"error": str(_store_error(str(view.path), exc))}, status_code=503)
            if isinstance(data, Response):
                return data
            return JSONResponse(data, headers={"Cache-Control": "no-store"})
        return endpoint

    def _int(request: Request, name: str) -> int | None:
        value = request.query_params.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"{name}={value!r}: give a whole number") from None

    def config(request: Request) -> dict:
        from ..targets import target_names

        return {"allow_actions": allow_actions, "actions": actions, "store": str(view.path),
                "targets": target_names()}

    def runs(request: Request) -> dict:
        q = request.query_params
        limit = _int(request, "limit")
        return view.runs(pipeline=q.get("pipeline") or None, status=q.get("status") or None,
                         since=q.get("since") or None, until=q.get("until") or None,
                         limit=100 if limit is None else limit)

    def run(request: Request) -> dict:
        data = view.run(request.path_params["run_id"])
        data["actions"] = _run_actions(data)
        return data

    def _run_actions(data: dict) -> list[str]:
        if not data.get("ref"):
            return []
        found = []
        if "resume" in actions and data["status"] in ("FAILED", "INTERRUPTED"):
            found.append("resume")
        if "rerun" in actions and data["status"] != "RUNNING":
            found.append("rerun")
        return found

    def logs(request: Request) -> dict:
        return view.logs(request.path_params["run_id"], request.query_params.get("key") or None,
                         _int(request, "attempt"))

    def pipelines(request: Request) -> list:
        return view.pipelines()

    def pipeline(request: Request) -> dict:
        return view.pipeline(request.path_params["name"], request.query_params.get("hash") or None)

    def compiled(request: Request) -> dict:
        return view.compile(request.path_params["name"], request.path_params["target"],
                            request.query_params.get("hash") or None)

    def act(request: Request) -> Response:
        action, run_id = request.path_params["action"], request.path_params["run_id"]
        if action not in actions:
            why = ("start strato ui with --allow-actions" if not allow_actions
                   else f"this strato has no `{action}` command")
            return JSONResponse({"error": f"{action} is not available: {why}"}, status_code=403)
        if request.headers.get(ACTION_HEADER) != "1":
            return JSONResponse({"error": f"an action needs the {ACTION_HEADER}: 1 header"}, status_code=403)
        origin = request.headers.get("origin")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            return JSONResponse({"error": "cross-origin actions are refused"}, status_code=403)
        data = view.run(run_id)
        if action not in _run_actions(data):
            return JSONResponse({"error": f"run {run_id} is {data['status']}; it cannot be {action}d now"},
                                status_code=409)
        return JSONResponse(_start_action(home, action, run_id))

    routes = [
        Route("/", page("runs")),
        Route("/runs/{run_id}", page("run")),
        Route("/pipelines", page("pipelines")),
        Route("/pipelines/{name}", page("pipeline")),
        Route("/api/config", answer(config)),
        Route("/api/runs", answer(runs)),
        Route("/api/runs/{run_id}", answer(run)),
        Route("/api/runs/{run_id}/logs", answer(logs)),
        Route("/api/runs/{run_id}/{action}", answer(act), methods=["POST"]),
        Route("/api/pipelines", answer(pipelines)),
        Route("/api/pipelines/{name}", answer(pipeline)),
        Route("/api/pipelines/{name}/compile/{target}", answer(compiled)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    async def headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response

    from starlette.middleware.base import BaseHTTPMiddleware

    allowed = set(LOOPBACK_NAMES) if loopback_only else None
    middleware = [Middleware(_HostGuard, allowed=allowed), Middleware(BaseHTTPMiddleware, dispatch=headers)]
    return Starlette(routes=routes, middleware=middleware)


def _start_action(home: Path, action: str, run_id: str) -> dict:
    """Run ``strato ACTION RUN_ID`` in its own process group (it outlives the UI) and report how it began."""
    env = {**os.environ, "STRATO_HOME": str(home), "STRATO_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "strato", action, run_id], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    output: dict[str, str] = {}

    def collect() -> None:
        out, err = proc.communicate()
        output.update(stdout=out, stderr=err)

    reaper = threading.Thread(target=collect, daemon=True, name=f"strato-ui-{action}")
    reaper.start()
    reaper.join(ACTION_WAIT)
    if reaper.is_alive():
        return {"action": action, "run_id": run_id, "pid": proc.pid, "finished": False}
    return {"action": action, "run_id": run_id, "pid": proc.pid, "finished": True, "exit_code": proc.returncode,
            "stdout": output.get("stdout", ""), "stderr": output.get("stderr", "")}


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or a message saying what to change."""
    try:
        infos = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address[:2] if family == socket.AF_INET else address, family=family)
    except OSError as exc:
        if exc.errno in (98, 48):  # EADDRINUSE on Linux, macOS
            raise StratoError(f"port {port} on {host} is in use; pick another with --port (0 picks a free one)") \
                from None
        raise StratoError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --host or --port") \
            from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(home: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, allow_actions: bool = False) -> None:
    """Serve the UI until interrupted; the line on stdout is the URL (port 0 picks a free port)."""
    import uvicorn

    loopback = is_loopback(host)
    sock = bind(host, port)
    app = create_app(home, allow_actions=allow_actions, loopback_only=loopback)
    if not loopback:
        print(f"warning: strato ui is listening on {host}, beyond this machine, with no authentication: anyone "
              "who can reach it reads every run's input, output and errors"
              + (" and can resume runs" if allow_actions else "") + "; bind to 127.0.0.1 unless that is intended",
              file=sys.stderr)
    mode = "actions allowed" if allow_actions else "read-only"
    print(f"strato ui: {url_of(sock)} ({mode}; store {home / 'strato.db'}); Ctrl-C stops", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
