"""The envelope a result offloaded to object storage travels in, the same on every cloud.

``{"$strato_ref": "<scheme>://bucket/key", "bytes": n, ...kept fields}``: the fields the state
machine or workflow itself reads (conditions, map items) are copied in, in their original nesting,
so the native control flow works on the envelope as on the value.
"""

from __future__ import annotations

from typing import Any

REF = "$strato_ref"


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
