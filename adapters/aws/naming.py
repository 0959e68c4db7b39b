"""Names in Step Functions: state names (at most 80 characters, unique per machine), machine and
function placeholders substituted at deploy time (so compiled definitions hold no account ids)."""

from __future__ import annotations

import hashlib
import re

MAX_STATE_NAME = 80
RUNTIME_FUNCTION = "${Runtime}"  # the shim's own operations (resolving values), one function per deployment


def state_name(name: str) -> str:
    """Shorten deterministically: a long name keeps its head and gets a hash of the whole."""
    if len(name) <= MAX_STATE_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[:MAX_STATE_NAME - 11]}~{digest}"


def function_ref(task: str) -> str:
    return "${Function." + task + "}"


def activity_ref(task: str) -> str:
    return "${Activity." + task + "}"


def machine_ref(pipeline: str) -> str:
    return "${StateMachine." + pipeline + "}"


def machine_name(root: str, pipeline: str) -> str:
    """State machine names: the root pipeline, children prefixed by it (at most 80 characters)."""
    name = root if pipeline == root else f"{root}-{pipeline}"
    name = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    return name if len(name) <= 80 else f"{name[:69]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


def function_name(root: str, task: str) -> str:
    """Lambda function names: at most 64 characters of ``[A-Za-z0-9_-]``."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"strato-{root}-{task}")
    return name if len(name) <= 64 else f"{name[:53]}-{hashlib.sha256(name.encode()).hexdigest()[:10]}"


_PLACEHOLDER = re.compile(r"\$\{(Runtime|Function|Activity|StateMachine|PayloadBucket)(?:\.([A-Za-z0-9_\-]+))?\}")
PAYLOAD_BUCKET_REF = "${PayloadBucket}"  # the deployment's payload bucket (Distributed Maps write results there)


def substitute(definition: str, runtime: str, functions: dict[str, str], machines: dict[str, str],
               activities: dict[str, str] | None = None, payload_bucket: str = "") -> str:
    """Replace placeholders with ARNs (what infra and the emulator do at deploy time).

    Tasks with ``runtime="worker"`` are ``${Activity.<task>}``; without ``activities`` they resolve
    to the task's function (moto cannot serve activities).
    """

    def repl(match: re.Match) -> str:
        kind, name = match.groups()
        if kind == "Runtime":
            return runtime
        if kind == "PayloadBucket":
            return payload_bucket
        if kind == "Activity":
            return (activities or functions)[name]
        return (functions if kind == "Function" else machines)[name]

    return _PLACEHOLDER.sub(repl, definition)
