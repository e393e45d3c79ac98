"""The recipient's zone and quiet-hours arithmetic: examples, then properties across zones
and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.quiet_hours import in_window, is_allowed, quiet_until, recipient_zone

NY = ZoneInfo("America/New_York")
DEFAULT = "America/New_York"
MORNING, EVENING = time(8), time(20)


# -- recipient_zone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "phone", "expected"),
    [
        ("America/Denver", "+13125550123", "America/Denver"),  # the store wins
        (None, "+13125550123", "America/Chicago"),  # 312: Chicago
        (None, "+14155550123", "America/Los_Angeles"),
        (None, "+16025550123", "America/Phoenix"),
        (None, "+442079460000", "Europe/London"),
        ("Not/AZone", "+13125550123", "America/Chicago"),  # invalid tz string: the number
        ("", "+13125550123", "America/Chicago"),
        ("../../etc/passwd", None, DEFAULT),
        ("Etc/Unknown", None, DEFAULT),
        (None, "+15555550123", DEFAULT),  # demo number: Etc/Unknown
        (None, "+18005550123", DEFAULT),  # toll-free: every NANP zone
        (None, "+61412345678", DEFAULT),  # a mobile: the whole country, several zones
        (None, "312-555-0123", DEFAULT),  # not E.164
        (None, "not a number", DEFAULT),
        (None, None, DEFAULT),
    ],
)
def test_recipient_zone(timezone: str | None, phone: str | None, expected: str) -> None:
    assert recipient_zone(timezone, phone, DEFAULT).key == expected


def test_recipient_zone_default() -> None:
    assert recipient_zone(None, None, "Asia/Kolkata") == ZoneInfo("Asia/Kolkata")


# -- quiet_until: examples -----------------------------------------------------------------


def at(
    zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, fold: int = 0
) -> datetime:
    """The instant of a local wall-clock time (fold=1: the second of a repeated hour)."""
    return datetime(y, mo, d, h, mi, s, tzinfo=zone, fold=fold).astimezone(UTC)


@pytest.mark.parametrize("zone", ["America/Chicago", "America/Los_Angeles", "Europe/London"])
def test_2130_waits_for_0800_next_day(zone: str) -> None:
    z = ZoneInfo(zone)
    assert quiet_until(at(z, 2025, 1, 14, 21, 30), z, MORNING, EVENING) == at(z, 2025, 1, 15, 8)


def test_inside_the_window() -> None:
    assert quiet_until(at(NY, 2025, 6, 10, 8), NY, MORNING, EVENING) is None
    assert quiet_until(at(NY, 2025, 6, 10, 19, 59, 59), NY, MORNING, EVENING) is None
    assert quiet_until(at(NY, 2025, 6, 10, 20), NY, MORNING, EVENING) == at(NY, 2025, 6, 11, 8)
    assert quiet_until(at(NY, 2025, 6, 10, 0, 1), NY, MORNING, EVENING) == at(NY, 2025, 6, 10, 8)


def test_the_result_is_utc() -> None:
    result = quiet_until(at(NY, 2025, 6, 10, 23), NY, MORNING, EVENING)
    assert result is not None and result.tzinfo is UTC


def test_across_spring_forward_and_fall_back() -> None:
    # 2025-03-09 New York springs forward at 02:00; 08:00 EDT is 12:00 UTC.
    assert quiet_until(at(NY, 2025, 3, 8, 23), NY, MORNING, EVENING) == at(NY, 2025, 3, 9, 8)
    assert at(NY, 2025, 3, 9, 8) == datetime(2025, 3, 9, 12, tzinfo=UTC)
    # 2025-11-02 it falls back at 02:00; 08:00 EST is 13:00 UTC.
    assert quiet_until(at(NY, 2025, 11, 1, 23), NY, MORNING, EVENING) == datetime(
        2025, 11, 2, 13, tzinfo=UTC
    )


def test_a_start_inside_the_gap_moves_forward() -> None:
    # 02:30 does not exist on 2025-03-09 in New York: the window opens at the jump (03:00).
    assert quiet_until(at(NY, 2025, 3, 9, 1), NY, time(2, 30), EVENING) == at(NY, 2025, 3, 9, 3)
    # A window inside the gap is skipped to the next day.
    assert quiet_until(at(NY, 2025, 3, 9, 1), NY, time(2, 10), time(2, 20)) == at(
        NY, 2025, 3, 10, 2, 10
    )


def test_a_start_inside_the_fold() -> None:
    # 01:30 happens twice on 2025-11-02 in New York; at 01:10 EST (after 01:59 EDT) the
    # window [01:30, 05:00) opens again at the second 01:30.
    now = at(NY, 2025, 11, 2, 1, 10, fold=1)
    assert quiet_until(now, NY, time(1, 30), time(5)) == at(NY, 2025, 11, 2, 1, 30, fold=1)
    # The clock falling back into the window [00:00, 01:30) opens it at the change.
    now = at(NY, 2025, 11, 2, 1, 35)
    assert quiet_until(now, NY, time(0), time(1, 30)) == datetime(2025, 11, 2, 6, tzinfo=UTC)


def test_a_window_across_midnight() -> None:
    night = (time(22), time(6))
    assert quiet_until(at(NY, 2025, 6, 10, 23), NY, *night) is None
    assert quiet_until(at(NY, 2025, 6, 10, 5), NY, *night) is None
    assert quiet_until(at(NY, 2025, 6, 10, 6), NY, *night) == at(NY, 2025, 6, 10, 22)


def test_refusals() -> None:
    with pytest.raises(ValueError, match="empty"):
        quiet_until(at(NY, 2025, 6, 10, 23), NY, MORNING, MORNING)
    with pytest.raises(ValueError, match="aware"):
        quiet_until(datetime(2025, 6, 10, 23), NY, MORNING, EVENING)


# -- quiet_until: properties ------------------------------------------------------------------

ZONES = [
    ZoneInfo(z)
    for z in (
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "America/Phoenix",  # no DST
        "Europe/London",
        "Australia/Sydney",  # southern hemisphere
        "Australia/Lord_Howe",  # a 30-minute DST shift
        "Pacific/Auckland",
        "Asia/Kolkata",  # +05:30, no DST
        "America/St_Johns",  # -03:30 with DST
    )
]
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)


@cache
def transitions(zone: ZoneInfo) -> list[datetime]:
    """Instants (to the hour) at which the zone's offset changed, 2024-2026."""
    found, t = [], START
    offset = t.astimezone(zone).utcoffset()
    while t < END:
        t += timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != offset:
            found.append(t)
            offset = t.astimezone(zone).utcoffset()
    return found


