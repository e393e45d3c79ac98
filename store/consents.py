"""Consents (shaped like FHIR Consent), contact preferences and opt-outs. History is kept.

- A consent is person x channel x address x purpose x program, with method, evidence,
  granted / expires / revoked times. Rows are never deleted or rewritten: a revocation
  fills `revoked_at` once (status `inactive`), a new grant is a new row.
- Preferences are versions: every change appends a row; the newest is in force.
- An opt-out (STOP...) suppresses every channel and program until an opt-in clears it.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import ClassVar, Literal, get_args

from sqlalchemy import JSON, ColumnElement, Engine, String, func, update
from sqlmodel import Field, Session, SQLModel, col, or_, select

from domain.contact_policy import WRITTEN_METHODS, ConsentFacts
from store.db import session
from store.phi import RedactedRepr
from store.types import UtcDateTime, utcnow

REF = 64

Channel = Literal["sms", "email", "voice", "mail", "push"]
Purpose = Literal["treatment", "adherence", "marketing"]
Person = Literal["patient", "caregiver"]
ConsentStatus = Literal["active", "rejected", "inactive", "entered-in-error"]
CONSENT_METHODS = ("written", "electronic_signature", "enrollment_form", "verbal", "sms_keyword")


class ConsentGrant(SQLModel):
    """What the patient (or caregiver) agreed to; the input of `ConsentRepository.grant`."""

    person: Person = Field(
        default="patient", sa_type=String(16), description="Whose address: patient|caregiver"
    )
    channel: Channel = Field(sa_type=String(16))
    address: str | None = Field(
        default=None, max_length=320, description="The phone / email the consent covers (PHI)."
    )
    purpose: Purpose = Field(sa_type=String(16))
    program: str = Field(max_length=REF)
    status: ConsentStatus = Field(
        default="active", sa_type=String(20), description="FHIR Consent.status."
    )
    method: str = Field(
        default="enrollment_form", max_length=32, description=", ".join(CONSENT_METHODS)
    )
    evidence_ref: str | None = Field(
        default=None,
        max_length=200,
        description="Signed form / e-consent request / inbound SMS id.",
    )
    detail_allowed: bool = Field(
        default=False, description="May messages name the drug or condition (DOMAIN §5.6)?"
    )
    granted_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class Consent(RedactedRepr, ConsentGrant, table=True):
    __tablename__ = "consent"
    __phi__ = frozenset({"address"})

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(index=True, max_length=REF)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_reason: str | None = Field(default=None, max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)

    def in_force(self, at: datetime) -> bool:
        """The contact policy's rule (domain.contact_policy), on this row."""
        return ConsentFacts.model_validate(self, from_attributes=True).in_force(at)


def _in_force_clause(at: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        col(Consent.status) == "active",
        col(Consent.revoked_at).is_(None),
        col(Consent.granted_at) <= at,
        or_(col(Consent.expires_at).is_(None), col(Consent.expires_at) > at),
    )


def _check_scope(grant: ConsentGrant) -> None:
    if grant.channel not in get_args(Channel) or grant.purpose not in get_args(Purpose):
        raise ValueError("unknown channel or purpose")


class ConsentRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def grant(self, patient_ref: str, grant: ConsentGrant) -> Consent:
        """Record a consent (or a refusal, status `rejected`). Idempotent: the same grant
        (scope, method, evidence, expiry) already in force returns the existing row."""
        _check_scope(grant)
        with session(self.engine) as s:
            if grant.status == "active":
                same = self._same(s, patient_ref, grant)
                if same is not None:
                    return same
            row = Consent(patient_ref=patient_ref, **grant.model_dump())
            s.add(row)
            s.commit()
            return row

    @staticmethod
    def _same(s: Session, patient_ref: str, grant: ConsentGrant) -> Consent | None:
        """What makes `grant` a repeat: for a consent, the same grant (scope, method,
        evidence, expiry) still in force; for a refusal, the newest record of that scope
        being the same refusal. None otherwise (other statuses never repeat)."""
        scope = (
            Consent.patient_ref == patient_ref,
            Consent.person == grant.person,
            Consent.channel == grant.channel,
            Consent.address == grant.address,
            Consent.purpose == grant.purpose,
            Consent.program == grant.program,
        )
        same = (
            Consent.method == grant.method,
            Consent.evidence_ref == grant.evidence_ref,
            Consent.expires_at == grant.expires_at,
        )
        if grant.status == "active":
            return s.exec(
                select(Consent).where(
                    *scope,
                    *same,
                    col(Consent.revoked_at).is_(None),
                    col(Consent.status) == "active",
                )
            ).first()
        if grant.status == "rejected":
            newest = select(func.max(Consent.id)).where(*scope).scalar_subquery()
            return s.exec(
                select(Consent).where(
                    col(Consent.id) == newest, col(Consent.status) == "rejected", *same
                )
            ).first()
        return None

    def revoke(
        self,
        patient_ref: str,
        *,
        reason: str,
        channel: str | None = None,
        purpose: str | None = None,
        program: str | None = None,
        address: str | None = None,
        at: datetime | None = None,
    ) -> int:
        """Revoke the consents in force that match (None matches all); returns how many.

        Only `revoked_at`, `revoked_reason` and `status` change, once: the grant stays."""
        with session(self.engine) as s:
            revoked = self._revoke(
                s, patient_ref, reason=reason, channel=channel, purpose=purpose,
                program=program, address=address, at=at,
            )  # fmt: skip
            s.commit()
            return len(revoked)

    @staticmethod
    def _revoke(
        s: Session,
        patient_ref: str,
        *,
        reason: str,
        channel: str | None = None,
        purpose: str | None = None,
        program: str | None = None,
        address: str | None = None,
        at: datetime | None = None,
    ) -> list[int]:
        """`revoke` in the caller's transaction; the ids revoked, in order. Atomic: of two
        concurrent revocations of one consent, one revokes it (UPDATE ... RETURNING)."""
        stmt = (
            update(Consent)
            .where(
                col(Consent.patient_ref) == patient_ref,
                col(Consent.revoked_at).is_(None),
                col(Consent.status) == "active",
            )
            .values(revoked_at=at or utcnow(), revoked_reason=reason, status="inactive")
        )
        for column, value in (
            (Consent.channel, channel),
            (Consent.purpose, purpose),
            (Consent.program, program),
            (Consent.address, address),
        ):
            if value is not None:
                stmt = stmt.where(col(column) == value)
        returning = stmt.returning(col(Consent.id)).execution_options(synchronize_session=False)
        return sorted(int(i) for i in s.execute(returning).scalars())

    def in_force(
        self,
        patient_ref: str,
        *,
        at: datetime | None = None,
        channel: str | None = None,
        purpose: str | None = None,
        program: str | None = None,
    ) -> list[Consent]:
        """Consents in force at `at` (default now): active, not revoked, not expired."""
        query = select(Consent).where(
            Consent.patient_ref == patient_ref, *_in_force_clause(at or utcnow())
        )
        if channel is not None:
            query = query.where(Consent.channel == channel)
        if purpose is not None:
            query = query.where(Consent.purpose == purpose)
        if program is not None:
            query = query.where(Consent.program == program)
        with session(self.engine) as s:
            return list(s.exec(query.order_by(col(Consent.granted_at), col(Consent.id))))

    def find_in_force(
        self,
        patient_ref: str,
        *,
        channel: str,
        address: str,
        purpose: str,
        program: str,
        person: str = "patient",
        at: datetime | None = None,
    ) -> Consent | None:
        """The consent that allows this contact now, if any (newest first)."""
        with session(self.engine) as s:
            return self._find(s, patient_ref, channel, address, purpose, program, person, at)

    @staticmethod
    def _find(
        s: Session,
        patient_ref: str,
        channel: str,
        address: str,
        purpose: str,
        program: str,
        person: str,
        at: datetime | None,
    ) -> Consent | None:
        query = select(Consent).where(
            Consent.patient_ref == patient_ref,
            Consent.person == person,
            Consent.channel == channel,
            Consent.address == address,
            Consent.purpose == purpose,
            Consent.program == program,
            *_in_force_clause(at or utcnow()),
        )
        if purpose == "marketing":
            query = query.where(col(Consent.method).in_(sorted(WRITTEN_METHODS)))
        return s.exec(
            query.order_by(col(Consent.granted_at).desc(), col(Consent.id).desc())
        ).first()

    def history(self, patient_ref: str) -> list[Consent]:
        """Every consent ever recorded for the patient, oldest first."""
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(Consent)
                    .where(Consent.patient_ref == patient_ref)
                    .order_by(col(Consent.recorded_at), col(Consent.id))
                )
            )


