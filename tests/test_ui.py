"""`strato ui`: every JSON endpoint and page over a real run store, through Starlette's TestClient, and
the command itself over real HTTP in a subprocess."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed: pip install 'strato[ui]'")
pytest.importorskip("httpx2", reason="Starlette's TestClient needs httpx2 (the dev extra)")

from starlette.testclient import TestClient

from strato.loader import load
from strato.runtime import RunStore, run_pipeline
from strato.ui.server import ACTION_HEADER, available_actions, create_app

from .conftest import PIPELINES, ROOT, Cli

REF = f"{PIPELINES / 'ui_orders.py'}:ui_orders"
XSS = "<script>window.__xss = 1</script><img src=x onerror=alert(1)>"
UI = Path(__file__).resolve().parent.parent / "framework" / "ui"


def _run(home: Path, **payload: Any) -> str:
    """Run the test pipeline on the local runner, recorded as `strato run REF` would (so it can be resumed)."""
    loaded = load(REF)
    home.mkdir(parents=True, exist_ok=True)
    store = RunStore(home / "strato.db")
    try:
        result = run_pipeline(loaded.definition, payload, store=store, ref=loaded.ref, sys_path=loaded.sys_path)
    finally:
        store.close()
    return result.run_id


@pytest.fixture
def runs(strato_home: Path) -> dict[str, str]:
    return {"ok": _run(strato_home), "failed": _run(strato_home, fail_with=XSS)}


def _client(home: Path, **options: Any) -> TestClient:
    return TestClient(create_app(home, **options), base_url="http://127.0.0.1")


@pytest.fixture
def client(strato_home: Path, runs: dict[str, str]) -> Iterator[TestClient]:
    with _client(strato_home) as c:
        yield c


# runs ------------------------------------------------------------------------------------------
def test_runs_newest_first_with_the_filter_choices(client: TestClient, runs: dict[str, str]) -> None:
    data = client.get("/api/runs").json()
    assert [r["run_id"] for r in data["runs"]] == [runs["failed"], runs["ok"]]
    assert [r["status"] for r in data["runs"]] == ["FAILED", "SUCCEEDED"]
    assert data["pipelines"] == ["ui_orders"]
    assert data["statuses"] == ["RUNNING", "SUCCEEDED", "FAILED", "INTERRUPTED"]
    failed = data["runs"][0]
    assert failed["error"] == {"error": "ValueError", "cause": XSS}
    assert failed["duration"] is not None and failed["duration"] >= 0


@pytest.mark.parametrize(("query", "expected"), [
    ("pipeline=ui_orders", ["failed", "ok"]),
    ("pipeline=other", []),
    ("status=FAILED", ["failed"]),
    ("status=SUCCEEDED", ["ok"]),
    ("status=RUNNING", []),
    ("since=1h", ["failed", "ok"]),
    ("since=2999-01-01", []),
    ("until=2000-01-01T00:00:00Z", []),
    ("since=2000-01-01&until=2999-12-31T23:59:59%2B02:00", ["failed", "ok"]),
    ("limit=1", ["failed"]),
])
def test_runs_filter_by_pipeline_status_and_time(client: TestClient, runs: dict[str, str], query: str,
                                                 expected: list[str]) -> None:
    response = client.get(f"/api/runs?{query}")
    assert response.status_code == 200, response.text
    assert [r["run_id"] for r in response.json()["runs"]] == [runs[name] for name in expected]


@pytest.mark.parametrize(("query", "message"), [
    ("status=DONE", "status='DONE': choose one of RUNNING, SUCCEEDED, FAILED, INTERRUPTED"),
    ("since=yesterday", "since='yesterday': give an ISO 8601 date or time"),
    ("until=3x", "until='3x': give an ISO 8601 date or time"),
    ("limit=0", "limit=0: give a number from 1 to 500"),
    ("limit=ten", "limit='ten': give a whole number"),
])
def test_bad_filters_are_answered_with_what_to_give(client: TestClient, query: str, message: str) -> None:
    response = client.get(f"/api/runs?{query}")
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_an_interrupted_run_is_shown_and_filtered_as_interrupted(strato_home: Path, runs: dict[str, str],
                                                                 client: TestClient) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with sqlite3.connect(strato_home / "strato.db") as db:  # the owner died mid-run: RUNNING, load in flight
        db.execute("UPDATE runs SET status='RUNNING', ended_at=NULL, pid=? WHERE run_id=?", (dead.pid, runs["failed"]))
        db.execute("UPDATE units SET status='RUNNING', ended_at=NULL WHERE run_id=? AND key='load'", (runs["failed"],))
    listed = client.get("/api/runs?status=INTERRUPTED").json()["runs"]
    assert [r["run_id"] for r in listed] == [runs["failed"]]
    assert client.get("/api/runs?status=RUNNING").json()["runs"] == []
    nodes = {n["id"]: n for n in client.get(f"/api/runs/{runs['failed']}").json()["graph"]["nodes"]}
    assert nodes["load"]["state"] == "INTERRUPTED"


def test_no_store_yet_reads_as_no_runs_and_creates_nothing(strato_home: Path) -> None:
    with _client(strato_home) as c:
        assert c.get("/api/runs").json()["runs"] == []
        assert c.get("/api/pipelines").json() == []
        missing = c.get("/api/runs/20240301T000000-00000000")
        assert missing.status_code == 404 and "no run '20240301T000000-00000000'" in missing.json()["error"]
        assert c.get("/").status_code == 200
    assert not (strato_home / "strato.db").exists()


def test_a_corrupt_store_is_a_message_not_a_traceback(strato_home: Path) -> None:
    strato_home.mkdir(parents=True)
    (strato_home / "strato.db").write_bytes(b"not a database" * 100)
    with _client(strato_home) as c:
        response = c.get("/api/runs")
    assert response.status_code == 503
    assert "is not a usable SQLite database" in response.json()["error"]


# one run ---------------------------------------------------------------------------------------
def test_a_failed_run_has_its_graph_states_attempts_and_error(client: TestClient, runs: dict[str, str]) -> None:
    run = client.get(f"/api/runs/{runs['failed']}").json()
    assert (run["status"], run["pipeline"], run["input"]) == ("FAILED", "ui_orders",
                                                              {"day": "2024-03-01", "fail_with": XSS})
    assert run["error"] == {"error": "ValueError", "cause": XSS}
    assert run["ref"] == load(REF).ref and run["logs_available"] is True
    nodes = {n["id"]: n for n in run["graph"]["nodes"]}
    assert {k: n["state"] for k, n in nodes.items()} == {"extract": "SUCCEEDED", "clean": "SUCCEEDED",
                                                          "load": "FAILED", "announce": "NOT_RUN"}
    assert nodes["load"]["attempts"] == 2 and nodes["load"]["error"]["cause"] == XSS
    assert nodes["clean"]["kind"] == "map"
    assert nodes["clean"]["items"] == {"started": 3, "total": 3, "by_status": {"SUCCEEDED": 3}, "retried": 0}
    assert nodes["announce"]["guard"] == {"branch": "when_1", "arm": True, "condition": 'load["rows"] > 0'}
    assert {(e["from"], e["to"], e["kind"]) for e in run["graph"]["edges"]} == {
        ("extract", "clean", "data"), ("clean", "load", "data"), ("load", "announce", "data")}
    load_attempts = [a for a in run["attempts"] if a["key"] == "load"]
    assert [(a["attempt"], a["status"]) for a in load_attempts] == [(1, "FAILED"), (2, "FAILED")]
    assert all(a["error"]["cause"] == XSS and a["duration"] is not None for a in load_attempts)
    assert {u["key"] for u in run["units"]} >= {"extract", "clean", "clean[0]", "clean[1]", "clean[2]", "load"}
    assert run["actions"] == []  # read-only unless --allow-actions


def test_a_successful_run_has_its_output_and_every_node_done(client: TestClient, runs: dict[str, str]) -> None:
    run = client.get(f"/api/runs/{runs['ok']}").json()
    assert run["status"] == "SUCCEEDED" and run["error"] is None
    assert run["output"] == {"loaded": {"rows": 15}, "message": "loaded 15 rows"}
    assert {n["state"] for n in run["graph"]["nodes"]} == {"SUCCEEDED"}
    assert run["graph"]["states"] == ["SUCCEEDED"]


def test_a_large_result_is_left_out_of_the_polled_answer(strato_home: Path, runs: dict[str, str],
                                                          client: TestClient) -> None:
    big = {"rows": ["x" * 1000] * 100}
    with sqlite3.connect(strato_home / "strato.db") as db:
        db.execute("UPDATE units SET result=? WHERE run_id=? AND key='extract'", (json.dumps(big), runs["ok"]))
    units = {u["key"]: u for u in client.get(f"/api/runs/{runs['ok']}").json()["units"]}
    assert units["extract"]["result"] is None and units["extract"]["result_omitted"] is True
    assert units["extract"]["result_bytes"] == len(json.dumps(big))
    assert units["load"]["result"] == {"rows": 15} and "result_omitted" not in units["load"]


def test_an_unknown_run_is_404(client: TestClient) -> None:
    response = client.get("/api/runs/nope")
    assert response.status_code == 404 and response.json()["error"].startswith("no run 'nope' in ")


# logs ------------------------------------------------------------------------------------------
def test_a_failed_attempt_shows_the_logs_the_runner_stored(client: TestClient, runs: dict[str, str]) -> None:
    lines = client.get(f"/api/runs/{runs['failed']}/logs?key=load&attempt=2").json()["lines"]
    assert (lines[0]["stream"], lines[0]["line"]) == ("stdout", "loading 3 batches")
    assert {line["stream"] for line in lines[1:]} == {"traceback"}
    assert any("ValueError" in line["line"] for line in lines)
    run = client.get(f"/api/runs/{runs['failed']}").json()
    (last,) = [a for a in run["attempts"] if a["key"] == "load" and a["attempt"] == 2]
    assert "ValueError" in last["error"]["traceback"]


def test_logs_are_empty_when_the_store_keeps_none(strato_home: Path, client: TestClient, runs: dict[str, str]) -> None:
    with sqlite3.connect(strato_home / "strato.db") as db:  # a store written before task logs were kept
        db.execute("DROP TABLE logs")
    response = client.get(f"/api/runs/{runs['failed']}/logs?key=load&attempt=2")
    assert response.status_code == 200
    assert response.json() == {"available": False, "lines": [], "truncated": False}
    assert client.get("/api/runs/nope/logs").status_code == 404


@pytest.mark.parametrize("columns", [
    ("run_id TEXT, key TEXT, attempt INTEGER, ts REAL, stream TEXT, line TEXT", "key", "stream", "line"),
    ("run_id TEXT, key TEXT, attempt INTEGER, seq INTEGER, at REAL, level TEXT, message TEXT", "key", "level",
     "message"),
])
def test_logs_are_read_from_a_logs_table_per_attempt(strato_home: Path, runs: dict[str, str], client: TestClient,
                                                     columns: tuple[str, str, str, str]) -> None:
    schema, key, stream, line = columns
    ts = "at" if " at " in schema else "ts"
    run_id = runs["failed"]
    with sqlite3.connect(strato_home / "strato.db") as db:  # other shapes of a logs table read as well
        db.execute("DROP TABLE logs")
        db.execute(f"CREATE TABLE logs ({schema})")
        for attempt in (1, 2):
            for i, text in enumerate([f"loading attempt {attempt}", XSS]):
                db.execute(f"INSERT INTO logs (run_id, {key}, attempt, {ts}, {stream}, {line}) VALUES (?,?,?,?,?,?)",
                           (run_id, "load", attempt, 1700000000.0 + attempt + i / 10, "stderr" if i else "stdout",
                            text))
        db.execute(f"INSERT INTO logs (run_id, {key}, attempt, {ts}, {stream}, {line}) VALUES (?,?,?,?,?,?)",
                   (run_id, "extract", 1, 1699999999.0, "stdout", "listing"))
    data = client.get(f"/api/runs/{run_id}/logs?key=load&attempt=2").json()
    assert data["available"] is True and data["truncated"] is False
    assert [(r["key"], r["attempt"], r["stream"], r["line"]) for r in data["lines"]] == [
        ("load", 2, "stdout", "loading attempt 2"), ("load", 2, "stderr", XSS)]
    assert data["lines"][0]["ts"] == "2023-11-14T22:13:22.000+00:00"
    assert len(client.get(f"/api/runs/{run_id}/logs").json()["lines"]) == 5
    assert client.get(f"/api/runs/{run_id}/logs?key=load&attempt=x").status_code == 400
    assert client.get(f"/api/runs/{run_id}").json()["logs_available"] is True


# pipelines -------------------------------------------------------------------------------------
def test_pipelines_list_their_graph_versions(client: TestClient) -> None:
    (entry,) = client.get("/api/pipelines").json()
    assert entry["name"] == "ui_orders" and entry["runs"] == 2
    (version,) = entry["versions"]
    assert version["hash"] == load(REF).definition.ir.hash and version["runs"] == 2


def test_a_pipeline_shows_the_stored_ir(client: TestClient) -> None:
    p = client.get("/api/pipelines/ui_orders").json()
    assert p["hash"] == load(REF).definition.ir.hash
    assert [(x["name"], x["default"]) for x in p["params"]] == [("day", "2024-03-01"), ("fail_with", "")]
    assert p["schedule"]["cron"] == "0 3 * * *" and p["triggers"] == []
    assert p["tags"] == {"owner": "data-eng", "data-classification": "internal"} and p["classification"] == "internal"
    assert p["datasets"] == {"reads": {"s3://raw/orders/": ["extract"]}, "writes": {"warehouse.orders": ["load"]}}
    tasks = {t["name"]: t for t in p["tasks"]}
    assert tasks["load"]["retry"]["max_retries"] == 1 and tasks["extract"]["tags"]["layer"] == "raw"
    assert [n["id"] for n in p["graph"]["nodes"]] == ["extract", "clean", "load", "announce"]
    assert all("state" not in n for n in p["graph"]["nodes"])
    assert p["ir"]["name"] == "ui_orders"
    assert client.get(f"/api/pipelines/ui_orders?hash={p['hash']}").json()["hash"] == p["hash"]


def test_unknown_pipelines_and_versions_are_404(client: TestClient) -> None:
    assert client.get("/api/pipelines/nope").json()["error"].startswith("no run of pipeline 'nope'")
    response = client.get("/api/pipelines/ui_orders?hash=abcdef0123456789")
    assert response.status_code == 404 and "with graph abcdef012345" in response.json()["error"]


def test_the_compiled_artifact_per_cloud_comes_from_the_adapters(client: TestClient) -> None:
    from strato.targets import get_adapter

    aws = client.get("/api/pipelines/ui_orders/compile/aws")
    assert aws.status_code == 200, aws.text
    (artifact,) = aws.json()["files"]
    assert artifact["path"] == "ui_orders.asl.json"
    assert json.loads(artifact["text"])["StartAt"]
    assert any("retry delay 0.01s becomes 1s" in w for w in aws.json()["warnings"])
    gcp = client.get("/api/pipelines/ui_orders/compile/gcp").json()
    assert [f["path"] for f in gcp["files"]] == ["ui_orders.workflow.yaml"]
    azure = client.get("/api/pipelines/ui_orders/compile/azure").json()
    assert "ui_orders/function_app.py" in [f["path"] for f in azure["files"]]
    # the same bytes `strato compile` writes
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = get_adapter("aws").compile(load(REF).definition.ir, Path(tmp))
        assert Path(result.paths[0]).read_text() == artifact["text"]
    unknown = client.get("/api/pipelines/ui_orders/compile/oracle")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "unknown target 'oracle'; choose one of aws, gcp, azure"


def test_compiling_is_lazy_and_kept(strato_home: Path, runs: dict[str, str]) -> None:
    app = create_app(strato_home)
    code = "import sys, strato.ui.server; print([m for m in ('strato.adapters.aws', 'starlette') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with TestClient(app, base_url="http://127.0.0.1") as c:
        first = c.get("/api/pipelines/ui_orders/compile/aws").json()
        started = time.perf_counter()
        assert c.get("/api/pipelines/ui_orders/compile/aws").json() == first
        assert time.perf_counter() - started < 0.5


# pages, headers, safety ------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "page"), [("/", "runs"), ("/runs/anything", "run"), ("/pipelines", "pipelines"),
                                            ("/pipelines/ui_orders", "pipeline")])
def test_pages_are_html_shells_with_a_strict_content_policy(client: TestClient, path: str, page: str) -> None:
    response = client.get(path)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert f'data-page="{page}"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy and "unsafe" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    # only this server's own files: no inline script, no other origin
    assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", response.text)
    assert not re.search(r"(src|href)=\"(https?:)?//", response.text)


def test_the_graph_library_is_vendored_with_its_license(client: TestClient) -> None:
    script = client.get("/static/vendor/dagre.min.js")
    assert script.status_code == 200 and "dagre" in script.text[:200]
    assert "Copyright (c) 2012-2014 Chris Pettitt" in (UI / "static" / "vendor" / "dagre.LICENSE").read_text()
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/app.css").status_code == 200


def test_the_script_never_parses_store_data_as_html() -> None:
    """Values from the store reach the page as text nodes only; these APIs would parse them as HTML."""
    script = (UI / "static" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink


def test_requests_for_another_host_name_are_refused(strato_home: Path, runs: dict[str, str]) -> None:
    with _client(strato_home) as c:
        response = c.get("/api/runs", headers={"Host": "attacker.example:8642"})
        assert response.status_code == 421
        assert c.get("/api/runs", headers={"Host": "localhost:8642"}).status_code == 200
        assert c.get("/api/runs", headers={"Host": "[::1]:8642"}).status_code == 200
    with TestClient(create_app(strato_home, loopback_only=False), base_url="http://ui.example") as c:
        assert c.get("/api/runs").status_code == 200


# actions ---------------------------------------------------------------------------------------
def test_actions_are_refused_unless_allowed(client: TestClient, runs: dict[str, str]) -> None:
    assert client.get("/api/config").json()["actions"] == []
    response = client.post(f"/api/runs/{runs['failed']}/resume", headers={ACTION_HEADER: "1"})
    assert response.status_code == 403
    assert response.json()["error"] == "resume is not available: start strato ui with --allow-actions"
    assert client.get(f"/api/runs/{runs['failed']}/resume").status_code == 405


def _wait(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_resume_from_the_ui_runs_strato_resume(strato_home: Path, runs: dict[str, str]) -> None:
    with _client(strato_home, allow_actions=True) as c:
        assert "resume" in c.get("/api/config").json()["actions"]
        failed = c.get(f"/api/runs/{runs['failed']}").json()
        assert "resume" in failed["actions"]
        assert "resume" not in c.get(f"/api/runs/{runs['ok']}").json()["actions"]
        url = f"/api/runs/{runs['failed']}/resume"
        assert c.post(url).status_code == 403  # no action header: not from the page
        foreign = c.post(url, headers={ACTION_HEADER: "1", "Origin": "http://attacker.example"})
        assert foreign.status_code == 403 and foreign.json()["error"] == "cross-origin actions are refused"
        conflict = c.post(f"/api/runs/{runs['ok']}/resume", headers={ACTION_HEADER: "1"})
        assert conflict.status_code == 409 and "is SUCCEEDED; it cannot be resumed now" in conflict.json()["error"]
        started = c.post(url, headers={ACTION_HEADER: "1", "Origin": "http://127.0.0.1"})
        assert started.status_code == 200, started.text
        assert started.json()["action"] == "resume" and started.json()["pid"] > 0

        def resumed() -> bool:
            run = c.get(f"/api/runs/{runs['failed']}").json()
            return bool(run["resumes"] == 1 and run["status"] == "FAILED")

        _wait(resumed)
    run = c.get(f"/api/runs/{runs['failed']}").json()
    # resume ran load again (attempts 3 and 4) and it failed the same way
    assert [a["attempt"] for a in run["attempts"] if a["key"] == "load"] == [1, 2, 3, 4]


def test_rerun_is_offered_only_when_the_cli_has_it(strato_home: Path, runs: dict[str, str]) -> None:
    with _client(strato_home, allow_actions=True) as c:
        has_rerun = "rerun" in available_actions()
        assert ("rerun" in c.get(f"/api/runs/{runs['ok']}").json()["actions"]) == has_rerun
        if not has_rerun:
            response = c.post(f"/api/runs/{runs['ok']}/rerun", headers={ACTION_HEADER: "1"})
            assert response.status_code == 403
            assert response.json()["error"] == "rerun is not available: this strato has no `rerun` command"


# the command ------------------------------------------------------------------------------------
def _serve(cli: Cli, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "strato", "ui", "--port", "0", *args], cwd=ROOT, env=cli.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://\S+/", line)
    if not match:
        proc.kill()
        raise AssertionError(f"no URL in {line!r}: {proc.communicate()}")
    return proc, match.group(0)


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=20)
    return out, err


def test_strato_ui_serves_the_store_over_http(cli: Cli, runs: dict[str, str]) -> None:
    from urllib.request import urlopen

    proc, url = _serve(cli)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urlopen(url + "api/runs", timeout=10) as response:
            data = json.loads(response.read())
        assert [r["run_id"] for r in data["runs"]] == [runs["failed"], runs["ok"]]
        with urlopen(url, timeout=10) as response:
            assert "<title>Runs" in response.read().decode()
    finally:
        _, err = _stop(proc)
    assert "warning" not in err


def test_a_non_loopback_bind_is_warned_about(cli: Cli) -> None:
    proc, url = _serve(cli, "--host", "0.0.0.0")
    _, err = _stop(proc)
    assert url.startswith("http://0.0.0.0:")
    assert "warning: strato ui is listening on 0.0.0.0, beyond this machine, with no authentication" in err


def test_a_port_in_use_or_out_of_range_is_a_message(cli: Cli) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("ui", "--port", str(port), timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip() == (f"error: port {port} on 127.0.0.1 is in use; pick another with --port "
                                     "(0 picks a free one)")
    result = cli("ui", "--port", "70000")
    assert result.returncode == 2 and "70000 is not in the range 0<=x<=65535" in result.stderr
    result = cli("ui", "--host", "no-such-host.invalid")
    assert result.returncode == 2 and "error: --host no-such-host.invalid: cannot resolve it" in result.stderr


def test_without_the_ui_extra_the_command_says_what_to_install(cli: Cli) -> None:
    code = ("import sys; sys.modules['uvicorn'] = None; sys.modules['starlette'] = None; "
            "from strato.cli import main; main(['ui'])")
    result = subprocess.run([sys.executable, "-c", code], env=cli.env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "install it with: pip install 'strato[ui]'" in result.stderr and "Traceback" not in result.stderr
