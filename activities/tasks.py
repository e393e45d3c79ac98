"""The task queue, kept in step with the journeys' human tasks (store writes only)."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity

from domain.actions import TaskChange
from store.tasks import JourneyTaskOpened, TaskAction, TaskClosed, TaskRepository


class TaskActivities:
    def __init__(self, tasks: TaskRepository) -> None:
        self.tasks = tasks

    @activity.defn(name="tasks.record")
    async def record(self, change: TaskChange) -> None:
        await asyncio.to_thread(self._record, change)

    def _record(self, change: TaskChange) -> None:
        """Idempotent: each change is applied once however often the activity runs."""
        if change.change == "opened":
            assert change.due_at is not None
            self.tasks.open_for_journey(
                JourneyTaskOpened(
                    journey_ref=change.journey_ref,
                    patient_ref=change.patient_ref,
                    step_id=change.step_id,
                    journey_task_id=change.task_id,
                    title=change.title,
                    role=change.role,
                    priority=change.priority,
                    opened_at=change.opened_at,
                    due_at=change.due_at,
                )
            )
            return
        task = self.tasks.by_journey_task(change.journey_ref, change.task_id)
        if task is None or task.id is None:
            return  # opened before the queue existed: only the journey knows it
        if change.change == "escalated":
            self.tasks.escalate(change.journey_ref, change.task_id, change.role, change.due_at)
            return
        action = (
            TaskAction("complete", outcome=change.outcome)
            if change.change == "completed"
            else TaskAction("cancel", outcome="gave_up")
        )
        # Closed through the queue already (with its own outcome): nothing more to do.
        with contextlib.suppress(TaskClosed):
            self.tasks.act(task.id, action, actor="journey")
