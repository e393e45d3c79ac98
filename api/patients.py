"""/v1/patients/{patient_ref}: profile, timeline, consents and preferences, from the store.

Nothing here returns personal data: the profile names which details are on file, not
their values; consent addresses are masked; timeline summaries are codes. Writes
(consents granted or revoked, preferences changed) are recorded on the patient's
timeline (`consent.changed`, `preferences.changed`) with the id of the API key that made
them. Unknown patient → 404; a forgotten one (right to erasure) refuses writes with 409.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator, StringConstraints

from api.auth import require
from api.deps import PatientRef, PitwallStore
from api.errors import ApiProblem
from api.openapi import problems
from api.schemas import (
    E164,
    EMAIL,
    JOURNEY_ID,
    TIMELINE_TYPE,
    ConsentGrantIn,
    ConsentOut,
    ConsentRevokeIn,
    ConsentRevokeOut,
    ConsentsOut,
    PatientOut,
    PreferencesOut,
    PreferencesPut,
    PreferenceVersion,
    QuietHoursOut,
    TimelineEntryOut,
    TimelineOut,
)
from domain.journey import check_pseudonym
from store import Store
from store.api_keys import ApiKey
from store.consents import Consent, ConsentGrant, Preference, PreferenceChange
from store.patients import Patient, _address
from store.timeline import TimelineEntry, TimelineEvent
from store.types import utcnow

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


def mask(address: str | None) -> str | None:
    """+15555550199 → +1•••••0199; jane@example.com → j•••@e•••.com; else •••99."""
    if not address:
        return None
    if re.match(E164, address):
        return f"{address[:2]}{MASK}••{address[-4:]}"
    local, at, domain = address.partition("@")
    if at:
        host, _, tld = domain.rpartition(".")
        return f"{local[:1]}{MASK}@{host[:1]}{MASK}.{tld}" if host else f"{local[:1]}{MASK}@{MASK}"
    return f"{MASK}{address[-2:]}"


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


def _invalid(field: str, message: str, kind: str) -> ApiProblem:
    """422 like a schema error: names the field, never echoes its value."""
    return ApiProblem(
        422, "invalid-request", "The request is not valid", f"invalid field(s): {field}",
        errors=[{"field": field, "message": message, "type": kind}],
    )  # fmt: skip


def _not_found() -> ApiProblem:
    return ApiProblem(404, "patient-not-found", "No patient with that id")


def _patient(store: Store, patient_ref: str, *, live: bool = False) -> Patient:
    """The record, or 404; with `live`, 409 if the patient was forgotten."""
    patient = store.patients.get(patient_ref)
    if patient is None:
        raise _not_found()
    if live and patient.forgotten_at is not None:
        raise ApiProblem(
            409, "patient-erased", "The patient was forgotten",
            "Their personal data was erased (right to erasure); nothing can be added.",
        )  # fmt: skip
    return patient


def _note(store: Store, patient_ref: str, key: str, kind: str, summary: str, **ids: Any) -> None:
    store.timeline.record(
        TimelineEvent(
            idempotency_key=key,
            patient_ref=patient_ref,
            type=kind,
            summary=summary,
            correlation={k: v for k, v in ids.items() if v is not None},
        )
    )


# -- routes -------------------------------------------------------------------------------


@router.get(
    "/{patient_ref}",
    summary="A patient's profile (no personal data)",
    description="Which contact details are on file (names, not values), consents in force, "
    "opt-out and do-not-contact flags.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_patient(patient_ref: PatientRef, store: PitwallStore) -> PatientOut:
    def read() -> PatientOut:
        record = store.patients.profile(patient_ref)
        if record is None:
            raise _not_found()
        p = record.patient
        preference = store.preferences.current(patient_ref)
        return PatientOut(
            patient_ref=patient_ref,
            status="forgotten" if p.forgotten_at else "active",
            forgotten_at=p.forgotten_at,
            on_file=[name for name in _ON_FILE if getattr(p, name) is not None],
            timezone=p.timezone,
            language=p.language,
            coverages=len(record.coverages),
            prescriber=record.prescriber is not None,
            opted_out=store.preferences.opted_out(patient_ref),
            do_not_contact=bool(preference and preference.do_not_contact),
            consents_in_force=len(store.consents.in_force(patient_ref)),
            created_at=p.created_at,
        )

    return await asyncio.to_thread(read)


TimelineType = Annotated[str, StringConstraints(pattern=TIMELINE_TYPE, max_length=64)]


@router.get(
    "/{patient_ref}/timeline",
    summary="What happened to a patient, in order, across journeys",
    description="Milestones, partner calls and callbacks, messages, tasks, consent and "
    "preference changes; oldest first. Page on with `since` = the last `occurred_at`.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_timeline(
    patient_ref: PatientRef,
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
    "/{patient_ref}/consents",
    summary="Consents in force and their history",
    description="Addresses are masked. A revocation or expiry never deletes a consent: the "
    "history keeps every grant with its times.",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_consents(patient_ref: PatientRef, store: PitwallStore) -> ConsentsOut:
    def read() -> ConsentsOut:
        _patient(store, patient_ref)
        now = utcnow()
        history = [_consent(c, now) for c in store.consents.history(patient_ref)]
        return ConsentsOut(
            patient_ref=patient_ref, in_force=[c for c in history if c.in_force], history=history
        )

    return await asyncio.to_thread(read)


@router.post(
    "/{patient_ref}/consents",
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
    patient_ref: PatientRef,
    body: ConsentGrantIn,
    store: PitwallStore,
    key: Writer,
    response: Response,
) -> ConsentOut:
    shape = {"email": EMAIL, "sms": E164, "voice": E164}.get(body.channel)
    if body.address is not None and shape and not re.match(shape, body.address):
        raise _invalid("body.address", f"not a valid {body.channel} address", "invalid_address")
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise _invalid("body.expires_at", "must be in the future", "expired")

    def write() -> tuple[Consent, bool]:
        patient = _patient(store, patient_ref, live=True)
        address = body.address or _address(patient, body.channel, body.person)
        if not address:
            raise ApiProblem(
                422, "no-contact-address", "No address on file for that channel",
                "Record the patient's contact detail first, or give `address`.",
                errors=[{"field": "body.address", "message": "required: nothing on file",
                         "type": "no_contact_address"}],
            )  # fmt: skip
        before = {c.id for c in store.consents.history(patient_ref)}
        grant = ConsentGrant.model_validate(
            {**body.model_dump(exclude={"address"}), "address": address}
        )
        row = store.consents.grant(patient_ref, grant)
        created = row.id not in before
        if created:
            what = "granted" if row.status == "active" else "refused"
            _note(
                store, patient_ref, f"api:consent:{row.id}:{what}", "consent.changed",
                f"consent {what} {row.channel}/{row.purpose}/{row.program} via {row.method}",
                consent_id=row.id, api_key=key.key_id,
            )  # fmt: skip
        return row, created

    row, created = await asyncio.to_thread(write)
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return _consent(row, utcnow())


@router.post(
    "/{patient_ref}/consents/revoke",
    summary="Revoke consents in force",
    description="Revokes every consent in force that matches the filters (all of them if "
    "none is given). Revoked consents stay in the history.",
    responses=problems(404, 409, 422, 500),
)
async def revoke_consents(
    patient_ref: PatientRef, body: ConsentRevokeIn, store: PitwallStore, key: Writer
) -> ConsentRevokeOut:
    channel, purpose, program = body.channel, body.purpose, body.program

    def write() -> ConsentRevokeOut:
        _patient(store, patient_ref, live=True)
        matching = store.consents.in_force(
            patient_ref, channel=channel, purpose=purpose, program=program
        )
        count = store.consents.revoke(
            patient_ref, reason=body.reason, channel=channel, purpose=purpose, program=program
        )
        ids = [c.id for c in matching if c.id is not None]
        if count:
            scope = "/".join(v or "*" for v in (channel, purpose, program))
            _note(
                store, patient_ref, f"api:consent-revoke:{uuid.uuid4().hex}", "consent.changed",
                f"consent revoked {scope}: {body.reason}",
                consent_ids=ids, api_key=key.key_id,
            )  # fmt: skip
        return ConsentRevokeOut(revoked=count, consent_ids=ids)

    return await asyncio.to_thread(write)


@router.get(
    "/{patient_ref}/preferences",
    summary="A patient's contact preferences and their history",
    description="The patient-wide preferences messages are checked against at send time "
    "(a journey's own preferences: PATCH /v1/journeys/{id}/preferences).",
    dependencies=READ,
    responses=problems(404, 422, 500),
)
async def get_preferences(patient_ref: PatientRef, store: PitwallStore) -> PreferencesOut:
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
    "/{patient_ref}/preferences",
    summary="Set a patient's contact preferences",
    description="Replaces the preferences as a whole (fields left out take their default) "
    "and keeps the previous version in the history.",
    responses=problems(404, 409, 422, 500),
)
async def put_preferences(
    patient_ref: PatientRef, body: PreferencesPut, store: PitwallStore, key: Writer
) -> PreferencesOut:
    if len(set(body.channel_ranking)) != len(body.channel_ranking):
        raise _invalid("body.channel_ranking", "channels must not repeat", "duplicate_channel")
    hours = body.quiet_hours
    if hours is not None and hours.start == hours.end:
        raise _invalid("body.quiet_hours", "start and end must differ", "empty_quiet_hours")
    change = PreferenceChange(
        channel_ranking=list(body.channel_ranking),
        language=body.language,
        quiet_hours_start=time.fromisoformat(hours.start) if hours else None,
        quiet_hours_end=time.fromisoformat(hours.end) if hours else None,
        do_not_contact=body.do_not_contact,
        reason=body.reason,
    )

    def write() -> PreferencesOut:
        _patient(store, patient_ref, live=True)
        row = store.preferences.change(patient_ref, change, source="api")
        flags = ["do_not_contact"] if row.do_not_contact else []
        _note(
            store, patient_ref, f"api:preferences:{row.id}", "preferences.changed",
            " ".join([f"preferences v{row.id}", *flags, *([body.reason] if body.reason else [])]),
            preference_version=row.id, api_key=key.key_id,
        )  # fmt: skip
        return _preferences(store, patient_ref)

    return await asyncio.to_thread(write)
