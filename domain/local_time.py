"""Local wall-clock times in a patient's time zone (pure; the tz database is read-only).

Lives in domain/ (passed through the workflow sandbox) because ZoneInfo reads the tz
database, which the sandbox would refuse inside workflow code.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def next_local_time(after: datetime, hhmm: str, timezone: str) -> datetime:
    """The first HH:MM in `timezone` at or after `after` (a timezone-aware instant)."""
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone)
    hour, minute = (int(p) for p in hhmm.split(":"))
    candidate = datetime.combine(local.date(), time(hour, minute), tzinfo=zone)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), time(hour, minute), zone)
    return candidate


def local_date(at: datetime, timezone: str) -> date:
    """The date it is at `at` where the patient lives."""
    return at.astimezone(ZoneInfo(timezone)).date()
