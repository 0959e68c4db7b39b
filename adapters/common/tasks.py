"""Which code a deployed shim may run: only the tasks of its own pipeline, named by id.

A request (a Lambda event, an HTTP body, an activity input) is data: it names a task by its id in
the IR and never says where code lives. The shim looks the id up in its catalog, built at deploy
time from the IR (``STRATO_TASKS``, a JSON object ``{"task id": "module:qualname"}`` set by the
``strato.infra`` components for the tasks of that function, or ``strato_tasks.json`` at the
deployment package's root), and refuses any other id, running nothing. An entry may also list the secrets
the IR grants the task (:func:`granted_secrets`), the only ones its shim resolves. In emulation the
catalog is the local runner's resolver (:func:`.emulation.emulating`).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .emulation import loader_override
from .errors import UnknownTask

if TYPE_CHECKING:
    from strato.ir import PipelineIR
    from strato.run_context import RunContext

MANIFEST_ENV = "STRATO_TASKS"
MANIFEST_FILE = "strato_tasks.json"
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_SHOWN = 80  # characters of a refused name repeated in an error


def manifest(pipeline: PipelineIR, names: Iterable[str] | None = None) -> dict[str, Any]:
    """``{"task id": "module:qualname"}`` for the tasks of ``pipeline`` and its sub-pipelines (or ``names``);
    a task given secrets is ``{"target": "module:qualname", "secrets": [names]}``."""
    specs = {name: spec for p in (pipeline, *pipeline.subpipelines.values()) for name, spec in p.tasks.items()}
    wanted = sorted(specs) if names is None else sorted(set(names))
    out: dict[str, Any] = {}
    for name in wanted:
        target = f"{specs[name].module}:{specs[name].qualname}"
        out[name] = {"target": target, "secrets": list(specs[name].secrets)} if specs[name].secrets else target
    return out


def import_task(module: str, qualname: str) -> Callable[..., Any]:
    """A task's plain function, imported by module and qualname (a ``@task`` object gives its ``fn``)."""
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


def _shown(name: Any) -> str:
    text = repr(name)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


class TaskCatalog:
    """The tasks one deployed function may run, by id; loads each once, refuses everything else."""

    def __init__(self, entries: Mapping[str, Any], source: str):
        self.targets: dict[str, str] = {}
        self.grants: dict[str, frozenset[str]] = {}
        for name, entry in entries.items():
            target: Any = entry.get("target") if isinstance(entry, dict) else entry
            secrets: Any = entry.get("secrets", []) if isinstance(entry, dict) else []
            module, sep, qualname = target.partition(":") if isinstance(target, str) else ("", "", "")
            if not isinstance(name, str) or not sep or not _DOTTED.match(module) or not _DOTTED.match(qualname):
                raise UnknownTask(f"{source}: entry {_shown(name)} -> {_shown(target)} is not 'module:qualname'")
            if not isinstance(secrets, list) or not all(isinstance(s, str) for s in secrets):
                raise UnknownTask(f"{source}: the secrets of task {_shown(name)} must be a list of names")
            self.targets[name], self.grants[name] = str(target), frozenset(secrets)
        self.source = source
        self._loaded: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_ir(cls, pipeline: PipelineIR) -> TaskCatalog:
        return cls(manifest(pipeline), f"pipeline {pipeline.name!r}")

    @classmethod
    def deployed(cls, env: Mapping[str, str] | None = None, root: Path | None = None) -> TaskCatalog:
        """The catalog this function was deployed with: ``STRATO_TASKS``, else ``strato_tasks.json``."""
        env = os.environ if env is None else env
        text, source = env.get(MANIFEST_ENV), MANIFEST_ENV
        if not text:
            base = root or Path(env.get("LAMBDA_TASK_ROOT") or os.getcwd())
            path = base / MANIFEST_FILE
            if not path.is_file():
                raise UnknownTask(f"this function has no task catalog: set {MANIFEST_ENV} (the strato.infra "
                                  f"components do) or package {MANIFEST_FILE}; it runs no task without one")
            text, source = path.read_text(), str(path)
        try:
            targets = json.loads(text)
        except ValueError:
            raise UnknownTask(f"{source} is not JSON: expected {{\"task id\": \"module:qualname\"}}") from None
        if not isinstance(targets, dict):
            raise UnknownTask(f"{source} must be a JSON object {{\"task id\": \"module:qualname\"}}")
        return cls(targets, source)

    def load(self, name: Any) -> Callable[..., Any]:
        """The function of task ``name``; :class:`UnknownTask` (running nothing) for any other name."""
        if not isinstance(name, str) or name not in self.targets:
            raise UnknownTask(f"task {_shown(name)} is not a task of this deployment ({self.source}); nothing was run")
        with self._lock:
            fn = self._loaded.get(name)
            if fn is None:
                module, _, qualname = self.targets[name].partition(":")
                fn = self._loaded[name] = import_task(module, qualname)
        return fn


