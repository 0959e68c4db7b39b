"""Task logs: what each attempt writes is captured apart from the others, capped, redacted and stored."""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from strato import Retry, Secret, pipeline, task
from strato.runtime import RunStore, VirtualClock, run_pipeline
from strato.runtime.runner import Runner
from strato.runtime.store import SCHEMA_VERSION

from .conftest import Cli


def lines_of(store: RunStore, run_id: str, key: str | None = None) -> list[tuple[str, int, str, str]]:
    return [(e["key"], e["attempt"], e["stream"], e["line"]) for e in store.logs(run_id)
            if key is None or e["key"] == key]


def test_concurrent_tasks_each_get_their_own_output() -> None:
    barrier = threading.Barrier(4, timeout=10)
    log = logging.getLogger("tests.logs")

    @task
    def shout(n: int) -> int:
        barrier.wait()  # all four items are running at once
        for i in range(50):
            print(f"item {n} line {i}")
            if i % 10 == 0:
                log.info("item %d logged %d", n, i)
        print(f"item {n} on stderr", file=sys.stderr)
        return n

    @pipeline
    def p():
        return shout.map([0, 1, 2, 3])

    stdout, stderr = sys.stdout, sys.stderr
    store = RunStore.memory()
    result = run_pipeline(p, store=store, clock=VirtualClock(), workers=4)
    assert result.output == [0, 1, 2, 3]
    assert (sys.stdout, sys.stderr) == (stdout, stderr)  # the routers are gone after the run
    for n in range(4):
        got = lines_of(store, result.run_id, f"shout[{n}]")
        printed = [line for _, _, stream, line in got if stream == "stdout"]
        assert printed == [f"item {n} line {i}" for i in range(50)]
        assert [line for _, _, stream, line in got if stream == "log"] == \
            [f"INFO tests.logs: item {n} logged {i}" for i in range(0, 50, 10)]
        assert [line for _, _, stream, line in got if stream == "stderr"] == [f"item {n} on stderr"]


