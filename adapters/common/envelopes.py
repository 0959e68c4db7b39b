"""The envelope an offloaded value travels in, the same on every cloud.

``{"$strato_ref": "<scheme>://<bucket>/<key>", "bytes": n, ...kept fields}``: the value's JSON lives
in object storage (S3, Cloud Storage, Blob Storage, or a directory in emulation) under its content
hash. The fields the orchestrator itself reads (conditions, map items: :mod:`.reads`) are copied in,
in their original nesting, so native control flow works on the envelope as on the value. An
optional ``"path"`` addresses into the stored value without reading it (a part of an offloaded list
handed to one map item, say).
"""

from __future__ import annotations

from typing import Any

REF = "$strato_ref"
PATH = "path"


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get(REF), str)


def kept_fields(value: Any, paths: list[list[Any]]) -> dict[str, Any]:
    """The parts of ``value`` at ``paths`` (object keys only), in the same nesting."""
    out: dict[str, Any] = {}
    if not isinstance(value, dict):
        return out
    for path in paths:
        source, target = value, out
        for i, key in enumerate(path):
            if not isinstance(key, str) or not isinstance(source, dict) or key not in source:
                break
            source = source[key]
            if i == len(path) - 1:
                target[key] = source
            else:
                target = target.setdefault(key, {})
    return out


def envelope(uri: str, size: int, value: Any = None, keep: list[list[Any]] | None = None) -> dict[str, Any]:
    """The envelope for ``value`` stored at ``uri`` (``size`` bytes of JSON), with ``keep`` copied in."""
    return {**kept_fields(value, keep or []), REF: uri, "bytes": size}


def sub_ref(ref: dict[str, Any], path: list[Any]) -> dict[str, Any]:
    """A reference to the part of an offloaded value at ``path`` (relative to what ``ref`` addresses)."""
    return {REF: ref[REF], "bytes": ref.get("bytes", 0), PATH: [*ref.get(PATH, []), *path]}
