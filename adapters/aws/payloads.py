"""Large results travel through S3 by reference, so no state passes Step Functions' 256 KiB limit.

A result over the threshold (``STRATO_OFFLOAD_BYTES``, default 200 KiB) is written to the bucket
named by ``STRATO_PAYLOAD_BUCKET`` under a content hash, and the state machine carries a small
envelope instead: ``{"$strato_ref": "s3://bucket/key", "bytes": n, ...}``. The fields the state
machine itself reads (conditions, map items) are copied into the envelope, so ``Choice`` and
``Map`` work unchanged; every task's shim materialises envelopes before calling user code.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ..envelopes import REF, is_ref, kept_fields

DEFAULT_THRESHOLD = 200 * 1024


def threshold() -> int:
    return int(os.environ.get("STRATO_OFFLOAD_BYTES", DEFAULT_THRESHOLD))


def _s3() -> Any:
    import boto3

    return boto3.client("s3")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def materialise(value: Any) -> Any:
    """Replace envelopes (at the top, or as elements of a map's result list) by their content."""
    if is_ref(value):
        bucket, key = _split(value[REF])
        return json.loads(_s3().get_object(Bucket=bucket, Key=key)["Body"].read())
    if isinstance(value, list) and any(is_ref(v) for v in value):
        return [materialise(v) for v in value]
    return value


def _bucket(size: int) -> str:
    bucket = os.environ.get("STRATO_PAYLOAD_BUCKET")
    if not bucket:
        raise RuntimeError(f"{size:,} bytes must go to S3 and STRATO_PAYLOAD_BUCKET is not set; deploy with a "
                           "payload bucket")
    return bucket


def _put(data: bytes) -> tuple[str, str]:
    bucket = _bucket(len(data))
    key = f"strato/payloads/{hashlib.sha256(data).hexdigest()}.json"
    _s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/json")
    return bucket, key


def store_items(items: list[Any]) -> dict[str, Any]:
    """Write a map's items as a JSON array for a Distributed Map's ``ItemReader``."""
    bucket, key = _put(json.dumps(items, separators=(",", ":")).encode())
    return {"Bucket": bucket, "Key": key, "count": len(items)}


def offload(value: Any, keep: list[list[Any]] | None = None) -> Any:
    """``value`` itself when small, else an envelope pointing at its copy in S3."""
    data = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    if len(data) <= threshold():
        return value
    bucket, key = _put(data)
    envelope = kept_fields(value, keep or [])
    return {**envelope, REF: f"s3://{bucket}/{key}", "bytes": len(data)}
