"""Drive a real journey and its sandbox partners on one clock, in lock step.

The journey runs as a TherapyJourney workflow on the dev server with per-workflow time
skipping; the sandbox plays the patient's callbacks on a stepped clock (scenario
`clock: stepped`). Between moves the driver waits until nothing is in flight (no
activity, no workflow task, no callback being delivered), then moves both clocks to the
next thing due: a workflow timer (read off the run's history) or a sandbox callback,
whichever is first; at a tie, the callback goes first, as the simulator's scheduler
does. People (hub staff, the patient) act on their own agenda, a third source. At the
horizon it cancels the journey ("horizon"), as the simulator does.

Along the way it records every step the journey completes (the state keeps only the
last few), so the whole step sequence can be compared with the simulator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.journey import JourneyState, StepRecord
from gateway.journeys import JourneyClosed, JourneyGateway

# Before a callback, the journey's clock stops this short of it: a timer due at the very
# same instant then fires after the callback, not before (the simulator's order).
TIE_MARGIN = timedelta(milliseconds=200)
SETTLE_POLL = 0.03
SETTLE_WITHIN = 60.0


@dataclass(frozen=True)
class PersonAction:
    """What a person does at a journey time: completes a task, confirms a dose."""

    at: datetime
    run: Callable[[], Awaitable[None]]


# The people's agenda: after each settle, what they will do next (done ones dropped).
People = Callable[[], Awaitable[list[PersonAction]]]


@dataclass
class Driven:
    journey_id: str
    state: JourneyState
    steps: list[StepRecord] = field(default_factory=list)
    moves: int = 0


class LockStep:
    def __init__(
        self,
        env: WorkflowEnvironment,
        journeys: JourneyGateway,
        sandbox: httpx.AsyncClient,
        journey_id: str,
        patient_ref: str,
        horizon: datetime,
        people: People | None = None,
    ) -> None:
        self.env = env
        self.journeys = journeys
        self.sandbox = sandbox
        self.journey_id = journey_id
        self.patient_ref = patient_ref
        self.horizon = horizon
        self.people = people
        self.steps: list[StepRecord] = []
        self._counted = 0
        self.moves = 0

    @property
    def handle(self) -> WorkflowHandle[Any, Any]:
        return self.env.client.get_workflow_handle(self.journey_id)  # the latest run

    async def run(self) -> Driven:
        cancelled = False
        while True:
            running = await self._settle()
            state = await self._record()
            if not running:
                return Driven(self.journey_id, state, self.steps, self.moves)
            now = await self._now()
            timer = await self._next_timer()
            callback = await self._next_callback()
            agenda = await self.people() if self.people else []
            person = min(agenda, key=lambda a: a.at) if agenda else None
            self.moves += 1
            if (
                person is not None
                and person.at <= self.horizon
                and all(t is None or person.at < t for t in (callback, timer))
            ):
                await self._forward(person.at - TIE_MARGIN, now)
                await self._sandbox_to(person.at - TIE_MARGIN)
                await person.run()
            elif (
                callback is not None
                and callback <= self.horizon
                and (timer is None or callback <= timer)
            ):
                await self._forward(callback - TIE_MARGIN, now)
                await self._sandbox_to(callback)
            elif timer is not None and timer < self.horizon:
                await self._sandbox_to(timer)
                await self._forward(timer, now)
            elif not cancelled:
                await self._sandbox_to(self.horizon)
                await self._forward(self.horizon, now)
                await self._settle()
                with contextlib.suppress(JourneyClosed):  # it ended at the horizon itself
                    await self.journeys.cancel(self.journey_id, "horizon")
                cancelled = True
            else:
                raise AssertionError(f"{self.journey_id}: cancelled yet still running")

    # -- clocks ------------------------------------------------------------------------
    async def _now(self) -> datetime:
        info = await self.env.get_time_skipping_info(self.handle)
        if info is None:
            return datetime.now(UTC)
        return info.current_time.ToDatetime().replace(tzinfo=UTC)

    async def _forward(self, to: datetime, now: datetime) -> None:
        if to > now:
            await self.env.fast_forward(self.handle, to - now)

    async def _sandbox_to(self, at: datetime) -> None:
        moved = await self.sandbox.post(
            f"/_sandbox/clock/{self.patient_ref}", json={"now": at.isoformat()}, timeout=60
        )
        moved.raise_for_status()

    async def _next_callback(self) -> datetime | None:
        clock = await self.sandbox.get(f"/_sandbox/clock/{self.patient_ref}")
        clock.raise_for_status()
        due = clock.json()["next_due"]
        return datetime.fromisoformat(due) if due else None

    async def _next_timer(self) -> datetime | None:
        """The earliest timer the current run has started and not fired or cancelled."""
        started: dict[str, datetime] = {}
        history = await self.handle.fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                attrs = event.timer_started_event_attributes
                at = event.event_time.ToDatetime().replace(tzinfo=UTC)
                started[attrs.timer_id] = at + attrs.start_to_fire_timeout.ToTimedelta()
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                started.pop(event.timer_fired_event_attributes.timer_id, None)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                started.pop(event.timer_canceled_event_attributes.timer_id, None)
        return min(started.values()) if started else None

    # -- sync points -------------------------------------------------------------------
    async def _settle(self) -> bool:
        """Until nothing is in flight; False once the journey has closed."""
        deadline = time.monotonic() + SETTLE_WITHIN
        quiet = 0
        while time.monotonic() < deadline:
            described = await self.handle.describe()
            if described.status != WorkflowExecutionStatus.RUNNING:
                if described.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
                    await asyncio.sleep(SETTLE_POLL)  # the next run is starting
                    continue
                return False
            raw = described.raw_description
            clock = (await self.sandbox.get(f"/_sandbox/clock/{self.patient_ref}")).json()
            idle = (
                not raw.pending_activities
                and not raw.HasField("pending_workflow_task")
                and not clock["busy"]
            )
            quiet = quiet + 1 if idle else 0
            if quiet >= 2:  # twice in a row: nothing was between two looks
                return True
            await asyncio.sleep(SETTLE_POLL)
        raise AssertionError(f"{self.journey_id} never settled")

    async def _record(self) -> JourneyState:
        """The state now; every step completed since the last look goes on the record."""
        try:
            state = await self.journeys.state(self.journey_id)
        except JourneyClosed:
            state = await self.journeys.result(self.journey_id)
        new = state.steps_completed - self._counted
        if new > len(state.completed_steps):
            raise AssertionError(f"{self.journey_id}: {new} steps between two looks")
        if new > 0:
            self.steps.extend(state.completed_steps[-new:])
            self._counted = state.steps_completed
        return state
