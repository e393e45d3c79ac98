"""Patient contact, consent and opt-out: what outbound messaging checks at send time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session, select

from store.models import ContactConsent, OptOut, PatientContact


@dataclass(frozen=True)
class ContactDecision:
    address: str | None
    reason: str | None  # why not: no_contact, opted_out, no_consent


class PatientDirectory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert_contact(self, contact: PatientContact) -> None:
        with Session(self.engine) as s:
            s.merge(contact)
            s.commit()

    def grant_consent(self, patient_ref: str, channel: str, purpose: str, program: str) -> None:
        with Session(self.engine) as s:
            if self._active_consent(s, patient_ref, channel, purpose, program) is None:
                s.add(
                    ContactConsent(
                        patient_ref=patient_ref, channel=channel, purpose=purpose, program=program
                    )
                )
                s.commit()

    def opt_out(self, patient_ref: str, source: str = "sms_reply") -> None:
        with Session(self.engine) as s:
            s.add(OptOut(patient_ref=patient_ref, source=source))
            s.commit()

    def opt_in(self, patient_ref: str) -> None:
        with Session(self.engine) as s:
            for row in s.exec(
                select(OptOut).where(OptOut.patient_ref == patient_ref, OptOut.cleared_at == None)  # noqa: E711
            ):
                row.cleared_at = datetime.now(UTC)
                s.add(row)
            s.commit()

    def decide(self, patient_ref: str, channel: str, purpose: str, program: str) -> ContactDecision:
        """May we contact this patient on this channel for this purpose, now?"""
        with Session(self.engine) as s:
            contact = s.get(PatientContact, patient_ref)
            address = None
            if contact is not None:
                address = contact.phone if channel == "sms" else contact.email
            if not address:
                return ContactDecision(None, "no_contact")
            opted_out = s.exec(
                select(OptOut).where(OptOut.patient_ref == patient_ref, OptOut.cleared_at == None)  # noqa: E711
            ).first()
            if opted_out is not None:
                return ContactDecision(None, "opted_out")
            if self._active_consent(s, patient_ref, channel, purpose, program) is None:
                return ContactDecision(None, "no_consent")
            return ContactDecision(address, None)

    @staticmethod
    def _active_consent(
        s: Session, patient_ref: str, channel: str, purpose: str, program: str
    ) -> ContactConsent | None:
        return s.exec(
            select(ContactConsent).where(
                ContactConsent.patient_ref == patient_ref,
                ContactConsent.channel == channel,
                ContactConsent.purpose == purpose,
                ContactConsent.program == program,
                ContactConsent.revoked_at == None,  # noqa: E711
            )
        ).first()
