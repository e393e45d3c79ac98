"""Business calendars: hand-worked SLA due instants (holidays, weekends, DST, other zones),
validation, serialisation, business durations, then properties (hypothesis)."""

from __future__ import annotations

import builtins
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.business_calendar import (
    DEFAULT_CALENDAR,
    BusinessCalendar,
    is_business_duration,
    parse_business_duration,
)
from domain.durations import DurationError

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
H = timedelta(hours=1)
BH8 = 8 * H

# A West Coast program: 08:00-18:00 Monday to Saturday, no public holidays.
WEST = BusinessCalendar(
    timezone="America/Los_Angeles",
    open_at=time(8),
    close_at=time(18),
    working_days=frozenset({0, 1, 2, 3, 4, 5}),
    holiday_country=None,
)


def ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


def la(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LA)


def due(start: datetime, duration: timedelta, calendar: BusinessCalendar = DEFAULT_CALENDAR):
    result = calendar.add_business_time(start, duration)
    assert result.tzinfo is UTC
    return result


# -- the default calendar: New York, 09:00-17:00, Monday-Friday, US federal holidays ----


def test_defaults() -> None:
    cal = BusinessCalendar()
    assert cal == DEFAULT_CALENDAR
    assert cal.timezone == "America/New_York"
    assert (cal.open_at, cal.close_at) == (time(9), time(17))
    assert cal.working_days == frozenset(range(5))
    assert (cal.holiday_country, cal.holiday_subdivision) == ("US", None)
    assert cal.business_day == BH8


def test_friday_afternoon_rolls_over_the_weekend() -> None:
    # Fri 16:00-17:00 (1 h), then Mon 09:00 + 7 h.
    result = due(ny(2026, 12, 4, 16), BH8)
    assert result == ny(2026, 12, 7, 16)
    assert result == datetime(2026, 12, 7, 21, tzinfo=UTC)


def test_thanksgiving_is_skipped_the_day_after_is_not() -> None:
    # Wed 15:00-17:00 (2 h), Thu 26th closed, Fri 27th 09:00 + 6 h.
    assert holidays.country_holidays("US", years=2026).get(date(2026, 11, 27)) is None
    assert DEFAULT_CALENDAR.is_holiday(date(2026, 11, 26))
    assert not DEFAULT_CALENDAR.is_holiday(date(2026, 11, 27))
    assert due(ny(2026, 11, 25, 15), BH8) == ny(2026, 11, 27, 15)


def test_christmas_and_new_year_are_skipped() -> None:
    # Thu 16:00-17:00, Fri 25th closed, weekend, Mon 28th 09:00 + 7 h.
    assert due(ny(2026, 12, 24, 16), BH8) == ny(2026, 12, 28, 16)
    # Thu 31st 16:00-17:00, Fri 1 Jan 2027 closed, weekend, Mon 4th 09:00 + 7 h.
    assert due(ny(2026, 12, 31, 16), BH8) == ny(2027, 1, 4, 16)


def test_observed_holiday_is_closed() -> None:
    # 4 July 2026 is a Saturday: the federal holiday is observed on Friday 3 July.
    assert DEFAULT_CALENDAR.is_holiday(date(2026, 7, 3))
    assert not DEFAULT_CALENDAR.is_open(ny(2026, 7, 3, 10))
    # Thu 16:00-17:00, Fri 3rd closed, weekend, Mon 6th 09:00 + 7 h (EDT).
    assert due(ny(2026, 7, 2, 16), BH8) == datetime(2026, 7, 6, 20, tzinfo=UTC)


def test_observed_day_in_the_previous_year() -> None:
    # 1 Jan 2028 is a Saturday: New Year's Day is observed on Friday 31 Dec 2027.
    assert DEFAULT_CALENDAR.is_holiday(date(2027, 12, 31))
    assert due(ny(2027, 12, 30, 16), BH8) == ny(2028, 1, 3, 16)


def test_spring_forward_weekend() -> None:
    # DST starts Sunday 2026-03-08: the start is at -05:00, the due instant at -04:00.
    start = ny(2026, 3, 6, 16)
    result = due(start, BH8)
    assert result == datetime(2026, 3, 9, 20, tzinfo=UTC)
    assert result.astimezone(NY).replace(tzinfo=None) == datetime(2026, 3, 9, 16)
    assert start.utcoffset() == -5 * H
    assert result.astimezone(NY).utcoffset() == -4 * H
    assert result - start == timedelta(days=3) - H  # the clock lost an hour, the SLA did not
    # The Monday after the change still has 8 business hours.
    assert DEFAULT_CALENDAR.business_time_between(ny(2026, 3, 9, 0), ny(2026, 3, 10, 0)) == BH8


