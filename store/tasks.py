"""Human work items, shaped like FHIR Task, readable across journeys.

A task is opened once per key (a retried callback opens nothing more), carries its
owner role, due time, priority and the patient / journey / step it belongs to, and keeps
an append-only trail of what happened to it (`task_event`: opened, assigned, completed,
with times). Pharmacovigilance needs that trail: a reply that may report a side effect
must reach safety staff, with when it came and when it was seen.

`note` may hold the patient's own words (PHI): never in a repr, a log or an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, String, Text, UniqueConstraint, and_, or_
from sqlmodel import Field, Session, SQLModel, col, select

from store.db import insert_ignore, lock_row, session
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
    title: str = Field(default="", max_length=200, description="What to do (no PHI).")
    journey_task_id: str | None = Field(
        default=None, max_length=200, description="The id its journey waits on, if any."
    )
    outcome: str | None = Field(
        default=None, max_length=64, description="How it was closed (a journey branches on it)."
    )
    escalation_level: int = Field(default=0, description="0 none; n the n-th escalation.")
    status: TaskStatus = Field(default="requested", sa_type=String(16))
    business_status: str | None = Field(default=None, max_length=64)
    owner_role: str = Field(max_length=64, index=True)
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
    crm_task_id: str | None = Field(
        default=None, max_length=64, index=True, description="Its id in the external CRM queue."
    )
    crm_create_started_at: datetime | None = Field(
        default=None,
        sa_type=UtcDateTime,
        description="A CRM create was sent then and its id is not known yet (at most once).",
    )


class TaskEvent(SQLModel, table=True):
    """The timestamped trail of one task."""

    __tablename__ = "task_event"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(foreign_key="task.id", index=True)
    action: str = Field(max_length=32)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    actor: str | None = Field(default=None, max_length=64)


def journey_task_key(journey_ref: str, journey_task_id: str) -> str:
    """A journey's task is opened once per journey and task id."""
    return f"journey/{journey_ref}/{journey_task_id}"


class TaskClosed(Exception):
    """The task is closed (completed or cancelled) and cannot take that action."""

    def __init__(self, task_id: int, status: str) -> None:
        super().__init__(f"task {task_id} is {status}")
        self.status = status


@dataclass(frozen=True)
class TaskAction:
    kind: Literal["assign", "reassign", "complete", "cancel"]
    owner: str | None = None
    role: str | None = None
    outcome: str | None = None


@dataclass(frozen=True)
class JourneyTaskOpened:
    journey_ref: str
    patient_ref: str
    step_id: str
    journey_task_id: str
    title: str
    role: str
    priority: TaskPriority
    opened_at: datetime
    due_at: datetime


def _apply(task: Task, action: TaskAction) -> bool:
    """Change `task` for `action`; False if it is already so."""
    if action.kind == "assign":
        if task.owner == action.owner and task.status == "in-progress":
            return False
        task.owner, task.status = action.owner, "in-progress"
    elif action.kind == "reassign":
        role = action.role or task.owner_role
        if (task.owner, task.owner_role) == (action.owner, role):
            return False
        task.owner, task.owner_role = action.owner, role
        task.status = "in-progress" if action.owner else "requested"
    elif action.kind == "complete":
        task.status, task.outcome, task.closed_at = "completed", action.outcome, utcnow()
    else:
        task.status, task.outcome, task.closed_at = "cancelled", action.outcome, utcnow()
    return True


