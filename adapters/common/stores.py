"""Blob stores: where offloaded values live. One protocol for every cloud, keyed by URI.

A cloud's own store (S3, Cloud Storage, Blob Storage) lives in its folder's ``payloads`` module and
imports its SDK lazily; :class:`LocalBlobStore` stands in for any of them in emulation and tests, with
the same URIs, so an envelope means the same thing in both.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Protocol, runtime_checkable

from .errors import PayloadError


@runtime_checkable
class BlobStore(Protocol):
    """Stores bytes under a key and reads them back by URI. Keys are content hashes: writing twice is harmless."""

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key``; returns its URI (``<scheme>://<bucket>/<key>``)."""
        ...

    def get(self, uri: str) -> bytes:
        """The bytes at ``uri``; ``FileNotFoundError`` when there are none."""
        ...


def split_uri(uri: str, scheme: str) -> tuple[str, str]:
    """``<scheme>://bucket/key`` -> ``(bucket, key)``."""
    prefix = f"{scheme}://"
    if not isinstance(uri, str) or not uri.startswith(prefix):
        raise PayloadError(f"not a {scheme}:// reference: {uri!r}")
    bucket, _, key = uri[len(prefix):].partition("/")
    if not bucket or not key:
        raise PayloadError(f"a {scheme}:// reference needs a bucket and a key: {uri!r}")
    return bucket, key


class LocalBlobStore:
    """A directory standing in for a cloud's object storage: ``<scheme>://bucket/key`` is ``<root>/bucket/key``.

    Reads and writes never leave ``root`` (a key or bucket with ``..`` is refused), and a write is
    atomic (temporary file, then rename), so concurrent writers of one key cannot tear it.
    """

    def __init__(self, root: Path | str, scheme: str, bucket: str = "strato-payloads"):
        self.root, self.scheme, self.bucket = Path(root), scheme, bucket

    def _path(self, bucket: str, key: str) -> Path:
        base = self.root.resolve()
        path = (base / bucket / key).resolve()
        if not path.is_relative_to(base / bucket) or "/" in bucket or bucket in ("", ".", ".."):
            raise PayloadError(f"payload key {key!r} points outside bucket {bucket!r}")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path(self.bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return f"{self.scheme}://{self.bucket}/{key}"

    def get(self, uri: str) -> bytes:
        return self._path(*split_uri(uri, self.scheme)).read_bytes()