def test_fall_back_weekend() -> None:
    # DST ends Sunday 2026-11-01: -04:00 before, -05:00 after.
    start = ny(2026, 10, 30, 16)
    result = due(start, BH8)
    assert result == datetime(2026, 11, 2, 21, tzinfo=UTC)
    assert start.utcoffset() == -4 * H
    assert result.astimezone(NY).utcoffset() == -5 * H
    assert result - start == timedelta(days=3) + H


def test_working_hours_across_a_dst_change_are_real_elapsed_time() -> None:
    # A calendar open 01:00-05:00 every day: on the spring-forward night 01:00 EST to
    # 05:00 EDT is 3 real hours; on the fall-back night 01:00 EDT to 05:00 EST is 5.
    night = BusinessCalendar(
        open_at=time(1), close_at=time(5), working_days=frozenset(range(7)), holiday_country=None
    )
    assert night.business_time_between(ny(2026, 3, 8, 0), ny(2026, 3, 8, 12)) == 3 * H
    assert night.business_time_between(ny(2026, 11, 1, 0), ny(2026, 11, 1, 12)) == 5 * H
    assert due(ny(2026, 3, 8, 1), 3 * H, night) == datetime(2026, 3, 8, 9, tzinfo=UTC)


def test_opening_inside_a_dst_gap_reads_the_offset_before_the_change() -> None:
    # 02:30 does not exist on 2026-03-08 in New York: read at -05:00, it is 03:30 EDT.
    gap = BusinessCalendar(
        open_at=time(2, 30),
        close_at=time(6),
        working_days=frozenset(range(7)),
        holiday_country=None,
    )
    assert gap.next_open(ny(2026, 3, 8, 0)) == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


# -- outside hours, at the close, zero ---------------------------------------------------


def test_starting_in_the_evening_counts_from_the_next_opening_and_lands_at_close() -> None:
    # Mon 20:00: nothing counts until Tue 09:00; 8 h later is Tue's close, not Wed 09:00.
    assert due(ny(2026, 12, 7, 20), BH8) == ny(2026, 12, 8, 17)
    assert due(ny(2026, 12, 7, 16), H) == ny(2026, 12, 7, 17)


def test_starting_on_a_saturday_counts_from_monday() -> None:
    assert due(ny(2026, 12, 5, 10), H) == ny(2026, 12, 7, 10)
    assert due(ny(2026, 12, 6, 23, 59), BH8) == ny(2026, 12, 7, 17)


def test_zero_duration() -> None:
    zero = timedelta(0)
    assert due(ny(2026, 12, 7, 10, 30), zero) == ny(2026, 12, 7, 10, 30)  # open: itself
    assert due(ny(2026, 12, 5, 10), zero) == ny(2026, 12, 7, 9)  # Saturday: next opening
    assert due(ny(2026, 12, 7, 17), zero) == ny(2026, 12, 8, 9)  # the close is outside
    assert due(ny(2026, 12, 7, 8, 59), zero) == ny(2026, 12, 7, 9)


def test_is_open_and_next_open() -> None:
    cal = DEFAULT_CALENDAR
    assert cal.is_open(ny(2026, 12, 7, 9))
    assert cal.is_open(datetime(2026, 12, 7, 16, 59, 59, 999999, tzinfo=NY))
    assert not cal.is_open(ny(2026, 12, 7, 17))
    assert not cal.is_open(ny(2026, 12, 7, 8, 59))
    assert not cal.is_open(ny(2026, 12, 5, 12))  # Saturday
    assert not cal.is_open(ny(2026, 12, 25, 12))  # Christmas
    assert cal.is_open(datetime(2026, 12, 7, 15, tzinfo=UTC))  # 10:00 in New York
    assert cal.next_open(ny(2026, 12, 7, 12)) == ny(2026, 12, 7, 12)
    assert cal.next_open(ny(2026, 12, 24, 17)) == ny(2026, 12, 28, 9)
    assert cal.next_open(ny(2026, 12, 24, 17)).tzinfo is UTC


def test_business_time_between() -> None:
    cal = DEFAULT_CALENDAR
    assert cal.business_time_between(ny(2026, 12, 4, 16), ny(2026, 12, 7, 10)) == 2 * H
    assert cal.business_time_between(ny(2026, 12, 7, 10), ny(2026, 12, 4, 16)) == -2 * H
    assert cal.business_time_between(ny(2026, 12, 5, 0), ny(2026, 12, 7, 0)) == timedelta(0)
    assert cal.business_time_between(ny(2026, 12, 7, 12), ny(2026, 12, 7, 12)) == timedelta(0)
    # Christmas week: Mon-Thu are open (32 h), Fri 25th is not.
    assert cal.business_time_between(ny(2026, 12, 21, 0), ny(2026, 12, 28, 0)) == 32 * H


