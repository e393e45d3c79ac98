"""VirtualRuntime: the JourneyRuntime on a virtual clock, in one process, in memory.

It runs the production interpreter exactly as the workflow does, but time moves only
when every branch of the journey is waiting: the driver then jumps the clock to the next
timer or scripted event. Partners are scripted per action. A year of journey runs in
milliseconds. `switch_every` makes it continue-as-new every N step boundaries, the way
Temporal suggests it, so tests can compare runs with and without boundaries.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from random import Random
from typing import Any

from domain.actions import (
    ContactOutcome,
    ContactRequest,
    MessageOutcome,
    OutboundMessage,
    PartnerCall,
    TaskChange,
)
from domain.events import MESSAGE_RECEIPT
from domain.journey import JourneyMemory, JourneyStart, JourneyState, StepRecord
from domain.partner_actions import ACTIONS
from domain.partners import PartnerEvent
from workflows.inbox import EventInbox
from workflows.interpreter import JourneyInterpreter
from workflows.runtime import JourneyCancelled, SwitchRun

Answer = dict[str, Any] | Exception | Callable[[PartnerCall, "VirtualRuntime"], dict[str, Any]]


class Stuck(RuntimeError):
    """Every branch waits with no deadline and nothing is scheduled: it would wait forever."""


@dataclass
class _Waiter:
    ready: Callable[[], bool]
    deadline: datetime | None
    future: asyncio.Future[bool]


@dataclass
class Note:
    kind: str
    key: str
    summary: str
    correlation: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None  # journey time


@dataclass(frozen=True)
class LoggedTask:
    """A task change and the journey time it happened."""

    at: datetime
    change: TaskChange


class VirtualRuntime:
    def __init__(
        self,
        state: JourneyState,
        *,
        now: datetime,
        answers: dict[str, Answer] | None = None,
        seed: int = 0,
        switch_every: int | None = None,
    ) -> None:
        self.state = state
        self.clock = now
        self.answers = dict(answers or {})
        self._random = Random(seed)
        self.switch_every = switch_every
        self.inbox = EventInbox()
        self.cancel_reason: str | None = None
        self.calls: list[PartnerCall] = []
        self.messages: list[OutboundMessage] = []
        self.notes: list[Note] = []
        self._noted: set[str] = set()
        self.message_outcome: Callable[[OutboundMessage], MessageOutcome] = lambda m: (
            MessageOutcome(status="sent", message_id=f"SM{len(self.messages)}")
        )
        # Contacts through the policy; scripted like partners (default: sent, first channel).
        self.contacts: list[ContactRequest] = []
        self.task_log: list[LoggedTask] = []
        # Every completed step, in order (the state keeps only the last few).
        self.steps: list[StepRecord] = []
        self._steps_counted = state.steps_completed
        # What Temporal would record, for the cost estimate: activities (partner actions,
        # messages, contacts, task changes), timers, events signalled, runs.
        self.counts: Counter[str] = Counter()
        self.contact_outcome: Callable[[ContactRequest], ContactOutcome] = lambda r: ContactOutcome(
            status="sent",
            channel=next(c for c in r.channels if c not in r.exclude),
            message_id=f"SM{len(self.contacts)}",
        )
        # The receipt of a sent contact: delivered at once unless scripted (None: never).
        self.receipt_outcome: Callable[[ContactOutcome], str | None] = lambda o: (
            "delivered" if o.channel in ("sms", "email", "voice") else None
        )
        self._waiters: list[_Waiter] = []
        self._scheduled: list[tuple[datetime, int, PartnerEvent | Callable[[], None]]] = []
        self._order = itertools.count()
        self._ticks = 0
        self._boundaries = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        # Called when the journey waits for nothing scheduled (an operator's turn, say);
        # it may deliver events and answers True to go on, else the journey is Stuck.
        self.on_idle: Callable[[VirtualRuntime], bool] | None = None

    @property
    def task_changes(self) -> list[TaskChange]:
        return [logged.change for logged in self.task_log]

    # -- the JourneyRuntime interface ----------------------------------------------
    def now(self) -> datetime:
        return self.clock

    def random(self) -> Random:
        return self._random

    def patched(self, change: str) -> bool:
        return True

    async def checkpoint(self) -> None:
        await self._until(lambda: self.state.status != "paused", None)

    def switch_due(self) -> bool:
        self._boundaries += 1
        return bool(self.switch_every) and self._boundaries % self.switch_every == 0  # type: ignore[operator]

    async def partner_action(self, call: PartnerCall) -> dict[str, Any]:
        self._ticks += 1
        self.counts["activity"] += 1
        self.calls.append(call)
        answer = self.answers.get(call.action)
        if answer is None:
            raise KeyError(f"no scripted answer for {call.action}")
        if isinstance(answer, Exception):
            raise answer
        result = answer(call, self) if callable(answer) else answer
        await asyncio.sleep(0)
        # As the real activity answers: the action's result model, as JSON.
        return ACTIONS[call.action].result.model_validate(result).model_dump(mode="json")

    async def send_message(self, message: OutboundMessage) -> MessageOutcome:
        self._ticks += 1
        self.counts["activity"] += 1
        self.messages.append(message)
        await asyncio.sleep(0)
        return self.message_outcome(message)

    async def contact(self, request: ContactRequest) -> ContactOutcome:
        self._ticks += 1
        self.counts["activity"] += 1
        self.contacts.append(request)
        await asyncio.sleep(0)
        outcome = self.contact_outcome(request)
        receipt = self.receipt_outcome(outcome) if outcome.status == "sent" else None
        if receipt is not None and outcome.message_id:
            # The gateway's receipt, as the receiver signals it to a journey that waits.
            self.deliver(
                PartnerEvent(
                    event_id=f"receipt:{outcome.message_id}",
                    type=MESSAGE_RECEIPT,
                    correlation_key=outcome.message_id,
                    journey_ref=request.journey_ref,
                    occurred_at=self.clock,
                    data={"outcome": receipt},
                )
            )
        return outcome

    async def task_changed(self, change: TaskChange) -> None:
        self._ticks += 1
        self.counts["activity"] += 1
        self.task_log.append(LoggedTask(self.clock, change))
        await asyncio.sleep(0)

    async def sleep_until(self, when: datetime) -> None:
        await self._until(lambda: False, when)

    async def wait_for_event(
        self, event_types: list[str], correlation_key: str, deadline: datetime | None
    ) -> PartnerEvent | None:
        if not await self._until(
            lambda: self.inbox.match(event_types, correlation_key) is not None, deadline
        ):
            return None
        event = self.inbox.match(event_types, correlation_key)
        assert event is not None
        self.inbox.take(event)
        return event

    def take_event(self, event_types: list[str], correlation_key: str) -> PartnerEvent | None:
        event = self.inbox.match(event_types, correlation_key)
        if event is not None:
            self.inbox.take(event)
        return event

    def publish(self, state: JourneyState) -> None:
        self._ticks += 1
        new = state.steps_completed - self._steps_counted
        if new > 0:
            self.steps.extend(state.completed_steps[-new:])
            self._steps_counted = state.steps_completed

    def note(self, kind: str, key: str, summary: str, **correlation: Any) -> None:
        if key not in self._noted:  # unique per journey, as the store keeps them
            self._noted.add(key)
            self.notes.append(Note(kind, key, summary, correlation, self.clock))

    # -- the outside world -----------------------------------------------------------
    def deliver(self, event: PartnerEvent, at: datetime | None = None) -> None:
        """An event arrives at `at` (journey time; default now), as a signal would."""
        heapq.heappush(self._scheduled, (at or self.clock, next(self._order), event))

    def later(self, at: datetime, action: Callable[[], None]) -> None:
        """Do something at a journey time (an operator pausing, cancelling...)."""
        heapq.heappush(self._scheduled, (at, next(self._order), action))

    def receive(self, event: PartnerEvent) -> bool:
        return self.inbox.receive(event, self.state, self.clock)

    def pause(self) -> None:
        self.state.status = "paused"

    def resume(self) -> None:
        self.state.status = "running"

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason

    # -- the driver --------------------------------------------------------------------
    async def drive(self, work: Coroutine[Any, Any, Any]) -> Any:
        """Run `work` to its end, moving the clock whenever everything is waiting."""
        self._loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(work)
        while not task.done():
            await self._settle(task)
            if task.done():
                break
            if self.turn():
                continue
            upcoming = self.next_at()
            if upcoming is None and self.on_idle is not None and self.on_idle(self):
                continue
            if upcoming is None:
                task.cancel()
                raise self.stuck()
            self.clock = max(self.clock, upcoming)
        return task.result()

    def turn(self) -> bool:
        """Every branch waits: deliver what is due by now and wake the waits that can go
        on. True: some branch runs again."""
        self._deliver_due()
        return self._wake()

    def next_at(self) -> datetime | None:
        """When something is next due for this journey: a wait's deadline or a scheduled
        event; None: nothing (it waits for what cannot come)."""
        upcoming = [w.deadline for w in self._waiters if w.deadline is not None]
        if self._scheduled:
            upcoming.append(self._scheduled[0][0])
        return min(upcoming) if upcoming else None

    def stuck(self) -> Stuck:
        return Stuck(f"journey waits for nothing that can come (at {self.state.current_step})")

    async def _settle(self, task: asyncio.Future[Any]) -> None:
        """Let every runnable branch run until all of them wait (nothing here does I/O).

        Exactly: the loop's ready queue holds every callback still to run this round and
        every one scheduled since, so when the driver resumes to find it empty, nothing
        but the driver can move (no I/O, no loop timers here). A loop without that queue
        falls back to spinning until the journey's ticks stop moving."""
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        if ready is None:
            while True:
                before = self._ticks
                for _ in range(8):
                    await asyncio.sleep(0)
                if self._ticks == before or task.done():
                    return
        while True:
            await asyncio.sleep(0)
            if not ready or task.done():
                return

    def _deliver_due(self) -> None:
        while self._scheduled and self._scheduled[0][0] <= self.clock:
            _, _, item = heapq.heappop(self._scheduled)
            if isinstance(item, PartnerEvent):
                self.counts["signal"] += 1
                self.receive(item)
            else:
                item()

    def _wake(self) -> bool:
        woke = False
        for waiter in list(self._waiters):
            if waiter.future.done():
                self._waiters.remove(waiter)
            elif self.cancel_reason is not None or waiter.ready():
                waiter.future.set_result(True)
                woke = True
            elif waiter.deadline is not None and waiter.deadline <= self.clock:
                waiter.future.set_result(False)
                woke = True
        return woke

    async def _until(self, ready: Callable[[], bool], deadline: datetime | None) -> bool:
        self._ticks += 1
        if self.cancel_reason is None and ready():
            return True
        if deadline is not None:
            self.counts["timer"] += 1
        waiter = _Waiter(
            ready, deadline, (self._loop or asyncio.get_running_loop()).create_future()
        )
        self._waiters.append(waiter)
        try:
            met = await waiter.future
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if self.cancel_reason is not None:
            raise JourneyCancelled(self.cancel_reason)
        return met