_deployed: tuple[str | None, TaskCatalog] | None = None
_deployed_lock = threading.Lock()


def deployed_catalog() -> TaskCatalog:
    """This process's catalog, read once (again only when ``STRATO_TASKS`` changes)."""
    global _deployed
    key = os.environ.get(MANIFEST_ENV)
    with _deployed_lock:
        if _deployed is None or _deployed[0] != key:
            _deployed = (key, TaskCatalog.deployed())
        return _deployed[1]


def granted_secrets(name: str) -> frozenset[str]:
    """The secrets task ``name`` may resolve (its IR grants): from the emulation's loader when it knows
    them, else from the deployed catalog."""
    override = loader_override()
    if override is not None:
        grants = getattr(override, "secrets", None)
        return frozenset(grants(name)) if callable(grants) else frozenset()
    return deployed_catalog().grants.get(name, frozenset())


def load_task(name: Any) -> Callable[..., Any]:
    """What a shim calls: the emulation's loader when one is set, else the deployed catalog."""
    override = loader_override()
    if override is not None:
        if not isinstance(name, str):
            raise UnknownTask(f"task {_shown(name)} is not a task name; nothing was run")
        return override(name)
    return deployed_catalog().load(name)


def run_context(data: Any, task: str, backend: str) -> RunContext:
    """``strato.context()`` inside a task shim, from what the compiled state machine sends with the call.

    ``data`` is ``{"ctx": {"run", "pipeline", "prefix"}, "task_id", "attempt", "map_index"}``; it is read
    as data only (a malformed field falls back to a neutral value, it never fails the task).
    ``scheduled_at`` is not known to a cloud run: None.
    """
    from strato.run_context import RunContext

    fields: dict[str, Any] = data if isinstance(data, dict) else {}
    found = fields.get("ctx")
    ctx: dict[str, Any] = found if isinstance(found, dict) else {}

    def text(value: Any, default: str = "") -> str:
        return value if isinstance(value, str) else default

    def whole(value: Any) -> int | None:
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    attempt = whole(fields.get("attempt"))
    return RunContext(text(ctx.get("run")), text(ctx.get("pipeline")) or os.environ.get("STRATO_PIPELINE", ""),
                      text(ctx.get("prefix")) + text(fields.get("task_id"), task), task,
                      attempt if attempt is not None and attempt >= 1 else 1, whole(fields.get("map_index")),
                      backend, None)


def hook_problem(hook: Any) -> str | None:
    """Why a call's ``hook`` field is not what a compiled pipeline sends (``{"status", "param", "error"?}``)."""
    if not isinstance(hook, dict) or hook.get("status") not in ("FAILED", "SUCCEEDED") or not isinstance(
            hook.get("param"), str):
        return "a hook call needs its status (FAILED or SUCCEEDED) and parameter; nothing was run"
    return None


def hook_arguments(hook: dict[str, Any], encoded: Any, ctx: RunContext, error: dict[str, str] | None) -> dict[str, Any]:
    """The arguments of the run's ``on_failure``/``on_success`` hook in a shim: the literals the compiled
    pipeline holds for its other parameters, and the run's outcome (``error``, already decoded from the
    cloud's form, only for a failed run) for the parameter ``hook["param"]``."""
    from strato import ir
    from strato.hooks import FAILED, outcome

    args = {k: ir.resolve_value(ir.value_from_dict(v), {}, {}) for k, v in (encoded or {}).items()}
    failed = hook["status"] == FAILED
    args[hook["param"]] = outcome(ctx.run_id, ctx.pipeline, hook["status"], error if failed else None, ctx.backend)
    return args
