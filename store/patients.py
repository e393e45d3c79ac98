"""The patient record, keyed by a pseudonymous patient id.

Demographics that messages and partners need (name, date of birth, phone, email, address,
time zone, language, caregiver) live here and nowhere else: workflows carry the
pseudonymous `patient_ref` and activities fetch what they need. Insurance (coverages) and
the prescriber are captured once and reused by every journey and partner call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine, UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from domain.journey import check_pseudonym
from store.consents import Consent, ConsentGrant, ConsentRepository, PreferenceRepository
from store.db import lock_row, session
from store.phi import RedactedRepr
from store.types import UtcDateTime, utcnow

REF = 64  # max length of pseudonymous ids


class PatientErased(Exception):
    """The patient was forgotten (right to erasure); their record cannot be filled again."""


class PatientDetails(SQLModel):
    """Demographics. In `PatientRepository.upsert` only the fields you set are written."""

    given_name: str | None = Field(default=None, max_length=200)
    family_name: str | None = Field(default=None, max_length=200)
    birth_date: date | None = None
    phone: str | None = Field(default=None, max_length=32, description="E.164, e.g. +15555550101.")
    email: str | None = Field(default=None, max_length=320)
    address_line1: str | None = Field(default=None, max_length=200)
    address_line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    region: str | None = Field(default=None, max_length=100, description="State / province code.")
    postal_code: str | None = Field(default=None, max_length=20)
    country: str | None = Field(default=None, max_length=2, description="ISO 3166-1 alpha-2.")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA zone, e.g. America/Chicago."
    )
    language: str = Field(default="en", max_length=16, description="BCP 47 tag.")
    caregiver_name: str | None = Field(default=None, max_length=200)
    caregiver_relationship: str | None = Field(default=None, max_length=50)
    caregiver_phone: str | None = Field(default=None, max_length=32)
    caregiver_email: str | None = Field(default=None, max_length=320)


class Patient(RedactedRepr, PatientDetails, table=True):
    """One row per patient; after erasure a tombstone: ref + forgotten_at, PHI columns NULL."""

    __tablename__ = "patient"
    __phi__ = frozenset(
        {
            "given_name", "family_name", "birth_date", "phone", "email", "address_line1",
            "address_line2", "city", "region", "postal_code", "caregiver_name",
            "caregiver_relationship", "caregiver_phone", "caregiver_email",
        }
    )  # fmt: skip

    patient_ref: str = Field(primary_key=True, max_length=REF)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    forgotten_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class CoverageDetails(SQLModel):
    """Insurance, as a pharmacy claim (NCPDP) or a payer call (FHIR Coverage) needs it."""

    payer_id: str | None = Field(default=None, max_length=64)
    payer_name: str | None = Field(default=None, max_length=200)
    plan_name: str | None = Field(default=None, max_length=200)
    plan_type: str | None = Field(
        default=None, max_length=32, description="commercial, medicare_part_d, medicaid, ..."
    )
    member_id: str | None = Field(
        default=None, max_length=64, description="Cardholder / member id."
    )
    group_number: str | None = Field(default=None, max_length=64)
    rx_bin: str | None = Field(default=None, max_length=16)
    rx_pcn: str | None = Field(default=None, max_length=32)
    rx_group: str | None = Field(default=None, max_length=64)
    relationship: str | None = Field(
        default=None, max_length=32, description="self, spouse, child..."
    )
    valid_from: date | None = None
    valid_to: date | None = None


class Coverage(RedactedRepr, CoverageDetails, table=True):
    __tablename__ = "coverage"
    __table_args__ = (UniqueConstraint("patient_ref", "rank"),)
    __phi__ = frozenset({"member_id", "group_number"})

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(foreign_key="patient.patient_ref", index=True, max_length=REF)
    rank: int = Field(default=1, description="1 primary, 2 secondary, ...")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class PrescriberDetails(SQLModel):
    npi: str | None = Field(default=None, max_length=10)
    name: str | None = Field(default=None, max_length=200)
    practice_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=32)
    fax: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=400)


class Prescriber(RedactedRepr, PrescriberDetails, table=True):
    """The patient's prescriber (one per patient); linked to the patient it is PHI too."""

    __tablename__ = "prescriber"
    __phi__ = frozenset({"npi", "name", "practice_name", "phone", "fax", "address"})

    patient_ref: str = Field(primary_key=True, foreign_key="patient.patient_ref", max_length=REF)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


