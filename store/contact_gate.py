"""The send-time gate: read what the policy needs, decide, and write the ledger, atomically.

One transaction per contact attempt, holding the patient's lock (PostgreSQL: the
patient row FOR UPDATE; SQLite: the database write lock, taken first), so two journeys
of one patient deciding at once run one after the other and cannot both pass a cap.
The decision itself is `domain.contact_policy.decide`, a pure function the simulator
calls too; this module only gathers its inputs from the store and records its output.

A row already past the decision (sending, sent, delivered, unknown, suppressed, failed)
is returned as it is: a retried activity never decides twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, update
from sqlmodel import Session, col, select

from domain.contact_policy import (
    ConsentFacts,
    ContactRules,
    Decision,
    MessageFacts,
    PastContact,
    PatientFacts,
    PreferenceFacts,
    decide,
)
from store.consents import Consent, ConsentRepository, PreferenceRepository
from store.db import insert_ignore, session
from store.ledger import ContactEvent, ContactLedgerEntry
from store.patients import Patient, lock_patient
from store.reachability import ReachabilityRepository, address_digest
from store.timeline import TimelineEvent, TimelineRepository
from store.types import utcnow

# History the caps look at (the longest window is a week).
HISTORY = timedelta(days=8)
DECIDED = frozenset({"sending", "sent", "delivered", "unknown", "suppressed", "failed"})
RECEIPTED = frozenset({"sms", "email", "voice"})


@dataclass(frozen=True)
class ContactAttempt:
    """One try at one contact: the first channel, or the n-th fallback."""

    idempotency_key: str
    patient_ref: str
    journey_ref: str | None
    program: str
    step_id: str | None
    content_ref: str | None
    purpose: str
    message_class: str
    channels: tuple[str, ...]
    exclude: tuple[str, ...]
    dedupe_key: str
    attempt: int
    at: datetime  # the journey's clock: quiet hours and caps are counted on it


@dataclass(frozen=True)
class Recipient:
    """Who the gate chose to reach, and how (PHI: never logged)."""

    address: str
    language: str
    first_name: str | None
    detail_allowed: bool


@dataclass(frozen=True)
class Decided:
    entry: ContactLedgerEntry
    fresh: bool  # this call made the decision (False: an earlier call had)
    decision: Decision | None
    recipient: Recipient | None  # set when the decision is to send now


class ContactGate:
    def __init__(self, engine: Engine, rules: ContactRules | None = None) -> None:
        self.engine = engine
        self.rules = rules or ContactRules()
        self.timeline = TimelineRepository(engine)

    def decide(self, attempt: ContactAttempt) -> Decided:
        with session(self.engine) as s:
            patient = lock_patient(s, attempt.patient_ref)
            entry = _by_key(s, attempt.idempotency_key)
            if entry is not None and entry.status in DECIDED:
                return Decided(entry, False, None, None)
            decision = decide(
                _patient_facts(s, patient, attempt.patient_ref),
                _consents(s, attempt.patient_ref),
                _preferences(s, attempt.patient_ref),
                PreferenceRepository._opted_out(s, attempt.patient_ref),
                _history(s, attempt),
                attempt.at,
                MessageFacts(
                    purpose=attempt.purpose,
                    message_class=attempt.message_class,
                    channels=list(attempt.channels),
                    dedupe_key=attempt.dedupe_key,
                    program=attempt.program,
                    exclude=list(attempt.exclude),
                ),
                self.rules,
            )
            entry = self._record(s, attempt, entry, decision)
            s.commit()
            recipient = None
            if decision.action == "send" and patient is not None and decision.address:
                preference = PreferenceRepository._current(s, attempt.patient_ref)
                recipient = Recipient(
                    address=decision.address,
                    language=(preference.language if preference else None) or patient.language,
                    first_name=patient.given_name,
                    detail_allowed=decision.detail_allowed,
                )
            return Decided(entry, True, decision, recipient)

    def recipient(self, entry: ContactLedgerEntry) -> Recipient | None:
        """Who a row was for, as the record says now (to reconcile a try with the
        gateway); None when that channel has no address any more."""
        with session(self.engine) as s:
            patient = s.get(Patient, entry.patient_ref)
            if patient is None or patient.forgotten_at is not None:
                return None
            address = _patient_facts(s, patient, entry.patient_ref).addresses.get(entry.channel)
            if not address:
                return None
            consent = ConsentRepository._find(
                s, entry.patient_ref, "voice" if entry.channel == "task" else entry.channel,
                address, entry.purpose, entry.program, "patient", entry.decided_at,
            )  # fmt: skip
            preference = PreferenceRepository._current(s, entry.patient_ref)
            return Recipient(
                address=address,
                language=(preference.language if preference else None) or patient.language,
                first_name=patient.given_name,
                detail_allowed=bool(consent and consent.detail_allowed),
            )

    def _record(
        self,
        s: Session,
        attempt: ContactAttempt,
        entry: ContactLedgerEntry | None,
        decision: Decision,
    ) -> ContactLedgerEntry:
        status = {"send": "sending", "defer": "deferred", "suppress": "suppressed"}[decision.action]
        channel = decision.channel or (attempt.channels[0] if attempt.channels else "sms")
        values: dict[str, Any] = {
            "status": status,
            "channel": channel,
            "reason": decision.reason,
            "defer_until": decision.until,
            # Wall clock: how long ago a try went to the gateway (decided_at is journey time).
            "updated_at": utcnow(),
            "decided_at": attempt.at,
            "awaits_receipt": status == "sending" and _fallback_left(attempt, channel),
        }
        if status == "sending":
            values["sent_at"] = attempt.at
        if entry is None:
            duplicate = decision.reason == "duplicate_content"
            row = {
                "idempotency_key": attempt.idempotency_key,
                "patient_ref": attempt.patient_ref,
                "journey_ref": attempt.journey_ref,
                "program": attempt.program,
                "step_id": attempt.step_id,
                "purpose": attempt.purpose,
                "message_class": attempt.message_class,
                # The first row of a content for a reason holds its dedupe key; a fallback
                # (the same content on the next channel) holds it with its number.
                "dedupe_key": None if duplicate else _dedupe_key(attempt),
                "content_ref": attempt.content_ref,
                "attempt": attempt.attempt,
                "sent_at": None,
                **values,
            }
            if not insert_ignore(s, ContactLedgerEntry.__table__, row):  # type: ignore[attr-defined]
                # Only a dedupe key held by another row can refuse it (we hold the lock
                # and the key was not there): suppress as a duplicate.
                row.update(dedupe_key=None, status="suppressed", reason="duplicate_content")
                row.update(defer_until=None, sent_at=None)
                insert_ignore(s, ContactLedgerEntry.__table__, row)  # type: ignore[attr-defined]
                status, values["reason"] = "suppressed", "duplicate_content"
        else:
            unchanged = (
                status == "deferred"
                and entry.status == "deferred"
                and entry.defer_until == decision.until
                and entry.reason == decision.reason
            )
            if unchanged:
                return entry
            s.execute(
                update(ContactLedgerEntry)
                .where(col(ContactLedgerEntry.idempotency_key) == attempt.idempotency_key)
                .values(**values)
            )
        fresh = _by_key(s, attempt.idempotency_key)
        assert fresh is not None and fresh.id is not None
        s.add(
            ContactEvent(ledger_id=fresh.id, status=status, reason=values["reason"], at=attempt.at)
        )
        note = _note(attempt, fresh, decision)
        if note is not None:
            self.timeline.record(note, session=s)
        return fresh


def _fallback_left(attempt: ContactAttempt, channel: str) -> bool:
    """A journey waits for this receipt when another channel is left to try."""
    tried = {*attempt.exclude, channel}
    return channel in RECEIPTED and any(c not in tried for c in attempt.channels)


def _by_key(s: Session, key: str) -> ContactLedgerEntry | None:
    return s.exec(
        select(ContactLedgerEntry).where(ContactLedgerEntry.idempotency_key == key)
    ).first()


def _patient_facts(s: Session, patient: Patient | None, patient_ref: str) -> PatientFacts:
    if patient is None:
        return PatientFacts(addresses={}, timezone=None)
    if patient.forgotten_at is not None:
        return PatientFacts(addresses={}, timezone=None, erased=True)
    addresses: dict[str, str | None] = {
        "sms": patient.phone, "voice": patient.phone, "task": patient.phone,
        "email": patient.email, "push": None,
    }  # fmt: skip
    blocked = ReachabilityRepository.blocked(s, patient_ref)
    for channel, address in list(addresses.items()):
        if address and (channel, address_digest(address)) in blocked:
            addresses[channel] = None  # e.g. a landline cannot take texts
    return PatientFacts(addresses=addresses, timezone=patient.timezone)


def _consents(s: Session, patient_ref: str) -> list[ConsentFacts]:
    rows = s.exec(
        select(Consent).where(Consent.patient_ref == patient_ref, Consent.person == "patient")
    )
    return [
        ConsentFacts(
            channel=r.channel,
            address=r.address,
            purpose=r.purpose,
            program=r.program,
            status=r.status,
            method=r.method,
            granted_at=r.granted_at,
            expires_at=r.expires_at,
            revoked_at=r.revoked_at,
            detail_allowed=r.detail_allowed,
        )
        for r in rows
    ]


def _preferences(s: Session, patient_ref: str) -> PreferenceFacts | None:
    current = PreferenceRepository._current(s, patient_ref)
    if current is None:
        return None
    # Stored as the patient put it: quiet from `quiet_hours_start` until `quiet_hours_end`;
    # the policy takes the window in between the other way round, when contact is allowed.
    return PreferenceFacts(
        channel_ranking=list(current.channel_ranking),
        contact_from=current.quiet_hours_end,
        contact_until=current.quiet_hours_start,
        do_not_contact=current.do_not_contact,
    )


def _history(s: Session, attempt: ContactAttempt) -> list[PastContact]:
    rows = s.exec(
        select(ContactLedgerEntry).where(
            ContactLedgerEntry.patient_ref == attempt.patient_ref,
            col(ContactLedgerEntry.idempotency_key) != attempt.idempotency_key,
            or_(
                col(ContactLedgerEntry.sent_at) >= attempt.at - HISTORY,
                col(ContactLedgerEntry.dedupe_key) == attempt.dedupe_key,
                col(ContactLedgerEntry.dedupe_key).startswith(f"{attempt.dedupe_key}#"),
            ),
        )
    )
    return [PastContact.of(r) for r in rows]


def _dedupe_key(attempt: ContactAttempt) -> str:
    return attempt.dedupe_key if attempt.attempt == 0 else f"{attempt.dedupe_key}#{attempt.attempt}"


def _note(
    attempt: ContactAttempt, entry: ContactLedgerEntry, decision: Decision
) -> TimelineEvent | None:
    if decision.action == "send":
        return None  # noted once the gateway took it
    if decision.action == "defer":
        assert decision.until is not None
        summary = (
            f"{entry.channel} deferred until {decision.until:%Y-%m-%d %H:%M}Z: {decision.reason}"
        )
        key = f"{attempt.idempotency_key}:message.deferred:{decision.until:%Y%m%d%H%M}"
        kind = "message.deferred"
    else:
        summary = f"{entry.channel} suppressed: {decision.reason}"
        key = f"{attempt.idempotency_key}:message.suppressed"
        kind = "message.suppressed"
    return TimelineEvent(
        idempotency_key=key,
        patient_ref=attempt.patient_ref,
        journey_ref=attempt.journey_ref,
        type=kind,
        summary=summary,
        correlation={"step": attempt.step_id, "content": attempt.content_ref},
    )
