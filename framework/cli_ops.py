"""Operating pipelines from the command line: ``runs logs``, ``runs prune``, ``rerun``, ``backfill``.

Registered on the ``strato`` group by :mod:`strato.cli` (kept apart so the commands that run
pipelines day to day live together).
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from .cli import _echo_json, _existing_store, _guard, runs
from .errors import UsageError


def _matches(key: str, task: str) -> bool:
    """Whether unit ``key`` belongs to ``task``: the key itself, its map items and catch, or calls inside it."""
    from .run_context import split_key

    if key == task or key.startswith(task + "/"):
        return True
    task_id, _ = split_key(key)
    return task_id == task or task_id.startswith(task + "#") or task_id.startswith(task + "/")


def _format_line(entry: dict[str, Any]) -> str:
    attempt = f" #{entry['attempt']}" if entry["attempt"] > 1 else ""
    mark = {"stderr": "!", "traceback": "!"}.get(entry["stream"], "|")
    return f"{entry['key']}{attempt} {mark} {entry['line']}"


@runs.command("logs")
@click.argument("run_id")
@click.argument("task", required=False)
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of lines (key, attempt, at, stream, line).")
@click.option("--poll", default=0.5, show_default=True, type=click.FloatRange(0.05, 60), hidden=True)
@_guard
def runs_logs(run_id: str, task: str | None, follow: bool, as_json: bool, poll: float) -> None:
    """Print what a run's tasks wrote (stdout, stderr, logging records, tracebacks), per attempt.

    TASK narrows it to one call id (its map items and catch handler included) or one unit key
    such as ``clean[3]``. Lines read ``KEY [#ATTEMPT] | line`` (``!`` for stderr and tracebacks).
    """
    store = _existing_store(run_id)
    record = store.get_run(run_id)
    if record is None:
        raise UsageError(f"no run {run_id!r} in {store.path}; list runs with `strato runs list`")
    if task is not None:
        keys = [u["key"] for u in store.units(run_id)]
        if not any(_matches(k, task) for k in keys) and not follow:
            raise UsageError(f"run {run_id} has no task {task!r}; its units are {', '.join(keys) or 'none yet'}")
    if as_json and follow:
        raise UsageError("--json prints the lines written so far; leave out --follow")
    last, printed = 0, []
    while True:
        now = store.get_run(run_id)
        running = follow and now is not None and now.display_status == "RUNNING"
        batch = store.logs(run_id, after=last)
        if batch:
            last = batch[-1]["id"]
        batch = [e for e in batch if task is None or _matches(e["key"], task)]
        if as_json:
            printed += batch
        else:
            for entry in batch:
                click.echo(_format_line(entry))
        if not running:
            break
        time.sleep(poll)
    if as_json:
        _echo_json([{k: v for k, v in e.items() if k != "id"} for e in printed])


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


__all__ = ["runs_logs"]