def test_naive_datetimes_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT_CALENDAR.add_business_time(datetime(2026, 12, 7, 10), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT_CALENDAR.is_open(datetime(2026, 12, 7, 10))
    with pytest.raises(ValueError, match="timezone-aware"):
        DEFAULT_CALENDAR.business_time_between(ny(2026, 12, 7, 10), datetime(2026, 12, 8))
    with pytest.raises(ValueError, match="negative"):
        DEFAULT_CALENDAR.add_business_time(ny(2026, 12, 7, 10), -H)


# -- configuration ----------------------------------------------------------------------


def test_west_coast_calendar() -> None:
    # Sat 17:00-18:00 (1 h; Saturday works), Sunday closed, Mon 08:00 + 7 h, in PST.
    result = due(la(2026, 12, 5, 17), BH8, WEST)
    assert result == la(2026, 12, 7, 15)
    assert result == datetime(2026, 12, 7, 23, tzinfo=UTC)
    # No holiday country: Thanksgiving is a working day of 10 hours.
    assert not WEST.is_holiday(date(2026, 11, 26))
    assert due(la(2026, 11, 26, 8), 10 * H, WEST) == la(2026, 11, 26, 18)
    assert WEST.is_open(la(2026, 12, 5, 8))
    assert not WEST.is_open(la(2026, 12, 6, 12))  # Sunday
    assert WEST.business_day == 10 * H


def test_extra_closed_days() -> None:
    closed = WEST.model_copy(update={"extra_closed": frozenset({date(2026, 12, 7)})})
    assert closed.is_holiday(date(2026, 12, 7))
    # Sat 17:00-18:00, Sunday and Monday closed, Tue 08:00 + 7 h.
    assert due(la(2026, 12, 5, 17), BH8, closed) == la(2026, 12, 8, 15)


def test_holiday_subdivision() -> None:
    # California adds the day after Thanksgiving (and Cesar Chavez Day, 31 March).
    california = BusinessCalendar(timezone="America/Los_Angeles", holiday_subdivision="CA")
    assert california.is_holiday(date(2026, 11, 27))
    assert california.is_holiday(date(2026, 3, 31))
    assert not DEFAULT_CALENDAR.is_holiday(date(2026, 3, 31))
    # Wed 15:00-17:00, Thu and Fri closed, weekend, Mon 30th 09:00 + 6 h (PST).
    assert due(la(2026, 11, 25, 15), BH8, california) == la(2026, 11, 30, 15)


def test_another_country() -> None:
    canada = BusinessCalendar(timezone="America/Toronto", holiday_country="ca")
    assert canada.holiday_country == "CA"  # normalised
    assert canada.is_holiday(date(2026, 7, 1))  # Canada Day
    assert not canada.is_holiday(date(2026, 7, 3))  # not the US observed Independence Day


def test_entities_are_built_without_imports_or_translation_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Inside the workflow sandbox `country_holidays` (it imports `holidays` when called)
    # and gettext's translation lookup are refused: a new entity must need neither.
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must not be called")

    imported: list[str] = []
    real_import = builtins.__import__

    def record(name: str, *args: Any, **kwargs: Any) -> Any:
        imported.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(holidays, "country_holidays", refuse)
    monkeypatch.setattr(holidays.utils, "country_holidays", refuse)
    monkeypatch.setattr(holidays.holiday_base, "translation", refuse)
    monkeypatch.setattr(holidays.holiday_base, "gettext", refuse)
    monkeypatch.setattr(builtins, "__import__", record)
    quebec = BusinessCalendar(
        timezone="America/Toronto", holiday_country="CA", holiday_subdivision="QC"
    )
    assert quebec.is_holiday(date(2026, 6, 24))  # Fête nationale du Québec
    assert imported == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"working_days": frozenset()}, "at least one working day"),
        ({"working_days": frozenset({7})}, "weekday numbers"),
        ({"open_at": time(17), "close_at": time(9)}, "open_at must be before close_at"),
        ({"open_at": time(9), "close_at": time(9)}, "open_at must be before close_at"),
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"holiday_country": "XX"}, "not a country code"),
        ({"holiday_country": "UnitedStates"}, "not a country code"),
        ({"holiday_subdivision": "ZZ"}, "does not have subdivision"),
        ({"holiday_country": None, "holiday_subdivision": "CA"}, "needs a holiday_country"),
        ({"open_at": time(9, tzinfo=UTC)}, "local wall-clock"),
        ({"weekends": [5, 6]}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_calendars(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        BusinessCalendar(**fields)
    assert isinstance(info.value, ValidationError)


def test_no_working_day_in_reach_raises_instead_of_looping() -> None:
    # Mondays only, and every Monday of ten years is closed.
    mondays = frozenset(date(2026, 1, 5) + timedelta(weeks=n) for n in range(520))
    cal = BusinessCalendar(working_days=frozenset({0}), holiday_country=None, extra_closed=mondays)
    with pytest.raises(ValueError, match="no working day"):
        cal.add_business_time(ny(2026, 1, 1, 12), H)


def test_calendar_is_frozen_and_hashable() -> None:
    with pytest.raises(ValidationError):
        DEFAULT_CALENDAR.timezone = "UTC"  # type: ignore[misc]
    assert hash(WEST) == hash(WEST.model_copy())


def test_json_round_trip() -> None:
    cal = WEST.model_copy(
        update={"extra_closed": frozenset({date(2026, 12, 24), date(2026, 1, 2)})}
    )
    text = cal.model_dump_json()
    assert '"working_days":[0,1,2,3,4,5]' in text
    assert '"extra_closed":["2026-01-02","2026-12-24"]' in text  # sorted: a stable payload
    assert BusinessCalendar.model_validate_json(text) == cal
    loaded = BusinessCalendar.model_validate(
        {"timezone": "America/Chicago", "open_at": "08:30", "working_days": [0, 2, 4]}
    )
    assert loaded.open_at == time(8, 30)
    assert loaded.working_days == frozenset({0, 2, 4})


# -- business durations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8bh", 8 * H),
        ("2bd", 16 * H),  # a business day is close - open: 8 h by default
        ("1bd4bh", 12 * H),
        ("1.5bh", timedelta(minutes=90)),
        ("0bh", timedelta(0)),
        (" 3bd ", 24 * H),
    ],
)
def test_parse_business_duration(text: str, expected: timedelta) -> None:
    assert is_business_duration(text)
    assert parse_business_duration(text) == expected


