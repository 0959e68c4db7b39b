"""strato rerun: a new run with the same input, reusing what is not downstream of --from."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .conftest import Cli

REF = "tests/pipelines/rerunnable.py:rerunnable"


class Setup:
    def __init__(self, cli: Cli, tmp_path: Path):
        self.cli, self.log, self.flag = cli, tmp_path / "executions.log", tmp_path / "broken"
        self.env = {"STRATO_TEST_LOG": str(self.log), "STRATO_TEST_FLAG": str(self.flag)}

    def json(self, *args: str) -> tuple[int, dict]:
        return self.cli.json(*args, **self.env)

    def executions(self) -> Counter:
        found = Counter(self.log.read_text().split()) if self.log.exists() else Counter()
        self.log.unlink(missing_ok=True)
        return found


def test_rerun_from_a_failed_task_reuses_everything_upstream_and_beside_it(cli: Cli, tmp_path: Path) -> None:
    s = Setup(cli, tmp_path)
    s.flag.touch()
    code, failed = s.json("run", REF, "--scheduled-at", "2024-03-02T02:00:00Z", "--json")
    assert code == 1 and failed["error"]["cause"] == "transform is broken"
    assert s.executions() == Counter({"extract": 1, "double:1": 1, "double:2": 1, "double:3": 1, "audit": 1,
                                      "transform": 1})
    s.flag.unlink()  # the fix

    code, again = s.json("rerun", failed["run_id"], "--from", "transform", "--json")
    assert code == 0, again
    assert again["run_id"] != failed["run_id"]
    assert again["output"] == {"load": {"total": 12, "day": "2024-03-02", "scheduled": "2024-03-02T02:00:00+00:00"},
                               "audit": "audited 2024-03-02"}
    assert s.executions() == Counter({"transform": 1, "load": 1})  # nothing upstream or beside ran again

    _, shown = s.json("runs", "show", again["run_id"], "--json")
    assert shown["rerun_of"] == failed["run_id"] and shown["rerun_from"] == "transform"
    assert shown["scheduled_at"].startswith("2024-03-02T02:00:00") and shown["input"] == {"day": "2024-03-02"}
    reused = {u["key"] for u in shown["units"] if u["reused_from"] == failed["run_id"]}
    assert reused == {"extract", "double", "double[0]", "double[1]", "double[2]", "audit"}
    text = cli("runs", "show", again["run_id"])
    assert f"rerun of {failed['run_id']} from transform" in text.stdout and "SUCCEEDED (reused)" in text.stdout
    # the earlier run is left as it was
    assert s.json("runs", "show", failed["run_id"], "--json")[1]["status"] == "FAILED"

    code, whole = s.json("rerun", again["run_id"], "--json")  # without --from everything runs again
    assert code == 0 and whole["output"] == again["output"]
    assert s.executions() == Counter({"extract": 1, "double:1": 1, "double:2": 1, "double:3": 1, "audit": 1,
                                      "transform": 1, "load": 1})


def test_rerun_from_an_upstream_call_redoes_its_downstream(cli: Cli, tmp_path: Path) -> None:
    s = Setup(cli, tmp_path)
    _, first = s.json("run", REF, "--input", json.dumps({"day": "2024-01-01"}), "--json")
    s.executions()
    code, again = s.json("rerun", first["run_id"], "--from", "double", "--json")
    assert code == 0 and again["output"]["load"]["total"] == 12
    assert s.executions() == Counter({"double:1": 1, "double:2": 1, "double:3": 1, "transform": 1, "load": 1})


def test_rerun_mistakes_are_usage_errors(cli: Cli, tmp_path: Path) -> None:
    s = Setup(cli, tmp_path)
    assert cli("rerun", "nope").returncode == 2
    _, first = s.json("run", REF, "--json")
    bad = cli("rerun", first["run_id"], "--from", "nope", **s.env)
    assert bad.returncode == 2 and "has no call 'nope'; its calls are extract, double, transform, load, audit" \
        in bad.stderr
    assert "Traceback" not in bad.stderr
