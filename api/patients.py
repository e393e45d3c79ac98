"""/v1/patients/{patient_id}: registration, profile, timeline, consents, preferences.

HTTP only. `patient_id` is the caller's own id (MRN, hub case id); the patient service
maps it to Pitwall's pseudonym. Nothing here returns personal data unmasked: contact
details are masked, timeline summaries are codes. Every write (registration, consents,
preferences) is written together with its timeline note in one transaction, with the
id of the API key that made it, and is keyed: a retried request writes nothing twice.
Unknown patient → 404; a forgotten one (right to erasure) refuses writes with 409.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator, StringConstraints

from api.auth import require
from api.deps import KnownPatient, PatientId, Patients, PitwallStore
from api.errors import ApiProblem, invalid_field
from api.openapi import problems
from contract.ids import JOURNEY_ID
from contract.patients import (
    E164,
    EMAIL,
    TIMELINE_TYPE,
    ConsentGrantIn,
    ConsentOut,
    ConsentRevokeIn,
    ConsentRevokeOut,
    ConsentsOut,
    PatientIn,
    PatientOut,
    PatientRegistered,
    PreferencesOut,
    PreferencesPut,
    PreferenceVersion,
    QuietHoursOut,
    TimelineEntryOut,
    TimelineOut,
)
from domain.journey import check_pseudonym
from services.patients import InvalidPatient, mask
from store import Store
from store.api_keys import ApiKey
from store.consents import Consent, ConsentGrant, Preference, PreferenceChange
from store.patients import Patient, PatientErased, address_for
from store.timeline import TimelineEntry
from store.types import utcnow

T = TypeVar("T")
router = APIRouter(prefix="/v1/patients", tags=["patients"])

READ = [require("patients:read")]
Writer = Annotated[ApiKey, require("patients:write")]
_ON_FILE = ("phone", "email", "address_line1", "birth_date", "caregiver_phone", "caregiver_email")
MASK = "•••"


def _journey_parts(value: str | None) -> str | None:
    if value is None:
        return None
    _, program, patient, *key = value.split("/")
    for part, name in ((program, "program"), (patient, "patient_ref"), *[(k, "key") for k in key]):
        check_pseudonym(part, name)
    return value


# -- helpers ------------------------------------------------------------------------------


def _consent(c: Consent, now: datetime) -> ConsentOut:
    assert c.id is not None
    return ConsentOut(
        id=c.id, person=c.person, channel=c.channel, address=mask(c.address), purpose=c.purpose,
        program=c.program, status=c.status, in_force=c.in_force(now), method=c.method,
        evidence_ref=c.evidence_ref, detail_allowed=c.detail_allowed, granted_at=c.granted_at,
        expires_at=c.expires_at, revoked_at=c.revoked_at, revoked_reason=c.revoked_reason,
        recorded_at=c.recorded_at,
    )  # fmt: skip


def _version(p: Preference) -> PreferenceVersion:
    assert p.id is not None
    hours = None
    if p.quiet_hours_start is not None and p.quiet_hours_end is not None:
        hours = QuietHoursOut(
            start=p.quiet_hours_start.strftime("%H:%M"), end=p.quiet_hours_end.strftime("%H:%M")
        )
    return PreferenceVersion(
        version=p.id, channel_ranking=list(p.channel_ranking), language=p.language,
        quiet_hours=hours, do_not_contact=p.do_not_contact, reason=p.reason, source=p.source,
        recorded_at=p.recorded_at,
    )  # fmt: skip


def _entry(e: TimelineEntry) -> TimelineEntryOut:
    return TimelineEntryOut(
        occurred_at=e.occurred_at, recorded_at=e.recorded_at, journey_id=e.journey_ref,
        type=e.type, summary=e.summary, correlation=e.correlation, redacted=e.redacted,
    )  # fmt: skip


def _not_found() -> ApiProblem:
    return ApiProblem(404, "patient-not-found", "No patient with that id")


def _patient(store: Store, patient_ref: str, *, live: bool = False) -> Patient:
    """The record, or 404; with `live`, 409 if the patient was forgotten."""
    patient = store.patients.get(patient_ref)
    if patient is None:
        raise _not_found()
    if live and patient.forgotten_at is not None:
        raise _erased()
    return patient


# -- routes -------------------------------------------------------------------------------


def _writing(change: Callable[[], T]) -> T:
    """Run a store change, answering 404 / 409 for an unknown / forgotten patient."""
    try:
        return change()
    except PatientErased:
        raise _erased() from None
    except LookupError:
        raise _not_found() from None


def _erased() -> ApiProblem:
    return ApiProblem(
        409, "patient-erased", "The patient was forgotten",
        "Their personal data was erased (right to erasure); nothing can be added.",
    )  # fmt: skip


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
    try:
        _, registered = await patients.register(patient_id, body, key.key_id)
    except InvalidPatient as bad:
        raise invalid_field(bad.field, bad.message, bad.kind) from None
    except PatientErased:
        raise _erased() from None
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
async def get_patient(patient_ref: KnownPatient, patients: Patients) -> PatientOut:
    profile = await patients.profile(patient_ref)
    if profile is None:
        raise _not_found()
    return profile


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
    store: PitwallStore,
    journey: Annotated[
        str | None,
        Query(pattern=JOURNEY_ID, description="Only this journey (its id)."),
        AfterValidator(_journey_parts),
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
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)

    def read() -> TimelineOut:
        entries = store.timeline.for_patient(
            patient_ref,
            journey_ref=journey,
            types=tuple(type) if type else None,
            since=since,
            limit=limit,
        )
        known = entries or store.patients.get(patient_ref) or store.timeline.counts(patient_ref)
        if not known:
            raise _not_found()
        return TimelineOut(
            patient_ref=patient_ref,
            entries=[_entry(e) for e in entries],
        )

    return await asyncio.to_thread(read)


@router.get(
    "/{patient_id}/consents",
    summary="Consents in force and their history",
    description="Addresses are masked. A revocation or expiry never deletes a consent: the "
    "history keeps every grant with its times.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_consents(patient_ref: KnownPatient, store: PitwallStore) -> ConsentsOut:
    def read() -> ConsentsOut:
        _patient(store, patient_ref)
        now = utcnow()
        history = [_consent(c, now) for c in store.consents.history(patient_ref)]
        return ConsentsOut(
            patient_ref=patient_ref, in_force=[c for c in history if c.in_force], history=history
        )

    return await asyncio.to_thread(read)


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
    store: PitwallStore,
    key: Writer,
    response: Response,
) -> ConsentOut:
    shape = {"email": EMAIL, "sms": E164, "voice": E164}.get(body.channel)
    if body.address is not None and shape and not re.match(shape, body.address):
        raise invalid_field(
            "body.address", f"not a valid {body.channel} address", "invalid_address"
        )
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise invalid_field("body.expires_at", "must be in the future", "expired")

    def write() -> tuple[Consent, bool]:
        patient = _patient(store, patient_ref, live=True)
        address = body.address or address_for(patient, body.channel, body.person)
        if not address:
            raise ApiProblem(
                422, "no-contact-address", "No address on file for that channel",
                "Record the patient's contact detail first, or give `address`.",
                errors=[{"field": "body.address", "message": "required: nothing on file",
                         "type": "no_contact_address"}],
            )  # fmt: skip
        grant = ConsentGrant.model_validate(
            {**body.model_dump(exclude={"address"}), "address": address}
        )
        return _writing(lambda: store.changes.grant_consent(patient_ref, grant, key.key_id))

    row, created = await asyncio.to_thread(write)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _consent(row, utcnow())


@router.post(
    "/{patient_id}/consents/revoke",
    summary="Revoke consents in force",
    description="Revokes every consent in force that matches the filters (all of them if "
    "none is given). Revoked consents stay in the history.",
    responses=problems(404, 409, 422, 500),
)
async def revoke_consents(
    patient_ref: KnownPatient, body: ConsentRevokeIn, store: PitwallStore, key: Writer
) -> ConsentRevokeOut:
    channel, purpose, program = body.channel, body.purpose, body.program

    def write() -> ConsentRevokeOut:
        ids = _writing(
            lambda: store.changes.revoke_consents(
                patient_ref, body.reason, channel, purpose, program, actor=key.key_id
            )
        )
        return ConsentRevokeOut(revoked=len(ids), consent_ids=ids)

    return await asyncio.to_thread(write)


@router.get(
    "/{patient_id}/preferences",
    summary="A patient's contact preferences and their history",
    description="The preferences every message is checked against at send time: the "
    "one source of truth (journeys keep none of their own).",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_preferences(patient_ref: KnownPatient, store: PitwallStore) -> PreferencesOut:
    def read() -> PreferencesOut:
        _patient(store, patient_ref)
        return _preferences(store, patient_ref)

    return await asyncio.to_thread(read)


def _preferences(store: Store, patient_ref: str) -> PreferencesOut:
    history = [_version(p) for p in store.preferences.history(patient_ref)]
    return PreferencesOut(
        patient_ref=patient_ref,
        current=history[-1] if history else None,
        opted_out=store.preferences.opted_out(patient_ref),
        history=history,
    )


@router.put(
    "/{patient_id}/preferences",
    summary="Set a patient's contact preferences",
    description="Replaces the preferences as a whole (fields left out take their default) "
    "and keeps the previous version in the history. The same preferences again make no "
    "new version.",
    responses=problems(404, 409, 422, 500),
)
async def put_preferences(
    patient_ref: KnownPatient, body: PreferencesPut, store: PitwallStore, key: Writer
) -> PreferencesOut:
    if len(set(body.channel_ranking)) != len(body.channel_ranking):
        raise invalid_field("body.channel_ranking", "channels must not repeat", "duplicate_channel")
    hours = body.quiet_hours
    if hours is not None and hours.start == hours.end:
        raise invalid_field("body.quiet_hours", "start and end must differ", "empty_quiet_hours")
    change = PreferenceChange(
        channel_ranking=list(body.channel_ranking),
        language=body.language,
        quiet_hours_start=time.fromisoformat(hours.start) if hours else None,
        quiet_hours_end=time.fromisoformat(hours.end) if hours else None,
        do_not_contact=body.do_not_contact,
        reason=body.reason,
    )

    def write() -> PreferencesOut:
        _writing(lambda: store.changes.change_preferences(patient_ref, change, "api", key.key_id))
        return _preferences(store, patient_ref)

    return await asyncio.to_thread(write)
