"""Large results travel through S3 by reference, so no state passes Step Functions' 256 KiB limit.

A result over the threshold (``STRATO_OFFLOAD_BYTES``, default 200 KiB) is written to the bucket
named by ``STRATO_PAYLOAD_BUCKET`` under its content hash, and the state machine carries the common
envelope instead (:mod:`strato.adapters.common.envelopes`): ``{"$strato_ref": "s3://bucket/key",
"bytes": n, ...}``. The fields the state machine itself reads (``Choice`` conditions, map items:
:func:`strato.adapters.common.reads.read_inline`) are copied into the envelope, and a result the
machine reads whole stays inline, so ``Choice`` and ``Map`` work unchanged; every task's shim
materialises envelopes before calling user code.
https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html (256 KiB per state input/output)
"""

from __future__ import annotations

import json
import os
from typing import Any

from strato.adapters.common import offload as common
from strato.adapters.common.emulation import store_override
from strato.adapters.common.errors import PayloadError
from strato.adapters.common.stores import BlobStore, split_uri

DEFAULT_THRESHOLD = 200 * 1024
BUCKET_ENV, THRESHOLD_ENV = "STRATO_PAYLOAD_BUCKET", "STRATO_OFFLOAD_BYTES"
MAX_STATE_BYTES = 262_144  # https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
STATE_RESERVE = 8 * 1024  # the state's own keys, envelopes' overhead, errors and scratch values


def threshold() -> int:
    text = os.environ.get(THRESHOLD_ENV, str(DEFAULT_THRESHOLD))
    try:
        return int(text)
    except ValueError:
        raise PayloadError(f"{THRESHOLD_ENV}={text!r} is not a number of bytes") from None


class S3Store:
    """An S3 bucket (``s3://bucket/key``) through boto3, with the function's own credentials."""

    def __init__(self, bucket: str, client: Any = None):
        self.bucket, self._client = bucket, client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # the Lambda runtime ships boto3; imported only when a payload moves

            self._client = boto3.client("s3")
        return self._client

    def put(self, key: str, data: bytes) -> str:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType="application/json")
        return f"s3://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        bucket, key = split_uri(uri, "s3")
        if bucket != self.bucket:  # the function's role may read its own payload bucket only
            raise PayloadError(f"{uri} is not in this deployment's payload bucket {self.bucket!r}")
        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(uri) from None


def current_store() -> BlobStore | None:
    """An emulation's store, else the bucket in ``STRATO_PAYLOAD_BUCKET``, else none."""
    override = store_override()
    if override is not None:
        return override
    bucket = os.environ.get(BUCKET_ENV)
    return S3Store(bucket) if bucket else None


def _store_for(size: int) -> BlobStore:
    store = current_store()
    if store is None:
        raise PayloadError(f"{size:,} bytes must go to S3 and {BUCKET_ENV} is not set; deploy with a payload bucket")
    return store


def materialise(value: Any) -> Any:
    """Replace envelopes (at the top, or as elements of a map's result list) by their content."""
    return common.materialise(value, current_store())


def read_object(uri: str) -> bytes:
    """An object of the payload bucket (a map's result files), refused anywhere else."""
    store = current_store()
    if store is None:
        raise PayloadError(f"{uri} is in the payload bucket and {BUCKET_ENV} is not set; deploy with a payload bucket")
    try:
        return store.get(uri)
    except FileNotFoundError:
        raise PayloadError(f"{uri} is missing from the payload bucket") from None


def store_items(items: list[Any]) -> dict[str, Any]:
    """Write a map's items as a JSON array for a Distributed Map's ``ItemReader``."""
    data = json.dumps(items, separators=(",", ":"), allow_nan=False).encode()
    bucket, key = split_uri(_store_for(len(data)).put(common.content_key(data), data), "s3")
    return {"Bucket": bucket, "Key": key, "count": len(items)}


def state_threshold(share: int, params: Any) -> int:
    """The bytes a result may keep inline when the state holds ``share`` such results beside ``params``:
    an equal part of the 256 KiB every state input and output must stay within."""
    room = MAX_STATE_BYTES - STATE_RESERVE - len(common.encode(params))
    return max(0, room // max(1, share))


def offload(value: Any, keep: list[list[Any]] | None = None, limit: int | None = None) -> Any:
    """``value`` itself when small or read whole by the machine, else an envelope pointing at its copy in S3.

    ``limit`` is the result's part of the state (:func:`state_threshold`); the smaller of it and the
    configured threshold applies.
    """
    data = common.encode(value)
    if len(data) <= min(threshold(), DEFAULT_THRESHOLD if limit is None else limit) or (keep is not None
                                                                                      and [] in keep):
        return value
    return common.store_value(value, _store_for(len(data)), keep, data)
