"""The run store keeps each pipeline IR once (table ``irs``, keyed by the SHA-256 of its JSON): runs of
one pipeline share it, every reader still gets a run's IR, and pruning drops IRs no run names."""

from __future__ import annotations

import json
import time
from pathlib import Path

from strato.runtime import RunStore, run_pipeline

from .pipelines.fan_out import fan12


def test_runs_of_one_pipeline_share_one_stored_ir_and_each_reads_it(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.db")
    first = run_pipeline(fan12, {}, store=store)
    second = run_pipeline(fan12, {}, store=store)
    assert store.db.execute("SELECT count(*) FROM irs").fetchone()[0] == 1
    assert store.db.execute("SELECT count(*) FROM runs WHERE ir = ''").fetchone()[0] == 2  # no copy per run
    for result in (first, second):
        record = store.get_run(result.run_id)
        assert record is not None and json.loads(record.ir)["name"] == "fan12"
    assert all(json.loads(r.ir)["name"] == "fan12" for r in store.list_runs())
    store.close()


def test_pruning_drops_the_irs_no_run_names(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "s.db")
    run_pipeline(fan12, {}, store=store)
    assert store.prune(time.time() + 60)
    assert store.db.execute("SELECT count(*) FROM irs").fetchone()[0] == 0
    again = run_pipeline(fan12, {}, store=store)  # stored again for the new run
    record = store.get_run(again.run_id)
    assert record is not None and json.loads(record.ir)["name"] == "fan12"
    store.close()
