"""Refill reminders 7 / 3 / 1 days before run-out, at a local hour, spread by a stable
jitter."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from domain.refill_schedule import SPREAD, jitter, outreach_times


def test_reminders_fall_7_3_and_1_days_before_run_out_at_the_local_hour() -> None:
    times = outreach_times(date(2026, 3, 12), "journey/p/pt-a", "America/New_York",
                           spread=timedelta(0))  # fmt: skip
    # Mar 5 is EST (UTC-5); Mar 9 and 11 are after the DST change (EDT, UTC-4).
    assert times == [
        datetime(2026, 3, 5, 15, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 14, 0, tzinfo=UTC),
        datetime(2026, 3, 11, 14, 0, tzinfo=UTC),
    ]


def test_the_jitter_is_stable_per_journey_and_spreads_a_cohort() -> None:
    assert jitter("journey/p/pt-a") == jitter("journey/p/pt-a")
    offsets = [jitter(f"journey/p/pt-{n:05d}") for n in range(10_000)]
    assert all(timedelta(0) <= o < SPREAD for o in offsets)
    per_minute = Counter(int(o.total_seconds()) // 60 for o in offsets)
    assert len(per_minute) == 120  # every minute of the 2 hours is used
    assert max(per_minute.values()) < 3 * 10_000 / 120  # no minute takes a crowd


def test_reminders_already_past_are_not_sent() -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    times = outreach_times(date(2026, 3, 12), "k", "America/New_York", not_before=now)
    assert len(times) == 1 and times[0].date() == date(2026, 3, 11)
