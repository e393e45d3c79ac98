"""human_task: open a task, escalate after the SLA, optionally give up."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from domain.actions import TaskChange
from domain.events import TASK_COMPLETED
from domain.journey import HumanTask
from domain.steps.human_task import HumanTaskStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


TASK_QUEUE_PATCH = "task-queue-v1"
# A cancelled journey cancels its open tasks in the queue: no one works a closed case.
TASK_CANCEL_PATCH = "task-cancel-v1"


def _change(
    j: JourneyInterpreter,
    step: HumanTaskStep,
    task: HumanTask,
    change: str,
    role: str,
    due_at: datetime | None,
    outcome: str | None = None,
) -> TaskChange:
    return TaskChange(
        journey_ref=j.state.journey_id, patient_ref=j.start.patient_ref, program=j.start.program,
        step_id=step.id, idempotency_key=f"{j.idempotency_key(step)}/task/{change}",
        change=change, task_id=task.task_id, title=task.title, role=role,
        opened_at=task.opened_at, due_at=due_at, outcome=outcome,
    )  # fmt: skip


async def cancel_open_tasks(j: JourneyInterpreter, reason: str) -> None:
    """The journey was cancelled: close each open task, in the queue too."""
    for task in j.state.tasks:
        if task.closed_at is not None:
            continue
        task.closed_at = j.rt.now()
        if j.rt.patched(TASK_QUEUE_PATCH) and j.rt.patched(TASK_CANCEL_PATCH):
            step = j.template.step(task.step_id)
            role = task.escalated_to or task.role
            if isinstance(step, HumanTaskStep):
                change = _change(j, step, task, "cancelled", role, None, reason)
            else:  # a task another kind of step opened (refill_watch)
                change = TaskChange(
                    journey_ref=j.state.journey_id, patient_ref=j.start.patient_ref,
                    program=j.start.program, step_id=task.step_id,
                    idempotency_key=f"{j.state.journey_id}/{task.task_id}/cancelled",
                    change="cancelled", task_id=task.task_id, title=task.title, role=role,
                    opened_at=task.opened_at, outcome=reason,
                )  # fmt: skip
            await j.rt.task_changed(change)


async def _escalate(
    j: JourneyInterpreter,
    step: HumanTaskStep,
    task: HumanTask,
    level: int,
    current: str,
    to: str,
    queue: bool,
) -> datetime | None:
    """Level n of the chain: the task moves to `to` (or `current` is reminded); returns
    when the next level (or the give-up) is due."""
    what = "reminded" if to == current else f"escalated to {to}"
    task.escalated_to = to
    j.attention(f"task {task.task_id} overdue; {what} (level {level})")
    later = step.escalations[level - 1 :]  # the levels after this one
    if later:
        due: datetime | None = j.deadline(later[0].after)
    else:
        due = j.deadline(step.give_up_after) if step.give_up_after else None
    if queue:
        await j.rt.task_changed(_change(j, step, task, "escalated", to, due))
    j.rt.note(
        "task.escalated", f"task/{task.task_id}/escalated/{level}",
        f"task overdue; {what} (level {level})", task_id=task.task_id,
    )  # fmt: skip
    return due


@handles("human_task")
async def human_task(
    j: JourneyInterpreter, step: HumanTaskStep, resume: list[Frame] | None
) -> Outcome:
    now = j.rt.now()
    task = HumanTask(
        task_id=f"{step.id}-{j.visits[step.id]}",
        step_id=step.id,
        title=step.title or step.id,
        role=step.role,
        opened_at=now,
        due_at=j.deadline(step.sla),
    )
    j.state.tasks.append(task)
    # Journeys recorded before the task queue kept their tasks in workflow state only.
    queue = j.rt.patched(TASK_QUEUE_PATCH)
    if queue:
        await j.rt.task_changed(_change(j, step, task, "opened", task.role, task.due_at))
    j.rt.note(
        "task.opened", f"task/{task.task_id}/opened", f"task for {task.role}: {task.title}",
        task_id=task.task_id,
    )  # fmt: skip
    event = await j.wait([TASK_COMPLETED], task.task_id, task.due_at, step)
    if event is None:
        task.escalated_to = step.escalate_to
        j.attention(f"task {task.task_id} overdue; escalated to {step.escalate_to}")
        give_up = j.deadline(step.give_up_after) if step.give_up_after else None
        next_due = j.deadline(step.escalations[0].after) if step.escalations else give_up
        if queue:
            await j.rt.task_changed(_change(j, step, task, "escalated", step.escalate_to, next_due))
        j.rt.note(
            "task.escalated", f"task/{task.task_id}/escalated",
            f"task overdue; escalated to {step.escalate_to}", task_id=task.task_id,
        )  # fmt: skip
        current = step.escalate_to
        for level, further in enumerate(step.escalations, start=2):
            event = await j.wait([TASK_COMPLETED], task.task_id, next_due, step)
            if event is not None:
                break
            next_due = await _escalate(j, step, task, level, current, further.to, queue)
            current, give_up = further.to, next_due
        if event is None:
            event = await j.wait([TASK_COMPLETED], task.task_id, give_up, step)
        j.clear_attention()
    task.closed_at = j.rt.now()
    if queue:
        outcome = None if event is None else str(event.data.get("outcome") or "done")
        change = "abandoned" if event is None else "completed"
        await j.rt.task_changed(_change(j, step, task, change, task.role, None, outcome))
    if event is None:
        j.rt.note(
            "task.abandoned", f"task/{task.task_id}/abandoned", "task given up",
            task_id=task.task_id,
        )  # fmt: skip
        return step.on_timeout, "gave_up"
    j.rt.note(
        "task.completed", f"task/{task.task_id}/completed", f"task done by {task.role}",
        task_id=task.task_id,
    )  # fmt: skip
    j.events[step.id] = {**event.data, "type": event.type}
    return step.next, "done" if task.escalated_to is None else "done_after_escalation"
