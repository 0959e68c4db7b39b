"""The adapters' errors: one root under :class:`~strato.errors.StratoError`, so the CLI shows each as a
message (no traceback) with the right exit code."""

from __future__ import annotations

from collections.abc import Iterable

from strato.errors import StratoError, UsageError


class AdapterError(StratoError):
    """A cloud adapter refused or could not do something; the message says what and what to do."""


class CompileError(AdapterError):
    """The pipeline uses something a target cannot express."""


class UnknownBackend(AdapterError, UsageError):
    """``--backend`` names no emulator of the target (a usage error: exit 2)."""


class UnknownTask(AdapterError):
    """A shim was asked to run a task that is not one of its own deployed pipeline's."""


class PayloadError(AdapterError):
    """An offloaded value cannot be stored or read back (no store configured, a bad reference)."""


def check_backend(target: str, backend: str | None, choices: Iterable[str]) -> str:
    """The emulator to use: ``backend``, or the target's first (default) one; refuses any other name."""
    names = tuple(choices)
    if backend is None:
        return names[0]
    if backend not in names:
        raise UnknownBackend(f"unknown --backend {backend!r} for target {target!r}; choose one of {', '.join(names)}")
    return backend
