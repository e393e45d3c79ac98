"""CohortScheduler: one virtual clock for a whole cohort, thousands of journeys in one
event loop.

Every journey runs on its own VirtualRuntime (its partners, its people, its memory) but
on the cohort's clock: the scheduler lets every branch of every journey run until all of
them wait, wakes the waits that can go on, and only then moves the clock, to the
earliest thing any journey waits for, and wakes the journeys due then. Journeys due at
one instant run in the order they were added. A heap keeps each journey's next instant,
so a step costs the journeys that moved, not the cohort.

The journeys of different patients share nothing the production logic counts (contact
caps and quiet hours are per patient), so a cohort run here gives each patient what a
run of that patient alone gives (tested). The shared clock is where what patients would
share (a hub team's capacity, staggered enrollment) can be modelled; neither is yet.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.journey import JourneyStart, JourneyState
from simulate.runtime import Simulated, Stuck, VirtualRuntime, run_journey


class CohortScheduler:
    def __init__(self) -> None:
        self.runtimes: list[VirtualRuntime] = []
        self._tasks: list[asyncio.Task[Simulated]] = []
        self._moving: set[int] = set()  # journeys that may have run since the last look
        self._due: list[tuple[datetime, int, int]] = []  # (instant, order, journey)
        self._order = itertools.count()
        self.now: datetime | None = None
        self._running = 0

    def add(
        self, start: JourneyStart, runtime_factory: Callable[[JourneyState], VirtualRuntime]
    ) -> None:
        """A journey to run; its runtime's clock says where it starts on the cohort's."""

        def registered(state: JourneyState) -> VirtualRuntime:
            rt = runtime_factory(state)
            self._moving.add(len(self.runtimes))
            self.runtimes.append(rt)
            return rt

        # Tasks start in the order added, each making its runtime before it first waits.
        task = asyncio.ensure_future(run_journey(start, registered, driven=False))
        task.add_done_callback(self._ended)
        self._running += 1
        self._tasks.append(task)

    def _ended(self, _: asyncio.Task[Simulated]) -> None:
        self._running -= 1

    async def run(self) -> list[Simulated]:
        """Run every journey to its end; their results in the order they were added."""
        try:
            while self._running:
                await _settle()
                if self._look():
                    continue
                if not self._advance():
                    break
        finally:
            for task in self._tasks:
                if not task.done():
                    task.cancel()
        return [task.result() for task in self._tasks]

    def _look(self) -> bool:
        """The journeys that ran: what is due by their clock delivered, their waits
        checked; those that wait go on the heap at their next instant. True: some run."""
        woke = False
        for n in sorted(self._moving):
            rt = self.runtimes[n]
            if self._tasks[n].done():
                self._moving.discard(n)
            elif rt.turn():
                woke = True  # it runs again: looked at again after the round
            else:
                self._moving.discard(n)
                upcoming = rt.next_at()
                if upcoming is None:
                    raise rt.stuck()
                heapq.heappush(self._due, (upcoming, next(self._order), n))
        return woke

    def _advance(self) -> bool:
        """The clock to the earliest instant any journey waits for; those due then are
        looked at next. False: nothing is due anywhere."""
        at: datetime | None = None
        while self._due and (at is None or self._due[0][0] == at):
            due, _, n = heapq.heappop(self._due)
            rt = self.runtimes[n]
            if self._tasks[n].done() or rt.next_at() != due:
                continue  # stale: that journey moved on since
            at = self.now = due
            rt.clock = max(rt.clock, due)
            self._moving.add(n)
        return at is not None


async def _settle() -> None:
    """Until nothing but the scheduler can run (no I/O here: the loop's ready queue
    empties only when every branch of every journey waits)."""
    loop: Any = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if ready is None:  # a loop without the queue: spin a while
        for _ in range(64):
            await asyncio.sleep(0)
        return
    while True:
        await asyncio.sleep(0)
        if not ready:
            return


__all__ = ["CohortScheduler", "Stuck"]
