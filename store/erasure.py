"""Right to erasure vs audit: forget a patient's personal data, keep the de-identified trail.

What `forget` erases, in one transaction:
- the patient's demographics, contact details, address and caregiver (every PHI column
  of `patient` set to NULL; the row stays as a tombstone: ref, created_at, forgotten_at);
- coverages (member ids, plan details) and the prescriber link: rows deleted;
- consent addresses and evidence references (the consent rows stay: who agreed to what,
  when, by which method, and when it was revoked);
- timeline summaries and correlation ids (type, time, journey and key stay, `redacted`);
- provider message ids in the contact ledger (statuses and reasons stay, so counts do);
- payloads and correlation keys of unmatched callbacks for the patient's journeys;
- the link from the caller's external patient id (MRN...) to the pseudonym: row deleted,
  so that id no longer finds the patient (a later registration with it is a new patient).
What stays: the pseudonymous ref, timeline entries per type, the ledger's decisions, the
consent history without addresses, preferences and opt-outs (codes, no personal data),
plus a `do_not_contact` preference so nothing is ever sent again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, Executable, delete, update
from sqlmodel import col, select

from store.callbacks import UnmatchedCallback
from store.consents import Consent, Preference, PreferenceRepository
from store.db import insert_ignore, session
from store.identities import PatientIdentity
from store.ledger import ContactLedgerEntry
from store.patients import Coverage, Patient, Prescriber
from store.timeline import TimelineEntry, TimelineType
from store.types import utcnow


@dataclass(frozen=True)
class ErasureReport:
    patient_ref: str
    forgotten_at: datetime
    already_forgotten: bool
    erased: dict[str, int] = field(default_factory=dict)  # table -> rows changed or deleted
    timeline_counts: dict[str, int] = field(default_factory=dict)  # kept, per type


def forget(engine: Engine, patient_ref: str, at: datetime | None = None) -> ErasureReport:
    """Erase the patient's personal data (idempotent: a second call changes nothing)."""
    at = at or utcnow()
    erased: dict[str, int] = {}
    with session(engine) as s:
        patient = s.get(Patient, patient_ref, with_for_update=True)
        already = patient is not None and patient.forgotten_at is not None
        if patient is None:
            patient = Patient(patient_ref=patient_ref)
        if not already:
            for name in Patient.__phi__:
                setattr(patient, name, None)
            patient.timezone = None
            patient.country = None
            patient.language = "und"
            patient.forgotten_at = at
            patient.updated_at = at
            s.add(patient)
            s.flush()
            erased["patient"] = 1

        def run(name: str, stmt: Executable) -> None:
            count = int(s.execute(stmt).rowcount)  # type: ignore[attr-defined]
            if count:
                erased[name] = erased.get(name, 0) + count

        run("coverage", delete(Coverage).where(col(Coverage.patient_ref) == patient_ref))
        run("prescriber", delete(Prescriber).where(col(Prescriber.patient_ref) == patient_ref))
        run(
            "patient_identity",
            delete(PatientIdentity).where(col(PatientIdentity.patient_ref) == patient_ref),
        )
        run(
            "consent",
            update(Consent)
            .where(
                col(Consent.patient_ref) == patient_ref,
                (col(Consent.address).is_not(None)) | (col(Consent.evidence_ref).is_not(None)),
            )
            .values(address=None, evidence_ref=None),
        )
        run(
            "timeline_entry",
            update(TimelineEntry)
            .where(
                col(TimelineEntry.patient_ref) == patient_ref,
                col(TimelineEntry.redacted).is_(False),
            )
            .values(summary="", correlation={}, redacted=True),
        )
        run(
            "contact_ledger",
            update(ContactLedgerEntry)
            .where(
                col(ContactLedgerEntry.patient_ref) == patient_ref,
                col(ContactLedgerEntry.provider_message_id).is_not(None),
            )
            .values(provider_message_id=None),
        )
        run(
            "unmatched_callback",
            update(UnmatchedCallback)
            .where(
                col(UnmatchedCallback.patient_ref) == patient_ref,
                col(UnmatchedCallback.payload).is_not(None),
            )
            .values(payload=None, correlation_key=""),
        )
        if not already:
            current = PreferenceRepository._current(s, patient_ref)
            s.add(
                Preference(
                    patient_ref=patient_ref,
                    channel_ranking=[],
                    do_not_contact=True,
                    reason="erased",
                    source="erasure",
                    recorded_at=at,
                    quiet_hours_start=current.quiet_hours_start if current else None,
                    quiet_hours_end=current.quiet_hours_end if current else None,
                )
            )
            insert_ignore(
                s,
                TimelineEntry.__table__,  # type: ignore[attr-defined]
                {
                    "idempotency_key": f"erasure/{patient_ref}",
                    "patient_ref": patient_ref,
                    "journey_ref": None,
                    "type": TimelineType.PATIENT_ERASED.value,
                    "occurred_at": at,
                    "summary": "personal data erased",
                    "correlation": {},
                    "recorded_at": at,
                    "redacted": True,  # nothing personal in it: never scrubbed again
                },
                conflict=("idempotency_key",),
            )
        s.commit()
        forgotten_at = patient.forgotten_at or at
    from store.timeline import TimelineRepository

    counts = TimelineRepository(engine).counts(patient_ref)
    return ErasureReport(patient_ref, forgotten_at, already, erased, counts)


def forgotten(engine: Engine, patient_ref: str) -> datetime | None:
    """When the patient was forgotten, or None."""
    with session(engine) as s:
        return s.exec(
            select(Patient.forgotten_at).where(Patient.patient_ref == patient_ref)
        ).first()
