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
    """Runs ``python -m framework ...`` like a user's shell would, with its own STRATO_HOME."""

    def __init__(self, home: Path):
        self.home = home

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "STRATO_HOME": str(self.home), "STRATO_NO_PROGRESS": "1", **extra}
        env.pop("COLUMNS", None)
        return env

    def __call__(self, *args: str, cwd: Path = ROOT, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "framework", *args], cwd=cwd, env=self.env(**env),
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
