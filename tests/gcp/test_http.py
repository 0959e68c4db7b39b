"""Conformance of ``http.*`` calls with the reference's http.request/get/post pages and "Make an HTTP request".

Rules: the result is a map with ``body``, ``code`` and ``headers``; without a Content-Type a body is
JSON-encoded (``application/json; charset=utf-8``), or sent as ``application/octet-stream`` when it
is bytes; ``query`` is URL-encoded onto the URL; ``timeout`` defaults to 300 s and may not exceed
1800 s; ``auth`` is a map whose ``type`` is OIDC or OAuth2; a JSON response body is parsed; an error
status raises ``HttpError`` carrying ``code``, ``headers`` and ``body``; network trouble raises
``ConnectionError`` / ``ConnectionFailedError`` / ``TimeoutError``.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.adapters.gcp.interpreter import (
    FunctionTransport,
    HttpRequest,
    HttpResponse,
    Router,
    UrllibTransport,
    WorkflowSyntaxError,
    WsgiTransport,
    load_workflow,
)

from .helpers import failure, result, run, tags

POST = """
main:
  params: [args]
  steps:
    - send:
        call: http.post
        args:
          url: ${args.url + "/orders"}
          headers:
            X-Request-Id: "r-1"
          query:
            day: ${args.day}
            ids: [1, 2]
          body:
            order: ${args.order}
            qty: 2
          auth:
            type: OIDC
          timeout: 30
        result: response
    - done:
        return: ${response}
"""


def echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse(201, {"received": request.json, "path": request.path, "query": request.query},
                        {"X-Served-By": "echo"})


def test_post_through_an_in_process_function() -> None:
    transport = FunctionTransport(echo)
    response = result(POST, {"url": "https://orders.example", "day": "2024-03-01", "order": "A-1"},
                      transport=transport)
    assert response["code"] == 201
    assert response["body"] == {"received": {"order": "A-1", "qty": 2}, "path": "/orders",
                                "query": {"day": ["2024-03-01"], "ids": ["1", "2"]}}
    assert response["headers"]["X-Served-By"] == "echo"
    (sent,) = transport.requests
    assert sent.method == "POST"
    assert sent.url == "https://orders.example/orders?day=2024-03-01&ids=1&ids=2"
    assert sent.header("Content-Type") == "application/json; charset=utf-8"
    assert sent.header("X-Request-Id") == "r-1"
    assert sent.auth == {"type": "OIDC"}
    assert sent.timeout == 30


def test_request_defaults_and_methods() -> None:
    transport = FunctionTransport(lambda request: {"method": request.method})
    source = """
- get:
    call: http.get
    args:
      url: https://svc.example/x
    result: a
- generic:
    call: http.request
    args:
      method: PATCH
      url: https://svc.example/x
    result: b
- delete:
    call: http.delete
    args:
      url: https://svc.example/x
    result: c
- done:
    return: ${[a.body.method, b.body.method, c.body.method, a.code]}
"""
    assert result(source, transport=transport) == ["GET", "PATCH", "DELETE", 200]
    assert [r.timeout for r in transport.requests] == [300.0] * 3
    assert [r.body for r in transport.requests] == [None] * 3


def test_http_error_carries_code_body_and_headers() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(404, {"error": "no such order"}, {"X-Trace": "t1"})

    source = """
- get:
    try:
      call: http.get
      args:
        url: https://svc.example/orders/9
    except:
      as: e
      steps:
        - out:
            return: ${e}
