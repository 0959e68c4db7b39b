"""Pools: ``@task(pool="warehouse")`` with ``strato pools set warehouse N`` limits how many attempts of
pooled tasks run at once across every local run and process (slots in the run store); the clouds say in
a compile warning that a pool has no effect there."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from strato.errors import DefinitionError

from .conftest import ROOT, Cli

PIPELINE = '''
import os, time
from pathlib import Path
from strato import pipeline, task

LOG = Path(os.environ["POOL_LOG"])


@task(pool="warehouse")
def load(i: int, tag: str) -> int:
    start = time.time()
    time.sleep(float(os.environ.get("POOL_HOLD", "0.3")))
    with LOG.open("a") as out:
        out.write(f"{tag} {i} {start} {time.time()}\\n")
    return i


@pipeline
def loads(tag: str = "a", n: int = 3):
    return [load.alias(f"load{i}")(i, tag) for i in range(3)]
'''


def _project(tmp_path: Path) -> str:
    (tmp_path / "pooled.py").write_text(PIPELINE)
    return f"{tmp_path / 'pooled.py'}:loads"


def _intervals(log: Path) -> list[tuple[float, float]]:
    rows = [line.split() for line in log.read_text().split("\n") if line]
    return sorted((float(start), float(end)) for _, _, start, end in rows)


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


@pytest.mark.parametrize("slots", [1, 2])
def test_concurrent_runs_share_a_pool(cli: Cli, tmp_path: Path, slots: int) -> None:
    ref = _project(tmp_path)
    assert cli("pools", "set", "warehouse", str(slots)).returncode == 0
    log = tmp_path / "pool.log"
    env = {**cli.env(POOL_LOG=str(log))}
    procs = [subprocess.Popen([sys.executable, "-m", "strato", "run", ref, "--input", json.dumps({"tag": tag}),
                               "--json"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for tag in ("a", "b")]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out)["status"] == "SUCCEEDED"
    intervals = _intervals(log)
    assert len(intervals) == 6  # three pooled tasks in each of two runs
    assert _max_overlap(intervals) == slots  # never more at once than the pool has, and it is used
    code, listing = cli.json("pools", "list", "--json")
    assert code == 0
    assert listing == [{"pool": "warehouse", "slots": slots, "in_use": 0, "holders": []}]


def test_slots_of_a_killed_run_are_given_back(cli: Cli, tmp_path: Path) -> None:
    ref = _project(tmp_path)
    cli("pools", "set", "warehouse", "1")
    log = tmp_path / "pool.log"
    env = {**cli.env(POOL_LOG=str(log), POOL_HOLD="30")}
    stuck = subprocess.Popen([sys.executable, "-m", "strato", "run", ref, "--json"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:  # until the run holds the slot
            code, listing = cli.json("pools", "list", "--json")
            if listing and listing[0]["in_use"] == 1:
                break
            time.sleep(0.1)
        assert listing[0]["in_use"] == 1 and listing[0]["holders"][0]["key"].startswith("load")
    finally:
        stuck.kill()
        stuck.communicate()
    # the owner is gone (its pid is dead on this host): its slot is free for the next run
    code, result = cli.json("run", ref, "--input", json.dumps({"tag": "next"}), "--json", POOL_LOG=str(log),
                            POOL_HOLD="0")
    assert code == 0 and result["status"] == "SUCCEEDED"


def test_pools_commands(cli: Cli) -> None:
    assert "no pools" in cli("pools", "list").stdout
    assert cli("pools", "set", "warehouse", "3").stdout.strip() == "pool warehouse: 3 slot(s)"
    assert "warehouse: 0 of 3 in use" in cli("pools", "list").stdout
    bad = cli("pools", "set", "no spaces", "1")
    assert bad.returncode == 2 and "pool name 'no spaces'" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("pools", "set", "warehouse", "0").returncode == 2
    assert cli("pools", "delete", "warehouse").returncode == 0
    missing = cli("pools", "delete", "warehouse")
    assert missing.returncode == 2 and "no pool 'warehouse' is set" in missing.stderr


def test_a_bad_pool_name_is_a_located_error_and_clouds_warn(cli: Cli, tmp_path: Path) -> None:
    from strato import pipeline, task

    @task(pool="not a name")
    def odd() -> int:
        return 1

    @pipeline
    def uses_odd():
        return odd()

    with pytest.raises(DefinitionError) as info:
        uses_odd.ir  # noqa: B018
    assert "pool must be a name" in str(info.value.diagnostics[0]) and "test_pools.py" in str(info.value.diagnostics[0])

    ref = _project(tmp_path)
    for target, how in (("aws", "MaxConcurrency"), ("gcp", "concurrency_limit"), ("azure", "fan-out")):
        proc = cli("compile", ref, "--target", target, "--out", str(tmp_path / target), POOL_LOG="x")
        assert proc.returncode == 0, proc.stderr
        assert f"pool 'warehouse' limits this task on the local runner only: on {target} it has no effect" \
            in proc.stderr and how in proc.stderr
