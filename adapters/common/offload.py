"""Offloading large values to a blob store and reading them back, the same on every cloud.

Each cloud decides *when* (its threshold, its own hard limits) and *where* (its store); this module
does the rest: the canonical encoding, content-addressed keys, the envelope, and materialising
envelopes (a whole value, the elements of a map's result list, or a part addressed by ``path``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .envelopes import PATH, REF, envelope, is_ref
from .errors import PayloadError
from .stores import BlobStore

PREFIX = "strato/payloads/"


def encode(value: Any) -> bytes:
    """The canonical JSON of a value (compact, sorted keys): what is measured, hashed and stored."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def content_key(data: bytes) -> str:
    return f"{PREFIX}{hashlib.sha256(data).hexdigest()}.json"


def store_value(value: Any, store: BlobStore, keep: list[list[Any]] | None = None,
                data: bytes | None = None) -> dict[str, Any]:
    """Write ``value`` to ``store`` and return its envelope (``keep`` paths copied in)."""
    data = encode(value) if data is None else data
    return envelope(store.put(content_key(data), data), len(data), value, keep)


def offload(value: Any, store: BlobStore | None, threshold: int, keep: list[list[Any]] | None = None) -> Any:
    """``value`` itself when its JSON fits in ``threshold`` bytes (or there is no store), else its envelope."""
    data = encode(value)
    if len(data) <= threshold or store is None:
        return value
    return store_value(value, store, keep, data)


def _address(value: Any, path: list[Any]) -> Any:
    for part in path:
        if isinstance(value, dict) and isinstance(part, str):
            value = value.get(part)
        elif isinstance(value, list) and isinstance(part, int) and not isinstance(part, bool) and (
                -len(value) <= part < len(value)):
            value = value[part]
        else:
            return None
    return value


def read_ref(ref: dict[str, Any], store: BlobStore | None) -> Any:
    """The value an envelope stands for (the part at its ``path``, when it has one)."""
    if store is None:
        raise PayloadError(f"{ref[REF]} is an offloaded value but no payload store is configured")
    try:
        value = json.loads(store.get(ref[REF]))
    except FileNotFoundError:
        raise PayloadError(f"offloaded value {ref[REF]} is missing from the payload store") from None
    return _address(value, list(ref.get(PATH) or []))


def materialise(value: Any, store: BlobStore | None) -> Any:
    """Replace envelopes (a whole value, or the elements of a map's result list) by their content."""
    if is_ref(value):
        return read_ref(value, store)
    if isinstance(value, list) and any(is_ref(v) for v in value):
        return [read_ref(v, store) if is_ref(v) else v for v in value]
    return value
