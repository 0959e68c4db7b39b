"""The activity runtime of a generated Durable Functions app: run one task, report errors, offload.

An activity calls :func:`run_task`. It imports the task's function by module and qualname (once per
worker), resolves blob references in its arguments, runs it through
``strato.runtime.invoke.invoke`` (the type checks every backend applies) and returns the JSON
result, or a reference to it in Blob Storage when it is larger than ``STRATO_OFFLOAD_BYTES``
(64 KiB by default): the orchestration history then stays small.

Errors: Durable Functions wraps an activity's exception into text (``TaskFailed`` reason and
details) and the orchestrator sees a plain ``Exception``. So the shim raises :class:`TaskFailure`,
whose message ends with ``strato-error:{"error": ClassName, "cause": message}``; the orchestrator
(``orchestration.TaskError.from_failure``) finds that marker and matches ``retry.on``/``catch.on``
against the original class name.

Emulation swaps the loader (the local resolver instead of importing) and the blob store (a local
directory, or app settings pointing at Azurite) with :func:`configured`. Activities may run on several
threads at once (as on a Functions worker), so everything here is thread-safe.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ERROR_MARKER = "strato-error:"
BLOB_KEY = "$strato.blob"  # a reference: {"$strato.blob": {"key": ..., "bytes": n, "path": [...]}}
DEFAULT_OFFLOAD_BYTES = 64 * 1024
DEFAULT_CONTAINER = "strato-payloads"


@dataclass(frozen=True)
class TaskRef:
    """Where a task's code lives (the IR's ``TaskSpec`` name, module and qualname)."""

    name: str
    module: str
    qualname: str


class TaskFailure(Exception):
    """Raised by an activity: the message carries the task's error for the orchestrator to parse."""

    def __init__(self, error: dict[str, str]):
        self.error = error
        super().__init__(f"{error['error']}: {error['cause']} {ERROR_MARKER}{json.dumps(error)}")


# ------------------------------------------------------------------------------------ blob store
class BlobStore(Protocol):
    """Where large results go. Keys are content hashes, so writing twice is harmless."""

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...


class LocalBlobStore:
    """A directory standing in for a container (emulation, tests)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")  # two writers of one key must not collide
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        """The blob's bytes; ``FileNotFoundError`` when it does not exist."""
        return (self.root / key).read_bytes()


class AzureBlobStore:
    """A Blob Storage container (``azure-storage-blob``).

    The container is created when a write finds it missing (a fresh account, or Azurite, has none),
    rather than probed on every start: the common case costs one request. A missing blob raises
    ``FileNotFoundError``, as :class:`LocalBlobStore` does, so callers see one error whatever the store.
    """

    def __init__(self, connection_string: str, container: str = DEFAULT_CONTAINER):
        from azure.storage.blob import BlobServiceClient  # lazy: only a deployed app needs it

        self.container_name = container
        self.container = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)

    def put(self, key: str, data: bytes) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            self.container.upload_blob(key, data, overwrite=True)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) != "ContainerNotFound":
                raise
            with contextlib.suppress(ResourceExistsError):  # another writer created it meanwhile
                self.container.create_container()
            self.container.upload_blob(key, data, overwrite=True)

    def get(self, key: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.container.download_blob(key).readall()
        except ResourceNotFoundError as exc:
            code = getattr(exc, "error_code", None) or "not found"
            raise FileNotFoundError(f"blob {key!r} in container {self.container_name!r}: {code}") from None


def store_from_environment(env: Mapping[str, str] | None = None) -> BlobStore:
    """``STRATO_BLOB_DIR`` (a directory) or the container ``STRATO_BLOB_CONTAINER`` in the storage
    account of ``STRATO_BLOB_CONNECTION`` (default: the app's ``AzureWebJobsStorage``).

    ``env`` defaults to the process environment, where a Functions worker finds the app settings; the
    emulator passes the same settings explicitly, so both take this one path.
    """
    env = os.environ if env is None else env
    directory = env.get("STRATO_BLOB_DIR")
    if directory:
        return LocalBlobStore(directory)
    connection = env.get("STRATO_BLOB_CONNECTION") or env.get("AzureWebJobsStorage")
    if not connection:
        raise RuntimeError("large results need Blob Storage: set STRATO_BLOB_CONNECTION or AzureWebJobsStorage "
                           "(or STRATO_BLOB_DIR for a local directory)")
    return AzureBlobStore(connection, env.get("STRATO_BLOB_CONTAINER") or DEFAULT_CONTAINER)


# ------------------------------------------------------------------------------ configuration
def import_function(task: TaskRef) -> Callable[..., Any]:
    """The task's plain function, as ``strato.runtime.import_task`` finds it."""
    obj: Any = importlib.import_module(task.module)
    for part in task.qualname.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "fn", obj)


