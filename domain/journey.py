"""Journey models that cross the workflow boundary: start input, state, control requests."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from domain.partners import PartnerEvent
from domain.refill_cycle import RefillState
from domain.template import JourneyTemplate

# Pseudonymous ids only: these go into workflow ids, which Temporal never encrypts.
PSEUDONYM = r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$"
_LOOKS_LIKE_PHI = (
    re.compile(r"(^|[-_])\d{7,}($|[-_])"),  # phone numbers, MRNs, SSNs as a run of digits
    re.compile(r"\d{3}-\d{2,3}-\d{4}"),  # SSN / phone shapes
    re.compile(r"(19|20)\d{2}-\d{2}-\d{2}"),  # dates of birth
)

JourneyStatus = Literal["running", "paused", "completed", "abandoned", "discontinued", "cancelled"]


def journey_id(program: str, patient_ref: str, business_key: str | None = None) -> str:
    """Deterministic workflow id: one journey per patient x program (x business key)."""
    parts = ["journey", program, patient_ref, *([business_key] if business_key else [])]
    return "/".join(parts)


def patient_of(journey_ref: str | None) -> str | None:
    """The patient ref inside a journey id `journey/{program}/{patient}[/{key}]`."""
    parts = (journey_ref or "").split("/")
    return parts[2] if len(parts) >= 3 and parts[0] == "journey" and parts[2] else None


def check_pseudonym(value: str, field: str) -> str:
    if not re.match(PSEUDONYM, value):
        raise ValueError(f"{field} must be 3-64 letters, digits, '-' or '_'")
    if any(p.search(value) for p in _LOOKS_LIKE_PHI):
        raise ValueError(f"{field} looks like personal data; use a pseudonymous id")
    return value


class JourneyKey(BaseModel):
    patient_ref: str = Field(description="Pseudonymous patient id (never a name, phone, MRN).")
    program: str = Field(description="Program id, e.g. a brand's patient-support program.")
    business_key: str | None = Field(None, description="Tells two journeys of one program apart.")

    @field_validator("patient_ref", "program", "business_key")
    @classmethod
    def _pseudonymous(cls, value: str | None, info: Any) -> str | None:
        return None if value is None else check_pseudonym(value, info.field_name)

    @property
    def workflow_id(self) -> str:
        return journey_id(self.program, self.patient_ref, self.business_key)


class JourneyStart(JourneyKey):
    """Workflow input: the template snapshot travels with the journey."""

    template: JourneyTemplate
    params: dict[str, Any] = Field(
        default_factory=dict, description="Template parameter overrides."
    )
    context: dict[str, Any] = Field(
        default_factory=dict,
        description="Non-identifying facts for expressions (e.g. timezone, plan_type).",
    )
    time_scale: float = Field(
        1.0, gt=0, description="Journey-seconds per workflow-second (demo compresses days)."
    )
    opened_by: str | None = Field(None, description="The system that opened the case.")
    memory: JourneyMemory | None = Field(
        None, description="Set by the journey itself when it continues as new; never by callers."
    )

    @field_validator("params")
    @classmethod
    def _known_params(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        template = info.data.get("template")
        if template is not None:
            unknown = set(value) - set(template.parameters)
            if unknown:
                raise ValueError(f"unknown template parameter(s): {sorted(unknown)}")
        return value


class StartAck(BaseModel):
    journey_id: str
    created: bool = Field(description="False when the journey already existed.")
    template_id: str
    template_version: int


class StepRecord(BaseModel):
    step_id: str
    kind: str
    visit: int = 1
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str | None = None


class PendingWait(BaseModel):
    step_id: str
    event_types: list[str]
    correlation_key: str
    deadline: datetime | None


class HumanTask(BaseModel):
    task_id: str
    step_id: str
    title: str
    role: str
    opened_at: datetime
    due_at: datetime
    escalated_to: str | None = None
    closed_at: datetime | None = None


HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
LANGUAGE = r"^[a-z]{2,3}(-[A-Z]{2})?$"


# Bounds that keep a journey's memory the same size in year five as in week one.
COMPLETED_STEPS_KEPT = 50  # the window of completed steps the state shows
CLOSED_TASKS_KEPT = 20
MESSAGE_STATUSES_KEPT = 100
SEEN_EVENTS_KEPT = 2000  # event ids remembered for dedupe...
SEEN_EVENTS_HORIZON_DAYS = 30  # ...and for at least this many journey-days, within the cap
INBOX_KEPT = 500  # events no wait has taken yet


class JourneyState(BaseModel):
    journey_id: str
    template_id: str
    template_version: int
    status: JourneyStatus = "running"
    stage: str = "REFERRED"
    current_step: str | None = None
    completed_steps: list[StepRecord] = Field(
        default_factory=list,
        description=f"The last {COMPLETED_STEPS_KEPT} completed steps (see steps_completed).",
    )
    steps_completed: int = Field(0, description="Steps completed since the journey began.")
    messages_sent: int = Field(0, description="Messages sent since the journey began.")
    runs: int = Field(1, description="Temporal runs so far (continue-as-new adds one).")
    loops: dict[str, int] = Field(
        default_factory=dict, description="Iterations done by each running repeat step."
    )
    branches: dict[str, str] = Field(
        default_factory=dict, description="Parallel branch → the step it is on."
    )
    pending_wait: PendingWait | None = None
    next_due_at: datetime | None = None
    needs_attention: bool = False
    attention_reason: str | None = None
    tasks: list[HumanTask] = Field(default_factory=list)
    milestones: dict[str, datetime] = Field(
        default_factory=dict,
        description="Milestone → when the journey first reached it (time to therapy, PA "
        "turnaround).",
    )
    message_status: dict[str, str] = Field(
        default_factory=dict, description="Outbound message id → latest delivery status."
    )
    outputs: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Partner action results by step id (steps.<id>)."
    )
    events: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Events that answered waits, by step id (events.<id>)."
    )
    visits: dict[str, int] = Field(default_factory=dict, description="Times each step ran.")
    outcome_reason: str | None = None
    paused_reason: str | None = None
    started_at: datetime | None = None
    refill: RefillState | None = Field(
        None, description="A refill journey's fills, run-out, PDC and risk (refill_watch)."
    )

    def complete(self, record: StepRecord) -> None:
        self.completed_steps.append(record)
        self.steps_completed += 1
        del self.completed_steps[:-COMPLETED_STEPS_KEPT]
        closed = [t for t in self.tasks if t.closed_at is not None]
        for task in closed[: max(len(closed) - CLOSED_TASKS_KEPT, 0)]:
            self.tasks.remove(task)

    def set_message_status(self, message_id: str, status: str) -> None:
        self.message_status.pop(message_id, None)  # newest last
        self.message_status[message_id] = status
        for old in list(self.message_status)[:-MESSAGE_STATUSES_KEPT]:
            del self.message_status[old]


class Frame(BaseModel):
    """Where a run stopped in one sequence: the step to run, or the container step it was
    inside (with that step's iteration and start), so the next run goes on from there."""

    step_id: str
    iteration: int = 0
    started_at: datetime | None = None


class JourneyMemory(BaseModel):
    """Everything a journey carries from one Temporal run to the next (continue-as-new)."""

    state: JourneyState
    resume: list[Frame] = Field(description="Outermost first: where to go on.")
    inbox: list[PartnerEvent] = Field(
        default_factory=list, description="Events that arrived before their wait."
    )
    seen: dict[str, datetime] = Field(
        default_factory=dict, description="Event id → journey time received (dedupe)."
    )
    cancel_reason: str | None = None
    operator_actions: int = Field(0, description="Timeline cursor for operator notes.")
    clock_origin: datetime = Field(description="Where the journey's scaled clock started.")


class ControlRequest(BaseModel):
    reason: str = Field("", max_length=200, description="Why (no patient data).")


class EventAck(BaseModel):
    accepted: bool
    duplicate: bool


JourneyStart.model_rebuild()
