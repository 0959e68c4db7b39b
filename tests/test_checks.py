"""Data-quality checks (``@task(checks=[...])``): the ready-made checks, definition errors, and a failing
``error`` check failing the run with ``CheckFailed`` before anything downstream starts, the same on the
local runner and in each cloud's emulation; ``warn`` checks recorded without failing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from strato import CheckFailed, pipeline, task
from strato.checks import Check, check, no_nulls, not_empty, row_count, schema, unique, values_in
from strato.errors import DefinitionError

from .conftest import Cli
from .test_lineage import _by_job, _valid, receiver  # noqa: F401 - the fixture


class Order(BaseModel):
    id: int
    status: str


ROWS = [{"id": 1, "status": "paid"}, {"id": 2, "status": "open"}]


@pytest.mark.parametrize(("made", "good", "bad", "why"), [
    (not_empty(), ROWS, [], "the result is empty"),
    (row_count(min=1, max=2), ROWS, ROWS * 2, "4 rows, expected 1..2"),
    (no_nulls("status"), ROWS, [{"id": 3, "status": None}], "'status' null or missing"),
    (unique("id"), ROWS, ROWS + [{"id": 1, "status": "x"}], "duplicate id: [1]"),
    (unique(["id", "status"]), ROWS + [{"id": 1, "status": "x"}], ROWS + ROWS[:1], "duplicate id/status"),
    (values_in("status", ["paid", "open"]), ROWS, [{"id": 3, "status": "lost"}], "'lost' is not one of"),
    (schema(Order), ROWS, [{"id": "three", "status": "paid"}], "ValidationError"),
    (row_count(min=1), ROWS, {"not": "a list"}, "expects a list"),
])
def test_ready_made_checks_pass_good_data_and_say_what_is_wrong_with_bad(made: Check, good: Any, bad: Any,
                                                                         why: str) -> None:
    assert made.evaluate(good) == {"name": made.name, "severity": "error", "passed": True, "message": None}
    outcome = made.evaluate(bad)
    assert outcome["passed"] is False and why in outcome["message"]


def test_your_own_check_as_a_function_or_a_decorator() -> None:
    small = check(lambda rows: len(rows) < 2, name="small", message="too many rows")
    assert small.evaluate(ROWS) == {"name": "small", "severity": "error", "passed": False, "message": "too many rows"}

    @check(severity="warn")
    def paid(rows: list) -> bool:
        """every order is paid"""
        return all(r["status"] == "paid" for r in rows)

    assert paid.name == "paid" and paid.severity == "warn" and paid.describe() == "every order is paid"
    assert paid.evaluate(ROWS)["passed"] is False
    assert check(lambda r: "yes", name="odd").evaluate(1)["message"] == "returned 'yes', not True or False"


def test_bad_checks_are_located_definition_errors() -> None:
    @task(checks=[not_empty(), "unique", check(len, name="n", severity="fatal"), not_empty()])
    def bad() -> list:
        return []

    @pipeline
    def uses_bad():
        return bad()

    with pytest.raises(DefinitionError) as info:
        uses_bad.ir  # noqa: B018
    text = "\n".join(str(d) for d in info.value.diagnostics)
    assert "test_checks.py" in text and "task 'bad'" in text
    assert "'unique' is not a check" in text and "severity must be 'error' or 'warn'" in text
    assert "two checks are named 'not_empty'" in text


PIPELINE = '''
import json, os
from pathlib import Path
from strato import Catch, Retry, pipeline, task
from strato.checks import check, not_empty, unique

COUNTER = Path(os.environ["CHECKS_COUNTER"])


def attempts() -> int:
    n = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(n))
    return n


@task(checks=[not_empty(), unique("id"), check(lambda rows: len(rows) <= 2, name="small", severity="warn")],
      writes=["gs://lake/orders"])
def orders(n: int, dup: bool) -> list:
    return [{"id": 0 if dup else i} for i in range(n)]


@task(retry=Retry(max_retries=2, delay=1, on=("CheckFailed",)), checks=[unique("id")])
def flaky(n: int) -> list:
    good = attempts() >= 2
    return [{"id": i if good else 0} for i in range(n)]


def quarantine(error: dict) -> dict:
    return {"quarantined": error["error"]}


@task(catch=Catch(handler=quarantine, on=("CheckFailed",)), checks=[not_empty()])
def maybe_empty(n: int) -> list:
    return list(range(n))


@task
def count(rows: list) -> int:
    return len(rows)


@pipeline
def checked(n: int = 2, dup: bool = False, m: int = 0):
    return {"count": count(orders(n, dup)), "flaky": count(flaky(n)), "caught": maybe_empty(m)}
'''


def _project(tmp_path: Path) -> str:
    (tmp_path / "checked_pipeline.py").write_text(PIPELINE)
    return f"{tmp_path / 'checked_pipeline.py'}:checked"


def test_an_error_check_fails_the_run_before_anything_downstream(cli: Cli, tmp_path: Path) -> None:
    ref = _project(tmp_path)
    env = {"CHECKS_COUNTER": str(tmp_path / "counter")}
    code, result = cli.json("run", ref, "--input", json.dumps({"n": 2, "dup": True}), "--json", **env)
    assert code == 1 and result["status"] == "FAILED"
    assert result["error"] == {"error": "CheckFailed",
                               "cause": "check 'unique(id)' of task 'orders' failed: ValueError: duplicate id: [0]"}
    code, shown = cli.json("runs", "show", result["run_id"], "--json", **env)
    units = {u["key"]: u for u in shown["units"]}
    assert "count" not in units  # downstream of the failed check never started
    (attempt,) = [a for a in shown["attempts"] if a["key"] == "orders"]
    assert [(c["name"], c["passed"]) for c in attempt["checks"]] == [
        ("not_empty", True), ("unique(id)", False), ("small", True)]


def test_warn_checks_record_retries_and_catches_apply(cli: Cli, tmp_path: Path) -> None:
    ref = _project(tmp_path)
    env = {"CHECKS_COUNTER": str(tmp_path / "counter")}
    code, result = cli.json("run", ref, "--input", json.dumps({"n": 3}), "--json", **env)
    assert code == 0, result
    assert result["output"] == {"count": 3, "flaky": 3, "caught": {"quarantined": "CheckFailed"}}
    code, shown = cli.json("runs", "show", result["run_id"], "--json", **env)
    checks = {(a["key"], a["attempt"]): a["checks"] for a in shown["attempts"]}
    assert {"name": "small", "severity": "warn", "passed": False, "message": "returned False"} in checks[("orders", 1)]
    assert checks[("flaky", 1)][0]["passed"] is False and checks[("flaky", 2)][0]["passed"] is True
    text = cli("runs", "show", result["run_id"], **env).stdout
    assert "data-quality checks" in text and "small (warn)  warning" in text
    logs = cli("runs", "logs", result["run_id"], "orders", **env).stdout
    assert "check 'small' of task 'orders' failed" in logs  # a warning is logged with the attempt


@pytest.mark.parametrize("target", ["aws", "gcp", "azure"])
def test_checks_mean_the_same_in_each_clouds_emulation(cli: Cli, tmp_path: Path, target: str) -> None:
    ref = _project(tmp_path)
    for payload in ({"n": 2, "dup": True}, {"n": 3}):
        env = {"CHECKS_COUNTER": str(tmp_path / f"counter-{target}-{payload['n']}")}
        code, emulated = cli.json("emulate", ref, "--target", target, "--input", json.dumps(payload), "--json", **env)
        env = {"CHECKS_COUNTER": str(tmp_path / f"counter-local-{payload['n']}")}
        local_code, local = cli.json("run", ref, "--input", json.dumps(payload), "--json", **env)
        assert code == local_code
        assert (emulated["status"], emulated["output"], emulated["error"]) == (
            local["status"], local["output"], local["error"])


def test_check_outcomes_are_openlineage_data_quality_assertions(cli: Cli, tmp_path: Path,
                                                               receiver: Any) -> None:  # noqa: F811
    url, events = receiver
    ref = _project(tmp_path)
    code, result = cli.json("run", ref, "--input", json.dumps({"n": 3}), "--json", OPENLINEAGE_URL=url,
                            CHECKS_COUNTER=str(tmp_path / "counter"))
    assert code == 0, result
    _valid(events)
    (complete,) = [e for e in _by_job(events)["checked.orders"] if e["eventType"] == "COMPLETE"]
    (output,) = complete["outputs"]
    facet = output["facets"]["dataQualityAssertions"]
    assert [(a["assertion"], a["success"], a["severity"]) for a in facet["assertions"]] == [
        ("not_empty", True, "error"), ("unique(id)", True, "error"), ("small", False, "warn")]


def test_check_failed_is_public() -> None:
    assert issubclass(CheckFailed, Exception) and CheckFailed.__name__ == "CheckFailed"


def test_the_web_ui_shows_an_attempts_checks(cli: Cli, tmp_path: Path, strato_home: Path) -> None:
    pytest.importorskip("starlette")
    pytest.importorskip("httpx2")
    from starlette.testclient import TestClient

    from strato.ui.server import create_app

    ref = _project(tmp_path)
    code, result = cli.json("run", ref, "--input", json.dumps({"n": 3}), "--json",
                            CHECKS_COUNTER=str(tmp_path / "counter"))
    assert code == 0, result
    with TestClient(create_app(strato_home), base_url="http://127.0.0.1") as client:
        run = client.get(f"/api/runs/{result['run_id']}").json()
    (orders,) = [a for a in run["attempts"] if a["key"] == "orders"]
    assert [c["name"] for c in orders["checks"]] == ["not_empty", "unique(id)", "small"]
    assert "checksTable(a.checks)" in (Path(__file__).parents[1] / "framework/ui/static/app.js").read_text()
