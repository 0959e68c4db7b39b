"""Capturing what a task writes, per attempt, while other tasks run beside it in threads.

While a run is live, ``sys.stdout`` and ``sys.stderr`` are replaced by routers and a handler sits on
the root logger. A worker thread running an attempt sets :data:`_current` to that attempt's
:class:`AttemptLog`; a write or a log record from that thread goes to it, anything else passes
through to the original stream. Installation is counted, so runs in several threads of one process
(a backfill, a pipeline called as plain Python inside a task) share one set of routers.

An :class:`AttemptLog` splits what it gets into lines, replaces the values of the attempt's secrets
with ``***``, keeps at most ``limit`` bytes (then counts what it dropped, and says so when closed),
and hands lines to the runner's event loop, which writes them to the run store. Output written to a
file descriptor directly (a subprocess inheriting it, C extensions) bypasses ``sys.stdout`` and is
not captured.
"""

from __future__ import annotations

import contextvars
import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

DEFAULT_LIMIT = 1024 * 1024
"""Bytes of output stored per attempt (``$STRATO_LOG_MAX_BYTES``); more is counted, not stored."""

STREAMS = ("stdout", "stderr", "log", "traceback", "strato")
"""The ``stream`` of a stored line: what the task printed, a logging record, the failed attempt's
traceback, or a note by Strato itself (a cut log, output after a timeout)."""

LogLine = tuple[float, str, str]  # (clock time, stream, line without its newline)
Echo = Callable[[str, int, str, str], None]  # (unit key, attempt, stream, line)

_FRAMEWORK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def limit_from_env() -> int:
    """``$STRATO_LOG_MAX_BYTES`` (default 1 MiB); 0 stores no output."""
    from ..errors import UsageError

    text = os.environ.get("STRATO_LOG_MAX_BYTES", "").strip()
    if not text:
        return DEFAULT_LIMIT
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise UsageError(f"STRATO_LOG_MAX_BYTES={text!r}: set it to a whole number of bytes (0 or more), or unset "
                         f"it (default {DEFAULT_LIMIT})")
    return value