"""
    err = result(source, transport=FunctionTransport(handler))
    assert err["code"] == 404
    assert err["body"] == {"error": "no such order"}
    assert err["headers"]["X-Trace"] == "t1"
    assert err["tags"] == ["HttpError"]
    assert "404" in err["message"]


def test_success_codes_are_results() -> None:
    for code in (200, 202, 204, 302):
        transport = FunctionTransport(lambda request, code=code: HttpResponse(code))
        out = result([{"g": {"call": "http.get", "args": {"url": "https://x"}, "result": "r"}},
                      {"d": {"return": "${r}"}}], transport=transport)
        assert out["code"] == code and out["body"] is None


@pytest.mark.parametrize(("exc", "tag"), [
    (ConnectionResetError("reset by peer"), "ConnectionError"),
    (ConnectionRefusedError("refused"), "ConnectionFailedError"),
    (TimeoutError("took too long"), "TimeoutError"),
])
def test_transport_failures_raise_tagged_errors(exc: Exception, tag: str) -> None:
    def handler(request: HttpRequest) -> None:
        raise exc

    err = failure([{"g": {"call": "http.get", "args": {"url": "https://x"}}}], transport=FunctionTransport(handler))
    assert tags(err) == [tag]


def test_without_a_transport_every_call_fails_to_connect() -> None:
    assert tags(failure([{"g": {"call": "http.get", "args": {"url": "https://x"}}}])) == ["ConnectionFailedError"]


def test_handler_crash_is_a_500() -> None:
    def handler(request: HttpRequest) -> None:
        raise ValueError("bug in the handler")

    err = failure([{"g": {"call": "http.get", "args": {"url": "https://x"}}}], transport=FunctionTransport(handler))
    assert err["code"] == 500 and "bug in the handler" in err["body"]


def test_body_encodings_and_response_decoding() -> None:
    def handler(request: HttpRequest) -> HttpResponse:
        kind = request.path.strip("/")
        if kind == "text":
            return HttpResponse(200, "plain", {"Content-Type": "text/plain; charset=utf-8"})
        if kind == "binary":
            return HttpResponse(200, b"\x00\x01", {"Content-Type": "application/octet-stream"})
        return HttpResponse(200, {"content_type": request.header("Content-Type"), "raw": request.body.decode()})

    source = """
- bytes_body:
    call: http.post
    args:
      url: https://svc/echo
      body: ${text.encode("raw")}
    result: a
- form_body:
    call: http.post
    args:
      url: https://svc/echo
      headers:
        Content-Type: application/x-www-form-urlencoded
      body:
        k: v w
    result: b
- text_response:
    call: http.get
    args:
      url: https://svc/text
    result: c
- binary_response:
    call: http.get
    args:
      url: https://svc/binary
    result: d
- done:
    return: ${[a.body, b.body, c.body, len(d.body)]}
"""
    a, b, c, d = result(source, transport=FunctionTransport(handler))
    assert a == {"content_type": "application/octet-stream", "raw": "raw"}
    assert b == {"content_type": "application/x-www-form-urlencoded", "raw": "k=v+w"}
    assert c == "plain"
    assert d == 2


@pytest.mark.parametrize(("args", "tag"), [
    ({"url": "https://x", "timeout": 1801}, "ValueError"),
    ({"url": "https://x", "timeout": 0}, "ValueError"),
    ({"url": "https://x", "auth": {"type": "Basic"}}, "ValueError"),
    ({"url": 42}, "TypeError"),
    ({"url": "https://x", "headers": {"X-N": 1}}, "TypeError"),
])
def test_bad_arguments(args: dict[str, Any], tag: str) -> None:
    transport = FunctionTransport(lambda request: "ok")
    assert tags(failure([{"g": {"call": "http.get", "args": args}}], transport=transport)) == [tag]
    assert transport.requests == []


def test_call_arguments_are_checked_before_running() -> None:
    with pytest.raises(WorkflowSyntaxError, match=r"step 'g' of 'main': http.get needs argument 'url'"):
        load_workflow([{"g": {"call": "http.get", "args": {}}}])
    with pytest.raises(WorkflowSyntaxError, match=r"http.request needs argument 'method'"):
        load_workflow([{"g": {"call": "http.request", "args": {"url": "https://x"}}}])
    with pytest.raises(WorkflowSyntaxError, match=r"http.post has no argument 'bogus'"):
        load_workflow([{"g": {"call": "http.post", "args": {"url": "https://x", "bogus": 1}}}])
    with pytest.raises(WorkflowSyntaxError, match=r"'private_service_name' is not supported"):
        load_workflow([{"g": {"call": "http.get", "args": {"url": "https://x", "private_service_name": "s"}}}])
    with pytest.raises(WorkflowSyntaxError, match=r"objects.get is not supported by this emulator"):
        load_workflow([{"g": {"call": "googleapis.storage.v1.objects.get", "args": {}}}])


def test_wsgi_application_in_process() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("strato_test_wsgi")

    @app.post("/run/<name>")
    def run_task(name: str) -> Any:
        payload = flask.request.get_json()
        if payload.get("fail"):
            return flask.jsonify({"error": "ValueError", "cause": "bad"}), 500
        return flask.jsonify({"task": name, "doubled": payload["n"] * 2,
                              "auth": flask.request.headers.get("Authorization")})

    transport = WsgiTransport(app)
    source = """