def test_logging_is_captured_at_info_by_default_and_the_root_logger_is_left_as_it_was(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("tests.levels")

    @task
    def chat() -> None:
        log.debug("debug detail")
        log.info("info detail")
        log.warning("warning detail")

    @pipeline
    def p():
        return chat()

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    store = RunStore.memory()
    result = run_pipeline(p, store=store, clock=VirtualClock())
    assert [line for *_, line in lines_of(store, result.run_id)] == ["INFO tests.levels: info detail",
                                                                     "WARNING tests.levels: warning detail"]
    assert (root.level, root.handlers) == (level, handlers)
    monkeypatch.setenv("STRATO_LOG_LEVEL", "DEBUG")
    result = run_pipeline(p, store=store, clock=VirtualClock())
    assert next(line for *_, line in lines_of(store, result.run_id)) == "DEBUG tests.levels: debug detail"


def test_output_past_the_limit_is_cut_with_a_note() -> None:
    @task
    def flood() -> int:
        for i in range(100):
            print(f"{i:04d}" + "x" * 95)  # 100 bytes a line with its newline
        return 1

    @pipeline
    def p():
        return flood()

    store = RunStore.memory()
    result = Runner(store, VirtualClock(), log_limit=1000).start(p.ir, {})
    got = [line for *_, line in lines_of(store, result.run_id)]
    assert got[:10] == [f"{i:04d}" + "x" * 95 for i in range(10)]
    assert len(got) == 11 and got[10].startswith("[strato] log cut: this attempt wrote 9000 more bytes than the "
                                                 "1000-byte limit")
    assert store.log_summary(result.run_id)["flood"]["lines"] == 11


def test_a_failed_attempt_stores_the_users_traceback_only() -> None:
    def parse(text: str) -> int:
        return int(text)

    @task(retry=Retry(max_retries=1, delay=0))
    def load(text: str) -> int:
        return parse(text)

    @pipeline
    def p():
        return load("twelve")

    store = RunStore.memory()
    result = run_pipeline(p, store=store, clock=VirtualClock())
    assert result.status == "FAILED"
    attempts = store.attempts(result.run_id)
    assert [a["attempt"] for a in attempts] == [1, 2]
    trace = attempts[0]["traceback"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "test_logs.py" in trace and "in load" in trace and "in parse" in trace
    assert "strato" not in trace.replace("tests/", "") and "runtime" not in trace  # none of Strato's frames
    assert trace.rstrip().endswith("ValueError: invalid literal for int() with base 10: 'twelve'")
    stored = [line for key, attempt, stream, line in lines_of(store, result.run_id) if stream == "traceback"]
    assert stored == trace.rstrip("\n").split("\n") * 2


def test_secret_values_never_reach_the_stored_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRATO_SECRET_API_TOKEN", "tok-93f1c2")
    log = logging.getLogger("tests.secrets")

    @task
    def call(token: str) -> int:
        print("token=" + token)
        sys.stdout.write("split tok-93")  # one secret written in two pieces, still one line
        sys.stdout.write("f1c2 end\n")
        log.warning("using %s", token)
        raise RuntimeError(f"the API refused {token}")

    @pipeline
    def p():
        return call(Secret("api-token"))

    store = RunStore.memory()
    result = run_pipeline(p, store=store, clock=VirtualClock())
    text = json.dumps(store.logs(result.run_id)) + json.dumps(store.attempts(result.run_id))
    assert "tok-93f1c2" not in text
    assert [line for *_, line in lines_of(store, result.run_id)][:3] == [
        "token=***", "split *** end", "WARNING tests.secrets: using ***"]
    assert "RuntimeError: the API refused ***" in text


def test_a_version_2_store_gains_the_logs_table(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, ref TEXT, sys_path TEXT, ir TEXT NOT NULL,"
        " ir_hash TEXT NOT NULL, input TEXT NOT NULL, status TEXT NOT NULL, output TEXT, error TEXT, started_at REAL "
        "NOT NULL, ended_at REAL, pid INTEGER, host TEXT, resumes INTEGER NOT NULL DEFAULT 0, heartbeat REAL);"
        "CREATE TABLE units (run_id TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, task TEXT, status TEXT NOT "
        "NULL, result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started_at REAL, ended_at REAL, "
        "PRIMARY KEY (run_id, key));"
        "CREATE TABLE attempts (run_id TEXT NOT NULL, key TEXT NOT NULL, attempt INTEGER NOT NULL, status TEXT NOT "
        "NULL, started_at REAL NOT NULL, ended_at REAL, error TEXT, PRIMARY KEY (run_id, key, attempt));"
        "INSERT INTO runs VALUES ('r1','p',NULL,'[]','{}','h','{}','SUCCEEDED','1',NULL,1.0,2.0,1,'h',0,NULL);"
        "INSERT INTO attempts VALUES ('r1','a',1,'SUCCEEDED',1.0,2.0,NULL);"
        "PRAGMA user_version=2;")
    db.close()
    store = RunStore(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 9
    assert store.attempts("r1")[0]["traceback"] is None and store.logs("r1") == []
    record = store.get_run("r1")
    assert record is not None and record.scheduled_at is None and record.rerun_of is None
    store.append_logs("r1", "a", 1, [(1.5, "stdout", "late line")])
    store.commit()
    assert store.logs("r1")[0]["line"] == "late line"


def test_json_output_stays_clean_and_logs_are_in_runs_logs(cli: Cli) -> None:
    ref = "tests/pipelines/chatty.py:chatty"
    result = cli("run", ref, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # nothing but the object, although the tasks and the module print
    assert data["status"] == "SUCCEEDED" and data["output"] == [2, 4, 6]
    assert "hello 1" not in result.stderr  # with --json task output goes to the store only
    run_id = data["run_id"]

    shown = cli("runs", "logs", run_id, "greet")
    assert shown.returncode == 0, shown.stderr
    for n in (1, 2, 3):
        key = f"greet[{n - 1}]"
        assert f"{key} | hello {n}" in shown.stdout
        assert f"{key} ! warning {n}" in shown.stdout
        assert f"{key} | INFO chatty: info record {n}" in shown.stdout
    assert "debug record" not in shown.stdout
    one = cli("runs", "logs", run_id, "greet[1]", "--json")
    assert [e["line"] for e in json.loads(one.stdout)] == ["hello 2", "warning 2", "INFO chatty: info record 2"]
    assert cli("runs", "logs", run_id, "--follow").stdout == cli("runs", "logs", run_id).stdout  # ended: returns
    missing = cli("runs", "logs", run_id, "nope")
    assert missing.returncode == 2 and "has no task 'nope'" in missing.stderr and "greet[0]" in missing.stderr
    summary = cli("runs", "show", run_id)
    assert "3 lines" in summary.stdout and f"strato runs logs {run_id}" in summary.stdout

    human = cli("run", ref)
    assert human.returncode == 0
    assert json.loads(human.stdout.removeprefix("printed while tracing\n")) == [2, 4, 6]
    assert "greet[0] | hello 1" in human.stderr and "greet[2] | INFO chatty: info record 3" in human.stderr


def test_a_failed_run_shows_its_traceback_in_runs_logs_without_the_secret(cli: Cli) -> None:
    result = cli("run", "tests/pipelines/chatty.py:leaky", "--json", STRATO_SECRET_API_TOKEN="sk-live-4242")
    data = json.loads(result.stdout)
    assert result.returncode == 1 and data["error"] == {"error": "PermissionError", "cause": "rejected ***"}
    shown = cli("runs", "logs", data["run_id"])
    assert "use_token | calling the API with ***" in shown.stdout
    assert "use_token #2 ! PermissionError: rejected ***" in shown.stdout
    assert 'use_token ! Traceback (most recent call last):' in shown.stdout
    assert "chatty.py\", line" in shown.stdout and "runtime/invoke.py" not in shown.stdout
    assert "sk-live-4242" not in shown.stdout + result.stdout + result.stderr


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_emulate_json_prints_only_its_json_object_whatever_the_tasks_print(cli: Cli, target: str) -> None:
    """The emulated tasks print and log (on the emulator's threads): with --json that goes to stderr."""
    result = cli("emulate", "tests/pipelines/chatty.py:chatty", "--target", target, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"] == [2, 4, 6]  # the whole stdout is the one object
    assert "hello 2" in result.stderr