@dataclass(frozen=True)
class PatientProfile:
    """Everything a journey's partner calls need, read once."""

    patient: Patient
    coverages: list[Coverage] = field(default_factory=list)
    prescriber: Prescriber | None = None

    @property
    def primary_coverage(self) -> Coverage | None:
        return min(self.coverages, key=lambda c: c.rank, default=None)


class PatientRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, patient_ref: str, details: PatientDetails | None = None) -> Patient:
        """Create the patient, or update it with the fields set in `details` (others kept)."""
        check_pseudonym(patient_ref, "patient_ref")
        changes = details.model_dump(exclude_unset=True) if details is not None else {}
        with session(self.engine) as s:
            row = s.get(Patient, patient_ref, with_for_update=True)
            if row is None:
                row = Patient(patient_ref=patient_ref, **changes)
            elif row.forgotten_at is not None:
                raise PatientErased(patient_ref)
            else:
                for name, value in changes.items():
                    setattr(row, name, value)
                row.updated_at = utcnow()
            s.add(row)
            s.commit()
            return row

    def get(self, patient_ref: str) -> Patient | None:
        with session(self.engine) as s:
            return s.get(Patient, patient_ref)

    def exists(self, patient_ref: str) -> bool:
        return self.get(patient_ref) is not None

    def set_coverage(self, patient_ref: str, coverage: CoverageDetails, rank: int = 1) -> Coverage:
        """Record (or replace) the patient's coverage of this rank: 1 primary, 2 secondary."""
        with session(self.engine) as s:
            self._require_live(s, patient_ref)
            row = s.exec(
                select(Coverage).where(Coverage.patient_ref == patient_ref, Coverage.rank == rank)
            ).first()
            values = coverage.model_dump()
            if row is None:
                row = Coverage(patient_ref=patient_ref, rank=rank, **values)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = utcnow()
            s.add(row)
            s.commit()
            return row

    def coverages(self, patient_ref: str) -> list[Coverage]:
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(Coverage)
                    .where(Coverage.patient_ref == patient_ref)
                    .order_by(col(Coverage.rank))
                )
            )

    def set_prescriber(self, patient_ref: str, prescriber: PrescriberDetails) -> Prescriber:
        with session(self.engine) as s:
            self._require_live(s, patient_ref)
            row = s.get(Prescriber, patient_ref)
            values = prescriber.model_dump()
            if row is None:
                row = Prescriber(patient_ref=patient_ref, **values)
            else:
                for name, value in values.items():
                    setattr(row, name, value)
                row.updated_at = utcnow()
            s.add(row)
            s.commit()
            return row

    def plan_type(self, patient_ref: str) -> str | None:
        """The plan type of the primary coverage (rank 1), if the intake gave one."""
        with session(self.engine) as s:
            return s.exec(
                select(Coverage.plan_type)
                .where(Coverage.patient_ref == patient_ref)
                .order_by(col(Coverage.rank))
            ).first()

    def by_phone(self, phone: str) -> list[str]:
        """Patients (not forgotten) this number belongs to, as patient or caregiver: a
        number a caregiver shares with two patients finds both."""
        with session(self.engine) as s:
            rows = s.exec(
                select(Patient.patient_ref).where(
                    (col(Patient.phone) == phone) | (col(Patient.caregiver_phone) == phone),
                    col(Patient.forgotten_at).is_(None),
                )
            )
            return sorted(rows)

    def prescriber(self, patient_ref: str) -> Prescriber | None:
        with session(self.engine) as s:
            return s.get(Prescriber, patient_ref)

    def profile(self, patient_ref: str) -> PatientProfile | None:
        """Patient, coverages and prescriber in one read; None if unknown."""
        with session(self.engine) as s:
            patient = s.get(Patient, patient_ref)
            if patient is None:
                return None
            coverages = s.exec(
                select(Coverage)
                .where(Coverage.patient_ref == patient_ref)
                .order_by(col(Coverage.rank))
            )
            return PatientProfile(patient, list(coverages), s.get(Prescriber, patient_ref))

    @staticmethod
    def _require_live(s: Session, patient_ref: str) -> None:
        patient = s.get(Patient, patient_ref)
        if patient is None:
            raise LookupError(f"unknown patient {patient_ref}")
        if patient.forgotten_at is not None:
            raise PatientErased(patient_ref)


