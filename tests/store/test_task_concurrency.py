"""Task actions at the same moment (two copies of one CRM webhook, a retried request
racing its original) apply once: one trail entry, one winner (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from store import Store
from store.tasks import JourneyTaskOpened, TaskAction, TaskRepository
from tests.store.conftest import together

T0 = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def test_concurrent_completions_of_one_task_complete_it_once(
    store: Store, database_url: str, engine: Engine
) -> None:
    task, _ = store.tasks.open_for_journey(
        JourneyTaskOpened(
            journey_ref="journey/p/pt-race", patient_ref="pt-race", step_id="schedule_training",
            journey_task_id="schedule_training-1", title="Schedule training",
            role="nurse_educator", priority="routine", opened_at=T0,
            due_at=T0 + timedelta(days=2),
        )
    )  # fmt: skip
    task_id = task.id
    assert task_id is not None

    def complete(e: Engine) -> bool:
        _, changed = TaskRepository(e).act(
            task_id, TaskAction("complete", outcome="scheduled"), "crm:7001"
        )
        return changed

    assert sorted(together(database_url, 8, complete)) == [False] * 7 + [True]
    assert [e.action for e in store.tasks.trail(task_id)] == ["opened", "complete"]
