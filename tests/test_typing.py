"""A user's pipeline file type-checks: ``@task``/``@pipeline`` keep signatures; mistakes are reported."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytest.importorskip("mypy")
TYPED = Path(__file__).resolve().parent / "typed"


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """mypy with the repository's configuration on the two user files, strato laid out as installed."""
    spec = importlib.util.spec_from_file_location("typecheck", ROOT / "tools" / "typecheck.py")
    assert spec is not None and spec.loader is not None
    typecheck = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(typecheck)
    work = tmp_path_factory.mktemp("mypy")
    typecheck.lay_out(work / "tree")
    files = [str(TYPED / "user_pipeline.py"), str(TYPED / "user_mistakes.py")]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(work / "cache"), "--no-error-summary", *files],
                          cwd=work, env={**os.environ, "MYPYPATH": str(work / "tree")}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.stdout


def _errors(output: str, name: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for match in re.finditer(rf"^.*{re.escape(name)}:(\d+): error: (.*)$", output, re.M):
        found[int(match.group(1))] = found.get(int(match.group(1)), "") + match.group(2)
    return found


def test_a_pipeline_file_using_the_whole_dsl_type_checks(mypy_output: str) -> None:
    assert _errors(mypy_output, "user_pipeline.py") == {}, mypy_output


def test_wrong_plain_calls_are_reported(mypy_output: str) -> None:
    lines = (TYPED / "user_mistakes.py").read_text().splitlines()
    expected = {i + 1: line for i, line in enumerate(lines) if "# error:" in line}
    errors = _errors(mypy_output, "user_mistakes.py")
    assert set(errors) == set(expected), mypy_output
    assert 'argument type "int"' in errors[next(n for n, line in expected.items() if "extract(1)" in line)]
    assert 'expression has type "int", variable has type "str"' in errors[max(expected)]
