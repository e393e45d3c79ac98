"""Human work items, shaped like FHIR Task, readable across journeys.

A task is opened once per key (a retried callback opens nothing more), carries its
owner role, due time, priority and the patient / journey / step it belongs to, and keeps
an append-only trail of what happened to it (`task_event`: opened, assigned, completed,
with times). Pharmacovigilance needs that trail: a reply that may report a side effect
must reach safety staff, with when it came and when it was seen.

`note` may hold the patient's own words (PHI): never in a repr, a log or an error.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel, col, select

from store.db import insert_ignore, session
from store.phi import RedactedRepr
from store.types import UtcDateTime, utcnow

REF = 64
# FHIR Task.status values we use.
TaskStatus = Literal["requested", "in-progress", "completed", "cancelled"]
TaskPriority = Literal["routine", "urgent", "asap", "stat"]
OPEN = ("requested", "in-progress")

# Who works what, and how fast (wall-clock for now; business hours come with the queue).
ROUTES: dict[str, tuple[str, TaskPriority, timedelta]] = {
    "pharmacovigilance": ("pharmacovigilance", "urgent", timedelta(hours=24)),
    "ambiguous_reply": ("patient_navigator", "routine", timedelta(days=1)),
    "shared_number": ("patient_navigator", "routine", timedelta(days=1)),
    "unknown_sender": ("patient_navigator", "routine", timedelta(days=2)),
    "help_request": ("patient_navigator", "routine", timedelta(days=1)),
    "contact_outcome_unknown": ("case_manager", "urgent", timedelta(hours=4)),
    "outreach_call": ("patient_navigator", "routine", timedelta(days=1)),
}


class Task(RedactedRepr, SQLModel, table=True):
    __tablename__ = "task"
    __phi__ = frozenset({"note"})
    __table_args__ = (UniqueConstraint("key"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=300, description="What opened it, once: e.g. reply/<sid>/pv.")
    kind: str = Field(max_length=32, description="pharmacovigilance, ambiguous_reply, ...")
    status: TaskStatus = Field(default="requested", sa_type=String(16))
    business_status: str | None = Field(default=None, max_length=64)
    owner_role: str = Field(max_length=64)
    owner: str | None = Field(default=None, max_length=64)
    priority: TaskPriority = Field(default="routine", sa_type=String(8))
    patient_ref: str | None = Field(default=None, index=True, max_length=REF)
    journey_ref: str | None = Field(default=None, max_length=300)
    step_id: str | None = Field(default=None, max_length=100)
    reason: str = Field(max_length=64, description="A code, never the patient's words.")
    note: str | None = Field(default=None, sa_type=Text, description="May hold PHI.")
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    due_at: datetime = Field(sa_type=UtcDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class TaskEvent(SQLModel, table=True):
    """The timestamped trail of one task."""

    __tablename__ = "task_event"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    action: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    actor: str | None = Field(default=None, max_length=64)


class TaskRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(
        self,
        key: str,
        kind: str,
        reason: str,
        *,
        patient_ref: str | None = None,
        journey_ref: str | None = None,
        step_id: str | None = None,
        note: str | None = None,
        at: datetime | None = None,
    ) -> tuple[Task, bool]:
        """Open a task once per key; (the task, True if this call opened it)."""
        role, priority, within = ROUTES[kind]
        at = at or utcnow()
        row = {
            "key": key, "kind": kind, "status": "requested", "owner_role": role,
            "priority": priority, "patient_ref": patient_ref, "journey_ref": journey_ref,
            "step_id": step_id, "reason": reason, "note": note, "opened_at": at,
            "due_at": at + within,
        }  # fmt: skip
        with session(self.engine) as s:
            inserted = insert_ignore(s, Task.__table__, row, conflict=["key"])  # type: ignore[attr-defined]
            task = s.exec(select(Task).where(Task.key == key)).one()
            if inserted:
                assert task.id is not None
                s.add(TaskEvent(task_id=task.id, action="opened", at=at))
            s.commit()
            return task, inserted

    def for_patient(self, patient_ref: str) -> list[Task]:
        with session(self.engine) as s:
            return list(
                s.exec(select(Task).where(Task.patient_ref == patient_ref).order_by(col(Task.id)))
            )

    def open_tasks(self, role: str | None = None) -> list[Task]:
        query = select(Task).where(col(Task.status).in_(OPEN))
        if role is not None:
            query = query.where(Task.owner_role == role)
        with session(self.engine) as s:
            return list(s.exec(query.order_by(col(Task.due_at), col(Task.id))))

    def trail(self, task_id: int) -> list[TaskEvent]:
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(TaskEvent)
                    .where(TaskEvent.task_id == task_id)
                    .order_by(col(TaskEvent.id))
                )
            )
