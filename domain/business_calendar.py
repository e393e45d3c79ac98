"""Business calendars: SLA time counted in working hours of a program (pure).

A human task at the hub is due after so many *business* hours, not wall-clock hours. A
`BusinessCalendar` says when the hub works: the program's IANA time zone, local working
hours `[open_at, close_at)`, the working weekdays, the public holidays of a country (and
optionally a subdivision) from the maintained `holidays` package, and program-specific
closures. Defaults: New York, 09:00-17:00, Monday-Friday, US federal holidays.

Lives in domain/ (passed through the workflow sandbox): no wall clock (instants are always
inputs); the only I/O is reading the tz database (see "Holidays" below).

Semantics:

- Business time is the real elapsed time inside working windows. A working window is
  `[open_at, close_at)` local wall-clock time on a working day: a weekday in
  `working_days`, not a holiday, not in `extra_closed`. Window bounds are computed from the
  local date and the zone (never by adding hours to UTC), so across a DST change 09:00-17:00
  is still 8 hours of 09:00 to 17:00 local time, at the new UTC offset. A bound that falls
  in a DST gap is read with the offset before the change (02:30 on a spring-forward night
  is 03:30 new time); an ambiguous one is its first occurrence.
- `add_business_time(start, d)`: the instant at which `d` of business time has elapsed
  since `start`. Starting outside a window counts from the next opening; landing exactly at
  a close returns that close (not the next opening); a zero duration returns `start` when
  it is inside a window, else the next opening. Aware in, aware UTC out; `d >= 0`.
- `business_time_between(start, end)`: the business time in `[start, end)`; negative when
  `end < start`. `business_time_between(s, add_business_time(s, d)) == d` for every `d`.
- `next_open(at)`: `at` when the calendar is open then, else the next opening (UTC).
- Business durations as templates write them: `8bh` (business hours), `2bd` (business
  days), compounds such as `1bd4bh`, decimals such as `1.5bh`. A business day is the
  length of the calendar's window (`close_at - open_at`, 8 h by default), so `2bd` is 16
  business hours: from 10:00 on a Monday that is 10:00 on Wednesday, and from outside hours
  it is the close of the second working day.

Holidays are those of the `holidays` package for the country (ISO 3166 code) and optional
subdivision, as `holidays.country_holidays(country, subdiv=...)` gives them, observed days
included (Independence Day 2026, a Saturday, closes Friday 2026-07-03). The package computes
a year on first lookup; here one entity per (country, subdivision) is created once per
process, when a calendar using it is validated (the default's at import), and each year's
dates are then computed in plain Python (the data ships as code) and cached as a frozenset,
under a lock. The entity is built from the country class itself with holiday names left
untranslated, so nothing is imported or read from files after this module's import: that
holds inside the workflow sandbox too, which refuses `country_holidays` itself (it imports
`holidays` when called) and the translation lookup (`gettext`, `locale`). A year is looked
up with its neighbours populated, because an observed day can fall in the year before (New
Year's Day 2028, a Saturday, is observed on Friday 2027-12-31); the answer never depends on
which years were looked up before.

The dates are the installed package's: a `holidays` release that changes a year's dates
changes what a replayed workflow computes, like any other code change to a workflow's
logic (pin it, or record due instants computed outside the workflow).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import holidays.countries
from pydantic import BaseModel, ConfigDict, field_serializer, field_validator, model_validator

from domain.durations import DurationError
from domain.quiet_hours import zone_or_none

_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_ZERO = timedelta(0)
# Consecutive closed days (beyond `extra_closed`) after which a search for a working window
# gives up: a calendar with a working weekday reopens within a week plus its holidays.
_MAX_CLOSED_RUN = 366

_COUNTRY_CODE = re.compile(r"[A-Z]{2,3}")  # ISO 3166-1 alpha-2 (or alpha-3)
_BUSINESS = re.compile(r"^(?:\d+(?:\.\d+)?b[dh])+$")
_BUSINESS_PART = re.compile(r"(\d+(?:\.\d+)?)b([dh])")

_LOCK = threading.Lock()
_ENTITIES: dict[tuple[str, str | None], holidays.HolidayBase] = {}
_CLOSED: dict[tuple[str, str | None, int], frozenset[date]] = {}


def _entity(country: str, subdiv: str | None) -> holidays.HolidayBase:
    """The process-wide `holidays` entity of (country, subdiv), created on first use."""
    with _LOCK:
        return _entity_locked(country, subdiv)


def _entity_locked(country: str, subdiv: str | None) -> holidays.HolidayBase:
    entity = _ENTITIES.get((country, subdiv))
    if entity is None:
        # The class itself, not `holidays.country_holidays`: that function imports
        # `holidays` when called, which inside the workflow sandbox would re-import the
        # package (and dateutil, which reads the clock at import). The classes were all
        # imported with this module, outside the sandbox; the subclass reads no files.
        entity_class = getattr(holidays.countries, country, None)
        if not (
            _COUNTRY_CODE.fullmatch(country)
            and isinstance(entity_class, type)
            and issubclass(entity_class, holidays.HolidayBase)
        ):
            raise ValueError(f"holiday_country {country!r} is not a country code of `holidays`")
        untranslated = type(entity_class.__name__, (entity_class,), _UNTRANSLATED)
        try:
            entity = untranslated(subdiv=subdiv)
        except NotImplementedError as exc:  # a subdivision the country does not have
            raise ValueError(str(exc)) from None
        _ENTITIES[(country, subdiv)] = entity
    return entity


def _same_text(message: str) -> str:
    return message


def _no_translation(self: holidays.HolidayBase) -> None:
    self.tr = _same_text


# Holiday names stay in the entity's own language (the package's fallback when it has no
# translation): only dates matter here, and the translations are files found through
# `gettext` and `locale`, both refused inside the workflow sandbox.
_UNTRANSLATED = {"_init_translation": _no_translation}


def _closed_dates(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    """The holidays (observed days included) of `year` in (country, subdiv)."""
    key = (country, subdiv, year)
    found = _CLOSED.get(key)
    if found is not None:
        return found
    with _LOCK:
        found = _CLOSED.get(key)
        if found is None:
            entity = _entity_locked(country, subdiv)
            for neighbour in (year - 1, year, year + 1):
                if date.min.year <= neighbour <= date.max.year:
                    entity.get(date(neighbour, 1, 1))  # a lookup populates the whole year
            found = frozenset(day for day in entity if day.year == year)
            _CLOSED[key] = found
    return found


class BusinessCalendar(BaseModel):
    """When a program's hub works (see the module docstring for the arithmetic)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str = "America/New_York"
    open_at: time = time(9, 0)
    close_at: time = time(17, 0)
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    holiday_country: str | None = "US"
    holiday_subdivision: str | None = None
    extra_closed: frozenset[date] = frozenset()

    @field_validator("timezone")
    @classmethod
    def _real_zone(cls, value: str) -> str:
        if zone_or_none(value) is None:
            raise ValueError(f"timezone {value!r} is not an IANA time zone")
        return value

    @field_validator("open_at", "close_at")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("working hours are local wall-clock times (no UTC offset)")
        return value

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: frozenset[int]) -> frozenset[int]:
        if not value:
            raise ValueError("a business calendar needs at least one working day")
        if not value <= frozenset(range(7)):
            raise ValueError("working days are weekday numbers, Monday = 0 to Sunday = 6")
        return value

    @field_validator("holiday_country")
    @classmethod
    def _country_code(cls, value: str | None) -> str | None:
        return None if value is None else value.strip().upper()

    @model_validator(mode="after")
    def _consistent(self) -> BusinessCalendar:
        if self.open_at >= self.close_at:
            raise ValueError("open_at must be before close_at")
        if self.holiday_country is None:
            if self.holiday_subdivision is not None:
                raise ValueError("holiday_subdivision needs a holiday_country")
        else:
            _entity(self.holiday_country, self.holiday_subdivision)  # or ValueError
        return self

    @field_serializer("working_days", "extra_closed", when_used="json")
    def _sorted(self, value: frozenset[int] | frozenset[date]) -> list[int] | list[date]:
        return sorted(value)  # type: ignore[return-value]  # a stable payload

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def business_day(self) -> timedelta:
        """The length of a working window: what `1bd` means on this calendar."""
        day = date(2000, 1, 1)
        return datetime.combine(day, self.close_at) - datetime.combine(day, self.open_at)

    def is_holiday(self, day: date) -> bool:
        """Is `day` closed for a holiday: a public holiday of the calendar's country (and
        subdivision), observed days included, or one of `extra_closed`?"""
        if day in self.extra_closed:
            return True
        if self.holiday_country is None:
            return False
        return day in _closed_dates(self.holiday_country, self.holiday_subdivision, day.year)

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.working_days and not self.is_holiday(day)

    def is_open(self, at: datetime) -> bool:
        """Is the aware instant `at` inside a working window?"""
        _require_aware(at)
        window = self._window(at.astimezone(self.zone).date())
        return window is not None and window[0] <= at < window[1]

    def next_open(self, at: datetime) -> datetime:
        """`at` (in UTC) when the calendar is open then, else the next opening."""
        return self.add_business_time(at, _ZERO)

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant (UTC) at which `duration` of business time has elapsed since `start`."""
        _require_aware(start)
        if duration < _ZERO:
            raise ValueError("a business duration cannot be negative")
        at = start.astimezone(UTC)
        remaining = duration
        for opens, closes in self._windows_from(at):
            begin = max(at, opens)
            if begin >= closes:
                continue  # `at` is at or after this window's close
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        raise AssertionError("unreachable")  # pragma: no cover (_windows_from never ends)

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """The business time in `[start, end)`; negative when `end` is before `start`."""
        _require_aware(start)
        _require_aware(end)
        if end < start:
            return -self.business_time_between(end, start)
        total = _ZERO
        for opens, closes in self._windows_from(start):
            if opens >= end:
                break
            total += max(min(closes, end) - max(opens, start), _ZERO)
        return total

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        """The working window of the local date `day`, as UTC instants; None when closed."""
        if not self.is_working_day(day):
            return None
        zone = self.zone
        opens = datetime.combine(day, self.open_at, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(day, self.close_at, tzinfo=zone).astimezone(UTC)
        return (opens, closes) if opens < closes else None

    def _windows_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working windows from the local date of `at` on, in order (endless)."""
        day = at.astimezone(self.zone).date()
        limit = _MAX_CLOSED_RUN + len(self.extra_closed)
        closed_run = 0
        while True:
            window = self._window(day)
            if window is None:
                closed_run += 1
                if closed_run > limit:
                    raise ValueError(f"no working day in the {limit} days up to {day}")
            else:
                closed_run = 0
                yield window
            day += _DAY


# Validating the default creates the US holidays entity now, at import.
DEFAULT_CALENDAR = BusinessCalendar()


def is_business_duration(text: str) -> bool:
    return bool(_BUSINESS.match(text.strip()))


def parse_business_duration(text: str, calendar: BusinessCalendar = DEFAULT_CALENDAR) -> timedelta:
    """A business duration: `8bh` (hours), `2bd` (days of `calendar.business_day` each),
    compounds (`1bd4bh`) and decimals (`1.5bh`). Plain durations (`8h`) are refused."""
    value = text.strip()
    if not _BUSINESS.match(value):
        raise DurationError(
            f"invalid business duration {text!r} (use e.g. 8bh, 2bd or 1bd4bh: "
            "business hours or days)"
        )
    unit = {"h": _HOUR, "d": calendar.business_day}
    return sum((unit[u] * float(n) for n, u in _BUSINESS_PART.findall(value)), _ZERO)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