@dataclass
class Simulated:
    state: JourneyState
    runtime: VirtualRuntime
    runs: int


async def run_journey(
    start: JourneyStart,
    runtime_factory: Callable[[JourneyState], VirtualRuntime],
    journey_id: str | None = None,
    setup: Callable[[VirtualRuntime], None] | None = None,
    driven: bool = True,
) -> Simulated:
    """Run one journey to its end on a VirtualRuntime, continuing as new when it says so
    (the memory handed over exactly as TherapyJourney hands it to its next run).
    `driven`: the runtime moves its own clock; else a CohortScheduler moves it (the
    journey then runs as one of many on the cohort's clock)."""
    state = JourneyState(
        journey_id=journey_id or start.workflow_id,
        template_id=start.template.id,
        template_version=start.template.version,
    )
    rt = runtime_factory(state)
    state.started_at = rt.now()
    if setup is not None:
        setup(rt)
    memory: JourneyMemory | None = None
    runs = 1
    while True:
        interpreter = JourneyInterpreter(start, rt.state, rt, memory.resume if memory else None)
        try:
            await (rt.drive(interpreter.run()) if driven else interpreter.run())
            return Simulated(rt.state, rt, runs)
        except SwitchRun as switch:
            memory = JourneyMemory(
                state=rt.state.model_copy(deep=True),
                resume=switch.frames,
                inbox=list(rt.inbox.events),
                seen=dict(rt.inbox.seen),
                cancel_reason=rt.cancel_reason,
                clock_origin=rt.now(),
            )
            # A fresh run: only what the memory carries survives (round-tripped as JSON).
            memory = JourneyMemory.model_validate_json(memory.model_dump_json())
            runs += 1
            rt.counts["run"] += 1
            memory.state.runs = runs
            rt.state = memory.state
            rt.inbox = EventInbox(memory.inbox, memory.seen)
