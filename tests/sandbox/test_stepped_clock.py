"""A stepped patient's partners keep the journey's time, not the wall clock: callbacks
wait for a driver to move the patient's clock, and a move answers only once every
callback due by then was delivered (a sync point for a time-skipped journey)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.sandbox.harness import Sink, containing, put_scenario
from tests.sandbox.test_refill_history import days_of, enroll, enrollment

DAY = 86400.0  # a scripted day is a journey day
T0 = datetime(2027, 3, 1, 15, 0, tzinfo=UTC)


async def move(base: str, patient: str, to: datetime) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as client:
        moved = await client.post(f"/_sandbox/clock/{patient}", json={"now": to.isoformat()})
    moved.raise_for_status()
    return dict(moved.json())


async def test_refills_come_as_the_clock_reaches_their_day_and_not_before(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, clock="stepped", refill_day_seconds=DAY, refill_cycles=3
    )
    await move(sandbox_url, patient, T0)
    rx_id = await enroll(sandbox_url, enrollment(patient))
    # Day 0's fill is due now: a move to now delivers it, and says what is due next.
    clock = await move(sandbox_url, patient, T0)
    assert days_of(sink.matching(containing(rx_id))) == [0]
    assert clock == {"now": "2027-03-01T15:00:00Z", "next_due": "2027-03-29T15:00:00Z",
                     "busy": False}  # fmt: skip

    # Nearly four weeks later by the clock (milliseconds of real time): nothing more yet.
    clock = await move(sandbox_url, patient, T0 + timedelta(days=27, hours=23))
    assert days_of(sink.matching(containing(rx_id))) == [0]
    assert clock["next_due"] == "2027-03-29T15:00:00Z"

    # Past both remaining days at once: both fills, in order, before the move answers.
    clock = await move(sandbox_url, patient, T0 + timedelta(days=60))
    assert days_of(sink.matching(containing(rx_id))) == [0, 28, 56]
    assert clock["next_due"] is None and not clock["busy"]


async def test_the_clock_never_goes_back(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, clock="stepped")
    await move(sandbox_url, patient, T0 + timedelta(days=2))
    clock = await move(sandbox_url, patient, T0)
    assert clock["now"] == "2027-03-03T15:00:00Z"


async def test_a_move_without_a_time_zone_is_refused(sandbox_url: str, patient: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        refused = await client.post(
            f"/_sandbox/clock/{patient}", json={"now": "2027-03-01T15:00:00"}
        )
    assert refused.status_code == 422
