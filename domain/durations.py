"""Durations as templates write them: `30m`, `72h`, `3d`, `2w`, compounds like `1d12h`,
or ISO 8601 (`P3D`, `PT36H`)."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_SHORT = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")
_SHORT_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_ISO = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class DurationError(ValueError):
    pass


def is_duration(text: str) -> bool:
    try:
        parse_duration(text)
    except DurationError:
        return False
    return True


@lru_cache(maxsize=1024)  # a template's few durations, read at every step
def parse_duration(text: str) -> timedelta:
    value = text.strip()
    if _SHORT.match(value):
        # Sum the parts, so a repeated unit (`1h30m30m`) is not silently dropped.
        return sum(
            (timedelta(**{_UNITS[u]: float(n)}) for n, u in _SHORT_PART.findall(value)),
            timedelta(),
        )
    iso = _ISO.match(value)
    if iso and value not in ("P", "PT") and not value.endswith("T"):
        return timedelta(**{k: float(v) for k, v in iso.groupdict().items() if v})
    raise DurationError(f"invalid duration {text!r} (use e.g. 30m, 72h, 3d, 2w or P3D)")


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
