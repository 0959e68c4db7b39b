"""The Cloud Function shim, served by the real functions-framework over HTTP on 127.0.0.1, runs only the
tasks of its own deployment (STRATO_TASKS, set by the infra component): a crafted request answers 400
and runs nothing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("functions_framework")

from strato.adapters.gcp.emulator import _app, _served

MARKER: dict[str, int] = {"runs": 0}


def touch(path: str) -> str:
    MARKER["runs"] += 1
    Path(path).write_text("ran")
    return "ran"


def post(base: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}/handler", data=data, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_crafted_requests_run_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_TASKS", json.dumps({"parse": "tests.aws.pipelines:parse"}))  # as deployed
    marker = str(tmp_path / "pwned")
    args = {"cmd": {"literal": f"touch {marker}"}, "path": {"literal": marker}}
    crafted: list[Any] = [
        {"task": "x", "fn": "subprocess:getoutput", "args": args},  # the payload of the report
        {"task": "subprocess:getoutput", "args": args},
        {"task": "os:system", "args": {"command": {"literal": f"touch {marker}"}}},
        {"task": "../../tests/gcp/test_shim_security:touch", "args": args},
        {"task": "tests.gcp.test_shim_security:touch", "args": args},
        {"task": 7, "args": args},
        {"task": ["parse"], "args": args},
        {"args": args},
        {"task": "parse", "fn": "tests.gcp.test_shim_security:touch", "args": args},  # a known id redirected
        "parse",
        b"not json",
    ]
    MARKER["runs"] = 0
    with _served(_app(tmp_path)) as base:
        for body in crafted:
            code, answer = post(base, body)
            assert code == 400, (body, answer)
            assert answer["error"] in ("UnknownTask", "RefusedCall"), answer
        assert MARKER["runs"] == 0 and not Path(marker).exists()
        code, answer = post(base, {"task": "parse", "args": {"text": {"literal": "12"}}, "refs": {}, "params": {}})
        assert (code, answer) == (200, 12)
        code, answer = post(base, {"task": "parse", "args": {"text": {"literal": "x"}}, "refs": {}, "params": {}})
        assert (code, answer) == (500, {"error": "ValueError", "cause": "'x' is not a number"})
