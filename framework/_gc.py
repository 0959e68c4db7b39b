"""Pausing the cyclic garbage collector while large, acyclic structures are built.

Tracing or parsing a 20,000-task pipeline allocates hundreds of thousands of objects; each full
collection walks all of them, which made those phases grow faster than linearly (measured in
``bench/``). Nothing built there forms reference cycles, so the pause frees nothing late.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
