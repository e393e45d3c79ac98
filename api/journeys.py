"""/v1/journeys: start (idempotent), state, listing, events, operator control.

HTTP only: each route parses, checks and hands the work on. Start goes to the journey
service (patient id → pseudonym, intake, one StartWorkflowExecution); the rest is one
Temporal operation through the gateway: state a query, listing visibility, events and
control updates whose validators reject invalid changes before they reach history.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import AfterValidator

from api.auth import forbidden, require
from api.deps import JourneyId, Journeys, JourneyStarter, Patients, Templates
from api.errors import ApiProblem
from api.openapi import problems
from contract.ids import PAGE_TOKEN, PATIENT_ID, STAGE, TEMPLATE_ID
from contract.journeys import Control, JourneyEvent, JourneyPage, StartJourney
from domain.events import did_you_mean
from domain.journey import PSEUDONYM, EventAck, JourneyState, StartAck, check_pseudonym
from domain.partners import PartnerEvent
from domain.refill_risk import RiskLevel
from gateway.visibility import JourneyFilter
from store.api_keys import ApiKey

router = APIRouter(prefix="/v1/journeys", tags=["journeys"])

_TEMPORAL = (500, 503)
READ = [require("journeys:read")]
WRITE = [require("journeys:write")]


def _checked(field: str) -> AfterValidator:
    return AfterValidator(lambda v: v if v is None else check_pseudonym(v, field))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Start a journey (idempotent)",
    description="Starts the journey for patient x program (x business key), or returns the "
    "one that exists: 201 when this request created it, 200 when it already existed. "
    "Any number of identical requests, concurrent or not, make exactly one journey.",
    responses={
        200: {"model": StartAck, "description": "The journey already existed."},
        **problems(409, 422, *_TEMPORAL),
    },
)
async def start_journey(
    body: StartJourney,
    starter: JourneyStarter,
    templates: Templates,
    response: Response,
    key: Annotated[ApiKey, require("journeys:write")],
) -> StartAck:
    if body.patient is not None and not key.allows("patients:write"):
        raise forbidden("patients:write")  # the intake registers the patient
    template = templates.get(body.template, body.template_version)
    ack = await starter.start(body, template, key.key_id)
    response.status_code = status.HTTP_201_CREATED if ack.created else status.HTTP_200_OK
    response.headers["Location"] = f"/v1/journeys/{ack.journey_id}"
    return ack


@router.get(
    "",
    summary="List journeys (Temporal visibility)",
    description="Filters combine with AND. Backed by Temporal visibility, which is "
    "eventually consistent: a journey started a moment ago may not be listed yet.",
    responses=problems(422, *_TEMPORAL),
    dependencies=READ,
)
async def list_journeys(
    journeys: Journeys,
    patients: Patients,
    patient: Annotated[
        str | None, Query(pattern=PATIENT_ID, description="Your id for the patient.")
    ] = None,
    program: Annotated[str | None, Query(pattern=PSEUDONYM), _checked("program")] = None,
    template: Annotated[str | None, Query(pattern=TEMPLATE_ID)] = None,
    stage: Annotated[str | None, Query(pattern=STAGE, examples=["PA_PENDED"])] = None,
    needs_attention: bool | None = None,
    running: Annotated[bool | None, Query(description="Only running / only closed.")] = None,
    risk: Annotated[
        RiskLevel | None, Query(description="Refill journeys at this refill-gap risk.")
    ] = None,
    pdc_below: Annotated[
        int | None,
        Query(
            ge=1,
            le=101,
            description="Refill journeys whose PDC this year "
            "(percent) is below this, e.g. 80: not adherent.",
        ),
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
    page_token: Annotated[str | None, Query(pattern=PAGE_TOKEN)] = None,
) -> JourneyPage:
    patient_ref = None
    if patient is not None:
        patient_ref = await patients.resolve(patient)
        if patient_ref is None:  # never registered, never started: no journeys
            return JourneyPage(items=[])
    where = JourneyFilter(
        patient_ref=patient_ref,
        program=program,
        template_id=template,
        stage=stage,
        needs_attention=needs_attention,
        running=running,
        risk=risk,
        pdc_below=pdc_below,
    )
    return await journeys.find(where, page_size=page_size, page_token=page_token)


@router.get(
    "/{journey_id:path}",
    summary="A journey's state",
    description="The workflow's own view (a query): status, stage, current step, "
    "pending wait, tasks, steps done.",
    responses=problems(404, 422, *_TEMPORAL),
    dependencies=READ,
)
async def get_journey(journey_id: JourneyId, journeys: Journeys) -> JourneyState:
    return await journeys.state(journey_id)


@router.post(
    "/{journey_id:path}/events",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Deliver an event",
    description="Journeys deduplicate by event_id: a repeat answers duplicate=true and "
    "changes nothing. An event that arrives before the step waiting for it is kept.",
    responses=problems(404, 409, 422, *_TEMPORAL),
    dependencies=WRITE,
)
async def post_event(
    journey_id: JourneyId, body: JourneyEvent, journeys: Journeys, templates: Templates
) -> EventAck:
    known = templates.event_types
    if body.type not in known:
        raise ApiProblem(
            422, "invalid-request", "The request is not valid",
            f"unknown event type{did_you_mean(body.type, known)}",
            errors=[{"field": "body.type", "message": "not a declared event type",
                     "type": "unknown_event_type"}],
            known_event_types=sorted(known),
        )  # fmt: skip
    event = PartnerEvent(
        event_id=body.event_id,
        type=body.type,
        correlation_key=body.correlation_key,
        journey_ref=journey_id,
        occurred_at=body.occurred_at or datetime.now(UTC),
        data=dict(body.data),
    )
    return await journeys.send_event(journey_id, event)


OptionalControl = Annotated[Control | None, Body()]


@router.post(
    "/{journey_id:path}/pause",
    summary="Pause a journey between steps",
    responses=problems(404, 409, 422, *_TEMPORAL),
    dependencies=WRITE,
)
async def pause_journey(
    journey_id: JourneyId, journeys: Journeys, body: OptionalControl = None
) -> JourneyState:
    return await journeys.pause(journey_id, (body or Control()).reason)


@router.post(
    "/{journey_id:path}/resume",
    summary="Resume a paused journey",
    responses=problems(404, 409, 422, *_TEMPORAL),
    dependencies=WRITE,
)
async def resume_journey(
    journey_id: JourneyId, journeys: Journeys, body: OptionalControl = None
) -> JourneyState:
    return await journeys.resume(journey_id, (body or Control()).reason)


@router.post(
    "/{journey_id:path}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a journey",
    description="Accepted: the journey stops at its next step boundary and finishes "
    "as cancelled; the state returned is from the moment it accepted.",
    responses=problems(404, 409, 422, *_TEMPORAL),
    dependencies=WRITE,
)
async def cancel_journey(
    journey_id: JourneyId, journeys: Journeys, body: OptionalControl = None
) -> JourneyState:
    return await journeys.cancel(journey_id, (body or Control()).reason)
