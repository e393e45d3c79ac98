"""/v1/patients/{patient_id}: registration, profile, timeline, consents, preferences.

HTTP only: parse, authorize, hand to the patient and consent services, pick the status
code. `patient_id` is the caller's own id (MRN, hub case id); the `KnownPatient`
dependency maps it to Pitwall's pseudonym. Nothing comes back unmasked. Every write is
written together with its timeline note in one transaction, with the id of the API key
that made it, and is keyed: a retried request writes nothing twice. Unknown patient →
404; a forgotten one refuses writes with 409 (api/errors.py maps the services' errors).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator, StringConstraints
from temporalio.service import RPCError

from api.auth import require
from api.deps import (
    Consents,
    Journeys,
    KnownPatient,
    PatientId,
    Patients,
    pseudonymous_journey_id,
)
from api.openapi import problems
from contract.ids import JOURNEY_ID
from contract.patients import (
    TIMELINE_TYPE,
    AdherenceOut,
    ConsentGrantIn,
    ConsentOut,
    ConsentRevokeIn,
    ConsentRevokeOut,
    ConsentsOut,
    ContactsOut,
    PatientIn,
    PatientOut,
    PatientRegistered,
    PreferencesOut,
    PreferencesPut,
    TimelineOut,
    YearPdcOut,
)
from gateway.journeys import JourneyError, JourneyGateway
from gateway.visibility import JourneyFilter
from store.api_keys import ApiKey

REFILL_TEMPLATE = "refill_adherence"
log = structlog.get_logger("api.patients")

router = APIRouter(prefix="/v1/patients", tags=["patients"])

READ = [require("patients:read")]
Writer = Annotated[ApiKey, require("patients:write")]


# -- routes -------------------------------------------------------------------------------


@router.put(
    "/{patient_id}",
    status_code=status.HTTP_201_CREATED,
    summary="Register or update a patient",
    description="Creates the patient (201) or updates it (200): demographics, contact "
    "details, time zone, language, caregiver, coverage and prescriber, shaped after FHIR "
    "Patient / Coverage / Practitioner. Fields left out keep their stored value. The "
    "change is audited on the timeline by field name, never by value; the answer masks "
    "contact details. The same request again changes nothing.",
    responses={
        200: {"model": PatientRegistered, "description": "The patient existed."},
        **problems(409, 422, 500),
    },
)
async def register_patient(
    patient_id: PatientId, body: PatientIn, patients: Patients, key: Writer, response: Response
) -> PatientRegistered:
    _, registered = await patients.register(patient_id, body, key.key_id)
    response.status_code = status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK
    return registered


@router.get(
    "/{patient_id}",
    summary="A patient's profile (masked)",
    description="Which details are on file, contact details masked, coverages, consents in "
    "force, opt-out and do-not-contact flags.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_patient(
    patient_ref: KnownPatient, patients: Patients, journeys: Journeys
) -> PatientOut:
    profile = await patients.profile(patient_ref)
    profile.adherence = await adherence_of(patient_ref, journeys)
    return profile


async def adherence_of(patient_ref: str, journeys: JourneyGateway) -> list[AdherenceOut]:
    """Each refill journey's run-out, PDC and risk; nothing while Temporal is away (the
    profile is the store's and must not fail with it)."""
    try:
        page = await journeys.find(
            JourneyFilter(patient_ref=patient_ref, template_id=REFILL_TEMPLATE), page_size=10
        )
        states = [await journeys.state(item.journey_id) for item in page.items]
    except (RPCError, JourneyError):
        log.warning("patients.adherence_unavailable")
        return []
    out = []
    for state in states:
        refill = state.refill
        if refill is None:
            continue
        out.append(
            AdherenceOut(
                journey_id=state.journey_id,
                status=refill.status,
                run_out=refill.run_out,
                pdc_year_to_date=refill.pdc_year_to_date,
                pdc_by_year=[
                    YearPdcOut(
                        year=y.year, pdc=y.pdc, adherent=y.adherent, in_population=y.in_population
                    )
                    for y in refill.pdc_by_year
                ],
                risk_level=refill.risk.level if refill.risk else None,
                risk_score=refill.risk.score if refill.risk else None,
                risk_reasons=refill.risk.reasons if refill.risk else [],
            )
        )
    return out


