"""The recipient's time zone and quiet-hours arithmetic (pure; DOMAIN.md §5.3).

Non-urgent messages go only inside an allowed window of the recipient's *local wall-clock*
time, `[start, end)` (default 08:00-20:00). Lives in domain/ (passed through the workflow
sandbox): the only I/O is reading the tz database and the phonenumbers metadata, and the
current instant is always an input.

- `recipient_zone`: the zone on the patient record; else the zone of the phone number, when
  the number maps to exactly one real zone; else the configured default.
- `quiet_until`: None when `now` is inside the window; else the first later instant at which
  the local time is inside it. That is the next local `start`, computed on the wall clock
  and normalised to UTC; across a DST change it is the change itself when the clock jumps
  into the window (a `start` inside a spring-forward gap, or a fall-back into the window).
  A window with `start > end` wraps midnight (e.g. 20:00-08:00); `start == end` is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_timezone

# The metadata loads lazily, region by region, through `__import__` on first use. Inside the
# workflow sandbox such a late import would load a second copy of the library; loading all
# of it now (~50 ms, once per process) leaves nothing to import later.
phonenumbers.PhoneMetadata.load_all()

UNKNOWN_ZONE = phone_timezone.UNKNOWN_TIMEZONE  # "Etc/Unknown"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
# Offset segments walked by `quiet_until` before giving up (real zones need at most 2).
_MAX_SEGMENTS = 8


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The IANA zone called `name`, or None when there is no such zone."""
    if not name or name == UNKNOWN_ZONE:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, LookupError, OSError):  # not found / not a zone file / bad path
        return None


def phone_zone(phone: str | None) -> ZoneInfo | None:
    """The zone of an E.164 number when it has exactly one real zone (an area code, say);
    None for a number the metadata does not place (demo +1 555 ...), one spanning several
    zones (toll-free, a whole country) or one that does not parse."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    zones = phone_timezone.time_zones_for_number(number)
    if len(zones) != 1:
        return None
    return zone_or_none(zones[0])


def recipient_zone(timezone: str | None, phone: str | None, default: str) -> ZoneInfo:
    """The recipient's zone: the store's (when it is a real zone), else the phone number's
    (when exactly one), else `default` (which must be a real zone)."""
    return zone_or_none(timezone) or phone_zone(phone) or ZoneInfo(default)


def in_window(local: time, start: time, end: time) -> bool:
    """Is the local wall-clock time `local` inside `[start, end)` (wrapping midnight when
    start > end)?"""
    if start < end:
        return start <= local < end
    return local >= start or local < end


def is_allowed(at: datetime, zone: ZoneInfo, start: time, end: time) -> bool:
    """Is the aware instant `at` inside the allowed window, local time in `zone`?"""
    _require_aware(at)
    return in_window(at.astimezone(zone).time(), start, end)


def quiet_until(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """None when `now` (aware) is inside the allowed window `[start, end)` local time in
    `zone`; else the earliest later instant inside it, as an aware UTC datetime: the next
    local `start`, or the DST change at which the local clock jumps into the window."""
    _require_aware(now)
    if start == end:
        raise ValueError("the allowed window must not be empty (start == end)")
    t = now.astimezone(UTC)
    if in_window(_wall(t, zone).time(), start, end):
        return None
    for _ in range(_MAX_SEGMENTS):
        # Until the next change of UTC offset the wall clock runs with the instant, so
        # the window is entered at the next local `start`, unless the offset changes first.
        wall, offset = _wall(t, zone), _offset(t, zone)
        target = datetime.combine(wall.date(), start)
        if target <= wall:
            target += _DAY
        candidate = (target - offset).replace(tzinfo=UTC)
        change = _next_change(zone, t, candidate)
        if change is None:
            return candidate
        if in_window(_wall(change, zone).time(), start, end):
            return change  # the clock jumped into the window (e.g. `start` in a DST gap)
        t = change
    raise ValueError("no allowed instant found")  # pragma: no cover (no real zone does this)


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")


def _wall(at: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of the instant `at` in `zone`."""
    return at.astimezone(zone).replace(tzinfo=None)


def _offset(at: datetime, zone: ZoneInfo) -> timedelta:
    offset = at.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def _next_change(zone: ZoneInfo, after: datetime, limit: datetime) -> datetime | None:
    """The first instant in (after, limit] at which the zone's UTC offset differs from its
    offset at `after` (tz transitions fall on whole seconds); None when there is none."""
    base = _offset(after, zone)
    lo = after
    while lo < limit:
        hi = min(lo + _HOUR, limit)
        if _offset(hi, zone) != base:
            # Smallest whole second s in (lo_s, hi_s] whose offset is not `base`.
            lo_s, hi_s = (lo - _EPOCH) // _SECOND, -((_EPOCH - hi) // _SECOND)
            while hi_s - lo_s > 1:
                mid = (lo_s + hi_s) // 2
                if _offset(_EPOCH + mid * _SECOND, zone) == base:
                    lo_s = mid
                else:
                    hi_s = mid
            return _EPOCH + hi_s * _SECOND
        lo = hi
    return None
