"""Option objects of the DSL: retries, catches, schedules and event triggers.

They are what a pipeline author writes. Constructing one never raises: problems are reported by
:meth:`problems` so that ``strato validate`` can list every mistake at once, located where the
object was written. Tracing turns each into its IR spec (:meth:`spec`); backends read only those.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import field
from typing import Any

from . import ir
from ._record import record
from .errors import Diagnostic, Location, caller_location
from .ir import error_matches, expand_error_names

_ERROR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _error_names(on: Any, field_name: str, subject: str, loc: Location | None) -> list[Diagnostic]:
    if on is None:
        return []
    if isinstance(on, str) or not isinstance(on, (tuple, list)) or not on:
        return [Diagnostic(f"{field_name} must be a non-empty tuple of exception class names, "
                           f"e.g. ('IOError',), or None for any error; got {on!r}", loc, subject)]
    bad = [n for n in on if not isinstance(n, str) or not _ERROR_NAME.match(n)]
    if bad:
        return [Diagnostic(f"{field_name} names errors by exception class name (a string such as "
                           f"'ValueError'); invalid: {', '.join(map(repr, bad))}", loc, subject)]
    return []


_ALIASES = {"IOError": "OSError", "EnvironmentError": "OSError"}  # Python names these classes OSError


def _normalise_on(on: Any) -> tuple[str, ...] | None:
    if on is None:
        return None
    if isinstance(on, type) and issubclass(on, BaseException):
        on = (on,)
    if isinstance(on, (tuple, list)):
        names = (n.__name__ if isinstance(n, type) else n for n in on)
        return tuple(dict.fromkeys(_ALIASES.get(n, n) if isinstance(n, str) else n for n in names))
    return on  # reported by problems()


@record
class Retry:
    """Retry a failed task: ``max_retries`` retries after the first attempt.

    The n-th retry waits ``min(delay * backoff**(n-1), max_delay)`` seconds; with ``jitter`` a
    uniformly random part of that ("full jitter", as Step Functions does). ``on`` limits retries to
    the named exception classes (``None``: any error; ``"TaskTimeout"`` for timeouts).
    """

    max_retries: int = 3
    delay: float = 1.0
    backoff: float = 2.0
    max_delay: float | None = None
    jitter: bool = False
    on: tuple[str, ...] | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "on", _normalise_on(self.on))
        if self.location is None:
            object.__setattr__(self, "location", caller_location())

    def spec(self) -> ir.RetrySpec:
        return ir.RetrySpec(self.max_retries, self.delay, self.backoff, self.max_delay, self.jitter, self.on)

    def delay_for(self, retry_number: int) -> float:
        """Seconds before retry ``retry_number`` (1-based), before jitter."""
        return self.spec().delay_for(retry_number)

    def problems(self, subject: str) -> list[Diagnostic]:
        loc, out = self.location, []
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            out.append(Diagnostic(f"retry.max_retries must be a whole number >= 0, got {self.max_retries!r}",
                                  loc, subject))
        if not _number(self.delay) or self.delay < 0:
            out.append(Diagnostic(f"retry.delay must be a number of seconds >= 0, got {self.delay!r}", loc, subject))
        if not _number(self.backoff) or self.backoff < 1:
            out.append(Diagnostic(f"retry.backoff must be a number >= 1, got {self.backoff!r}", loc, subject))
        if self.max_delay is not None and (not _number(self.max_delay) or self.max_delay <= 0):
            out.append(Diagnostic(f"retry.max_delay must be a number of seconds > 0 or None, got {self.max_delay!r}",
                                  loc, subject))
        if not isinstance(self.jitter, bool):
            out.append(Diagnostic(f"retry.jitter must be True or False, got {self.jitter!r}", loc, subject))
        out.extend(_error_names(self.on, "retry.on", subject, loc))
        return out


@record
class Catch:
    """After retries are spent, run ``handler(error)`` and use its result instead.

    ``error`` is ``{"error": "<ExceptionClassName>", "cause": "<message>"}``. ``on`` limits the
    catch to the named exception classes (``None``: any error).
    """

    handler: Callable[..., Any]
    on: tuple[str, ...] | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "on", _normalise_on(self.on))
        if self.location is None:
            object.__setattr__(self, "location", caller_location())

    def problems(self, subject: str) -> list[Diagnostic]:
        out = _error_names(self.on, "catch.on", subject, self.location)
        if not callable(self.handler):
            out.append(Diagnostic(f"catch.handler must be a task or function taking the error, got {self.handler!r}",
                                  self.location, subject))
        return out


@record
class Schedule:
    """Start a pipeline on a schedule: a 5-field unix ``cron`` in an IANA ``timezone``, or ``every``
    (``"30s"`` is not allowed by the clouds; use whole minutes: ``"15m"``, ``"2h"``, ``"1d"``).

    ``input`` gives values for the pipeline's parameters in scheduled runs.
    """

    cron: str | None = None
    timezone: str = "UTC"
    every: str | None = None
    input: dict[str, Any] | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.location is None:
            object.__setattr__(self, "location", caller_location())

    @property
    def every_seconds(self) -> int | None:
        return ir.every_seconds(self.every)

    def spec(self) -> ir.ScheduleSpec:
        return ir.ScheduleSpec(self.cron, self.timezone, self.every, self.input, self.location)

    def problems(self, subject: str = "schedule") -> list[Diagnostic]:
        loc, out = self.location, []
        if (self.cron is None) == (self.every is None):
            return [Diagnostic("give exactly one of cron='m h dom mon dow' or every='15m'", loc, subject)]
        if self.cron is not None:
            out.extend(_cron_problems(self.cron, loc, subject))
        else:
            seconds = self.every_seconds
            if seconds is None:
                out.append(Diagnostic(f"every={self.every!r} is not an interval; write e.g. '15m', '2h' or '1d'",
                                      loc, subject))
            elif seconds < 60 or seconds % 60:
                out.append(Diagnostic(f"every={self.every!r}: schedules run in whole minutes (at least '1m')",
                                      loc, subject))
        out.extend(_timezone_problems(self.timezone, loc, subject))
        if self.input is not None and not isinstance(self.input, dict):
            out.append(Diagnostic(f"schedule input must be a dict of parameter values, got {self.input!r}",
                                  loc, subject))
        return out


def _cron_problems(cron: Any, loc: Location | None, subject: str) -> list[Diagnostic]:
    if not isinstance(cron, str):
        return [Diagnostic(f"cron must be a string such as '0 2 * * *', got {cron!r}", loc, subject)]
    fields = cron.split()
    if len(fields) != 5:
        return [Diagnostic(f"cron {cron!r} has {len(fields)} fields; write 5 (minute hour day-of-month month "
                           f"day-of-week), e.g. '0 2 * * *'", loc, subject)]
    from croniter import croniter  # lazy: only validation needs it

    if not croniter.is_valid(cron):
        return [Diagnostic(f"cron {cron!r} is not a valid expression (minute hour day-of-month month day-of-week)",
                           loc, subject)]
    return []


def _timezone_problems(tz: Any, loc: Location | None, subject: str) -> list[Diagnostic]:
    from zoneinfo import ZoneInfo

    if not isinstance(tz, str) or not tz:
        return [Diagnostic(f"timezone must be an IANA name such as 'Europe/Paris', got {tz!r}", loc, subject)]
    try:
        ZoneInfo(tz)
    except (ValueError, KeyError, OSError):
        return [Diagnostic(f"unknown timezone {tz!r}; use an IANA name such as 'UTC' or 'Europe/Paris'", loc, subject)]
    return []


@record
class ObjectCreated:
    """Start a pipeline when an object is created in a bucket (S3, Cloud Storage, Blob Storage).

    The run's input gets the event fields ``bucket``, ``key`` and ``size`` for the pipeline
    parameters of those names; ``input`` gives the other parameters.
    """

    bucket: str
    prefix: str = ""
    suffix: str = ""
    input: dict[str, Any] | None = None
    location: Location | None = field(default=None, compare=False, repr=False)

    EVENT_FIELDS = ir.ObjectCreatedSpec.EVENT_FIELDS

    def __post_init__(self) -> None:
        if self.location is None:
            object.__setattr__(self, "location", caller_location())

    def problems(self, subject: str = "trigger ObjectCreated") -> list[Diagnostic]:
        out = []
        if not isinstance(self.bucket, str) or not re.match(r"^[a-z0-9][a-z0-9.\-_]{1,221}[a-z0-9]$", self.bucket):
            out.append(Diagnostic(f"bucket {self.bucket!r} is not a valid bucket name (3-63 lowercase letters, digits, "
                                  "'.', '-', '_')", self.location, subject))
        for name in ("prefix", "suffix"):
            if not isinstance(getattr(self, name), str):
                out.append(Diagnostic(f"{name} must be a string", self.location, subject))
        return out

    def spec(self) -> ir.ObjectCreatedSpec:
        return ir.ObjectCreatedSpec(self.bucket, self.prefix, self.suffix, self.input, self.location)


@record
class Http:
    """Start a pipeline with an authenticated HTTPS request whose JSON body is the run's input."""

    path: str | None = None
    auth: str = "iam"  # "iam" (cloud identity) | "none" (anyone who can reach the URL; needs public=True)
    public: bool = False  # the explicit consent an unauthenticated endpoint needs
    location: Location | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.location is None:
            object.__setattr__(self, "location", caller_location())

    def problems(self, subject: str = "trigger Http") -> list[Diagnostic]:
        out = []
        if self.auth not in ("iam", "none"):
            out.append(Diagnostic(f"auth must be 'iam' or 'none', got {self.auth!r}", self.location, subject))
        elif self.auth == "none" and self.public is not True:
            out.append(Diagnostic("auth='none' lets anyone who can reach the URL start runs with any input; keep "
                                  "auth='iam', or confirm with Http(auth='none', public=True)", self.location, subject))
        elif self.auth == "none":
            out.append(Diagnostic("public endpoint: anyone who can reach the URL can start runs with any input "
                                  "(auth='none', public=True)", self.location, subject, "warning"))
        if not isinstance(self.public, bool):
            out.append(Diagnostic(f"public must be True or False, got {self.public!r}", self.location, subject))
        valid_path = isinstance(self.path, str) and re.match(r"^/[A-Za-z0-9/_\-.]*$", self.path)
        if self.path is not None and not valid_path:
            out.append(Diagnostic(f"path must look like '/sales/daily', got {self.path!r}", self.location, subject))
        return out

    def spec(self) -> ir.HttpSpec:
        return ir.HttpSpec(self.path, self.auth, self.location)


Trigger = ObjectCreated | Http

__all__ = ["Catch", "Http", "ObjectCreated", "Retry", "Schedule", "Trigger", "error_matches", "expand_error_names"]
