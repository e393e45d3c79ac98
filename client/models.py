"""The HTTP API's wire contract: request and response bodies of `/v1/journeys` and
`/v1/templates`, shared by the server (api/) and the HTTP client (client/http.py).

They live here, not in api/, because nothing may import api/ (DESIGN.md): services
take the client and these models without FastAPI. Where a shape equals a domain model
(journey state, start and event acknowledgements) the domain model is used as is.

Identifiers are pseudonymous and checked twice: by a pattern (published in the OpenAPI
schema) and by `check_pseudonym`, which refuses values that look like phone numbers,
dates or SSNs. Validation errors never echo the value: it may be patient data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from domain.events import core_event_types
from domain.journey import HHMM, LANGUAGE, PSEUDONYM, JourneyState, check_pseudonym

TEMPLATE_ID = r"^[a-z][a-z0-9_]{0,63}$"
STAGE = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_PART = r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}"
JOURNEY_ID = rf"^journey/{_PART}/{_PART}(/{_PART})?$"
EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
EVENT_TYPE = r"^[a-z][a-z0-9_]{0,63}\.[a-z][a-z0-9_]{0,63}$"
CORRELATION_KEY = r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$"
PAGE_TOKEN = r"^[A-Za-z0-9_-]{24,4096}$"

JsonScalar = str | int | float | bool | None


def _pseudonym(field: str) -> Any:
    return AfterValidator(lambda value: check_pseudonym(value, field))


PatientRef = Annotated[
    str,
    Field(
        pattern=PSEUDONYM,
        description="Pseudonymous patient id (never a name, phone, MRN or date of birth).",
        examples=["pt-7f3a9c"],
    ),
    _pseudonym("patient_ref"),
]
Program = Annotated[
    str,
    Field(pattern=PSEUDONYM, description="Program id.", examples=["demo-program"]),
    _pseudonym("program"),
]
BusinessKey = Annotated[
    str,
    Field(pattern=PSEUDONYM, description="Tells two journeys of one program apart."),
    _pseudonym("business_key"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- journeys ----------------------------------------------------------------------------


class StartJourney(_Strict):
    """Start a journey, or find the one that exists for this patient x program x key."""

    template: str = Field(
        pattern=TEMPLATE_ID, description="Template id (GET /v1/templates).",
        examples=["specialty_start"],
    )  # fmt: skip
    template_version: int | None = Field(
        None, ge=1, le=1_000_000, description="Template version; default the latest."
    )
    patient_ref: PatientRef
    program: Program
    business_key: BusinessKey | None = None
    params: dict[str, JsonScalar] = Field(
        default_factory=dict, max_length=50, description="Template parameter overrides."
    )
    context: dict[str, JsonScalar] = Field(
        default_factory=dict,
        max_length=50,
        description="Non-identifying facts for template expressions (e.g. timezone).",
        examples=[{"timezone": "America/New_York"}],
    )
    time_scale: float = Field(
        1.0,
        gt=0,
        le=1_000_000,
        description="Journey-seconds per real second: compresses journey time for demos and "
        "tests (21600: a day every 4 s). 1 in production.",
    )


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


class QuietHoursIn(_Strict):
    start: str = Field(pattern=HHMM, description="HH:MM local; no contact from...",
                       examples=["21:00"])  # fmt: skip
    end: str = Field(pattern=HHMM, description="...until HH:MM (may wrap midnight).",
                     examples=["08:00"])  # fmt: skip


class PreferencesIn(_Strict):
    """Change contact preferences; fields left out keep their value."""

    channel: Literal["sms", "email"] | None = None
    quiet_hours: QuietHoursIn | None = None
    language: str | None = Field(None, pattern=LANGUAGE, examples=["es-US"])
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
    patient_ref: str | None = None
    program: str | None = None
    started_at: datetime | None = None
    closed_at: datetime | None = None


class JourneyPage(BaseModel):
    items: list[JourneySummary]
    next_page_token: str | None = Field(None, description="Pass back for the next page.")


class JourneyFilter(BaseModel):
    """Listing filters; every value is checked before it goes into a visibility query."""

    patient_ref: Annotated[str, Field(pattern=PSEUDONYM), _pseudonym("patient")] | None = None
    program: Annotated[str, Field(pattern=PSEUDONYM), _pseudonym("program")] | None = None
    template_id: str | None = Field(None, pattern=TEMPLATE_ID)
    stage: str | None = Field(None, pattern=STAGE)
    needs_attention: bool | None = None
    running: bool | None = None


# -- templates ----------------------------------------------------------------------------


class TemplateSummary(BaseModel):
    id: str
    latest_version: int
    versions: list[int]
    description: str
    steps: int = Field(description="Steps in the latest version.")


class TemplateStep(BaseModel):
    id: str
    kind: str
    title: str = ""
    stage: str | None = None
    next: str | None = None
    targets: list[str] = Field(description="Steps this one can go to (besides the next).")


class TemplateDetail(BaseModel):
    id: str
    version: int
    versions: list[int]
    description: str
    parameters: dict[str, Any]
    steps: list[TemplateStep]
    text: str = Field(description="Numbered listing of the steps.")
    mermaid: str = Field(description="Mermaid flowchart of the steps.")


# -- errors -------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    field: str = Field(description="Where: body.patient_ref, query.stage, ...")
    message: str
    type: str


class Problem(BaseModel):
    """RFC 9457 problem details; `type` is stable, `detail` never holds patient data."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=["https://pitwall.dev/problems/journey-not-found"])
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None
    known_templates: list[str] | None = None
    journey_id: str | None = None
    error_id: str | None = None


__all__ = [
    "JOURNEY_ID",
    "KNOWN_EVENT_TYPES",
    "Control",
    "FieldProblem",
    "JourneyEvent",
    "JourneyFilter",
    "JourneyPage",
    "JourneyState",
    "JourneySummary",
    "PreferencesIn",
    "Problem",
    "QuietHoursIn",
    "StartJourney",
    "TemplateDetail",
    "TemplateStep",
    "TemplateSummary",
]
