"""Shared fixtures: an isolated run store per test and a helper running the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIPELINES = Path(__file__).resolve().parent / "pipelines"


@pytest.fixture(autouse=True)
def strato_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "strato-home"
    monkeypatch.setenv("STRATO_HOME", str(home))
    return home


class Cli:
    """Runs ``python -m strato ...`` like a user's shell would, with its own STRATO_HOME."""

    def __init__(self, home: Path):
        self.home = home

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "STRATO_HOME": str(self.home), "STRATO_NO_PROGRESS": "1", **extra}
        env.pop("COLUMNS", None)
        return env

    def __call__(self, *args: str, cwd: Path = ROOT, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "strato", *args], cwd=cwd, env=self.env(**env),
                              capture_output=True, text=True, timeout=timeout)

    def json(self, *args: str, **kwargs: Any) -> tuple[int, Any]:
        result = self(*args, **kwargs)
        try:
            return result.returncode, json.loads(result.stdout)
        except json.JSONDecodeError:
            raise AssertionError(f"not JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}") from None


@pytest.fixture
def cli(strato_home: Path) -> Cli:
    return Cli(strato_home)


# The examples (and a failing pipeline) every cloud's emulation must run exactly as `strato run` does.
EXAMPLE_RUNS = [
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-01"}),
    ("examples/daily_sales.py:daily_sales", {"day": "2024-03-02"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-2024-03-01.csv"}),
    ("examples/file_ingestion.py:ingest_file", {"bucket": "landing", "key": "incoming/orders-bad.csv"}),
    ("examples/revenue_report.py:revenue_report", {"day": "2024-03-01", "run_tag": "parity"}),
    ("tests/pipelines/failing.py:failing", {}),
]


def assert_emulation_matches_run(cli: Cli, ref: str, payload: dict, *emulate_options: str) -> None:
    """`strato emulate ... --json` gives the status, output and error of `strato run --json`."""
    args = ["--input", json.dumps(payload), "--json"]
    code, emulated = cli.json("emulate", ref, *emulate_options, *args)
    if "run_tag" in payload:  # the flaky source's outage is per run_tag: give the local run its own
        args = ["--input", json.dumps({**payload, "run_tag": payload["run_tag"] + "-local"}), "--json"]
    local_code, local = cli.json("run", ref, *args)
    assert code == local_code, emulated.get("error")
    assert (emulated["status"], emulated["output"], emulated["error"]) == (
        local["status"], local["output"], local["error"])