@dataclass
class ShimConfig:
    """How activities load code and where large results go; ``settings`` stand in for app settings."""

    loader: Callable[[TaskRef], Callable[..., Any]] = import_function
    store: BlobStore | None = None  # None: from ``settings`` (or the environment), on first need
    offload_bytes: int | None = None  # None: STRATO_OFFLOAD_BYTES or 64 KiB
    settings: Mapping[str, str] | None = None  # None: the process environment (a deployed app's settings)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


_config: contextvars.ContextVar[ShimConfig | None] = contextvars.ContextVar("strato_azure_shim", default=None)
_default = ShimConfig()
_functions: dict[TaskRef, Callable[..., Any]] = {}


@contextlib.contextmanager
def configured(config: ShimConfig) -> Iterator[ShimConfig]:
    """Run activities with another loader and store (the emulator uses this)."""
    token = _config.set(config)
    try:
        yield config
    finally:
        _config.reset(token)


def _current() -> ShimConfig:
    return _config.get() or _default


def _store() -> BlobStore:
    config = _current()
    if config.store is None:
        with config.lock:  # concurrent activities share one client
            if config.store is None:
                config.store = store_from_environment(config.settings)
    return config.store


def _offload_bytes() -> int:
    config = _current()
    if config.offload_bytes is not None:
        return config.offload_bytes
    env = os.environ if config.settings is None else config.settings
    return int(env.get("STRATO_OFFLOAD_BYTES") or DEFAULT_OFFLOAD_BYTES)


def _load(task: TaskRef) -> Callable[..., Any]:
    config = _current()
    if config is not _default:
        return config.loader(task)
    fn = _functions.get(task)
    if fn is None:
        fn = _functions[task] = config.loader(task)
    return fn


# ---------------------------------------------------------------------------------- references
def is_blob_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(BLOB_KEY), dict)


def with_path(ref: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    """A reference to a part of an offloaded value (addressing without reading it)."""
    body = ref[BLOB_KEY]
    return {BLOB_KEY: {**body, "path": [*body.get("path", []), *path]}}


def offload(value: Any) -> Any:
    """The value, or a reference to it in the blob store when its JSON is larger than the limit."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if len(data) <= _offload_bytes():
        return value
    key = f"results/{hashlib.sha256(data).hexdigest()}.json"
    _store().put(key, data)
    return {BLOB_KEY: {"key": key, "bytes": len(data)}}


def resolve(value: Any) -> Any:
    """Replace every reference inside ``value`` by the JSON it points at (missing parts are null)."""
    from strato.ir import address

    if is_blob_ref(value):
        body = value[BLOB_KEY]
        return address(json.loads(_store().get(body["key"])), tuple(body.get("path", ())))
    if isinstance(value, list):
        return [resolve(item) for item in value]
    if isinstance(value, dict):
        return {key: resolve(item) for key, item in value.items()}
    return value


# ------------------------------------------------------------------------------------ activities
def run_task(task: TaskRef, args: dict[str, Any]) -> Any:
    """An activity's body: load, resolve, invoke, offload; a failure raises :class:`TaskFailure`."""
    from strato.runtime.invoke import error_of, invoke

    try:
        fn = _load(task)
    except Exception as exc:
        raise TaskFailure({"error": type(exc).__name__, "cause": f"cannot load task {task.name!r}: {exc}"}) from exc
    try:
        result = invoke(task.name, fn, resolve(args or {}))
    except Exception as exc:
        raise TaskFailure(error_of(exc)) from exc
    return offload(result)


def resolve_activity(payload: dict[str, Any]) -> Any:
    """The built-in ``strato_resolve`` activity: the orchestrator needs to look inside a value.

    With ``"length": true`` it answers a list's length only (None for anything else), so a map over an
    offloaded list fans out over references to its elements.
    """
    try:
        value = resolve(payload.get("value"))
        if payload.get("length"):
            return len(value) if isinstance(value, list) else None
        return value
    except Exception as exc:
        raise TaskFailure({"error": type(exc).__name__, "cause": f"cannot read an offloaded result: {exc}"}) \
            from exc