def level_from_env() -> int:
    """``$STRATO_LOG_LEVEL`` (default INFO): the lowest ``logging`` level captured from tasks."""
    from ..errors import UsageError

    text = os.environ.get("STRATO_LOG_LEVEL", "").strip().upper() or "INFO"
    level = logging.getLevelName(text)
    if not isinstance(level, int):
        raise UsageError(f"STRATO_LOG_LEVEL={text!r}: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


class AttemptLog:
    """The output of one attempt: complete, redacted lines waiting to be stored."""

    __slots__ = ("attempt", "closed", "dropped", "echo", "key", "limit", "lock", "notify", "now", "partial",
                 "pending", "secrets", "stored")

    def __init__(self, key: str, attempt: int, now: Callable[[], float], notify: Callable[[AttemptLog], None],
                 limit: int = DEFAULT_LIMIT, echo: Echo | None = None):
        self.key, self.attempt, self.now, self.notify, self.limit, self.echo = key, attempt, now, notify, limit, echo
        self.lock = threading.Lock()
        # empty until the attempt writes: most never do, and every attempt makes one of these
        self.pending: list[LogLine] | tuple[()] = ()
        self.partial: dict[str, str] | None = None
        self.stored = self.dropped = 0
        self.closed = False
        self.secrets: list[str] | tuple[()] = ()

    def add_secrets(self, values: Iterable[str]) -> None:
        """Values never to store or show (the attempt's resolved secrets), longest replaced first."""
        with self.lock:
            self.secrets = sorted({*self.secrets, *(v for v in values if v)}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for value in self.secrets:
            text = text.replace(value, "***")
        return text

    def write(self, stream: str, text: str) -> None:
        with self.lock:
            if self.closed:
                return
            if self.partial is None:
                self.partial = {}
            *lines, rest = (self.partial.get(stream, "") + text).split("\n")
            self.partial[stream] = rest
            shown = self._add(stream, lines)
        self._echo(shown)

    def _add(self, stream: str, lines: list[str], always: bool = False) -> list[tuple[str, str]]:
        """Store lines (under the lock) within the limit; ``always`` for notes and tracebacks."""
        shown = []
        was_empty = not self.pending
        pending: list[LogLine] = self.pending if isinstance(self.pending, list) else []
        self.pending = pending
        for raw in lines:
            line = self.redact(raw.rstrip("\r"))
            shown.append((stream, line))
            size = len(line.encode("utf-8", "replace")) + 1
            if always or self.stored + size <= self.limit:
                self.stored += size
                pending.append((self.now(), stream, line))
            else:
                self.dropped += size
        if was_empty and pending:
            self.notify(self)
        return shown

    def _echo(self, lines: list[tuple[str, str]]) -> None:
        if self.echo is None or not lines:
            return
        _local.emitting = True  # what the echo writes goes to the terminal, not back into this log
        try:
            for stream, line in lines:
                self.echo(self.key, self.attempt, stream, line)
        finally:
            _local.emitting = False

    def add(self, stream: str, text: str) -> None:
        """Lines of Strato's own (a traceback, a note): stored whatever the limit."""
        with self.lock:
            shown = self._add(stream, text.rstrip("\n").split("\n"), always=True)
        if stream != "traceback":  # the terminal gets the run's error; the traceback waits in the store
            self._echo(shown)

    def drain(self) -> list[LogLine]:
        with self.lock:
            lines, self.pending = self.pending, ()
        return lines if isinstance(lines, list) else []

    def close(self, note: str | None = None) -> None:
        """End the attempt: flush unfinished lines, say how much was cut; later writes are ignored."""
        with self.lock:
            if self.closed:
                return
            shown = []
            for stream, rest in (self.partial or {}).items():
                if rest:
                    shown += self._add(stream, [rest])
            self.partial = None
            if self.dropped:
                shown += self._add("strato", [f"[strato] log cut: this attempt wrote {self.dropped} more bytes "
                                              f"than the {self.limit}-byte limit ($STRATO_LOG_MAX_BYTES); they "
                                              "were not stored"], always=True)
            if note:
                shown += self._add("strato", [note], always=True)
            self.closed = True
        self._echo(shown)


_current: contextvars.ContextVar[AttemptLog | None] = contextvars.ContextVar("strato_attempt_log", default=None)
_local = threading.local()


def current() -> AttemptLog | None:
    """The log of the attempt running in this thread, if any."""
    return _current.get()


def set_current(log: AttemptLog | None) -> contextvars.Token[AttemptLog | None]:
    return _current.set(log)


def reset_current(token: contextvars.Token[AttemptLog | None]) -> None:
    _current.reset(token)


def redact_secrets(values: Iterable[str]) -> None:
    """Called where a task's secrets are resolved: their values are redacted from its stored output."""
    log = _current.get()
    if log is not None:
        log.add_secrets(values)


class _Router(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``: a task's writes go to its log, others pass through."""

    def __init__(self, name: str, original: Any):
        self.name, self.original = name, original

    def write(self, text: str) -> int:
        log = _current.get()
        if log is None or getattr(_local, "emitting", False):
            return self.original.write(text)
        log.write(self.name, text)
        return len(text)

    def flush(self) -> None:
        if _current.get() is None:
            self.original.flush()

    def isatty(self) -> bool:
        return bool(self.original.isatty())

    def fileno(self) -> int:
        return int(self.original.fileno())

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(getattr(self.original, "encoding", "utf-8"))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


_install_lock = threading.Lock()
_installed: dict[str, Any] = {}


def install(level: int) -> None:
    """Route task output into attempt logs (counted: every :func:`install` needs an :func:`uninstall`)."""
    with _install_lock:
        if _installed:
            _installed["count"] += 1
            return
        root = logging.getLogger()
        handler = _Handler(level)
        before = root.level
        filters: list[tuple[logging.Handler, logging.Filter]] = []
        if before > level:
            # records at the capture level must reach the handler; handlers already on the root logger
            # keep seeing only what they saw before
            for existing in root.handlers:
                flt = _AtLeast(before)
                existing.addFilter(flt)
                filters.append((existing, flt))
            root.setLevel(level)
        root.addHandler(handler)
        _installed.update(count=1, stdout=sys.stdout, stderr=sys.stderr, handler=handler, level=before,
                          filters=filters)
        sys.stdout = _Router("stdout", sys.stdout)
        sys.stderr = _Router("stderr", sys.stderr)


def uninstall() -> None:
    with _install_lock:
        if not _installed:
            return
        _installed["count"] -= 1
        if _installed["count"] > 0:
            return
        root = logging.getLogger()
        root.removeHandler(_installed["handler"])
        if _installed["filters"]:
            root.setLevel(_installed["level"])
        for existing, flt in _installed["filters"]:
            existing.removeFilter(flt)
        for name in ("stdout", "stderr"):
            if isinstance(getattr(sys, name), _Router):
                setattr(sys, name, _installed[name])
        _installed.clear()


def original_stream(name: str) -> Any:
    """The stream a router stands in for (the terminal), or the current one when none is installed."""
    stream = getattr(sys, name)
    return stream.original if isinstance(stream, _Router) else stream


class _AtLeast(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(record.levelno >= self.level)


class _Handler(logging.Handler):
    """Sends ``logging`` records made in a task's thread to its attempt log."""

    def __init__(self, level: int):
        super().__init__(level)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        log = _current.get()
        if log is None:
            return
        try:
            log.write("log", self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def user_traceback(exc: BaseException) -> str:
    """The exception's traceback with Strato's own frames left out: what the task's author wrote."""
    import traceback  # only when a task failed: a run that succeeds never loads it

    te = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    todo: list[traceback.TracebackException] = [te]
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        item.stack = traceback.StackSummary.from_list(
            [frame for frame in item.stack if not frame.filename.startswith(_FRAMEWORK_DIR)])
        todo.extend(t for t in (item.__cause__, item.__context__) if t is not None)
    return "".join(te.format())


__all__ = ["DEFAULT_LIMIT", "STREAMS", "AttemptLog", "current", "install", "level_from_env", "limit_from_env",
           "original_stream", "redact_secrets", "uninstall", "user_traceback"]