def lock_patient(s: Session, patient_ref: str) -> Patient | None:
    """The patient row, locked until the transaction ends (store.db.lock_row)."""
    return lock_row(s, Patient, patient_ref, touch=Patient.updated_at)


@dataclass(frozen=True)
class ContactDecision:
    address: str | None
    reason: str | None  # why not: no_contact, opted_out, do_not_contact, no_consent, erased
    consent_id: int | None = None
    detail_allowed: bool = False  # may the text name the drug or condition?
    timezone: str | None = None
    language: str | None = None


class PatientDirectory:
    """Send-time checks over the patient record, consents, preferences and opt-outs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.patients = PatientRepository(engine)
        self.consents = ConsentRepository(engine)
        self.preferences = PreferenceRepository(engine)

    def decide(
        self,
        patient_ref: str,
        channel: str,
        purpose: str,
        program: str,
        person: str = "patient",
        at: datetime | None = None,
    ) -> ContactDecision:
        """May we contact this person on this channel for this purpose, now?

        In order: an address on file (no_contact; a forgotten patient: erased), no opt-out
        in force (opted_out), no do-not-contact preference (do_not_contact), and a consent
        in force for this exact address, purpose and program (no_consent; marketing
        needs a written one)."""
        at = at or utcnow()
        with session(self.engine) as s:
            patient = s.get(Patient, patient_ref)
            if patient is not None and patient.forgotten_at is not None:
                return ContactDecision(None, "erased")
            address = address_for(patient, channel, person)
            if not address:
                return ContactDecision(None, "no_contact")
            if PreferenceRepository._opted_out(s, patient_ref):
                return ContactDecision(None, "opted_out")
            preference = PreferenceRepository._current(s, patient_ref)
            if preference is not None and preference.do_not_contact:
                return ContactDecision(None, "do_not_contact")
            consent = ConsentRepository._find(
                s, patient_ref, channel, address, purpose, program, person, at
            )
            if consent is None:
                return ContactDecision(None, "no_consent")
            assert patient is not None
            return ContactDecision(
                address,
                None,
                consent_id=consent.id,
                detail_allowed=consent.detail_allowed,
                timezone=patient.timezone,
                language=(preference.language if preference else None) or patient.language,
            )

    def grant_consent(
        self,
        patient_ref: str,
        channel: str,
        purpose: str,
        program: str,
        *,
        method: str = "enrollment_form",
        evidence_ref: str | None = None,
        person: str = "patient",
    ) -> Consent:
        """Consent for the address on file now (a later change of number needs a new one)."""
        address = address_for(self.patients.get(patient_ref), channel, person)
        if not address:
            raise LookupError(f"no {channel} address on file for {patient_ref}")
        return self.consents.grant(
            patient_ref,
            ConsentGrant.model_validate(
                {
                    "person": person,
                    "channel": channel,
                    "address": address,
                    "purpose": purpose,
                    "program": program,
                    "method": method,
                    "evidence_ref": evidence_ref,
                }
            ),
        )

    def opt_out(self, patient_ref: str, source: str = "sms_reply") -> bool:
        return self.preferences.opt_out(patient_ref, source)

    def opt_in(self, patient_ref: str, source: str = "sms_reply") -> int:
        return self.preferences.opt_in(patient_ref, source)


def address_for(patient: Patient | None, channel: str, person: str) -> str | None:
    if patient is None:
        return None
    if person == "caregiver":
        return {"sms": patient.caregiver_phone, "voice": patient.caregiver_phone,
                "email": patient.caregiver_email}.get(channel)  # fmt: skip
    return {"sms": patient.phone, "voice": patient.phone, "email": patient.email}.get(channel)
