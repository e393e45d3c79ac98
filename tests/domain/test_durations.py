from __future__ import annotations

from datetime import timedelta

import pytest

from domain.durations import DurationError, format_duration, is_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3d", timedelta(days=3)),
        ("72h", timedelta(hours=72)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1.5h", timedelta(minutes=90)),
        ("1h30m30m", timedelta(hours=2)),  # a repeated unit adds up
        (" 3d ", timedelta(days=3)),
        ("P3D", timedelta(days=3)),
        ("PT36H", timedelta(hours=36)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1M30S", timedelta(seconds=90)),
        ("P2W", timedelta(weeks=2)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert is_duration(text)


@pytest.mark.parametrize(
    "text", ["", "soon", "3", "d", "3 d", "3D", "1y", "-3d", "P", "PT", "P1DT", "P1M", "3d!"]
)
def test_invalid(text: str) -> None:
    assert not is_duration(text)
    with pytest.raises(DurationError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(weeks=2), "2w"),
        (timedelta(days=3), "3d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(seconds=45), "45s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_round_trips(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    assert parse_duration(text) == delta
