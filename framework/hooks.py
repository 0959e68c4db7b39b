"""Run hooks: a task called once a run has ended, on every backend.

``@pipeline(on_failure=alert, on_success=done)`` calls ``alert(run)`` after the run failed and
``done(run)`` after it succeeded. ``run`` is the run's outcome (:func:`outcome`)::

    {"pipeline": "daily_sales", "run_id": "...", "status": "FAILED", "backend": "aws",
     "error": {"error": "ValueError", "cause": "no rows for 2026-12-03"}}

A hook is an ordinary task (its own retry and timeout apply, ``strato.context()`` works, its log
is kept as the unit ``#on_failure`` / ``#on_success``); it runs after everything else has stopped,
and its own failure never changes the run's outcome: a failed run fails with its original error.
Hooks belong to the run's root pipeline (a sub-pipeline's hooks are not called).

:func:`webhook` is a ready hook: it posts ``{"text": ...}`` (what Slack's and Teams' incoming
webhooks take) to a URL kept in the secret store, never in the pipeline's code or artifacts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .secrets import Secret

FAILED, SUCCEEDED = "FAILED", "SUCCEEDED"


@dataclass(frozen=True)
class Hook:
    """A hook task with values for its parameters besides the first (which receives the outcome)."""

    task: Any  # a @task or plain function
    args: dict[str, Any] = field(default_factory=dict)


def outcome(run_id: str, pipeline: str, status: str, error: dict[str, Any] | None, backend: str) -> dict[str, Any]:
    """What a hook receives: the run, how it ended and, when it failed, its error ``{"error", "cause"}``
    (each backend decodes its own form of an error before: the local runner's is already this)."""
    failure = error if isinstance(error, dict) else {}
    return {"pipeline": pipeline, "run_id": run_id, "status": status, "backend": backend,
            "error": {"error": str(failure.get("error") or "Error"), "cause": str(failure.get("cause") or "")}
            if status == FAILED else None}


def message(run: dict[str, Any]) -> str:
    """One line saying how the run ended (the cause cut at 500 characters)."""
    where = f"run {run.get('run_id')} of pipeline {run.get('pipeline')} on {run.get('backend')}"
    if run.get("status") != FAILED:
        return f"Strato: {where} succeeded"
    error = run.get("error") or {}
    cause = str(error.get("cause") or "")
    cause = cause if len(cause) <= 500 else cause[:500] + "..."
    return f"Strato: {where} FAILED: {error.get('error')}: {cause}"


class WebhookFailed(Exception):
    """The webhook did not take the message (the URL is never part of the message: it is a secret)."""


def notify_webhook(run: dict[str, Any], url: str, timeout: float = 10.0) -> None:
    """POST ``{"text": ...}`` about ``run`` to ``url`` (Slack and Teams incoming webhooks take it)."""
    import urllib.error
    import urllib.request

    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise WebhookFailed("the webhook URL must be an http(s) URL; check the secret's value")
    body = json.dumps({"text": message(run)}).encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "strato-hooks"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise WebhookFailed(f"the webhook answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        detail = getattr(reason, "strerror", None) or type(reason).__name__  # never the URL: it is a secret
        raise WebhookFailed(f"the webhook could not be reached: {detail}") from None


def webhook(url: Secret, *, timeout: float = 10.0) -> Hook:
    """A hook posting the run's outcome to the webhook whose URL is the secret ``url``::

        @pipeline(on_failure=strato.hooks.webhook(Secret("slack-alerts")))
    """
    return Hook(notify_webhook, {"url": url, "timeout": timeout})


__all__ = ["FAILED", "SUCCEEDED", "Hook", "WebhookFailed", "message", "notify_webhook", "outcome",
           "webhook"]
