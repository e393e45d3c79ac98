"""human_task: open a task, escalate after the SLA, optionally give up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.events import TASK_COMPLETED
from domain.journey import HumanTask
from domain.steps.human_task import HumanTaskStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


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
        due_at=now + j.duration(step.sla),
    )
    j.state.tasks.append(task)
    j.rt.note(
        "task.opened", f"task/{task.task_id}/opened", f"task for {task.role}: {task.title}",
        task_id=task.task_id,
    )  # fmt: skip
    event = await j.wait([TASK_COMPLETED], task.task_id, task.due_at, step)
    if event is None:
        task.escalated_to = step.escalate_to
        j.attention(f"task {task.task_id} overdue; escalated to {step.escalate_to}")
        j.rt.note(
            "task.escalated", f"task/{task.task_id}/escalated",
            f"task overdue; escalated to {step.escalate_to}", task_id=task.task_id,
        )  # fmt: skip
        give_up = j.rt.now() + j.duration(step.give_up_after) if step.give_up_after else None
        event = await j.wait([TASK_COMPLETED], task.task_id, give_up, step)
        j.clear_attention()
    task.closed_at = j.rt.now()
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
