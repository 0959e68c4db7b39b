"""strato serve: schedules and folder triggers fired on the local runner, state kept in the run store."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strato.loader import load
from strato.runtime.scheduler import Scheduler, Served
from strato.runtime.store import RunStore

from .conftest import ROOT, Cli

DAILY = "tests/pipelines/daily.py:daily"
INGEST = "tests/pipelines/served.py:ingest"


def served(ref: str) -> Served:
    loaded = load(ref)
    return Served(loaded.definition, loaded.ref, loaded.sys_path)


def at(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "strato.db"


def scheduler(db: Path, *refs: str, **options: object) -> Scheduler:
    return Scheduler([served(r) for r in refs], store_factory=lambda: RunStore(db), **options)  # type: ignore[arg-type]


def test_a_cron_schedule_fires_at_its_ticks_across_a_dst_day(db: Path) -> None:
    sched = scheduler(db, DAILY)
    assert sched.tick(at("2024-03-29T12:00:00+01:00")) == []  # first start: the schedule begins now
    assert sched.tick(at("2024-03-30T01:59:59+01:00")) == []
    fired = sched.tick(at("2024-03-30T02:00:00+01:00"))
    assert [f.detail for f in fired] == ["2024-03-30T01:00:00Z"]
    assert sched.wait(30)
    assert sched.tick(at("2024-03-30T02:00:30+01:00")) == []  # a tick fires once
    # 02:00 does not exist on 2024-03-31 in Paris (clocks jump to 03:00 CEST): it fires at 03:00 CEST
    assert sched.tick(at("2024-03-31T01:30:00+01:00")) == []
    fired += sched.tick(at("2024-03-31T03:00:00+02:00"))
    assert sched.wait(30)
    fired += sched.tick(at("2024-04-01T02:00:05+02:00"))
    assert sched.wait(30)
    assert [f.detail for f in fired] == ["2024-03-30T01:00:00Z", "2024-03-31T01:00:00Z", "2024-04-01T00:00:00Z"]
    store = RunStore(db)
    for f in fired:
        record = store.get_run(f.run_id or "")
        assert record is not None and record.status == "SUCCEEDED", f
        assert record.scheduled_at == f.scheduled_at.timestamp()  # type: ignore[union-attr]
        assert record.output["day"] == (f.scheduled_at.astimezone().date()  # type: ignore[union-attr]
                                        .fromordinal(f.scheduled_at.date().toordinal() - 1).isoformat())  # type: ignore[union-attr]


def test_after_a_restart_only_the_latest_missed_tick_runs_unless_catchup(db: Path, tmp_path: Path) -> None:
    first = scheduler(db, DAILY)
    first.tick(at("2024-03-01T12:00:00+01:00"))
    first.close()
    # down for three days: catchup=False runs the latest missed tick only
    again = scheduler(db, DAILY)
    fired = again.tick(at("2024-03-04T12:00:00+01:00"))
    assert [f.detail for f in fired] == ["2024-03-04T01:00:00Z"]
    assert again.wait(30) and fired[0].status == "SUCCEEDED"
    assert again.tick(at("2024-03-04T13:00:00+01:00")) == []
    again.close()
    # catchup=True runs each missed tick, oldest first
    other = tmp_path / "other.db"
    scheduler(other, DAILY).tick(at("2024-03-01T12:00:00+01:00"))
    caught = scheduler(other, DAILY, catchup=True)
    fired = []
    while step := caught.tick(at("2024-03-04T12:00:00+01:00")):  # one at a time (max one active run)
        fired += step
        assert caught.wait(30)
    assert [f.detail for f in fired] == ["2024-03-02T01:00:00Z", "2024-03-03T01:00:00Z", "2024-03-04T01:00:00Z"]
    assert all(f.status == "SUCCEEDED" for f in fired)


def test_a_folder_trigger_fires_once_per_matching_file_across_a_restart(db: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "incoming").mkdir(parents=True)
    (landing / "incoming" / "a.csv").write_text("x,y\n")
    (landing / "incoming" / "notes.txt").write_text("no")  # suffix does not match
    (landing / "b.csv").write_text("no")  # prefix does not match
    sched = scheduler(db, INGEST, buckets={"landing": landing})
    fired = sched.tick(at("2024-03-01T00:00:00+00:00"))
    assert sched.wait(30)
    assert [f.detail for f in fired] == ["landing/incoming/a.csv"]
    record = RunStore(db).get_run(fired[0].run_id or "")
    assert record is not None and record.output == {"bucket": "landing", "key": "incoming/a.csv", "size": 4}
    assert sched.tick(at("2024-03-01T00:00:01+00:00")) == []
    sched.close()
    (landing / "incoming" / "day2").mkdir()
    (landing / "incoming" / "day2" / "c.csv").write_text("1")
    restarted = scheduler(db, INGEST, buckets={"landing": landing})
    fired = restarted.tick(at("2024-03-01T00:01:00+00:00"))
    assert restarted.wait(30)
    assert [f.detail for f in fired] == ["landing/incoming/day2/c.csv"]
    assert restarted.tick(at("2024-03-01T00:02:00+00:00")) == []


def test_at_most_one_run_per_pipeline_at_a_time(db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = tmp_path / "release"
    monkeypatch.setenv("STRATO_TEST_RELEASE", str(release))
    sched = scheduler(db, "tests/pipelines/served.py:blocking")
    minute = 60 * 28_333_333
    sched.tick(minute)
    first = sched.tick(minute + 60)
    assert len(first) == 1 and len(sched.running()) == 1
    assert sched.tick(minute + 120) == [] and sched.tick(minute + 180) == []  # busy: the ticks wait
    release.write_text("go")
    assert sched.wait(30) and first[0].status == "SUCCEEDED"
    later = sched.tick(minute + 200)  # the missed ticks collapse into the latest
    assert [f.scheduled_at.timestamp() for f in later] == [minute + 180]  # type: ignore[union-attr]
    assert sched.wait(30)


def start_service(cli: Cli, *args: str, **env: str) -> tuple[subprocess.Popen, dict[str, str]]:
    """`strato serve` in a subprocess; returns it and the URL of each Http path it announced."""
    proc = subprocess.Popen([sys.executable, "-m", "strato", "serve", *args, "--http-port", "0", "--poll", "0.1"],
                            cwd=ROOT, env=cli.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.startswith("serving"), line + proc.stderr.read()
    return proc, {m.group(2): m.group(1) + m.group(2) for m in re.finditer(r"POST (http://[^/]+)(/\w+)", line)}


def post(url: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_an_http_trigger_starts_a_run_over_real_http(cli: Cli) -> None:
    proc, urls = start_service(cli, "tests/pipelines/served.py:greet", "--json")
    try:
        code, answer = post(urls["/greet"], {"name": "ada"})
        assert code == 202 and answer["pipeline"] == "greet" and answer["run_id"]
        assert post(urls["/greet"], [1, 2])[0] == 400
        assert post(urls["/greet"].replace("/greet", "/nope"), {})[0] == 404
        assert proc.stdout is not None
        events = [json.loads(proc.stdout.readline()) for _ in range(2)]
        assert [e["event"] for e in events] == ["fired", "ended"]
        assert events[1]["run_id"] == answer["run_id"] and events[1]["status"] == "SUCCEEDED"
        code, refused = post(urls["/greet"], {})  # a refused input is answered, and the service goes on
        assert code == 202 and refused["run_id"] is None and refused["status"] == "FAILED"
        assert "name" in refused["error"]["cause"]
        assert post(urls["/greet"], {"name": "bo"})[1]["run_id"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0
    code, shown = cli.json("runs", "show", answer["run_id"], "--json")
    assert shown["status"] == "SUCCEEDED" and shown["output"] == "hello ada"


def test_sigterm_waits_for_the_grace_period_then_leaves_the_run_resumable(cli: Cli, tmp_path: Path) -> None:
    release, started = tmp_path / "release", tmp_path / "started"
    env = {"STRATO_TEST_RELEASE": str(release), "STRATO_TEST_STARTED": str(started)}
    proc, urls = start_service(cli, "tests/pipelines/served.py:held", "--grace", "0.5", **env)
    try:
        code, answer = post(urls["/hold"], {})
        assert code == 202
        assert post(urls["/hold"], {})[0] == 429  # one active run per pipeline
        for _ in range(300):
            if started.exists():
                break
            time.sleep(0.05)  # waiting for another process to write a file: no clock to inject
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == 1 and "INTERRUPTED" in err and answer["run_id"] in err and "strato resume" in err
    _, shown = cli.json("runs", "show", answer["run_id"], "--json")
    assert shown["status"] == "INTERRUPTED"
    release.write_text("go")
    resumed = cli("resume", answer["run_id"], "--json", **env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["output"] == "released"


def test_bad_bucket_mappings_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    bad = cli("serve", INGEST, "--bucket", "landing")
    assert bad.returncode == 2 and "NAME=DIR" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("serve", INGEST, "--bucket", f"landing={tmp_path / 'nope'}")
    assert missing.returncode == 2 and "is not a directory" in missing.stderr


def test_the_service_fires_a_folder_trigger_and_prints_one_line_per_run(cli: Cli, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    (landing / "incoming").mkdir(parents=True)
    (landing / "incoming" / "orders.csv").write_text("a,b\n")
    proc, _ = start_service(cli, INGEST, "--bucket", f"landing={landing}")
    try:
        assert proc.stdout is not None
        fired, ended = proc.stdout.readline(), proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert re.fullmatch(r"fired ingest \(file landing/incoming/orders.csv\) run \S+\n", fired), fired
    assert ended.startswith("ended ingest run ") and ended.rstrip().endswith("SUCCEEDED")
    assert proc.returncode == 0
