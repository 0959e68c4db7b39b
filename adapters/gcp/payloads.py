"""Large results travel through Cloud Storage by reference, so workflow variables stay small.

Cloud Workflows holds at most 512 KB of variables per execution, and a result is held twice while it
is saved (the HTTP response and its copy in ``results``), next to every other result of the run. A
result over the threshold (``STRATO_OFFLOAD_BYTES``, default 64 KiB) is therefore written to the
bucket named by ``STRATO_PAYLOAD_BUCKET`` under its content hash, and the workflow carries the common
envelope (:mod:`strato.adapters.common.envelopes`) instead: ``{"$strato_ref": "gs://bucket/key",
"bytes": n, ...}``. The parts of the result
the workflow itself reads (condition operands, map items: the compiler sends them as ``keep``) are
copied into the envelope, so ``switch`` steps and ``parallel for`` work unchanged; the shim
materialises envelopes before calling user code and resolves whole values (the output, a
sub-pipeline's input) on request.

The store is the kit's :class:`~strato.adapters.common.stores.BlobStore`: :class:`GcsStore`
(``google-cloud-storage``, imported lazily) on Google Cloud, a ``LocalBlobStore(dir, "gs")`` installed
with :func:`~strato.adapters.common.emulation.emulating` in emulation, so emulating needs no network.
https://cloud.google.com/workflows/quotas (512 KB of variables per execution)
"""

from __future__ import annotations

import os
from typing import Any

from strato.adapters.common import offload as common
from strato.adapters.common.emulation import store_override
from strato.adapters.common.envelopes import REF
from strato.adapters.common.errors import PayloadError
from strato.adapters.common.stores import BlobStore, split_uri

DEFAULT_THRESHOLD = 64 * 1024
DEFAULT_MAX_RESULT_BYTES = 256 * 1024
BUCKET_ENV = "STRATO_PAYLOAD_BUCKET"
THRESHOLD_ENV = "STRATO_OFFLOAD_BYTES"
MAX_RESULT_ENV = "STRATO_GCP_MAX_RESULT_BYTES"
PREFIX = common.PREFIX

__all__ = ["BUCKET_ENV", "PREFIX", "REF", "GcsStore", "ResultTooLarge", "current_store", "materialise", "offload"]


class ResultTooLarge(Exception):
    """A task's result (or the part of it the workflow reads) is over what a workflow variable may hold.

    Raised inside the task call, so the workflow sees it as the task's error, like any other."""


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
        bucket, key = split_uri(uri, "gs")
        if bucket != self.bucket:  # the function's account may read its own payload bucket only
            raise PayloadError(f"{uri} is not in this deployment's payload bucket {self.bucket!r}")
        return bytes(self.client.bucket(bucket).blob(key).download_as_bytes())


def current_store() -> BlobStore | None:
    """The store in use: an emulation's, else the bucket in ``STRATO_PAYLOAD_BUCKET``, else none."""
    override = store_override()
    if override is not None:
        return override
    bucket = os.environ.get(BUCKET_ENV)
    return GcsStore(bucket) if bucket else None


def _bytes_setting(name: str, default: int) -> int:
    text = os.environ.get(name, str(default))
    try:
        return int(text)
    except ValueError:
        raise PayloadError(f"{name}={text!r} is not a number of bytes") from None


def threshold() -> int:
    return _bytes_setting(THRESHOLD_ENV, DEFAULT_THRESHOLD)


def max_result_bytes() -> int:
    return _bytes_setting(MAX_RESULT_ENV, DEFAULT_MAX_RESULT_BYTES)


def materialise(value: Any) -> Any:
    """Replace envelopes (a whole result, or the elements of a map's result list) by their content."""
    return common.materialise(value, current_store())


MEMORY_BYTES = 512 * 1024  # a workflow's variables (https://cloud.google.com/workflows/quotas#resource_limits)
MEMORY_RESERVE = 16 * 1024  # the workflow's own variables: counters, envelopes' overhead, errors


def memory_threshold(share: int, params: Any) -> int:
    """The bytes a result may keep inline when the workflow holds ``share`` such results beside ``params``,
    each also held once more while its response is saved: an equal part of the 512 KB of variables.
    ``share`` 0 is the run's output, returned straight from its response: all the room there is."""
    room = MEMORY_BYTES - MEMORY_RESERVE - len(common.encode(params))
    return max(0, room // (max(0, share) + 1))


def offload(name: str, value: Any, keep: list[list[Any]] | None = None, limit: int | None = None) -> Any:
    """``value`` itself when small enough, else an envelope pointing at its copy in the store.

    ``limit`` is the result's part of the workflow's memory (:func:`memory_threshold`); the smaller of
    it and the configured threshold applies.

    ``keep`` lists the paths the workflow reads; an empty path means it reads the whole value, which
    then must stay inline. Without a store, results up to ``STRATO_GCP_MAX_RESULT_BYTES`` stay inline
    and larger ones fail clearly instead of failing the execution later.
    """
    data = common.encode(value)
    store = current_store()
    whole = keep is not None and [] in keep
    inline = threshold() if limit is None else min(threshold(), limit)
    if len(data) <= inline or store is None or whole:
        if len(data) > max_result_bytes():
            why = ("the workflow reads it whole (a condition or map over the entire result)" if whole and store
                   else f"no payload bucket is configured ({BUCKET_ENV})")
            raise ResultTooLarge(
                f"task {name!r} returned {len(data):,} bytes of JSON, over the {max_result_bytes():,}-byte limit "
                f"for a Cloud Workflows result (variables hold at most 512 KB) and {why}; return a reference "
                "(a gs:// URI or a path) to the data instead")
        return value
    envelope = common.store_value(value, store, keep, data)
    size = len(common.encode(envelope))
    if size > max_result_bytes():
        raise ResultTooLarge(f"task {name!r}: the fields of its result the workflow reads (conditions, map items) "
                             f"take {size:,} bytes, over the {max_result_bytes():,}-byte limit for a Cloud Workflows "
                             "result; branch on a smaller field or map over a shorter list")
    return envelope
