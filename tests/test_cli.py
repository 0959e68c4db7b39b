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
        (["compile", SALES, "--target", "mars"], "error: --target: 'mars' is not one of 'aws', 'gcp', 'azure'"),
        (["graph", SALES, "--format", "png"], "error: --format: 'png' is not one of 'mermaid', 'dot'"),
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


def test_usage_errors_name_the_option_and_the_help_to_read(cli: Cli) -> None:
    for args, message in [
        (["run", SALES, "--workers", "0"],
         "error: --workers: 0 is not in the range 1<=x<=1024 (see: strato run --help)"),
        (["run", SALES, "--workers", "many"],
         "error: --workers: 'many' is not a whole number (see: strato run --help)"),
        (["runs", "list", "--limit", "0"], "error: --limit: 0 is not in the range x>=1 (see: strato runs list --help)"),
        (["serve", "x.py:p", "--grace", "-1"], "error: --grace: -1 is not in the range x>=0"),
        (["invoke", SALES, "--target", "aws", "--timeout", "soon"], "error: --timeout: 'soon' is not a number"),
        (["pools", "set", "warehouse", "0"], "error: SLOTS: 0 is not in the range 1<=x<=100000"),
        (["compile", SALES], "error: the following arguments are required: --target (see: strato compile --help)"),
        (["runs", "logs"], "error: the following arguments are required: RUN_ID (see: strato runs logs --help)"),
        (["serve"], "error: the following arguments are required: REF (see: strato serve --help)"),
        (["run", SALES, "--bogus"], "error: unrecognized arguments: --bogus (see: strato run --help)"),
        (["run", SALES, "--work"], "error: unrecognized arguments: --work"),  # no abbreviations of --workers
        (["runs", "show"], "(see: strato runs show --help)"),
        (["nosuch"], "'nosuch'"),
        (["runs", "nosuch"], "'nosuch'"),
    ]:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and message in result.stderr, (args, result.stderr)
        assert len(result.stderr.splitlines()) == 1 and result.stdout == "", (args, result.stderr)


def test_version_and_help(cli: Cli) -> None:
    from importlib.metadata import version

    shown = cli("--version")
    assert (shown.returncode, shown.stdout) == (0, f"strato, version {version('strato')}\n")
    helped = cli("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: strato")
    for line in ("validate  Check a pipeline; print every problem as file:line: message.",
                 "runs      Runs recorded in the run store ($STRATO_HOME).", "--version"):
        assert line in helped.stdout, helped.stdout
    bare = cli()  # a command is needed: the help, as a usage error
    assert bare.returncode == 2 and bare.stdout == "" and "validate  Check a pipeline" in bare.stderr
    pools = cli("pools")
    assert pools.returncode == 2 and "set     At most SLOTS attempts" in pools.stderr
    compile_help = cli("compile", "-h", COLUMNS="200")
    assert compile_help.returncode == 0
    assert "Compile a pipeline into the target cloud's native artifacts." in compile_help.stdout
    assert "--target {aws,gcp,azure}" in compile_help.stdout and "(default: build)" in compile_help.stdout
    logs_help = cli("runs", "logs", "--help", COLUMNS="200")
    assert "-f, --follow" in logs_help.stdout and "--poll" not in logs_help.stdout  # hidden
    assert "TASK narrows it to one call id" in logs_help.stdout  # the docstring's paragraphs


def test_runs_alone_lists_the_runs(cli: Cli) -> None:
    empty = cli("runs")
    assert empty.returncode == 0 and "no runs yet" in empty.stdout
    _, ran = cli.json("run", "tests/pipelines/failing.py:failing", "--json")
    listed = cli("runs")
    assert listed.returncode == 0 and ran["run_id"] in listed.stdout and listed.stdout == cli("runs", "list").stdout


def test_policy_is_repeatable(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "house_rules.py").write_text("from strato import RequireTags\n\nowner = RequireTags('owner')\n"
                                             "team = [RequireTags('team')]\n")
    ref = str(ROOT / "tests" / "pipelines" / "failing.py") + ":failing"
    one = cli("validate", ref, "--policy", "house_rules:owner", cwd=tmp_path)
    assert one.returncode == 1 and "'owner'" in one.stderr and "'team'" not in one.stderr
    both = cli("validate", ref, "--policy", "house_rules:owner", "--policy", "house_rules:team", cwd=tmp_path)
    assert both.returncode == 1 and "'owner'" in both.stderr and "'team'" in both.stderr, both.stderr


def test_a_file_is_no_output_directory(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    for command, option in (("compile", "--out"), ("package", "--out"), ("emulate", "--work-dir")):
        result = cli(command, SALES, "--target", "gcp", option, str(tmp_path / "afile"))
        assert result.returncode == 2
        assert result.stderr == (f"error: {option}: {tmp_path / 'afile'} is a file; give a directory "
                                 f"(see: strato {command} --help)\n")


def test_the_builtin_targets_are_those_of_strato_targets() -> None:
    """The CLI knows them without importing strato.targets (which loads importlib.metadata)."""
    from strato import cli, targets

    assert cli.BUILTIN_TARGETS == targets.TARGETS


def test_options_and_arguments_mix_in_any_order(cli: Cli) -> None:
    _, ran = cli.json("run", "tests/pipelines/failing.py:failing", "--json")
    first = cli("runs", "logs", "--json", ran["run_id"], "divide")
    mixed = cli("runs", "logs", ran["run_id"], "--json", "divide")
    assert first.returncode == mixed.returncode == 0, mixed.stderr
    assert json.loads(mixed.stdout) == json.loads(first.stdout) != []
    code, again = cli.json("run", "--json", "tests/pipelines/failing.py:failing", "--input", '{"b": 2}')
    assert code == 0 and again["output"] == {"ratio": 0.5}
