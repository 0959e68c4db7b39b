"""Schedules in any time zone on Azure: a UTC timer that fires at every UTC time the local cron can fall on,
and a check in the generated timer function that starts a run only at the instants croniter gives locally.

DST is the point: the fired instants of a year with both transitions, found by calling the generated
app's check at each of its timer's UTC firings (an injected clock, no waiting), must be exactly the
instants croniter yields walking that year in the zone, skipped and repeated hours included.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from strato import Schedule, pipeline, task
from strato.adapters.azure.triggers import LocalSchedule, local_timer, ncrontab, needs_check
from strato.validate import validated

pytest.importorskip("azure.durable_functions")

from strato.adapters.azure.compiler import compile_app


@task
def stamp() -> str:
    return "ran"


def scheduled(cron: str, timezone: str) -> Any:
    @pipeline(name="local_time", schedule=Schedule(cron=cron, timezone=timezone, input={}))
    def local_time() -> Any:
        return stamp()

    return local_time


def generated_module(definition: Any, tmp_path: Path) -> Any:
    """The generated function_app.py, imported (its constants are what the timer function checks)."""
    paths, _ = compile_app(validated(definition).ir, tmp_path)
    path = next(p for p in paths if p.name == "function_app.py")
    name = f"strato_schedule_app_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module


def croniter_instants(cron: str, timezone: str, year: int) -> set[datetime]:
    """What croniter gives walking the year in the zone, as UTC instants."""
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    walk = croniter(cron, (start - timedelta(seconds=1)).astimezone(ZoneInfo(timezone)))
    out = set()
    while (at := walk.get_next(datetime).astimezone(UTC)) < end:
        out.add(at)
    return out


def fired_instants(check: LocalSchedule, year: int, late: float = 2.5) -> tuple[set[datetime], int]:
    """The timer's UTC firings over the year at which the generated check starts a run (called ``late`` s after)."""
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    walk = croniter(" ".join(check.timer.split()[1:]), start - timedelta(seconds=1))
    out, calls = set(), 0
    while (at := walk.get_next(datetime)) < end:
        calls += 1
        if check.due((at + timedelta(seconds=late)).timestamp()):
            out.add(at)
    return out, calls


@pytest.mark.parametrize(("cron", "timezone", "skipped", "repeated"), [
    # 02:30 is skipped on 31 March (croniter runs at 03:00 CEST) and happens twice on 27 October
    ("30 2 * * *", "Europe/Paris", datetime(2024, 3, 31, 1, 0, tzinfo=UTC),
     (datetime(2024, 10, 27, 0, 30, tzinfo=UTC), datetime(2024, 10, 27, 1, 30, tzinfo=UTC))),
    # Sundays at 01:15: 3 November's 01:15 happens twice (EDT, then EST); 10 March's exists
    ("15 1 * * 0", "America/New_York", None,
     (datetime(2024, 11, 3, 5, 15, tzinfo=UTC), datetime(2024, 11, 3, 6, 15, tzinfo=UTC))),
    # Lord Howe moves by half an hour: 02:15 is skipped on 6 October, 01:45 repeated on 7 April
    ("15 2 * * *", "Australia/Lord_Howe", datetime(2024, 10, 5, 15, 30, tzinfo=UTC), None),
    ("45 1 * * *", "Australia/Lord_Howe", None,
     (datetime(2024, 4, 6, 14, 45, tzinfo=UTC), datetime(2024, 4, 6, 15, 15, tzinfo=UTC))),
])
def test_a_year_of_firings_is_croniters_in_the_zone(tmp_path: Path, cron: str, timezone: str,
                                                     skipped: datetime | None,
                                                     repeated: tuple[datetime, datetime] | None) -> None:
    module = generated_module(scheduled(cron, timezone), tmp_path)
    check = module.LOCAL_TIME_SCHEDULE
    assert isinstance(check, LocalSchedule) and (check.cron, check.timezone) == (cron, timezone)
    expected = croniter_instants(cron, timezone, 2024)
    fired, calls = fired_instants(check, 2024)
    assert fired == expected
    assert calls <= 4 * 366  # the UTC timer fires at most four times a day for a daily local time
    if skipped is not None:
        assert skipped in fired
    if repeated is not None:
        assert set(repeated) <= fired


def test_the_timer_function_starts_a_run_only_at_the_local_time(emulated: Any) -> None:
    """Through the generated timer function on the replay host, whose virtual clock the check reads."""
    app = emulated(scheduled("30 2 * * *", "Europe/Paris"), durations=lambda name, value: 0.0)
    host = app.host
    timer = {"Schedule": {"AdjustForDST": False}, "IsPastDue": False, "ScheduleStatus": {}}
    with app.emulation.activate():
        for at, starts in ((datetime(2024, 7, 1, 0, 30, 1, tzinfo=UTC), True),  # 02:30 CEST
                           (datetime(2024, 7, 1, 1, 30, 1, tzinfo=UTC), False),  # 03:30 CEST: the winter firing
                           (datetime(2024, 12, 1, 1, 30, 4, tzinfo=UTC), True),  # 02:30 CET
                           (datetime(2024, 12, 1, 0, 30, 4, tzinfo=UTC), False)):
            before = len(host.instances)
            host.now = at.timestamp()
            host.trigger("local_time_schedule", timer)
            assert len(host.instances) == before + starts, at
        for instance in list(host.instances.values()):
            assert host.run(instance).output == "ran"


def test_a_late_start_still_checks_the_firing_it_belongs_to() -> None:
    check = LocalSchedule("30 2 * * *", "Europe/Paris", local_timer("30 2 * * *", "Europe/Paris"))
    assert check.due(datetime(2024, 7, 1, 0, 30, tzinfo=UTC))
    assert check.due(datetime(2024, 7, 1, 0, 34, 50, tzinfo=UTC))  # a cold start of almost five minutes
    assert not check.due(datetime(2024, 7, 1, 0, 29, 59, tzinfo=UTC))  # the previous firing (00:00) is not due


@pytest.mark.parametrize(("schedule", "timer"), [
    (Schedule(cron="30 2 * * *", timezone="Europe/Paris"), "0 0,30 0,1 * * *"),  # +1, +2 and the 01:00Z jump
    (Schedule(cron="0 9 * * 1-5", timezone="America/New_York"), "0 0 13,14 * * *"),
    (Schedule(cron="30 2 * * *", timezone="Asia/Kolkata"), "0 0 21 * * *"),  # no DST: one UTC time
    (Schedule(cron="0 0 1 * 1"), "0 0 0 * * *"),  # UTC, but unix ORs the two day fields: croniter decides
    (Schedule(cron="0 0 L * *"), "0 0 0 * * *"),  # last day of the month: NCRONTAB cannot say it
])
def test_local_crons_become_utc_timers_with_a_check(schedule: Schedule, timer: str) -> None:
    assert needs_check(schedule)
    assert ncrontab(schedule) == timer


def test_utc_crons_and_intervals_need_no_check() -> None:
    assert not needs_check(Schedule(cron="0 2 * * *"))
    assert not needs_check(Schedule(every="15m", timezone="Europe/Paris"))  # an interval is the same everywhere
    assert ncrontab(Schedule(every="15m", timezone="Europe/Paris")) == "0 */15 * * * *"
