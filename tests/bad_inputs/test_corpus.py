"""Every case of the bad-input corpus: a message naming the place, the right exit code, no traceback,
nothing written (the run store and output directories are left as they were)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from strato.runtime.store import RunStore

from .cases import CASES, Case


def _snapshot(root: Path) -> dict[str, str]:
    """Every file below ``root`` with a digest of its bytes (directories as entries too)."""
    if not root.exists():
        return {}
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        found[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return found


def _store(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    return home / "strato.db"


def _setup(name: str, tmp: Path, home: Path) -> None:
    if name == "garbage_db":
        _store(home).write_bytes(b"this is not a database" * 100)
    elif name == "truncated_db":
        store = RunStore(_store(home))
        for i in range(200):
            store.create_run(f"r{i}", "p", "x.py:p", [], "{}" + " " * 500, "h", {}, float(i))
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        data = (home / "strato.db").read_bytes()
        (home / "strato.db").write_bytes(data[:4096] + b"\0" * 100 + data[len(data) // 2:len(data) // 2 + 1000])
        for extra in ("strato.db-wal", "strato.db-shm"):
            (home / extra).unlink(missing_ok=True)
    elif name == "newer_db":
        db = sqlite3.connect(_store(home))
        db.execute("PRAGMA user_version=99")
        db.close()
    elif name == "empty_store":
        RunStore(_store(home)).close()
    elif name == "home_file":
        home.parent.mkdir(parents=True, exist_ok=True)
        home.write_text("not a directory")
    elif name == "afile":
        (tmp / "afile").write_text("a file")
    elif name == "read_only_home":
        RunStore(_store(home)).close()
        home.chmod(0o500)
        (home / "strato.db").chmod(0o400)
    else:
        raise AssertionError(f"unknown setup {name!r}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    if case.skip_root and hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root writes through read-only permissions")
    tmp = tmp_path / "case"
    tmp.mkdir()
    home = tmp_path / "home"
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.setup:
        _setup(case.setup, tmp, home)
    env = {**os.environ, "STRATO_HOME": str(home), "STRATO_NO_PROGRESS": "1", "PYTHONHASHSEED": "0"}
    env.pop("STRATO_WORKERS", None)
    env.update({k: v.replace("{tmp}", str(tmp)) for k, v in case.env.items()})
    args = [a.replace("{tmp}", str(tmp)) for a in case.args]
    before_home, before_tmp = _snapshot(home) if home.is_dir() else home.exists(), _snapshot(tmp)
    result = subprocess.run([sys.executable, "-m", "strato", *args], cwd=tmp, env=env, capture_output=True,
                            text=True, timeout=120)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == case.code, output
    assert case.message.replace("{tmp}", str(tmp)) in output, output
    if not case.writes:
        after_home = _snapshot(home) if home.is_dir() else home.exists()
        assert after_home == before_home, "the run store changed"
        assert _snapshot(tmp) == before_tmp, "files were written"


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 80
    assert len({c.id for c in CASES}) == len(CASES)


def test_run_pipeline_refuses_what_is_not_a_policy() -> None:
    from strato import pipeline, task
    from strato.errors import UsageError
    from strato.runtime import run_pipeline

    @task
    def step(x: int) -> int:
        return x

    @pipeline
    def p():
        return step(1)

    with pytest.raises(UsageError, match=r"policies: 'no_pii' is not a strato.Policy"):
        run_pipeline(p, policies=["no_pii"], store=RunStore.memory())


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), {"a": [float("inf")]}])
def test_to_json_result_refuses_non_finite_numbers(value: object) -> None:
    from strato.runtime.invoke import to_json_result

    def fn() -> object:
        return value

    with pytest.raises(TypeError, match=r"task 't' returned .*which is not JSON"):
        to_json_result("t", fn, value)


def test_to_json_result_refuses_sets() -> None:
    from strato.runtime.invoke import to_json_result

    def fn() -> set[int]:
        return {2, 1}

    with pytest.raises(TypeError, match="task 't' returned a set, which is not JSON and has no stable order"):
        to_json_result("t", fn, {2, 1})


