"""Errors and located diagnostics.

Every mistake a pipeline author can make is reported as a :class:`Diagnostic` that names the
place (file:line) and the task or field, so ``strato validate`` can print all of them at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import field
from types import FrameType

from ._record import INIT_FILE_PREFIX, record

_FRAMEWORK_DIR = os.path.dirname(os.path.abspath(__file__))


@record(slots=True)
class Location:
    """A place in the user's source code."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{display_path(self.file)}:{self.line}"

    def to_dict(self) -> dict:
        return {"file": self.file, "line": self.line}

    @classmethod
    def from_dict(cls, data: dict | None) -> Location | None:
        return None if data is None else cls(data["file"], int(data["line"]))


def display_path(path: str) -> str:
    """Show a path relative to the working directory when it lies below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def caller_location(skip_framework: bool = True) -> Location | None:
    """The first frame outside the framework package: where the user wrote the call."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        generated = filename.startswith(("<frozen", INIT_FILE_PREFIX)) or (
            filename == "<string>" and frame.f_code.co_name == "__init__")
        if not generated and not (skip_framework and filename.startswith(_FRAMEWORK_DIR)):
            return Location(filename, frame.f_lineno)
        frame = frame.f_back
    return None


@record(slots=True)
class Diagnostic:
    """One problem found in a pipeline definition."""

    message: str
    location: Location | None = None
    subject: str | None = None  # e.g. "task 'extract'", "pipeline 'daily_sales'", "schedule"
    severity: str = "error"  # "error" | "warning"

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        subject = f"{self.subject}: " if self.subject else ""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{where}{prefix}{subject}{self.message}"

    def to_dict(self) -> dict:
        return {
            "message": self.message,
            "file": display_path(self.location.file) if self.location else None,
            "line": self.location.line if self.location else None,
            "subject": self.subject,
            "severity": self.severity,
        }


class StratoError(Exception):
    """Base class of errors that are the user's to fix: shown without a traceback."""


class UsageError(StratoError):
    """Bad command-line usage or bad run input (exit code 2)."""


class DefinitionError(StratoError):
    """A pipeline definition has errors; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics: list[Diagnostic] = [d for d in diagnostics if d.severity == "error"]
        self.warnings: list[Diagnostic] = [d for d in diagnostics if d.severity != "error"]
        count = len(self.diagnostics)
        lines = "\n".join(str(d) for d in self.diagnostics)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in pipeline definition:\n{lines}")


class TraceError(StratoError):
    """Raised inside a pipeline body for a mistake that stops tracing (e.g. ``if handle:``)."""


class TaskTimeout(Exception):
    """A task ran longer than its ``timeout``; retry and catch it as ``"TaskTimeout"``."""


class CheckFailed(Exception):
    """An ``error`` data-quality check failed on a task's result (:mod:`strato.checks`); retry and catch
    it as ``"CheckFailed"``."""


@record(frozen=False)
class DiagnosticSink:
    """Collects diagnostics while a definition is traced."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, message: str, location: Location | None = None, subject: str | None = None) -> None:
        self.items.append(Diagnostic(message, location, subject))

    def warning(self, message: str, location: Location | None = None, subject: str | None = None) -> None:
        self.items.append(Diagnostic(message, location, subject, "warning"))

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]