class PreferenceChange(SQLModel):
    """A change of preferences: only the fields you set change; the rest carry over."""

    channel_ranking: list[str] | None = Field(default=None, description="e.g. ['sms', 'email'].")
    language: str | None = Field(default=None, max_length=16)
    quiet_hours_start: time | None = Field(
        default=None, description="No contact from (local; the default quiet hours begin 20:00)."
    )
    quiet_hours_end: time | None = Field(
        default=None, description="...until (local; the default quiet hours end 08:00)."
    )
    do_not_contact: bool | None = None
    reason: str | None = Field(default=None, max_length=64)


class Preference(SQLModel, table=True):
    """One version of a patient's preferences; the newest row is in force."""

    # What a version sets (reason and source only say why and who).
    SETTINGS: ClassVar[tuple[str, ...]] = (
        "channel_ranking", "language", "quiet_hours_start", "quiet_hours_end", "do_not_contact",
    )  # fmt: skip

    __tablename__ = "preference"

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(index=True, max_length=REF)
    channel_ranking: list[str] = Field(default_factory=list, sa_type=JSON)
    language: str | None = Field(default=None, max_length=16)
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    do_not_contact: bool = False
    reason: str | None = Field(default=None, max_length=64)
    source: str = Field(default="operator", max_length=32)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)


class OptOut(SQLModel, table=True):
    """One opt-out suppresses every channel and program until a new opt-in clears it."""

    __tablename__ = "opt_out"

    id: int | None = Field(default=None, primary_key=True)
    patient_ref: str = Field(index=True, max_length=REF)
    at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
    source: str = Field(default="sms_reply", max_length=32)
    cleared_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    cleared_source: str | None = Field(default=None, max_length=32)


class PreferenceRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def change(
        self, patient_ref: str, change: PreferenceChange, source: str = "operator"
    ) -> Preference:
        """Append a new version: the current preferences with `change` applied."""
        with session(self.engine) as s:
            row = self._next(patient_ref, self._current(s, patient_ref), change, source)
            s.add(row)
            s.commit()
            return row

    @staticmethod
    def _next(
        patient_ref: str, current: Preference | None, change: PreferenceChange, source: str
    ) -> Preference:
        """The version `change` makes of `current` (not yet added to any session)."""
        base = (
            current.model_dump(exclude={"id", "recorded_at", "source", "reason"})
            if current is not None
            else {"patient_ref": patient_ref}
        )
        return Preference(**{**base, **change.model_dump(exclude_unset=True)}, source=source)

    def current(self, patient_ref: str) -> Preference | None:
        with session(self.engine) as s:
            return self._current(s, patient_ref)

    @staticmethod
    def _current(s: Session, patient_ref: str) -> Preference | None:
        return s.exec(
            select(Preference)
            .where(Preference.patient_ref == patient_ref)
            .order_by(col(Preference.id).desc())
        ).first()

    def history(self, patient_ref: str) -> list[Preference]:
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(Preference)
                    .where(Preference.patient_ref == patient_ref)
                    .order_by(col(Preference.id))
                )
            )

    def opt_out(
        self, patient_ref: str, source: str = "sms_reply", at: datetime | None = None
    ) -> bool:
        """Record an opt-out; False if one is already in force (nothing written)."""
        with session(self.engine) as s:
            if self._opted_out(s, patient_ref):
                return False
            s.add(OptOut(patient_ref=patient_ref, source=source, at=at or utcnow()))
            s.commit()
            return True

    def opt_in(
        self, patient_ref: str, source: str = "sms_reply", at: datetime | None = None
    ) -> int:
        """Clear every opt-out in force (a new opt-in: START, YES, UNSTOP); returns how many."""
        stmt = (
            update(OptOut)
            .where(col(OptOut.patient_ref) == patient_ref, col(OptOut.cleared_at).is_(None))
            .values(cleared_at=at or utcnow(), cleared_source=source)
        )
        with session(self.engine) as s:
            count = s.execute(stmt).rowcount  # type: ignore[attr-defined]
            s.commit()
            return int(count)

    def opted_out(self, patient_ref: str) -> bool:
        with session(self.engine) as s:
            return self._opted_out(s, patient_ref)

    @staticmethod
    def _opted_out(s: Session, patient_ref: str) -> bool:
        return (
            s.exec(
                select(OptOut.id).where(
                    OptOut.patient_ref == patient_ref, col(OptOut.cleared_at).is_(None)
                )
            ).first()
            is not None
        )

    def opt_outs(self, patient_ref: str) -> list[OptOut]:
        with session(self.engine) as s:
            return list(
                s.exec(
                    select(OptOut).where(OptOut.patient_ref == patient_ref).order_by(col(OptOut.id))
                )
            )
