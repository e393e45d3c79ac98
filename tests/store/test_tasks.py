"""The task queue in the store: journeys' tasks opened once, worked, escalated, closed,
each action once on a timestamped trail (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from store import Store
from store.tasks import JourneyTaskOpened, TaskAction, TaskClosed

T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def opened(task_id: str = "missing_info-1") -> JourneyTaskOpened:
    return JourneyTaskOpened(
        journey_ref="journey/p/pt-tasks", patient_ref="pt-tasks", step_id="missing_info",
        journey_task_id=task_id, title="Send the missing information", role="prescriber_office",
        priority="routine", opened_at=T0, due_at=T0 + timedelta(hours=24),
    )  # fmt: skip


def actions(store: Store, task_id: int) -> list[str]:
    return [e.action for e in store.tasks.trail(task_id)]


def test_a_journey_task_opens_once_and_is_worked_from_the_queue(store: Store) -> None:
    task, created = store.tasks.open_for_journey(opened())
    again, created_again = store.tasks.open_for_journey(opened())  # a retried activity
    assert created and not created_again and again.id == task.id
    assert task.id is not None
    queue = store.tasks.find(role="prescriber_office", status="requested")
    assert [t.id for t in queue] == [task.id]
    assert store.tasks.find(overdue_at=T0 + timedelta(hours=25))[0].id == task.id
    assert store.tasks.find(overdue_at=T0 + timedelta(hours=23)) == []

    store.tasks.act(task.id, TaskAction("assign", owner="office-3"), "key-1")
    done, changed = store.tasks.act(task.id, TaskAction("complete", outcome="received"), "key-1")
    _, changed_again = store.tasks.act(task.id, TaskAction("complete", outcome="received"), "k")
    assert changed and not changed_again
    assert (done.status, done.outcome, done.owner) == ("completed", "received", "office-3")
    with pytest.raises(TaskClosed):
        store.tasks.act(task.id, TaskAction("complete", outcome="refused"), "key-1")
    assert actions(store, task.id) == ["opened", "assign", "complete"]


def test_a_reminder_then_an_escalation_move_the_due_time_and_the_queue(store: Store) -> None:
    task, _ = store.tasks.open_for_journey(opened())
    assert task.id is not None
    at_72h, later = T0 + timedelta(hours=72), T0 + timedelta(days=8)
    assert store.tasks.escalate("journey/p/pt-tasks", "missing_info-1", "prescriber_office", at_72h)
    assert not store.tasks.escalate(  # the same again (a retried activity): nothing
        "journey/p/pt-tasks", "missing_info-1", "prescriber_office", at_72h
    )
    assert store.tasks.escalate("journey/p/pt-tasks", "missing_info-1", "case_manager", later)
    row = store.tasks.get(task.id)
    assert row is not None
    assert (row.owner_role, row.escalation_level, row.due_at) == ("case_manager", 2, later)
    assert actions(store, task.id) == ["opened", "reminded", "escalated:case_manager"]
    assert [t.id for t in store.tasks.find(role="case_manager")] == [task.id]
