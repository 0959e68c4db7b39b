"""Large results travel through Cloud Storage by reference, so workflow variables stay small.

Cloud Workflows holds at most 512 KB of variables per execution, and a result is held twice while it
is saved (the HTTP response and its copy in ``results``), next to every other result of the run. A
result over the threshold (``STRATO_OFFLOAD_BYTES``, default 64 KiB) is therefore written to the
bucket named by ``STRATO_PAYLOAD_BUCKET`` under its content hash, and the workflow carries an
envelope instead: ``{"$strato_ref": "gs://bucket/key", "bytes": n, ...}``. The parts of the result
the workflow itself reads (condition operands, map items: the compiler sends them as ``keep``) are
copied into the envelope, so ``switch`` steps and ``parallel for`` work unchanged; the shim
materialises envelopes before calling user code and resolves whole values (the output, a
sub-pipeline's input) on request.

The store is an interface: :class:`GcsStore` (``google-cloud-storage``, imported lazily) on Google
Cloud, :class:`LocalStore` (a directory) in emulation, so emulating needs no network.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..envelopes import REF, is_ref, kept_fields

DEFAULT_THRESHOLD = 64 * 1024
DEFAULT_MAX_RESULT_BYTES = 256 * 1024
BUCKET_ENV = "STRATO_PAYLOAD_BUCKET"
THRESHOLD_ENV = "STRATO_OFFLOAD_BYTES"
MAX_RESULT_ENV = "STRATO_GCP_MAX_RESULT_BYTES"
PREFIX = "strato/payloads/"


class ResultTooLarge(Exception):
    """A task's result (or the part of it the workflow reads) is over what a workflow variable may hold."""


class PayloadStore(Protocol):
    """Where offloaded results live; URIs are ``gs://bucket/key`` whatever the backing store."""

    bucket: str

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``; returns its ``gs://`` URI."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes stored at ``uri``."""
        ...


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a Cloud Storage URI: {uri!r}")
    bucket, _, key = uri.removeprefix("gs://").partition("/")
    return bucket, key


class GcsStore:
    """Google Cloud Storage through ``google-cloud-storage`` (the function's service account's credentials)."""

    def __init__(self, bucket: str, client: Any = None):
        self.bucket = bucket
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from google.cloud import storage  # imported here: only a deployed function needs it

            self._client = storage.Client()
        return self._client

    def put(self, key: str, data: bytes) -> str:
        blob = self.client.bucket(self.bucket).blob(key)
        blob.upload_from_string(data, content_type="application/json")
        return f"gs://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        return bytes(self.client.bucket(bucket).blob(key).download_as_bytes())


class LocalStore:
    """A directory standing in for Cloud Storage: ``gs://bucket/key`` is ``<root>/bucket/key``."""

    def __init__(self, root: Path, bucket: str = "strato-payloads"):
        self.root, self.bucket = Path(root), bucket

    def _path(self, bucket: str, key: str) -> Path:
        base = (self.root / bucket).resolve()
        path = (base / key).resolve()
        if not path.is_relative_to(base):
            raise ValueError(f"payload key {key!r} points outside bucket {bucket!r}")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path(self.bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return f"gs://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        return self._path(*split_uri(uri)).read_bytes()


_override: PayloadStore | None = None


@contextmanager
def using_store(store: PayloadStore | None) -> Iterator[None]:
    """Use ``store`` in this process (emulation), then restore the configured one."""
    global _override
    previous, _override = _override, store
    try:
        yield
    finally:
        _override = previous


def current_store() -> PayloadStore | None:
    """The store in use: an override, else the bucket in ``STRATO_PAYLOAD_BUCKET``, else none."""
    if _override is not None:
        return _override
    bucket = os.environ.get(BUCKET_ENV)
    return GcsStore(bucket) if bucket else None


def threshold() -> int:
    return int(os.environ.get(THRESHOLD_ENV, DEFAULT_THRESHOLD))


def max_result_bytes() -> int:
    return int(os.environ.get(MAX_RESULT_ENV, DEFAULT_MAX_RESULT_BYTES))


def materialise(value: Any, store: PayloadStore | None = None) -> Any:
    """Replace envelopes (a whole result, or the elements of a map's result list) by their content."""
    if is_ref(value):
        store = store or current_store()
        if store is None:
            raise RuntimeError(f"{value[REF]} is an offloaded result but no payload store is configured: set "
                               f"{BUCKET_ENV}")
        return json.loads(store.get(value[REF]))
    if isinstance(value, list) and any(is_ref(v) for v in value):
        return [materialise(v, store) for v in value]
    return value


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def offload(name: str, value: Any, keep: list[list[Any]] | None = None) -> Any:
    """``value`` itself when small enough, else an envelope pointing at its copy in the store.

    ``keep`` lists the paths the workflow reads; an empty path means it reads the whole value, which
    then must stay inline. Without a store, results up to ``STRATO_GCP_MAX_RESULT_BYTES`` stay inline
    and larger ones fail clearly instead of failing the execution later.
    """
    data = _encode(value)
    store = current_store()
    whole = keep is not None and [] in keep
    if len(data) <= threshold() or store is None or whole:
        if len(data) > max_result_bytes():
            why = ("the workflow reads it whole (a condition or map over the entire result)" if whole and store
                   else f"no payload bucket is configured ({BUCKET_ENV})")
            raise ResultTooLarge(
                f"task {name!r} returned {len(data):,} bytes of JSON, over the {max_result_bytes():,}-byte limit "
                f"for a Cloud Workflows result (variables hold at most 512 KB) and {why}; return a reference "
                "(a gs:// URI or a path) to the data instead")
        return value
    key = f"{PREFIX}{hashlib.sha256(data).hexdigest()}.json"
    uri = store.put(key, data)
    envelope = {**kept_fields(value, keep or []), REF: uri, "bytes": len(data)}
    size = len(_encode(envelope))
    if size > max_result_bytes():
        raise ResultTooLarge(f"task {name!r}: the fields of its result the workflow reads (conditions, map items) "
                             f"take {size:,} bytes, over the {max_result_bytes():,}-byte limit for a Cloud Workflows "
                             "result; branch on a smaller field or map over a shorter list")
    return envelope
