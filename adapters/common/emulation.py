"""What emulation overrides in a shim, through context variables: the task loader and the blob store.

A deployed shim imports task code from its package (:mod:`.tasks`) and talks to its cloud's object
storage; an emulator runs the same shim in this process with the local runner's resolver and a
directory (or Azurite, or moto) instead. Context variables keep concurrent emulations apart; server
threads (the functions-framework app, the Durable replay host's activity workers) are entered with
:func:`in_this_context`, because a new thread starts with an empty context.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from .stores import BlobStore

TaskLoader = Callable[[str], Callable[..., Any]]  # a task's name (in the IR) -> its function

_loader: contextvars.ContextVar[TaskLoader | None] = contextvars.ContextVar("strato_task_loader", default=None)
_store: contextvars.ContextVar[BlobStore | None] = contextvars.ContextVar("strato_blob_store", default=None)

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def emulating(*, loader: TaskLoader | None = None, store: BlobStore | None = None) -> Iterator[None]:
    """Within the block, shims load tasks with ``loader`` and offload to ``store`` (each when given)."""
    loader_token = _loader.set(loader) if loader is not None else None
    store_token = _store.set(store) if store is not None else None
    try:
        yield
    finally:
        if store_token is not None:
            _store.reset(store_token)
        if loader_token is not None:
            _loader.reset(loader_token)


def loader_override() -> TaskLoader | None:
    return _loader.get()


def store_override() -> BlobStore | None:
    return _store.get()


def in_this_context(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` running, at every call and on any thread, in a copy of the context it was wrapped in."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.copy().run(fn, *args, **kwargs)

    return run
