"""Large results on Azure: Blob Storage as the kit's :class:`~strato.adapters.common.stores.BlobStore`, and
when an activity offloads.

An activity's result whose canonical JSON is larger than ``STRATO_OFFLOAD_BYTES`` (64 KiB by default)
is written to the payload container under its content hash and travels as the common envelope
``{"$strato_ref": "az://<container>/strato/payloads/<sha256>.json", "bytes": n}``: Durable Functions
replays the whole history on every wake-up, so large values must not enter it. ``az://`` names the
container within the app's own storage account (the one its settings point at); a reference to any
other container is refused, as the deployed SAS would refuse it.

The store comes from the app settings (``STRATO_BLOB_CONNECTION`` or ``AzureWebJobsStorage``,
``STRATO_BLOB_CONTAINER``; ``STRATO_BLOB_DIR`` for a local directory), built once per process; an
emulation installs its own with :func:`strato.adapters.common.emulation.emulating`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from strato.adapters.common.emulation import store_override
from strato.adapters.common.envelopes import is_ref
from strato.adapters.common.errors import PayloadError
from strato.adapters.common.offload import encode, read_ref, store_value
from strato.adapters.common.stores import BlobStore, LocalBlobStore, split_uri

SCHEME = "az"
DEFAULT_CONTAINER = "strato-payloads"
DEFAULT_OFFLOAD_BYTES = 64 * 1024
SETTINGS = ("STRATO_BLOB_DIR", "STRATO_BLOB_CONNECTION", "AzureWebJobsStorage", "STRATO_BLOB_CONTAINER")


class AzureBlobStore:
    """A Blob Storage container (``azure-storage-blob``, imported when the store is built).

    The container is created when a write finds it missing (a fresh account, or Azurite, has none),
    rather than probed on every start: the common case costs one request. A missing blob raises
    ``FileNotFoundError``, as :class:`LocalBlobStore` does, so callers see one error whatever the store.
    """

    def __init__(self, connection_string: str, container: str = DEFAULT_CONTAINER):
        from azure.storage.blob import BlobServiceClient

        self.container_name = container
        self.container = BlobServiceClient.from_connection_string(connection_string).get_container_client(container)

    def _key(self, uri: str) -> str:
        container, key = split_uri(uri, SCHEME)
        if container != self.container_name:
            raise PayloadError(f"{uri[:120]!r} is outside this app's payload container {self.container_name!r}")
        return key

    def put(self, key: str, data: bytes) -> str:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            self.container.upload_blob(key, data, overwrite=True)
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) != "ContainerNotFound":
                raise
            with contextlib.suppress(ResourceExistsError):  # another writer created it meanwhile
                self.container.create_container()
            self.container.upload_blob(key, data, overwrite=True)
        return f"{SCHEME}://{self.container_name}/{key}"

    def get(self, uri: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        key = self._key(uri)
        try:
            data: bytes = self.container.download_blob(key).readall()
        except ResourceNotFoundError as exc:
            code = getattr(exc, "error_code", None) or "not found"
            raise FileNotFoundError(f"blob {key!r} in container {self.container_name!r}: {code}") from None
        return data


def store_from_environment(env: Mapping[str, str] | None = None) -> BlobStore:
    """``STRATO_BLOB_DIR`` (a directory) or the container ``STRATO_BLOB_CONTAINER`` in the storage
    account of ``STRATO_BLOB_CONNECTION`` (default: the app's ``AzureWebJobsStorage``).

    ``env`` defaults to the process environment, where a Functions worker finds the app settings; the
    emulator passes the same settings explicitly, so both take this one path.
    """
    env = os.environ if env is None else env
    container = env.get("STRATO_BLOB_CONTAINER") or DEFAULT_CONTAINER
    directory = env.get("STRATO_BLOB_DIR")
    if directory:
        return LocalBlobStore(directory, SCHEME, container)
    connection = env.get("STRATO_BLOB_CONNECTION") or env.get("AzureWebJobsStorage")
    if not connection:
        raise PayloadError("large results need Blob Storage: set STRATO_BLOB_CONNECTION or AzureWebJobsStorage "
                           "(or STRATO_BLOB_DIR for a local directory)")
    return AzureBlobStore(connection, container)


_deployed: dict[tuple[str | None, ...], BlobStore] = {}
_deployed_lock = threading.Lock()


def payload_store() -> BlobStore:
    """The emulation's store when one is installed, else the app's (one client per process and settings)."""
    override = store_override()
    if override is not None:
        return override
    key = tuple(os.environ.get(name) for name in SETTINGS)
    with _deployed_lock:  # concurrent activities share one client
        store = _deployed.get(key)
        if store is None:
            store = _deployed[key] = store_from_environment()
    return store


_threshold: contextvars.ContextVar[int | None] = contextvars.ContextVar("strato_azure_offload_bytes", default=None)


@contextlib.contextmanager
def offloading_above(size: int | None) -> Iterator[None]:
    """Within the block, offload results larger than ``size`` bytes (an emulated app's setting)."""
    token = _threshold.set(size)
    try:
        yield
    finally:
        _threshold.reset(token)


def threshold_setting(env: Mapping[str, str]) -> int:
    """``STRATO_OFFLOAD_BYTES`` of these app settings (64 KiB when unset)."""
    text = env.get("STRATO_OFFLOAD_BYTES")
    try:
        return int(text) if text else DEFAULT_OFFLOAD_BYTES
    except ValueError:
        raise PayloadError(f"STRATO_OFFLOAD_BYTES must be a number of bytes, not {text!r:.40}") from None


def offload_threshold() -> int:
    """Bytes of JSON above which a result is offloaded: the emulation's, else the app setting."""
    size = _threshold.get()
    return threshold_setting(os.environ) if size is None else size


def offload(value: Any) -> Any:
    """The value, or its envelope in the payload store when its JSON is larger than the threshold."""
    data = encode(value)
    if len(data) <= offload_threshold():
        return value
    return store_value(value, payload_store(), data=data)


def contains_ref(value: Any) -> bool:
    if is_ref(value):
        return True
    if isinstance(value, list):
        return any(contains_ref(v) for v in value)
    if isinstance(value, dict):
        return any(contains_ref(v) for v in value.values())
    return False


def resolve(value: Any) -> Any:
    """Replace every envelope inside ``value`` by the JSON it stands for (a missing part is null)."""
    if not contains_ref(value):
        return value
    store = payload_store()

    def walk(item: Any) -> Any:
        if is_ref(item):
            return read_ref(item, store)
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {key: walk(v) for key, v in item.items()}
        return item

    return walk(value)
