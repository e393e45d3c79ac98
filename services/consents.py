"""A patient's consents, contact preferences and timeline, as the API shows and changes
them: addresses masked, every change written with its timeline note in one
transaction (store.changes), keyed so that a retry writes nothing twice."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time

from contract.patients import (
    E164,
    EMAIL,
    ConsentGrantIn,
    ConsentOut,
    ConsentRevokeIn,
    ConsentRevokeOut,
    ConsentsOut,
    ContactOut,
    ContactsOut,
    PreferencesOut,
    PreferencesPut,
    PreferenceVersion,
    QuietHoursOut,
    TimelineEntryOut,
    TimelineOut,
)
from services.errors import InvalidField, NoContactAddress, PatientNotFound
from services.patients import mask
from store import Store
from store.consents import Consent, ConsentGrant, Preference, PreferenceChange
from store.ledger import ContactEvent, ContactLedgerEntry
from store.patients import Patient, PatientErased, address_for
from store.timeline import TimelineEntry
from store.types import utcnow

ADDRESS_SHAPE = {"email": EMAIL, "sms": E164, "voice": E164}


def consent_out(c: Consent, now: datetime) -> ConsentOut:
    assert c.id is not None
    return ConsentOut(
        id=c.id, person=c.person, channel=c.channel, address=mask(c.address), purpose=c.purpose,
        program=c.program, status=c.status, in_force=c.in_force(now), method=c.method,
        evidence_ref=c.evidence_ref, detail_allowed=c.detail_allowed, granted_at=c.granted_at,
        expires_at=c.expires_at, revoked_at=c.revoked_at, revoked_reason=c.revoked_reason,
        recorded_at=c.recorded_at,
    )  # fmt: skip


def version_out(p: Preference) -> PreferenceVersion:
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


def entry_out(e: TimelineEntry) -> TimelineEntryOut:
    return TimelineEntryOut(
        occurred_at=e.occurred_at, recorded_at=e.recorded_at, journey_id=e.journey_ref,
        type=e.type, summary=e.summary, correlation=e.correlation, redacted=e.redacted,
    )  # fmt: skip


def contact_out(e: ContactLedgerEntry, history: list[ContactEvent]) -> ContactOut:
    return ContactOut(
        decided_at=e.decided_at, journey_id=e.journey_ref, step_id=e.step_id, program=e.program,
        channel=e.channel, purpose=e.purpose, message_class=e.message_class,
        content=e.content_ref, attempt=e.attempt, status=e.status, reason=e.reason,
        defer_until=e.defer_until, sent_at=e.sent_at, decision=decision_line(e),
        history=[f"{h.status}: {h.reason}" if h.reason else h.status for h in history],
    )  # fmt: skip


def decision_line(e: ContactLedgerEntry) -> str:
    """What an operator wants to read first: what happened, and why."""
    via = f"{e.channel}" + (f" (fallback {e.attempt})" if e.attempt else "")
    if e.status == "deferred" and e.defer_until is not None:
        return f"deferred until {e.defer_until:%Y-%m-%d %H:%MZ} ({e.reason})"
    if e.status == "suppressed":
        return f"suppressed because {e.reason}"
    if e.status == "failed":
        return f"{via} failed ({e.reason})"
    if e.status == "unknown":
        return f"{via} outcome unknown ({e.reason}): a task asks a person to find out"
    return f"{e.status} by {via}"


def preference_change(body: PreferencesPut) -> PreferenceChange:
    if len(set(body.channel_ranking)) != len(body.channel_ranking):
        raise InvalidField("body.channel_ranking", "channels must not repeat", "duplicate_channel")
    hours = body.quiet_hours
    if hours is not None and hours.start == hours.end:
        raise InvalidField("body.quiet_hours", "start and end must differ", "empty_quiet_hours")
    return PreferenceChange(
        channel_ranking=list(body.channel_ranking),
        language=body.language,
        quiet_hours_start=time.fromisoformat(hours.start) if hours else None,
        quiet_hours_end=time.fromisoformat(hours.end) if hours else None,
        do_not_contact=body.do_not_contact,
        reason=body.reason,
    )


class ConsentService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _patient(self, patient_ref: str, *, live: bool = False) -> Patient:
        patient = self.store.patients.get(patient_ref)
        if patient is None:
            raise PatientNotFound()
        if live and patient.forgotten_at is not None:
            raise PatientErased(patient_ref)
        return patient

    # -- reads -------------------------------------------------------------------------
    async def consents(self, patient_ref: str) -> ConsentsOut:
        def read() -> ConsentsOut:
            self._patient(patient_ref)
            now = utcnow()
            history = [consent_out(c, now) for c in self.store.consents.history(patient_ref)]
            in_force = [c for c in history if c.in_force]
            return ConsentsOut(patient_ref=patient_ref, in_force=in_force, history=history)

        return await asyncio.to_thread(read)

    async def preferences(self, patient_ref: str) -> PreferencesOut:
        def read() -> PreferencesOut:
            self._patient(patient_ref)
            return self._preferences(patient_ref)

        return await asyncio.to_thread(read)

    def _preferences(self, patient_ref: str) -> PreferencesOut:
        history = [version_out(p) for p in self.store.preferences.history(patient_ref)]
        return PreferencesOut(
            patient_ref=patient_ref,
            current=history[-1] if history else None,
            opted_out=self.store.preferences.opted_out(patient_ref),
            history=history,
        )

    async def timeline(
        self,
        patient_ref: str,
        journey: str | None,
        types: list[str] | None,
        since: datetime | None,
        limit: int,
    ) -> TimelineOut:
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)

        def read() -> TimelineOut:
            entries = self.store.timeline.for_patient(
                patient_ref,
                journey_ref=journey,
                types=tuple(types) if types else None,
                since=since,
                limit=limit,
            )
            return TimelineOut(patient_ref=patient_ref, entries=[entry_out(e) for e in entries])

        return await asyncio.to_thread(read)

    async def contacts(self, patient_ref: str) -> ContactsOut:
        """Every contact decision for the patient, with its reason and history."""

        def read() -> ContactsOut:
            ledger = self.store.ledger
            return ContactsOut(
                patient_ref=patient_ref,
                opted_out=self.store.preferences.opted_out(patient_ref),
                contacts=[
                    contact_out(e, ledger.events(e.idempotency_key))
                    for e in ledger.for_patient(patient_ref)
                ],
            )

        return await asyncio.to_thread(read)

    # -- changes -----------------------------------------------------------------------
    async def grant(
        self, patient_ref: str, body: ConsentGrantIn, actor: str
    ) -> tuple[ConsentOut, bool]:
        """Record a consent (or refusal); True if this call created it."""
        shape = ADDRESS_SHAPE.get(body.channel)
        if body.address is not None and shape and not re.match(shape, body.address):
            raise InvalidField(
                "body.address", f"not a valid {body.channel} address", "invalid_address"
            )
        if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
            raise InvalidField("body.expires_at", "must be in the future", "expired")

        def write() -> tuple[ConsentOut, bool]:
            patient = self._patient(patient_ref, live=True)
            address = body.address or address_for(patient, body.channel, body.person)
            if not address:
                raise NoContactAddress()
            grant = ConsentGrant.model_validate(
                {**body.model_dump(exclude={"address"}), "address": address}
            )
            row, created = self.store.changes.grant_consent(patient_ref, grant, actor)
            return consent_out(row, utcnow()), created

        return await asyncio.to_thread(write)

    async def revoke(self, patient_ref: str, body: ConsentRevokeIn, actor: str) -> ConsentRevokeOut:
        def write() -> ConsentRevokeOut:
            self._patient(patient_ref, live=True)
            ids = self.store.changes.revoke_consents(
                patient_ref, body.reason, body.channel, body.purpose, body.program, actor=actor
            )
            return ConsentRevokeOut(revoked=len(ids), consent_ids=ids)

        return await asyncio.to_thread(write)

    async def set_preferences(
        self, patient_ref: str, body: PreferencesPut, actor: str
    ) -> PreferencesOut:
        change = preference_change(body)

        def write() -> PreferencesOut:
            self._patient(patient_ref, live=True)
            self.store.changes.change_preferences(patient_ref, change, "api", actor)
            return self._preferences(patient_ref)

        return await asyncio.to_thread(write)
