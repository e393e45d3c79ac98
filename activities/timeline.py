"""The journey's timeline writer: notes from the workflow go to the store, once each."""

from __future__ import annotations

import asyncio

from temporalio import activity

from domain.timeline import TimelineNote
from store.timeline import TimelineRepository


class TimelineActivities:
    def __init__(self, timeline: TimelineRepository) -> None:
        self.timeline = timeline

    @activity.defn(name="timeline.record")
    async def record(self, notes: list[TimelineNote]) -> int:
        """Returns how many were new; a retried batch inserts nothing twice."""

        return await asyncio.to_thread(self.timeline.record_many, notes)
