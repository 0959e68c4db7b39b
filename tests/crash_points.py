"""Driver for the crash test: for each kill point, a forked `strato run` killed there, then `strato resume`.

Run as ``python tests/crash_points.py OUT_DIR K...``; writes ``OUT_DIR/K.json`` per point. The driver
itself starts no thread, so forking it is safe; each child runs the real CLI in-process.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

from strato.cli import main
from strato.loader import load
from strato.runtime import runner, store  # noqa: F401  (imported once here, not in every child)
from strato.validate import validated

REF = str(Path(__file__).resolve().parent / "pipelines" / "crashable.py") + ":crashable"
validated(load(REF).definition)  # the children find the pipeline module already imported


def _child(args: list[str], out: Path, **env: str) -> int:
    """Run ``strato ARGS`` in a forked child; its stdout goes to ``out``. Returns the wait status."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.update(env)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return os.waitpid(pid, 0)[1]


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def crash_and_resume(out_dir: Path, k: int) -> dict:
    work = out_dir / str(k)
    work.mkdir(parents=True)
    home = work / "home"
    env = {"STRATO_HOME": str(home), "STRATO_NO_PROGRESS": "1", "STRATO_WORKERS": "1"}
    status = _child(["run", REF, "--json"], work / "run.out", CRASH_LOG=str(work / "run.log"),
                    CRASH_KILL_AT=str(k), **env)
    db = sqlite3.connect(home / "strato.db")
    run_id = db.execute("SELECT run_id FROM runs").fetchone()[0]
    committed = [key for (key,) in db.execute("SELECT key FROM units WHERE run_id=? AND status='SUCCEEDED' AND "
                                              "kind IN ('task', 'item')", (run_id,))]
    db.close()
    resumed = _child(["resume", run_id, "--json"], work / "resume.out", CRASH_LOG=str(work / "resume.log"),
                     CRASH_KILL_AT="0", **env)
    return {"k": k, "killed": os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL,
            "resume_exit": os.WEXITSTATUS(resumed) if os.WIFEXITED(resumed) else -1, "committed": committed,
            "run_log": _lines(work / "run.log"), "resume_log": _lines(work / "resume.log"),
            "result": json.loads((work / "resume.out").read_text() or "null")}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    for point in map(int, sys.argv[2:]):
        (target / f"{point}.json").write_text(json.dumps(crash_and_resume(target, point)))
