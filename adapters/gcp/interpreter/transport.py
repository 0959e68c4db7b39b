"""How ``http.*`` calls leave the engine.

A transport sends one request and answers ``(status code, headers, body bytes)``; the engine does
the Workflows part (encoding the body, decoding the response, raising ``HttpError`` for an error
status). Three are provided: an in-process Python function, an in-process WSGI application (Flask,
``functions_framework.create_app``), and real HTTP with ``urllib`` (e.g. to a server on 127.0.0.1).
A ``Router`` sends each URL prefix to its own transport.

Network failures are raised as :class:`TransportError` subclasses, each naming the Workflows error
tag it becomes. ``auth`` (e.g. ``{"type": "OIDC"}``) is handed to the transport untouched: only the
transport knows how to obtain a token, if it needs one at all.
"""

from __future__ import annotations

import http.client
import io
import json
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

Response = tuple[int, dict[str, str], bytes]


class Transport(Protocol):
    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Response: ...


class TransportError(Exception):
    """A request that got no HTTP response; ``tag`` is the Workflows error tag it raises."""

    tag = "ConnectionError"


class ConnectionFailed(TransportError):
    """No connection could be established (refused, unknown host)."""

    tag = "ConnectionFailedError"


class ConnectionBroken(TransportError):
    """The connection was made but broke during the exchange."""

    tag = "ConnectionError"


class RequestTimeout(TransportError):
    """No answer within the call's ``timeout``."""

    tag = "TimeoutError"


@dataclass
class HttpRequest:
    """A request as an in-process handler sees it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float
    auth: dict[str, Any] | None
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when there is no body)."""
        return None if not self.body else json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass
class HttpResponse:
    code: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _encode_body(body: Any, headers: dict[str, str]) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return body.encode("utf-8")
    headers.setdefault("Content-Type", "application/json")
    return json.dumps(body).encode("utf-8")


def normalize_response(result: Any) -> Response:
    """What a handler may return -> ``(code, headers, body)``.

    An ``HttpResponse``; a tuple ``(code, body)`` or ``(code, headers, body)``; or just a body
    (``dict``/``list`` become JSON, ``str`` text, ``bytes`` as is) with status 200.
    """
    if isinstance(result, HttpResponse):
        code, headers, body = result.code, dict(result.headers), result.body
    elif isinstance(result, tuple) and len(result) == 3:
        code, headers, body = result[0], dict(result[1]), result[2]
    elif isinstance(result, tuple) and len(result) == 2:
        code, headers, body = result[0], {}, result[1]
    else:
        code, headers, body = 200, {}, result
    return int(code), headers, _encode_body(body, headers)


def _split_url(url: str) -> tuple[str, dict[str, list[str]], urllib.parse.SplitResult]:
    parts = urllib.parse.urlsplit(url)
    return parts.path or "/", urllib.parse.parse_qs(parts.query, keep_blank_values=True), parts


def map_os_error(exc: BaseException) -> TransportError:
    """A socket-level exception -> the transport error (and so the Workflows tag) it stands for."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError | socket.timeout):
        return RequestTimeout(str(exc) or "request timed out")
    if isinstance(exc, ConnectionRefusedError | socket.gaierror):
        return ConnectionFailed(str(exc) or "connection refused")
    return ConnectionBroken(str(exc) or type(exc).__name__)


class FunctionTransport:
    """Calls ``handler(HttpRequest)`` in this process.

    A handler raising ``TimeoutError`` or ``ConnectionError`` (or a :class:`TransportError`) simulates a
    network failure; any other exception becomes a 500 response, as a real server would answer.
    """

    def __init__(self, handler: Callable[[HttpRequest], Any]):
        self.handler = handler
        self.requests: list[HttpRequest] = []

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Response:
        path, query, _ = _split_url(url)
        req = HttpRequest(method, url, dict(headers), body, timeout, auth, path, query)
        self.requests.append(req)
        try:
            result = self.handler(req)
        except (TransportError, OSError) as exc:
            raise map_os_error(exc) from exc
        except Exception as exc:
            return 500, {"Content-Type": "text/plain; charset=utf-8"}, f"{type(exc).__name__}: {exc}".encode()
        return normalize_response(result)


class WsgiTransport:
    """Serves requests with a WSGI application (Flask, ``functions_framework.create_app``...) in-process."""

    def __init__(self, app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]):
        self.app = app
        self.requests: list[HttpRequest] = []

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Response:
        path, query, parts = _split_url(url)
        self.requests.append(HttpRequest(method, url, dict(headers), body, timeout, auth, path, query))
        data = body or b""
        environ: dict[str, Any] = {
            "REQUEST_METHOD": method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": parts.query,
            "SERVER_NAME": parts.hostname or "localhost",
            "SERVER_PORT": str(parts.port or (443 if parts.scheme == "https" else 80)),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_LENGTH": str(len(data)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": parts.scheme or "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for key, value in headers.items():
            name = key.upper().replace("-", "_")
            if name == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif name != "CONTENT_LENGTH":
                environ[f"HTTP_{name}"] = value
        status: list[str] = []
        response_headers: list[tuple[str, str]] = []

        def start_response(status_line: str, headers_list: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[:] = [status_line]
            response_headers[:] = headers_list
            return lambda chunk: None

        result = self.app(environ, start_response)
        try:
            payload = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        code = int(status[0].split(" ", 1)[0]) if status else 500
        return code, dict(response_headers), payload


class UrllibTransport:
    """Real HTTP with ``urllib``, ignoring proxy settings (it is meant for 127.0.0.1 and test hosts).

    ``token_provider(auth, url)``, when given, supplies a bearer token for requests that carry
    ``auth`` (Workflows would mint an OIDC or OAuth2 token for its service account).
    """

    def __init__(self, token_provider: Callable[[dict[str, Any], str], str] | None = None):
        self.token_provider = token_provider
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Response:
        headers = dict(headers)
        if auth is not None and self.token_provider is not None:
            headers["Authorization"] = f"Bearer {self.token_provider(auth, url)}"
        req = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, dict(exc.headers.items()) if exc.headers else {}, exc.read()
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, BaseException) else OSError(str(exc.reason))
            raise map_os_error(reason) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise map_os_error(exc if isinstance(exc, OSError) else ConnectionBroken(str(exc))) from exc


class Router:
    """Dispatches on the longest matching URL prefix; an unknown URL fails like an unreachable host."""

    def __init__(self, routes: Mapping[str, Transport]):
        self.routes = dict(routes)

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Response:
        matches = [prefix for prefix in self.routes if url.startswith(prefix)]
        if not matches:
            raise ConnectionFailed(f"no route for {url}")
        return self.routes[max(matches, key=len)].request(method, url, headers, body, timeout, auth)


class NoTransport:
    """The default: any HTTP call fails as if the host could not be reached."""

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float,
                auth: dict[str, Any] | None) -> Response:
        raise ConnectionFailed(f"no transport configured for {method} {url}")
