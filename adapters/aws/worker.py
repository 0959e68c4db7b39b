"""``strato worker``: serve tasks as Step Functions Activities, from any machine that can reach AWS.

A task declared ``runtime="worker"`` is an Activity instead of a Lambda function (for long tasks,
on-premises data, containers). The worker long-polls ``GetActivityTask`` for each activity, runs the
step with the same shim as Lambda, and answers ``SendTaskSuccess`` or ``SendTaskFailure`` with the
exception's class name as the error, so ``Retry``/``Catch`` match it by name. It runs only the
tasks of the pipeline it was started for (the task loader installed with
:func:`strato.adapters.common.emulation.emulating` when :func:`serve` is called), whatever an
activity's input names.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from strato.adapters.common.emulation import in_this_context

from .shim import handle

log = logging.getLogger("strato.worker")
MAX_CAUSE = 32_768


def answer(sfn: Any, token: str, event: Any) -> bool:
    """Run one activity task and report its outcome; True when it succeeded."""
    try:
        result = handle(event)
    except Exception as exc:
        sfn.send_task_failure(taskToken=token, error=type(exc).__name__[:256], cause=str(exc)[:MAX_CAUSE])
        return False
    sfn.send_task_success(taskToken=token, output=json.dumps(result))
    return True


def poll_once(sfn: Any, activity_arn: str, worker: str) -> bool:
    """One long poll; False when no task arrived."""
    task = sfn.get_activity_task(activityArn=activity_arn, workerName=worker)
    token = task.get("taskToken")
    if not token:
        return False
    try:
        event = json.loads(task.get("input") or "{}")
    except json.JSONDecodeError:
        event = None  # refused by the shim, reported as the task's failure
    answer(sfn, token, event)
    return True


def serve(sfn_factory: Callable[[], Any], activity_arns: list[str], stop: threading.Event,
          threads_per_activity: int = 1) -> list[threading.Thread]:
    """Start polling threads (one client each: boto3 clients are not shared across threads), each in the
    caller's context, so they load tasks with the loader the caller installed."""
    worker = f"strato-{socket.gethostname()}"
    started = []

    def loop(arn: str) -> None:
        sfn = sfn_factory()
        while not stop.is_set():
            try:
                poll_once(sfn, arn, worker)
            except Exception:
                if stop.is_set():
                    return
                log.exception("polling %s failed", arn)
                stop.wait(1.0)

    for arn in activity_arns:
        for _ in range(threads_per_activity):
            thread = threading.Thread(target=in_this_context(loop), args=(arn,), daemon=True,
                                      name=f"strato-activity-{arn[-30:]}")
            thread.start()
            started.append(thread)
    return started