TimelineType = Annotated[str, StringConstraints(pattern=TIMELINE_TYPE, max_length=64)]


@router.get(
    "/{patient_id}/timeline",
    summary="What happened to a patient, in order, across journeys",
    description="Milestones, partner calls and callbacks, messages, tasks, consent and "
    "preference changes; oldest first. Page on with `since` = the last `occurred_at`.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_timeline(
    patient_ref: KnownPatient,
    consents: Consents,
    journey: Annotated[
        str | None,
        Query(pattern=JOURNEY_ID, description="Only this journey (its id)."),
        AfterValidator(pseudonymous_journey_id),
    ] = None,
    type: Annotated[
        list[TimelineType] | None,
        Query(max_length=20, description="Only these entry types (repeat the parameter)."),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="Entries at or after this time (UTC if no offset).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> TimelineOut:
    return await consents.timeline(patient_ref, journey, type, since, limit)


@router.get(
    "/{patient_id}/consents",
    summary="Consents in force and their history",
    description="Addresses are masked. A revocation or expiry never deletes a consent: the "
    "history keeps every grant with its times.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_consents(patient_ref: KnownPatient, consents: Consents) -> ConsentsOut:
    return await consents.consents(patient_ref)


@router.post(
    "/{patient_id}/consents",
    status_code=status.HTTP_201_CREATED,
    summary="Record a consent (or a refusal)",
    description="Covers the address on file for the channel unless `address` is given. "
    "Idempotent: the same grant already in force answers 200 with it.",
    responses={
        200: {"model": ConsentOut, "description": "The same consent was already in force."},
        **problems(404, 409, 422, 500),
    },
)
async def grant_consent(
    patient_ref: KnownPatient,
    body: ConsentGrantIn,
    consents: Consents,
    key: Writer,
    response: Response,
) -> ConsentOut:
    consent, created = await consents.grant(patient_ref, body, key.key_id)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return consent


@router.post(
    "/{patient_id}/consents/revoke",
    summary="Revoke consents in force",
    description="Revokes every consent in force that matches the filters (all of them if "
    "none is given). Revoked consents stay in the history.",
    responses=problems(404, 409, 422, 500),
)
async def revoke_consents(
    patient_ref: KnownPatient, body: ConsentRevokeIn, consents: Consents, key: Writer
) -> ConsentRevokeOut:
    return await consents.revoke(patient_ref, body, key.key_id)


@router.get(
    "/{patient_id}/preferences",
    summary="A patient's contact preferences and their history",
    description="The preferences every message is checked against at send time: the "
    "one source of truth (journeys keep none of their own).",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_preferences(patient_ref: KnownPatient, consents: Consents) -> PreferencesOut:
    return await consents.preferences(patient_ref)


@router.put(
    "/{patient_id}/preferences",
    summary="Set a patient's contact preferences",
    description="Replaces the preferences as a whole (fields left out take their default) "
    "and keeps the previous version in the history. The same preferences again make no "
    "new version.",
    responses=problems(404, 409, 422, 500),
)
async def put_preferences(
    patient_ref: KnownPatient, body: PreferencesPut, consents: Consents, key: Writer
) -> PreferencesOut:
    return await consents.set_preferences(patient_ref, body, key.key_id)


@router.get(
    "/{patient_id}/contacts",
    summary="Every contact decision and why",
    description="The contact ledger across journeys, oldest first: sent, delivered, "
    "deferred until, suppressed because, failed with the gateway's code; with each "
    "decision's history. No addresses and no message text.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_contacts(patient_ref: KnownPatient, consents: Consents) -> ContactsOut:
    return await consents.contacts(patient_ref)
