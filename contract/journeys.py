"""/v1/journeys bodies: start, events, control, listing."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contract.ids import (
    CORRELATION_KEY,
    EVENT_ID,
    EVENT_TYPE,
    TEMPLATE_ID,
    BusinessKey,
    JsonScalar,
    PatientId,
    Program,
)
from contract.patients import PatientIn
from domain.events import core_event_types


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartJourney(_Strict):
    """Start a journey, or find the one that exists for this patient x program x key.

    This one model travels from the SDK through the API to the workflow input: a field
    added here (with a default) reaches `JourneyStart` with no other change."""

    template: str = Field(
        pattern=TEMPLATE_ID, description="Template id (GET /v1/templates).",
        examples=["specialty_start"],
    )  # fmt: skip
    template_version: int | None = Field(
        None, ge=1, le=1_000_000, description="Template version; default the latest."
    )
    patient_id: PatientId
    program: Program
    business_key: BusinessKey | None = None
    patient: PatientIn | None = Field(
        None,
        description="Intake: register or update the patient (as PUT /v1/patients/{id}) "
        "before the journey starts, so one call opens the case.",
    )
    params: dict[str, JsonScalar] = Field(
        default_factory=dict, max_length=50, description="Template parameter overrides."
    )
    context: dict[str, JsonScalar] = Field(
        default_factory=dict,
        max_length=50,
        description="Non-identifying facts for template expressions (e.g. timezone).",
        examples=[{"timezone": "America/New_York"}],
    )
    opened_by: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_-]{0,63}$",
        description="The system that opened the case (a code, e.g. hub-intake, ehr).",
        examples=["hub-intake"],
    )
    time_scale: float = Field(
        1.0,
        gt=0,
        le=1_000_000,
        description="Journey-seconds per real second: compresses journey time for demos and "
        "tests (21600: a day every 4 s). 1 in production.",
    )


# Fields of StartJourney that the API resolves itself; the rest pass to the workflow input.
RESOLVED_AT_START = frozenset({"template", "template_version", "patient_id", "patient"})

# The built-in types (domain/events.py); templates may declare more (`events:`).
KNOWN_EVENT_TYPES: tuple[str, ...] = tuple(sorted(core_event_types()))


class JourneyEvent(_Strict):
    """An event for one journey (task done, operator retry, a partner fact...)."""

    event_id: str = Field(
        pattern=EVENT_ID, description="Your unique id for this event; a repeat is a duplicate.",
        examples=["crm-evt-000123"],
    )  # fmt: skip
    type: str = Field(
        pattern=EVENT_TYPE,
        description="A built-in type (task.completed, operator.retry, a partner callback) or "
        "one a template declares under `events:`.",
        examples=["task.completed"],
    )
    correlation_key: str = Field(
        pattern=CORRELATION_KEY,
        description="What the event answers: task id, PA number, Rx id, step id...",
        examples=["delivery_followup-1"],
    )
    occurred_at: AwareDatetime | None = Field(None, description="Default: when received.")
    data: dict[str, JsonScalar] = Field(
        default_factory=dict, max_length=50, description="Event facts (no patient data)."
    )


class Control(_Strict):
    reason: str = Field("", max_length=200, description="Why (no patient data).")


ExecutionStatus = Literal[
    "running", "completed", "failed", "canceled", "terminated", "continued_as_new", "timed_out"
]


class JourneySummary(BaseModel):
    """A journey as the visibility index sees it (eventually consistent)."""

    journey_id: str
    execution_status: ExecutionStatus
    template_id: str | None = None
    template_version: int | None = None
    stage: str | None = None
    needs_attention: bool | None = None
    patient_ref: str | None = Field(None, description="Pitwall's pseudonym for the patient.")
    program: str | None = None
    risk: str | None = Field(None, description="Refill journeys: the refill-gap risk level.")
    pdc: int | None = Field(None, description="Refill journeys: PDC this year, in percent.")
    started_at: datetime | None = None
    closed_at: datetime | None = None


class JourneyPage(BaseModel):
    items: list[JourneySummary]
    next_page_token: str | None = Field(None, description="Pass back for the next page.")
