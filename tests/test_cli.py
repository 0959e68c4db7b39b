"""The `strato` command as a user runs it: JSON contract, exit codes, run history, graphs."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT, Cli

SALES = "examples/daily_sales.py:daily_sales"


def test_run_json_contract_and_exit_codes(cli: Cli, tmp_path: Path) -> None:
    code, ok = cli.json("run", SALES, "--input", json.dumps({"day": "2024-03-01", "warehouse": str(tmp_path / "w.db")}),
                        "--json")
    assert code == 0
    assert set(ok) == {"run_id", "status", "output", "error"}
    assert ok["status"] == "SUCCEEDED" and ok["error"] is None
    assert ok["output"]["summary"]["total_revenue"] == 723.9

    code, failed = cli.json("run", "tests/pipelines/failing.py:failing", "--json")
    assert code == 1
    assert failed["status"] == "FAILED" and failed["output"] is None
    assert failed["error"] == {"error": "ZeroDivisionError", "cause": "division by zero"}


def test_human_output_goes_to_stdout_and_status_to_stderr(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", SALES, "--input", json.dumps({"day": "2024-03-02"}))
    assert result.returncode == 0
    assert json.loads(result.stdout)["alert"] == {"alert": "no sales files arrived for 2024-03-02"}
    assert "SUCCEEDED run" in result.stderr
    failed = cli("run", "tests/pipelines/failing.py:failing")
    assert failed.returncode == 1 and "ZeroDivisionError: division by zero" in failed.stderr
    assert "strato resume" in failed.stderr and "Traceback" not in failed.stderr


def test_input_from_file_and_usage_errors(cli: Cli, tmp_path: Path) -> None:
    payload = tmp_path / "input.json"
    payload.write_text(json.dumps({"a": 6, "b": 3}))
    code, result = cli.json("run", "tests/pipelines/failing.py:failing", "--input", f"@{payload}", "--json")
    assert code == 0 and result["output"] == {"ratio": 2.0}
    for args, message in [
        (["run", SALES, "--input", "{not json"], "--input is not valid JSON"),
        (["run", SALES, "--input", "[1]"], "must be a JSON object"),
        (["run", SALES, "--input", '{"dy": "2024-03-01"}'], "unknown parameter(s) 'dy'"),
        (["run", SALES, "--input", '{"limit": "many"}'], "parameter 'limit'"),
        (["run", SALES, "--input", f"@{tmp_path / 'missing.json'}"], "No such file"),
        (["run", "examples/nope.py:x"], "no such file"),
        (["run", "no_such_module:x"], "no module named 'no_such_module'"),
        (["compile", SALES, "--target", "mars"], "Invalid value for '--target'"),
        (["graph", SALES, "--format", "png"], "Invalid value for '--format'"),
    ]:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_module_references(cli: Cli) -> None:
    code, result = cli.json("run", "examples.daily_sales:daily_sales", "--input", '{"day": "2024-03-02"}', "--json")
    assert code == 0 and result["output"]["files"] == 0


def test_runs_list_and_show(cli: Cli, tmp_path: Path) -> None:
    assert cli.json("runs", "list", "--json") == (0, [])
    _, first = cli.json("run", "tests/pipelines/failing.py:failing", "--json")
    _, second = cli.json("run", "tests/pipelines/failing.py:failing", "--input", '{"b": 2}', "--json")
    code, runs = cli.json("runs", "list", "--json")
    assert code == 0 and [r["run_id"] for r in runs] == [second["run_id"], first["run_id"]]
    assert set(runs[0]) == {"run_id", "pipeline", "status", "started_at", "ended_at"}
    assert [r["status"] for r in runs] == ["SUCCEEDED", "FAILED"]
    assert runs[0]["started_at"] <= runs[0]["ended_at"]

    code, shown = cli.json("runs", "show", first["run_id"], "--json")
    assert shown["error"] == {"error": "ZeroDivisionError", "cause": "division by zero"}
    assert [(a["attempt"], a["status"]) for a in shown["attempts"]] == [(1, "FAILED"), (2, "FAILED")]
    assert shown["units"][0]["key"] == "divide" and shown["units"][0]["attempts"] == 2
    assert shown["units"][0]["duration"] >= 0
    text = cli("runs", "show", first["run_id"])
    assert "divide #2: ZeroDivisionError: division by zero" in text.stdout
    listed = cli("runs")
    assert first["run_id"] in listed.stdout and "FAILED" in listed.stdout
    missing = cli("runs", "show", "nope")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr


def test_graph_formats(cli: Cli) -> None:
    mermaid = cli("graph", SALES)
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart TD")
    assert '[["clean: map clean, max 8"]]' in mermaid.stdout and "-.->" in mermaid.stdout
    dot = cli("graph", SALES, "--format", "dot")
    assert dot.stdout.startswith('digraph "daily_sales" {') and '"extract" -> "clean";' in dot.stdout
    broken = cli("graph", "tests/pipelines/broken.py:broken")
    assert broken.returncode == 1 and "broken.py:18" in broken.stderr


def test_a_target_whose_adapter_is_missing_says_so(monkeypatch) -> None:
    from strato import targets
    from strato.errors import StratoError

    monkeypatch.setitem(targets.BUILTIN, "aws", "strato.adapters.not_installed")
    try:
        targets.get_adapter("aws")
    except StratoError as exc:
        assert "no adapter for target 'aws' is installed" in str(exc)
    else:
        raise AssertionError("a missing adapter must be reported")


def test_progress_is_shown_on_a_terminal_only(cli: Cli) -> None:
    env = cli.env()
    env.pop("STRATO_NO_PROGRESS")
    env.update(COLUMNS="100", TERM="xterm")
    leader, follower = pty.openpty()
    proc = subprocess.run([sys.executable, "-m", "strato", "run", SALES, "--input", '{"day": "2024-03-01"}'],
                          cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=follower, timeout=60)
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    terminal = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "tasks" in terminal and "daily_sales" in terminal  # the Rich progress line
    assert json.loads(proc.stdout)["files"] == 3  # stdout stays clean JSON
    piped = cli("run", SALES, "--input", '{"day": "2024-03-01"}')
    assert "tasks" not in piped.stderr


def test_targets_and_their_capabilities_come_from_the_adapters(cli: Cli) -> None:
    ref = "examples/daily_sales.py:daily_sales"
    proc = cli("worker", ref, "--target", "gcp")
    assert proc.returncode == 2 and "target 'gcp' cannot serve worker tasks; targets that can: aws" in proc.stderr
    proc = cli("invoke", ref, "--target", "gcp", GOOGLE_CLOUD_PROJECT="", STRATO_GCP_LOCATION="")
    assert proc.returncode == 2 and "gcp needs --project" in proc.stderr
    proc = cli("compile", ref, "--target", "nope")
    assert proc.returncode == 2 and "'nope' is not one of 'aws', 'gcp', 'azure'" in proc.stderr
    for output in (proc.stdout, proc.stderr):
        assert "Traceback" not in output
