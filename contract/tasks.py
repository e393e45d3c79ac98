"""/v1/tasks bodies: the hub's work queue, across journeys (shaped like FHIR Task)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

CODE = r"^[a-z][a-z0-9_]{0,63}$"
OWNER = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskOut(BaseModel):
    id: int
    kind: str = Field(description="journey_task, pharmacovigilance, ambiguous_reply, ...")
    title: str
    status: str = Field(description="FHIR Task.status: requested, in-progress, completed, "
                        "cancelled.")  # fmt: skip
    owner_role: str
    owner: str | None = None
    priority: str
    patient_ref: str | None = None
    journey_id: str | None = None
    step_id: str | None = None
    reason: str
    opened_at: datetime
    due_at: datetime
    closed_at: datetime | None = None
    overdue: bool
    escalation_level: int
    outcome: str | None = None


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_page_token: str | None = Field(
        None, description="Pass as page_token for the next page; absent on the last one."
    )


class TaskDetail(TaskOut):
    note: str | None = Field(
        None, description="The patient's own words (a reply that opened it): with "
        "patients:read only.",
    )  # fmt: skip
    trail: list[str] = Field(description="Every action with its time, oldest first.")


class AssignIn(_Strict):
    owner: str = Field(pattern=OWNER, description="Who works it (a staff id, not a name).")


class ReassignIn(_Strict):
    owner: str | None = Field(None, pattern=OWNER, description="None: back to the role's queue.")
    role: str | None = Field(None, pattern=CODE, description="Move it to another role's queue.")


class CompleteIn(_Strict):
    outcome: str = Field(
        "done", pattern=CODE, description="What the journey branches on (a code), e.g. reached."
    )
