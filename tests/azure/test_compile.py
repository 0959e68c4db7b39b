"""Compiling to a Durable Functions app: golden files, determinism, registration, Azure's rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("azure.functions")
pytest.importorskip("azure.durable_functions")

from strato import Schedule
from strato.adapters.azure import Adapter
from strato.adapters.azure.emulator import load_app
from strato.adapters.azure.triggers import ScheduleError, ncrontab
from strato.ir import from_json
from strato.loader import load
from strato.validate import validated
from tests.conftest import ROOT

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = {
    "daily_sales": "examples/daily_sales.py:daily_sales",
    "ingest_file": "examples/file_ingestion.py:ingest_file",
    "revenue_report": "examples/revenue_report.py:revenue_report",
}
FILES = ("function_app.py", "host.json", "requirements.txt", "local.settings.json.example")


def _ir(ref: str) -> Any:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return validated(load(ref).definition).ir
    finally:
        os.chdir(cwd)


def _compile(ref: str, out: Path) -> Path:
    result = Adapter().compile(_ir(ref), out)
    assert [p.name for p in result.paths] == list(FILES)
    return result.paths[0].parent


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden_app(name: str, tmp_path: Path) -> None:
    """The generated app is byte-for-byte the reviewed one (STRATO_UPDATE_GOLDEN=1 rewrites them)."""
    app_dir = _compile(EXAMPLES[name], tmp_path)
    if os.environ.get("STRATO_UPDATE_GOLDEN"):
        shutil.copytree(app_dir, GOLDEN / name, dirs_exist_ok=True)
    for file in FILES:
        assert (app_dir / file).read_bytes() == (GOLDEN / name / file).read_bytes(), f"{name}/{file} changed"


def test_compile_is_deterministic_and_has_no_paths(tmp_path: Path) -> None:
    ir = _ir(EXAMPLES["daily_sales"])
    moved = from_json(ir.to_json().replace(str(ROOT), "/somewhere/else"))  # same pipeline, other checkout
    first = Adapter().compile(ir, tmp_path / "a").paths
    second = Adapter().compile(moved, tmp_path / "b" / "deeper").paths
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
        text = a.read_text()
        assert str(ROOT) not in text and str(tmp_path) not in text
        assert "2024" not in text and "2026" not in text  # no timestamps


def test_generated_apps_are_ruff_clean(tmp_path: Path) -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    from tests.azure import pipelines

    for ref in EXAMPLES.values():
        _compile(ref, tmp_path)
    for name in ("large", "branching", "parent", "triggered", "timing_out", "pausing", "handled", "public"):
        Adapter().compile(validated(getattr(pipelines, name)).ir, tmp_path)
    # inside the repository, so its configuration (and first-party packages) apply
    out = subprocess.run([ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def _bindings(app_dir: Path) -> dict[str, list[dict[str, Any]]]:
    app = load_app(app_dir / "function_app.py")
    return {f.get_function_name(): json.loads(f.get_function_json())["bindings"] for f in app.get_functions()}


def _trigger(bindings: list[dict[str, Any]]) -> dict[str, Any]:
    return next(b for b in bindings if b["type"].endswith("Trigger"))


def test_app_registers_exactly_the_expected_functions(tmp_path: Path) -> None:
    functions = _bindings(_compile(EXAMPLES["daily_sales"], tmp_path))
    kinds = {name: _trigger(bindings)["type"] for name, bindings in functions.items()}
    assert kinds == {
        "daily_sales": "orchestrationTrigger",
        "extract": "activityTrigger", "clean": "activityTrigger", "load": "activityTrigger",
        "summarize": "activityTrigger", "alert": "activityTrigger", "strato_resolve": "activityTrigger",
        "strato_map_items": "orchestrationTrigger",  # a map over more items than one orchestration runs
        "daily_sales_start": "httpTrigger",
        "daily_sales_schedule": "timerTrigger",
    }
    start = functions["daily_sales_start"]
    http = _trigger(start)
    assert (http["route"], http["methods"], http["authLevel"]) == ("pipelines/daily_sales", ["POST"], "FUNCTION")
    assert {b["type"] for b in start} == {"httpTrigger", "http", "durableClient"}
    assert _trigger(functions["daily_sales_schedule"])["schedule"] == "0 0 2 * * *"
    assert {b["type"] for b in functions["daily_sales_schedule"]} == {"timerTrigger", "durableClient"}
    assert _trigger(functions["extract"])["name"] == "args"


def test_sub_pipelines_and_blob_events_register(tmp_path: Path) -> None:
    functions = _bindings(_compile(EXAMPLES["revenue_report"], tmp_path))
    orchestrators = sorted(n for n, b in functions.items() if _trigger(b)["type"] == "orchestrationTrigger")
    assert orchestrators == ["exchange_rates", "revenue_report"]
    assert "revenue_report_schedule" not in functions
    functions = _bindings(_compile(EXAMPLES["ingest_file"], tmp_path))
    assert _trigger(functions["ingest_file_object_created"])["type"] == "eventGridTrigger"
    assert "quarantine" in functions  # the catch handler is an activity too


def test_host_json_and_settings(tmp_path: Path) -> None:
    app_dir = _compile(EXAMPLES["daily_sales"], tmp_path)
    host = json.loads((app_dir / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    settings = json.loads((app_dir / "local.settings.json.example").read_text())["Values"]
    assert settings["FUNCTIONS_WORKER_RUNTIME"] == "python"
    requirements = (app_dir / "requirements.txt").read_text().splitlines()
    # what `strato package` installs into .python_packages: Strato's dependencies, never Strato from a registry
    assert "azure-functions-durable<2,>=1.2.6" in requirements and "pydantic>=2.6" in requirements
    assert not [line for line in requirements if line.startswith("strato")]
    assert "installs nothing" in requirements[1] and "host installs" not in "\n".join(requirements)


# ------------------------------------------------------------------------------------ schedules
@pytest.mark.parametrize(("schedule", "expected"), [
    (Schedule(cron="0 2 * * *"), "0 0 2 * * *"),
    (Schedule(cron="*/15 9-17 * * mon-fri"), "0 */15 9-17 * * 1-5"),
    (Schedule(cron="0 0 1 jan,jul *"), "0 0 0 1 1,7 *"),
    (Schedule(cron="0 12 * * 7"), "0 0 12 * * 0"),
    (Schedule(cron="0 12 * * 5-7"), "0 0 12 * * 0,5,6"),
    (Schedule(cron="5/20 * * * *"), "0 5-59/20 * * * *"),
    (Schedule(cron="0 3 * * *", timezone="Etc/UTC"), "0 0 3 * * *"),
    (Schedule(every="15m"), "0 */15 * * * *"),
    (Schedule(every="1m"), "0 * * * * *"),
    (Schedule(every="2h"), "0 0 */2 * * *"),
    (Schedule(every="1d"), "0 0 0 * * *"),
])
def test_ncrontab(schedule: Schedule, expected: str) -> None:
    assert ncrontab(schedule) == expected


@pytest.mark.parametrize(("schedule", "message"), [
    (Schedule(every="45m"), "even intervals"),
    (Schedule(every="3d"), "even intervals"),
    (Schedule(every="45m", timezone="Europe/Paris"), "even intervals"),
])
def test_schedules_azure_cannot_express(schedule: Schedule, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        ncrontab(schedule)


# ---------------------------------------------------------------------------------------- check
def test_check_reports_tags_and_schedules_where_they_are_written() -> None:
    from dataclasses import replace

    from strato import pipeline, task

    @task(tags={"team/name": "x"})
    def tagged() -> int:
        return 1

    @pipeline(schedule=Schedule(every="45m", timezone="America/New_York"),
              tags={**{f"t{i}": "v" for i in range(51)}, "Owner": "a", "owner": "b"})
    def governed():
        return tagged()

    ir = validated(governed).ir  # the core allows longer names and values than it checks; Azure has its own limits
    spec = ir.tasks["tagged"]
    ir = replace(ir, tasks={"tagged": replace(spec, tags={**spec.tags, "k" * 513: "v", "long": "v" * 257})})
    problems = Adapter().check(ir)
    text = "\n".join(str(p) for p in problems)
    assert all(p.severity == "error" and p.location is not None for p in problems)
    assert all(p.location.file == __file__ for p in problems)
    assert "every='45m' is not a whole fraction of an hour or a day" in text
    assert "has 53 tags; Azure allows at most 50" in text
    assert "differ only in case" in text
    assert "tag name 'team/name' contains /" in text
    assert "is 513 characters; Azure allows 512" in text
    assert "tag 'long' value is 257 characters; Azure allows 256" in text
    assert Adapter().check(_ir(EXAMPLES["daily_sales"])) == []


def test_cli_compile_writes_the_app_and_refuses_what_azure_cannot_run(cli: Any, tmp_path: Path) -> None:
    done = cli("compile", EXAMPLES["daily_sales"], "--target", "azure", "--out", str(tmp_path / "build"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(tmp_path / "build" / "daily_sales" / f) for f in FILES]
    source = tmp_path / "paris.py"
    source.write_text("from strato import Schedule, pipeline, task\n\n\n@task\ndef one() -> int:\n    return 1\n\n\n"
                      "@pipeline(schedule=Schedule(cron='0 2 * * *', timezone='Europe/Paris'))\n"
                      "def paris():\n    return one()\n\n\n"
                      "@pipeline(schedule=Schedule(every='45m', timezone='Europe/Paris'))\n"
                      "def uneven():\n    return one()\n")
    local = cli("compile", f"{source}:paris", "--target", "azure", "--out", str(tmp_path / "paris"))
    assert local.returncode == 0, local.stderr  # a local time is translated to UTC and checked at run time
    app = (tmp_path / "paris" / "paris" / "function_app.py").read_text()
    assert 'schedule="0 0 0,1 * * *"' in app and "if not PARIS_SCHEDULE.due():" in app
    refused = cli("compile", f"{source}:uneven", "--target", "azure", "--out", str(tmp_path / "none"))
    assert refused.returncode == 1
    assert "paris.py:14: pipeline 'uneven' schedule: every='45m' is not a whole fraction" in refused.stderr
    assert not (tmp_path / "none").exists()


def test_importing_the_adapter_stays_cheap() -> None:
    code = ("import sys, strato.adapters.azure, strato.adapters.azure.orchestration, strato.adapters.azure.shim, "
            "strato.adapters.azure.triggers, strato.adapters.azure.payloads, strato.adapters.azure.rules, "
            "strato.adapters.azure.naming, strato.adapters.azure.emulator; "
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('azure', 'aiohttp')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    from strato.targets import get_adapter

    assert get_adapter("azure").target == "azure"


def test_http_trigger_path_and_auth_and_long_timeouts(tmp_path: Path) -> None:
    from tests.azure import pipelines

    result = Adapter().compile(validated(pipelines.public).ir, tmp_path)
    (warning,) = result.warnings
    assert warning.severity == "warning" and "10 minutes" in warning.message and warning.location is not None
    host = json.loads((tmp_path / "public" / "host.json").read_text())
    assert host["functionTimeout"] == "00:16:00"
    http = _trigger(_bindings(tmp_path / "public")["public_start"])
    assert (http["route"], http["authLevel"]) == ("sales/daily", "ANONYMOUS")