def _locked(s: Session, task_id: int) -> Task | None:
    """The task row, locked until the transaction ends (store.db.lock_row): two
    completions at once, the second sees the first's."""
    return lock_row(s, Task, task_id, touch=Task.id)


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
        return self._insert(row)

    def open_for_journey(self, opened: JourneyTaskOpened) -> tuple[Task, bool]:
        """A journey's human task, once per journey task id (a replayed or retried
        activity opens nothing more)."""
        row = {
            "key": journey_task_key(opened.journey_ref, opened.journey_task_id),
            "kind": "journey_task", "title": opened.title, "status": "requested",
            "owner_role": opened.role, "priority": opened.priority,
            "patient_ref": opened.patient_ref, "journey_ref": opened.journey_ref,
            "step_id": opened.step_id, "journey_task_id": opened.journey_task_id,
            "reason": opened.step_id[:64], "opened_at": opened.opened_at, "due_at": opened.due_at,
        }  # fmt: skip
        return self._insert(row)

    def _insert(self, row: dict[str, Any]) -> tuple[Task, bool]:
        """Insert once per key, with its `opened` trail entry; (the task, True if new)."""
        with session(self.engine) as s:
            inserted = insert_ignore(s, Task.__table__, row, conflict=["key"])  # type: ignore[attr-defined]
            task = s.exec(select(Task).where(Task.key == row["key"])).one()
            if inserted:
                assert task.id is not None
                s.add(TaskEvent(task_id=task.id, action="opened", at=row["opened_at"]))
            s.commit()
            return task, inserted

    def get(self, task_id: int) -> Task | None:
        with session(self.engine) as s:
            return s.get(Task, task_id)

    def by_journey_task(self, journey_ref: str, journey_task_id: str) -> Task | None:
        with session(self.engine) as s:
            return s.exec(
                select(Task).where(Task.key == journey_task_key(journey_ref, journey_task_id))
            ).first()

    def find(
        self,
        *,
        role: str | None = None,
        status: str | None = None,
        overdue_at: datetime | None = None,
        patient_ref: str | None = None,
        journey_ref: str | None = None,
        on_time_at: datetime | None = None,
        after: tuple[datetime, int] | None = None,
        limit: int = 200,
    ) -> list[Task]:
        """The queue: soonest due first. `overdue_at`: open tasks due before that instant;
        `on_time_at`: every other task. `after`: the (due_at, id) of the last row of the
        page before (keyset paging: a task opened meanwhile shifts no page)."""
        query = select(Task)
        if journey_ref is not None:
            query = query.where(Task.journey_ref == journey_ref)
        if on_time_at is not None:
            query = query.where(or_(col(Task.status).not_in(OPEN), col(Task.due_at) >= on_time_at))
        if after is not None:
            due, last_id = after
            query = query.where(
                or_(col(Task.due_at) > due, and_(col(Task.due_at) == due, col(Task.id) > last_id))
            )
        if role is not None:
            query = query.where(Task.owner_role == role)
        if status is not None:
            query = query.where(Task.status == status)
        if patient_ref is not None:
            query = query.where(Task.patient_ref == patient_ref)
        if overdue_at is not None:
            query = query.where(col(Task.status).in_(OPEN), col(Task.due_at) < overdue_at)
        with session(self.engine) as s:
            return list(s.exec(query.order_by(col(Task.due_at), col(Task.id)).limit(limit)))

    def act(self, task_id: int, action: TaskAction, actor: str) -> tuple[Task, bool]:
        """Assign, reassign, complete or cancel, with its trail entry; (task, changed).

        The same action again (a retried request) changes nothing and is not an error;
        acting on a closed task otherwise raises TaskClosed."""
        with session(self.engine) as s:
            task = _locked(s, task_id)
            if task is None:
                raise LookupError(f"unknown task {task_id}")
            if task.status not in OPEN:
                repeat = (
                    (action.kind, action.outcome) == ("complete", task.outcome)
                    and (task.status == "completed")
                ) or (action.kind, task.status) == ("cancel", "cancelled")
                if repeat:
                    return task, False
                raise TaskClosed(task_id, task.status)
            if not _apply(task, action):
                return task, False
            s.add(task)
            assert task.id is not None
            s.add(TaskEvent(task_id=task.id, action=action.kind, actor=actor[:64]))
            s.commit()
            s.refresh(task)
            return task, True

    def escalate(
        self, journey_ref: str, journey_task_id: str, to_role: str, due_at: datetime | None
    ) -> bool:
        """The journey's SLA passed: the task moves up its chain, or its role is reminded
        (the same role); the due time moves to the next level's. A repeat changes nothing."""
        with session(self.engine) as s:
            found = s.exec(
                select(Task.id).where(Task.key == journey_task_key(journey_ref, journey_task_id))
            ).first()
            task = _locked(s, found) if found is not None else None
            if task is None or task.status not in OPEN:
                return False
            if (task.owner_role, task.due_at) == (to_role, due_at or task.due_at) and (
                task.escalation_level > 0
            ):
                return False
            action = "reminded" if task.owner_role == to_role else f"escalated:{to_role}"
            if task.owner_role != to_role:
                task.owner_role, task.owner = to_role, None
            task.due_at = due_at or task.due_at
            task.escalation_level += 1
            assert task.id is not None
            s.add(task)
            s.add(TaskEvent(task_id=task.id, action=action[:32]))
            s.commit()
            return True

    # -- the external CRM queue (activities/crm.py) ------------------------------------
    def crm_create_may_go(self, task_id: int, at: datetime, in_flight: timedelta) -> bool:
        """Note that a CRM create is sent `at`; False (nothing noted) while an earlier one,
        noted less than `in_flight` before, may still land."""
        with session(self.engine) as s:
            task = _locked(s, task_id)
            if task is None:
                raise LookupError(f"unknown task {task_id}")
            noted = task.crm_create_started_at
            if noted is not None and at - noted < in_flight:
                return False
            task.crm_create_started_at = at
            s.add(task)
            s.commit()
            return True

    def crm_create_refused(self, task_id: int) -> None:
        """The CRM answered the create with an error: nothing was created."""
        with session(self.engine) as s:
            task = _locked(s, task_id)
            if task is not None and task.crm_task_id is None:
                task.crm_create_started_at = None
                s.add(task)
                s.commit()

    def set_crm_id(self, task_id: int, crm_task_id: str | None) -> None:
        """The CRM's id of this task (None: the CRM no longer has it)."""
        with session(self.engine) as s:
            task = _locked(s, task_id)
            if task is None:
                raise LookupError(f"unknown task {task_id}")
            task.crm_task_id, task.crm_create_started_at = crm_task_id, None
            s.add(task)
            s.commit()

    def note(self, task_id: int, action: str, actor: str | None = None) -> None:
        """A trail entry that changes nothing else (e.g. `crm_push_failed`)."""
        with session(self.engine) as s:
            s.add(TaskEvent(task_id=task_id, action=action[:32], actor=actor))
            s.commit()

    def closed_by(self, task_id: int) -> str | None:
        """Who closed the task (the actor of its complete / cancel entry), if anyone."""
        with session(self.engine) as s:
            event = s.exec(
                select(TaskEvent)
                .where(TaskEvent.task_id == task_id)
                .where(col(TaskEvent.action).in_(("complete", "cancel")))
                .order_by(col(TaskEvent.id).desc())
            ).first()
            return event.actor if event is not None else None

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