main:
  params: [args]
  steps:
    - call_task:
        call: http.post
        args:
          url: http://tasks.local/run/double
          body: ${args}
        result: r
    - done:
        return: ${r.body}
"""
    assert result(source, {"n": 21}, transport=transport) == {"task": "double", "doubled": 42, "auth": None}
    err = failure(source, {"n": 1, "fail": True}, transport=transport)
    assert err["code"] == 500 and err["body"] == {"error": "ValueError", "cause": "bad"}


def test_router_sends_each_prefix_to_its_transport() -> None:
    router = Router({"https://a.example/": FunctionTransport(lambda r: "a"),
                     "https://a.example/special/": FunctionTransport(lambda r: "special")})
    source = """
- one:
    call: http.get
    args:
      url: https://a.example/x
    result: r1
- two:
    call: http.get
    args:
      url: https://a.example/special/y
    result: r2
- done:
    return: ${[r1.body, r2.body]}
"""
    assert result(source, transport=router) == ["a", "special"]
    assert tags(failure([{"g": {"call": "http.get", "args": {"url": "https://b.example/"}}}],
                        transport=router)) == ["ConnectionFailedError"]


# --- Real HTTP on 127.0.0.1: a Cloud Functions handler served by Google's functions-framework

FUNCTION_SOURCE = '''
import functions_framework
from flask import jsonify


@functions_framework.http
def handle(request):
    if request.path == "/fail":
        return jsonify({"error": "bad input"}), 422
    return jsonify({
        "echo": request.get_json(silent=True),
        "method": request.method,
        "path": request.path,
        "query": request.args.to_dict(),
        "authorization": request.headers.get("Authorization"),
        "content_type": request.headers.get("Content-Type"),
    })
'''


@pytest.fixture(scope="module")
def function_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    functions_framework = pytest.importorskip("functions_framework")
    from werkzeug.serving import make_server

    source: Path = tmp_path_factory.mktemp("function") / "strato_echo_function.py"
    source.write_text(FUNCTION_SOURCE)
    app = functions_framework.create_app("handle", str(source), "http")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_post_over_real_http_to_functions_framework(function_url: str) -> None:
    tokens: list[tuple[dict[str, Any], str]] = []

    def token_provider(auth: dict[str, Any], url: str) -> str:
        tokens.append((auth, url))
        return "test-oidc-token"

    transport = UrllibTransport(token_provider=token_provider)
    response = result(POST, {"url": function_url, "day": "2024-03-01", "order": "B-7"}, transport=transport)
    assert response["code"] == 200
    body = response["body"]
    assert body["echo"] == {"order": "B-7", "qty": 2}
    assert body["method"] == "POST" and body["path"] == "/orders"
    assert body["query"] == {"day": "2024-03-01", "ids": "1"}
    assert body["authorization"] == "Bearer test-oidc-token"
    assert body["content_type"] == "application/json; charset=utf-8"
    assert tokens == [({"type": "OIDC"}, f"{function_url}/orders?day=2024-03-01&ids=1&ids=2")]


def test_http_error_over_real_http(function_url: str) -> None:
    err = failure([{"g": {"call": "http.post", "args": {"url": f"{function_url}/fail", "body": {"x": 1}}}}],
                  transport=UrllibTransport())
    assert err["code"] == 422 and err["body"] == {"error": "bad input"} and tags(err) == ["HttpError"]


def test_refused_connection_over_real_http() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    err = failure([{"g": {"call": "http.get", "args": {"url": f"http://127.0.0.1:{port}/", "timeout": 5}}}],
                  transport=UrllibTransport())
    assert tags(err) == ["ConnectionFailedError"]


def test_response_json_types_survive_the_round_trip(function_url: str) -> None:
    payload = {"i": 1, "d": 1.5, "n": None, "b": True, "s": "é", "l": [1, [2]]}
    source = [{"s": {"call": "http.post", "args": {"url": function_url, "body": payload}, "result": "r"}},
              {"d": {"return": "${r.body.echo}"}}]
    out = run(source, transport=UrllibTransport()).result
    assert out == payload and type(out["i"]) is int and type(out["d"]) is float
    assert json.dumps(out)  # JSON-ready
