"""The ticks of a schedule: the instants a ``Schedule`` fires, for backfills (and a local scheduler).

A cron schedule fires at the wall-clock times its expression names in its IANA timezone (croniter,
DST-aware: a time skipped by a spring-forward change fires at the first valid minute after it, an
hour repeated in autumn fires in both offsets when the expression names it); ``every`` fires at whole
multiples of its interval since the Unix epoch (UTC), so ``every="15m"`` fires at :00, :15, :30, :45.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from .. import ir
from ..errors import UsageError

MAX_TICKS = 10_000
"""A backfill larger than this is refused rather than started by mistake (narrow the range)."""


def iter_ticks(schedule: ir.ScheduleSpec, start: datetime, end: datetime) -> Iterator[datetime]:
    """Ticks in ``[start, end)`` as aware UTC datetimes, in order (``start``/``end`` must be aware)."""
    if schedule.every is not None:
        step = schedule.every_seconds
        if not step:
            raise UsageError(f"schedule every={schedule.every!r} is not an interval such as '15m'")
        first = -(-int(start.timestamp()) // step) * step
        moment = first
        while moment < end.timestamp():
            yield datetime.fromtimestamp(moment, UTC)
            moment += step
        return
    from zoneinfo import ZoneInfo

    from croniter import croniter

    zone = ZoneInfo(schedule.timezone or "UTC")
    cron = croniter(schedule.cron, start.astimezone(zone) - timedelta(microseconds=1))
    while True:
        tick = cron.get_next(datetime).astimezone(UTC)
        if tick >= end:
            return
        if tick >= start:
            yield tick


def ticks(schedule: ir.ScheduleSpec, start: datetime, end: datetime, limit: int = MAX_TICKS) -> list[datetime]:
    """All ticks in ``[start, end)``; a usage error when there are more than ``limit``."""
    found: list[datetime] = []
    for tick in iter_ticks(schedule, start, end):
        if len(found) == limit:
            raise UsageError(f"the range holds more than {limit} ticks of the schedule; backfill a shorter range "
                             "at a time")
        found.append(tick)
    return found


__all__ = ["MAX_TICKS", "iter_ticks", "ticks"]
