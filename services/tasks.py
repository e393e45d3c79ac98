"""The task queue: list, assign, reassign, complete; a journey's task completed here
reaches its journey once.

Completing stores the outcome first, then tells the journey (`task.completed`, event id
`task-<id>-completed`, correlation the journey's own task id). A retried request finds
the task completed with that outcome, changes nothing, and tells the journey again with
the same event id: the journey drops the repeat. So the journey hears of it exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from datetime import UTC, datetime

from contract.tasks import TaskDetail, TaskOut, TaskPage
from domain.events import TASK_COMPLETED
from domain.partners import PartnerEvent
from gateway.journeys import JourneyClosed, JourneyGateway, JourneyNotFound
from gateway.visibility import UnsafeQueryValue, decode_page_token, encode_page_token
from store import Store
from store.tasks import Task, TaskAction


class InvalidPageToken(ValueError):
    """A page token this service did not make."""


def page_token_after(task: Task, key: bytes) -> str | None:
    """Where the next page starts (the last row's due time and id), signed like the
    journey listing's tokens (gateway.visibility): opaque, and unforgeable."""
    return encode_page_token(f"{task.due_at.astimezone(UTC).isoformat()}|{task.id}".encode(), key)


def read_page_token(token: str, key: bytes) -> tuple[datetime, int]:
    try:
        due, last_id = (decode_page_token(token, key) or b"").decode().split("|")
    except (UnsafeQueryValue, ValueError):
        raise InvalidPageToken(token) from None
    return datetime.fromisoformat(due), int(last_id)


class TaskNotFound(LookupError):
    pass


def task_out(task: Task, now: datetime) -> TaskOut:
    assert task.id is not None
    return TaskOut(
        id=task.id, kind=task.kind, title=task.title or task.reason, status=task.status,
        owner_role=task.owner_role, owner=task.owner, priority=task.priority,
        patient_ref=task.patient_ref, journey_id=task.journey_ref, step_id=task.step_id,
        reason=task.reason, opened_at=task.opened_at, due_at=task.due_at,
        closed_at=task.closed_at, escalation_level=task.escalation_level, outcome=task.outcome,
        overdue=task.status in ("requested", "in-progress") and task.due_at < now,
    )  # fmt: skip


class TaskService:
    def __init__(
        self,
        store: Store,
        journeys: JourneyGateway | None = None,
        page_token_key: bytes | None = None,
    ) -> None:
        self.store = store
        self.journeys = journeys
        # The API's key, alike on every replica; a one-off key for a CLI that pages once.
        self.page_token_key = page_token_key or secrets.token_bytes(32)

    async def find(
        self,
        *,
        role: str | None = None,
        status: str | None = None,
        overdue: bool | None = None,
        patient_ref: str | None = None,
        journey_ref: str | None = None,
        page_size: int = 200,
        page_token: str | None = None,
    ) -> TaskPage:
        """One page of the queue, soonest due first; raises InvalidPageToken."""
        now = datetime.now(UTC)
        after = read_page_token(page_token, self.page_token_key) if page_token else None

        def read() -> TaskPage:
            found = self.store.tasks.find(
                role=role, status=status, patient_ref=patient_ref, journey_ref=journey_ref,
                overdue_at=now if overdue else None,
                on_time_at=now if overdue is False else None,
                after=after, limit=page_size + 1,
            )  # fmt: skip
            page, more = found[:page_size], len(found) > page_size
            token = page_token_after(page[-1], self.page_token_key) if more else None
            return TaskPage(items=[task_out(t, now) for t in page], next_page_token=token)

        return await asyncio.to_thread(read)

    async def get(self, task_id: int, with_note: bool) -> TaskDetail:
        def read() -> TaskDetail:
            task = self.store.tasks.get(task_id)
            if task is None:
                raise TaskNotFound(task_id)
            trail = [
                f"{e.at:%Y-%m-%dT%H:%M:%SZ} {e.action}" + (f" by {e.actor}" if e.actor else "")
                for e in self.store.tasks.trail(task_id)
            ]
            out = task_out(task, datetime.now(UTC))
            return TaskDetail(
                **out.model_dump(), note=task.note if with_note else None, trail=trail
            )

        return await asyncio.to_thread(read)

    async def act(self, task_id: int, action: TaskAction, actor: str) -> TaskOut:
        return (await self.act_once(task_id, action, actor))[0]

    async def act_once(self, task_id: int, action: TaskAction, actor: str) -> tuple[TaskOut, bool]:
        """As `act`; also whether this call changed the task (False: a repeat). The CRM's
        completions (services/crm.py) come this way too."""

        def write() -> tuple[Task, bool]:
            try:
                return self.store.tasks.act(task_id, action, actor)
            except LookupError:
                raise TaskNotFound(task_id) from None

        task, changed = await asyncio.to_thread(write)
        if action.kind == "complete":
            await self._tell_journey(task, actor)
        return task_out(task, datetime.now(UTC)), changed

    async def _tell_journey(self, task: Task, actor: str) -> None:
        if not (task.journey_ref and task.journey_task_id) or self.journeys is None:
            return
        event = PartnerEvent(
            event_id=f"task-{task.id}-completed", type=TASK_COMPLETED,
            correlation_key=task.journey_task_id, journey_ref=task.journey_ref,
            occurred_at=task.closed_at or datetime.now(UTC),
            data={"outcome": task.outcome, "by": actor},
        )  # fmt: skip
        # A journey that has ended has nothing left to wait for.
        with contextlib.suppress(JourneyNotFound, JourneyClosed):
            await self.journeys.signal_event(task.journey_ref, event)
