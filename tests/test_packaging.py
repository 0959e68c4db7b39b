"""What ``pip install strato`` puts on a machine: one import name, ``strato``, and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (built,) = out.glob("strato-*.whl")
    return built


def test_wheel_holds_only_the_strato_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"strato"}
    for expected in ("strato/__init__.py", "strato/py.typed", "strato/adapters/common/tasks.py",
                     "strato/adapters/aws/shim.py", "strato/adapters/gcp/interpreter/workflow-schema.json",
                     "strato/infra/aws/__init__.py"):
        assert expected in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "examples/", "bench/"))]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "strato = strato.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_imports_as_strato_only(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    code = ("import strato, importlib.util; from strato import task, pipeline; "
            "import strato.adapters.aws, strato.infra; print(strato.__file__); "
            "print([importlib.util.find_spec(n) is None for n in ('framework', 'adapters', 'infra')])")
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith(str(target / "strato"))
    assert out[1] == "[True, True, True]"
