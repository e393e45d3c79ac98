"""When refill outreach goes out: 7, 3 and 1 days before run-out (DOMAIN.md §3), at a
local hour, each patient shifted by a deterministic jitter so 10,000 patients due the
same day do not all fire at 10:00:00.

The jitter comes from a SHA-256 of a stable key (the journey id): the same journey gets
the same minute on every replay and every worker, unlike Python's salted `hash()`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

REMINDER_LEADS = (7, 3, 1)  # days before run-out
SEND_AT = time(10, 0)  # local
SPREAD = timedelta(hours=2)  # reminders fall in [10:00, 12:00) local


@lru_cache(maxsize=4096)  # asked at every turn of a journey; a hash each time otherwise
def jitter(key: str, spread: timedelta = SPREAD) -> timedelta:
    """A stable offset in [0, spread), to the second, for this key."""
    seconds = int(spread.total_seconds())
    if seconds <= 0:
        return timedelta(0)
    digest = hashlib.sha256(key.encode()).digest()
    return timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def outreach_times(
    run_out: date,
    key: str,
    timezone: str,
    *,
    leads: Sequence[int] = REMINDER_LEADS,
    send_at: time = SEND_AT,
    spread: timedelta = SPREAD,
    not_before: datetime | None = None,
) -> list[datetime]:
    """The reminders' instants (UTC), earliest first; those before `not_before` (now)
    are dropped, so a late-starting cycle sends only what is still ahead."""
    zone = ZoneInfo(timezone)
    offset = jitter(key, spread)
    times = sorted(
        datetime.combine(run_out - timedelta(days=lead), send_at, zone).astimezone(UTC) + offset
        for lead in set(leads)
    )
    return [t for t in times if not_before is None or t >= not_before]