def allowed(t: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    """The window, written out again for the test."""
    wall = t.astimezone(zone).time()
    return start <= wall < end if start < end else (wall >= start or wall < end)


times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 59]))
windows = st.one_of(
    st.just((MORNING, EVENING)),
    st.tuples(times, times).filter(lambda w: w[0] != w[1]),
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    zone = draw(st.sampled_from(ZONES))
    seconds = st.integers(-36 * 3600, 36 * 3600)
    near_change: bool = draw(st.booleans())
    if near_change and transitions(zone):
        around = draw(st.sampled_from(transitions(zone)))
        return zone, around + timedelta(seconds=draw(seconds))
    span = int((END - START).total_seconds())
    return zone, START + timedelta(seconds=draw(st.integers(0, span)))


@settings(max_examples=300, deadline=None)
@given(case=cases(), window=windows, micros=st.integers(0, 999_999))
def test_quiet_until_properties(
    case: tuple[ZoneInfo, datetime], window: tuple[time, time], micros: int
) -> None:
    zone, now = case
    now += timedelta(microseconds=micros)
    start, end = window
    result = quiet_until(now, zone, start, end)
    assert (result is None) == allowed(now, zone, start, end) == is_allowed(now, zone, start, end)
    if result is None:
        return
    assert result > now and result.utcoffset() == timedelta(0)
    assert result - now <= timedelta(days=2)
    # It is allowed, and it is the local start, or the instant the clock jumped into the window.
    assert allowed(result, zone, start, end)
    before = result - timedelta(seconds=1)
    jumped = before.astimezone(zone).utcoffset() != result.astimezone(zone).utcoffset()
    assert result.astimezone(zone).time() == start or jumped
    # No allowed instant between now and it (a grid, and just before it).
    step = timedelta(minutes=7)
    probe = now + step
    while probe < result:
        assert not allowed(probe, zone, start, end)
        probe += step
    just_before = result - timedelta(microseconds=1)
    assert just_before <= now or not allowed(just_before, zone, start, end)


@settings(max_examples=200, deadline=None)
@given(case=cases())
def test_default_window_opens_at_0800_local(case: tuple[ZoneInfo, datetime]) -> None:
    zone, now = case
    result = quiet_until(now, zone, MORNING, EVENING)
    if result is not None:
        # 08:00 exists in every sampled zone, so the window always opens exactly then.
        assert result.astimezone(zone).time() == MORNING
        assert result.astimezone(zone).date() - now.astimezone(zone).date() in (
            timedelta(0),
            timedelta(days=1),
        )


@settings(max_examples=200, deadline=None)
@given(local=st.times(), window=windows)
def test_in_window_matches_its_definition(local: time, window: tuple[time, time]) -> None:
    start, end = window
    inside = start <= local < end if start < end else not (end <= local < start)
    assert in_window(local, start, end) == inside
