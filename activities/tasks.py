"""The task queue, kept in step with the journeys' human tasks: the store first, then (when
the CRM is on) the external CRM work queue (activities/crm.py: at most once, and a CRM
outage does not hold the journey)."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity

from activities.crm import CrmPush
from domain.actions import TaskChange
from store.tasks import JourneyTaskOpened, TaskAction, TaskClosed, TaskRepository


class TaskActivities:
    def __init__(self, tasks: TaskRepository, crm: CrmPush | None = None) -> None:
        self.tasks = tasks
        self.crm = crm

    @activity.defn(name="tasks.record")
    async def record(self, change: TaskChange) -> None:
        task_id = await asyncio.to_thread(self._record, change)
        if self.crm is not None and task_id is not None:
            await self.crm.sync(task_id, activity.info().attempt)

    def _record(self, change: TaskChange) -> int | None:
        """Idempotent: each change is applied once however often the activity runs. The
        task's id, or None when the queue does not know it."""
        if change.change == "opened":
            assert change.due_at is not None
            opened, _ = self.tasks.open_for_journey(
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
            return opened.id
        task = self.tasks.by_journey_task(change.journey_ref, change.task_id)
        if task is None or task.id is None:
            return None  # opened before the queue existed: only the journey knows it
        if change.change == "escalated":
            self.tasks.escalate(change.journey_ref, change.task_id, change.role, change.due_at)
            return task.id
        action = (
            TaskAction("complete", outcome=change.outcome)
            if change.change == "completed"
            else TaskAction("cancel", outcome=change.outcome or "gave_up")
        )
        # Closed through the queue already (with its own outcome): nothing more to do.
        with contextlib.suppress(TaskClosed):
            self.tasks.act(task.id, action, actor="journey")
        return task.id
