"""Changes to a patient that leave a note on the timeline, each in one transaction.

Every operation writes the change and its timeline entry (`consent.changed`,
`preferences.changed`, `patient.registered`, `patient.updated`) in one transaction: both
or neither. Each first locks the patient's row (PostgreSQL: SELECT ... FOR UPDATE;
SQLite: the database's write lock, taken by the first statement), so concurrent calls for
one patient run one after the other. A retry finds its change already made and writes
nothing: no second row, no second note. Timeline keys derive from what changed (the
consent id, the revoked ids, the preference version, the patient's change count), never
from a random value. Summaries name codes and field names, never values.

    changes = PatientChanges(engine)
    consent, created = changes.grant_consent("pt-ana", grant, actor="3f9a1c0b7d2e")
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, Table, func, update
from sqlmodel import Session, SQLModel, col, select

from domain.journey import check_pseudonym
from store.consents import (
    Consent,
    ConsentGrant,
    ConsentRepository,
    OptOut,
    Preference,
    PreferenceChange,
    PreferenceRepository,
    _check_scope,
)
from store.db import insert_ignore, session
from store.patients import (
    Coverage,
    CoverageDetails,
    Patient,
    PatientDetails,
    PatientErased,
    Prescriber,
    PrescriberDetails,
    lock_patient,
)
from store.timeline import TimelineEntry, TimelineEvent, TimelineRepository, TimelineType
from store.types import utcnow

KEY_MAX = 300  # TimelineEvent.idempotency_key


class PatientRegistration(SQLModel):
    """The input of `PatientChanges.register_patient`; None leaves that part as it is."""

    details: PatientDetails | None = None  # only the fields set are written
    coverages: list[CoverageDetails] | None = None  # all of them: [0] is rank 1 (primary)
    prescriber: PrescriberDetails | None = None


@dataclass(frozen=True)
class RegistrationResult:
    patient: Patient
    created: bool
    changed: list[str] = field(default_factory=list)  # e.g. phone, coverage[1].plan_type


class PatientChanges:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.timeline = TimelineRepository(engine)

    def grant_consent(
        self, patient_ref: str, grant: ConsentGrant, actor: str
    ) -> tuple[Consent, bool]:
        """Record a consent (or a refusal, status `rejected`) and its note; True if created.

        The same grant already in force (for a refusal: the newest record of its scope
        being the same refusal) is returned as it is, with False, and no note."""
        _check_scope(grant)
        with session(self.engine) as s:
            _lock_live(s, patient_ref)
            same = ConsentRepository._same(s, patient_ref, grant)
            if same is not None:
                return same, False
            row = Consent(patient_ref=patient_ref, **grant.model_dump())
            s.add(row)
            s.flush()
            what = "granted" if row.status == "active" else "refused"
            self._note(
                s, patient_ref, f"consent/{row.id}/{what}", TimelineType.CONSENT_CHANGED,
                f"consent {what} {row.channel}/{row.purpose}/{row.program} via {row.method}",
                consent_id=row.id, api_key=actor,
            )  # fmt: skip
            s.commit()
            return row, True

    def revoke_consents(
        self,
        patient_ref: str,
        reason: str,
        channel: str | None = None,
        purpose: str | None = None,
        program: str | None = None,
        *,
        actor: str,
    ) -> list[int]:
        """Revoke the consents in force that match (None matches all) and note it; the ids
        revoked. Nothing left to revoke (a retry): [] and no note."""
        with session(self.engine) as s:
            _lock_live(s, patient_ref)
            ids = ConsentRepository._revoke(
                s, patient_ref, reason=reason, channel=channel, purpose=purpose, program=program
            )
            if not ids:
                return []
            scope = "/".join(v or "*" for v in (channel, purpose, program))
            self._note(
                s, patient_ref, _key("consent-revoke/", ",".join(map(str, ids))),
                TimelineType.CONSENT_CHANGED, f"consent revoked {scope}: {reason}",
                consent_ids=ids, api_key=actor,
            )  # fmt: skip
            s.commit()
            return ids

    def change_preferences(
        self, patient_ref: str, change: PreferenceChange, source: str, actor: str
    ) -> tuple[Preference, bool]:
        """Append a preference version (the current one with `change` applied) and its
        note; True if made. A change that leaves every setting as it is (channel ranking,
        language, quiet hours, do-not-contact) makes nothing: the current version, False."""
        with session(self.engine) as s:
            _lock_live(s, patient_ref)
            current = PreferenceRepository._current(s, patient_ref)
            row = PreferenceRepository._next(patient_ref, current, change, source)
            if current is not None and all(
                getattr(current, name) == getattr(row, name) for name in Preference.SETTINGS
            ):
                return current, False
            s.add(row)
            s.flush()
            flags = ["do_not_contact"] if row.do_not_contact else []
            self._note(
                s, patient_ref, f"preferences/{row.id}", TimelineType.PREFERENCES_CHANGED,
                " ".join([f"preferences v{row.id}", *flags, *([row.reason] if row.reason else [])]),
                preference_version=row.id, api_key=actor,
            )  # fmt: skip
            s.commit()
            return row, True

    def register_patient(
        self, patient_ref: str, registration: PatientRegistration, actor: str
    ) -> RegistrationResult:
        """Create or update the patient (details, coverages, prescriber) and note which
        fields changed (names only). Nothing changed (a retry): no note.

        Raises PatientErased for a forgotten patient."""
        check_pseudonym(patient_ref, "patient_ref")
        with session(self.engine) as s:
            # The insert also takes SQLite's write lock; FOR UPDATE locks the row on Postgres.
            created = insert_ignore(
                s, _table(Patient), Patient(patient_ref=patient_ref).model_dump()
            )
            patient = s.get(Patient, patient_ref, with_for_update=True)
            assert patient is not None
            if patient.forgotten_at is not None:
                raise PatientErased(patient_ref)
            changed: list[str] = []
            if registration.details is not None:
                changes = registration.details.model_dump(exclude_unset=True)
                changed += _assign(patient, changes)
            if registration.coverages is not None:
                changed += _replace_coverages(s, patient_ref, registration.coverages)
            if registration.prescriber is not None:
                changed += _replace_prescriber(s, patient_ref, registration.prescriber)
            if not created and not changed:
                return RegistrationResult(patient, False, [])
            if changed and not created:
                patient.updated_at = utcnow()
            s.add(patient)
            s.flush()
            if created:
                kind, what = TimelineType.PATIENT_REGISTERED, "registered"
                key = f"patient/{patient_ref}/registered"
            else:  # the n-th update of this patient (counted under the lock)
                kind, what = TimelineType.PATIENT_UPDATED, "updated"
                key = f"patient/{patient_ref}/updated/{_count(s, patient_ref, kind) + 1}"
            self._note(
                s, patient_ref, key, kind,
                f"patient {what}: {', '.join(changed)}" if changed else f"patient {what}",
                fields=changed, api_key=actor,
            )  # fmt: skip
            s.commit()
            return RegistrationResult(patient, created, changed)

    def opt_out(self, patient_ref: str, source: str, reference: str) -> bool:
        """Opt the person out of every channel and program, with its note; False if an
        opt-out was already in force (nothing written). `reference`: what asked (the
        inbound message id), so the same message twice writes nothing twice."""
        with session(self.engine) as s:
            _lock_live(s, patient_ref)
            if PreferenceRepository._opted_out(s, patient_ref):
                return False
            s.add(OptOut(patient_ref=patient_ref, source=source))
            self._note(
                s, patient_ref, f"opt-out/{patient_ref}/{reference}", TimelineType.CONSENT_CHANGED,
                f"opted out of every channel and program via {source}", reference=reference,
            )  # fmt: skip
            s.commit()
            return True

    def opt_in(self, patient_ref: str, source: str, reference: str) -> bool:
        """Clear the opt-outs in force (START, YES, UNSTOP), with its note; False if
        there was none."""
        with session(self.engine) as s:
            _lock_live(s, patient_ref)
            cleared = s.execute(
                update(OptOut)
                .where(col(OptOut.patient_ref) == patient_ref, col(OptOut.cleared_at).is_(None))
                .values(cleared_at=utcnow(), cleared_source=source)
            ).rowcount  # type: ignore[attr-defined]
            if not cleared:
                return False
            self._note(
                s, patient_ref, f"opt-in/{patient_ref}/{reference}", TimelineType.CONSENT_CHANGED,
                f"opted back in via {source}", reference=reference,
            )  # fmt: skip
            s.commit()
            return True

    def _note(
        self, s: Session, patient_ref: str, key: str, kind: str, summary: str, **ids: Any
    ) -> None:
        note = TimelineEvent(
            idempotency_key=key,
            patient_ref=patient_ref,
            type=kind,
            summary=summary,
            correlation={k: v for k, v in ids.items() if v is not None},
        )
        if not self.timeline.record(note, session=s):
            # Keys name a change just made: one already there means the change is not new.
            raise RuntimeError(f"timeline key already used: {key}")


def _table(model: type[SQLModel]) -> Table:
    return model.__table__  # type: ignore[attr-defined]


def _lock_live(s: Session, patient_ref: str) -> Patient:
    """The patient, locked until the transaction ends; LookupError if unknown,
    PatientErased if forgotten."""
    patient = lock_patient(s, patient_ref)
    if patient is None:
        raise LookupError(f"unknown patient {patient_ref}")
    if patient.forgotten_at is not None:
        raise PatientErased(patient_ref)
    return patient


def _assign(row: SQLModel, values: dict[str, Any], prefix: str = "") -> list[str]:
    """Set the values that differ; their names (with `prefix`)."""
    changed = []
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(prefix + name)
    return changed


def _replace_coverages(s: Session, patient_ref: str, coverages: list[CoverageDetails]) -> list[str]:
    """Coverage of rank i + 1 := coverages[i]; ranks beyond are deleted."""
    existing = {
        c.rank: c for c in s.exec(select(Coverage).where(Coverage.patient_ref == patient_ref))
    }
    changed: list[str] = []
    for rank, coverage in enumerate(coverages, start=1):
        row = existing.pop(rank, None)
        new = row is None
        if row is None:
            row = Coverage(patient_ref=patient_ref, rank=rank)
        diff = _assign(row, coverage.model_dump(), f"coverage[{rank}].")
        if new or diff:
            row.updated_at = utcnow()
            s.add(row)
        changed += diff or ([f"coverage[{rank}]"] if new else [])
    for rank, row in sorted(existing.items()):
        s.delete(row)
        changed.append(f"coverage[{rank}]")
    return changed


def _replace_prescriber(s: Session, patient_ref: str, prescriber: PrescriberDetails) -> list[str]:
    row = s.get(Prescriber, patient_ref)
    new = row is None
    if row is None:
        row = Prescriber(patient_ref=patient_ref)
    diff = _assign(row, prescriber.model_dump(), "prescriber.")
    if new or diff:
        row.updated_at = utcnow()
        s.add(row)
    return diff or (["prescriber"] if new else [])


def _count(s: Session, patient_ref: str, kind: str) -> int:
    return int(
        s.exec(
            select(func.count())
            .select_from(TimelineEntry)
            .where(TimelineEntry.patient_ref == patient_ref, TimelineEntry.type == kind)
        ).one()
    )


def _key(prefix: str, detail: str) -> str:
    """`prefix + detail`, or a digest of `detail` where that would be too long."""
    if len(prefix) + len(detail) <= KEY_MAX:
        return prefix + detail
    return f"{prefix}sha256:{hashlib.sha256(detail.encode()).hexdigest()}"