def test_business_days_follow_the_calendar() -> None:
    assert parse_business_duration("2bd", WEST) == 20 * H
    assert parse_business_duration("8bh", WEST) == 8 * H
    # 2bd from Monday 10:00 is Wednesday 10:00; from the evening, the second day's close.
    two_days = parse_business_duration("2bd")
    assert due(ny(2026, 12, 7, 10), two_days) == ny(2026, 12, 9, 10)
    assert due(ny(2026, 12, 4, 20), two_days) == ny(2026, 12, 8, 17)


@pytest.mark.parametrize(
    "text", ["8h", "2d", "8", "bh", "", "-1bh", "8BH", "8 bh", "P1D", "8bh2", "1bw", "bd8"]
)
def test_invalid_business_durations(text: str) -> None:
    assert not is_business_duration(text)
    with pytest.raises(DurationError) as info:
        parse_business_duration(text)
    assert isinstance(info.value, ValueError)
    assert repr(text) in str(info.value)


# -- properties -------------------------------------------------------------------------

CALENDARS = [DEFAULT_CALENDAR, WEST, BusinessCalendar(holiday_subdivision="CA")]
STARTS = st.datetimes(
    min_value=datetime(2025, 12, 1), max_value=datetime(2028, 1, 31), timezones=st.just(UTC)
)
DURATIONS = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=120))


@settings(max_examples=150, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), start=STARTS, duration=DURATIONS)
def test_business_time_between_inverts_add(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    end = calendar.add_business_time(start, duration)
    assert end >= start
    assert calendar.business_time_between(start, end) == duration
    # The due instant is inside working hours, or exactly at a close.
    assert calendar.is_open(end) or (
        end.astimezone(calendar.zone).time() == calendar.close_at
        and calendar.is_working_day(end.astimezone(calendar.zone).date())
    )


@settings(max_examples=100, deadline=None)
@given(calendar=st.sampled_from(CALENDARS), start=STARTS, span=DURATIONS)
def test_add_after_between_is_the_last_business_instant(
    calendar: BusinessCalendar, start: datetime, span: timedelta
) -> None:
    end = start + span
    elapsed = calendar.business_time_between(start, end)
    assert timedelta(0) <= elapsed <= span
    back = calendar.add_business_time(start, elapsed)
    # `back` ends the business time in [start, end): no business time between it and
    # `end`, on whichever side (after `end` only when there was none: the next opening).
    assert calendar.business_time_between(back, end) == timedelta(0)
    assert back <= end or elapsed == timedelta(0)
