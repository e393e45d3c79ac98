"""The contact policy in the simulator: the production `decide()` over an in-memory ledger.

The store's gate (store/contact_gate.py) reads a patient's record, consents, preferences,
opt-out and recent contacts, asks `domain.contact_policy.decide`, and writes the answer
to the ledger. `ContactBook` does the same in memory, so a simulated cohort is decided
by the very rules production runs: quiet hours in the recipient's zone, caps across a
patient's journeys, consent per channel and purpose, duplicates, opt-outs. Plug it into
a VirtualRuntime as `rt.contact_outcome = book.decide`.

What it leaves out is the gateway: a contact decided `send` is sent at once (the
simulator scripts receipts separately); a `task` is an outreach task, as the activity
opens one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from domain.actions import ContactOutcome, ContactRequest, dedupe_key
from domain.contact_policy import (
    DEFAULT_RULES,
    ConsentFacts,
    ContactRules,
    Decision,
    MessageFacts,
    PastContact,
    PatientFacts,
    PreferenceFacts,
    decide,
)

# As the gate: contacts decided for good are never decided again; history reaches back
# this far for caps (a dedupe key, however old, always counts).
DECIDED = frozenset({"sending", "sent", "delivered", "unknown", "suppressed", "failed"})
HISTORY = timedelta(days=8)


@dataclass
class Recipient:
    """What the store would hold about one patient (no names: the policy needs none)."""

    facts: PatientFacts
    consents: list[ConsentFacts] = field(default_factory=list)
    preferences: PreferenceFacts | None = None
    opted_out: bool = False


@dataclass
class LedgerRow:
    key: str
    patient_ref: str
    channel: str
    purpose: str
    status: str
    reason: str | None
    decided_at: datetime
    sent_at: datetime | None
    until: datetime | None
    dedupe_key: str | None  # the first row of a content for a reason; fallbacks `key#n`
    content: str | None = field(init=False)  # the dedupe key without its `#n`

    def __post_init__(self) -> None:
        self.content = self.dedupe_key.split("#", 1)[0] if self.dedupe_key else None


@dataclass
class ContactBook:
    rules: ContactRules = DEFAULT_RULES
    recipients: dict[str, Recipient] = field(default_factory=dict)
    ledger: dict[str, LedgerRow] = field(default_factory=dict)
    decisions: list[tuple[ContactRequest, Decision]] = field(default_factory=list)

    def add(self, patient_ref: str, recipient: Recipient) -> None:
        self.recipients[patient_ref] = recipient

    def opt_out(self, patient_ref: str) -> None:
        self.recipients[patient_ref].opted_out = True

    def decide(self, request: ContactRequest) -> ContactOutcome:
        """One try at a contact, as `messaging.contact` answers it (minus the gateway)."""
        key = request.attempt_key
        known = self.ledger.get(key)
        if known is not None and known.status in DECIDED:
            return _outcome(known)
        recipient = self.recipients.get(request.patient_ref) or Recipient(
            PatientFacts(addresses={}, timezone=None)
        )
        dedupe = dedupe_key(request)
        decision = decide(
            recipient.facts,
            recipient.consents,
            recipient.preferences,
            recipient.opted_out,
            self._history(request.patient_ref, key, dedupe, request.at),
            request.at,
            MessageFacts(
                purpose=request.purpose,
                message_class=request.message_class,
                channels=list(request.channels),
                dedupe_key=dedupe,
                program=request.program,
                exclude=list(request.exclude),
            ),
            self.rules,
        )
        self.decisions.append((request, decision))
        row = self._record(request, known, decision, dedupe)
        return _outcome(row)

    def _history(self, patient_ref: str, key: str, dedupe: str, at: datetime) -> list[PastContact]:
        since = at - HISTORY
        rows = [
            r
            for r in self.ledger.values()
            if r.patient_ref == patient_ref
            and r.key != key
            and ((r.sent_at is not None and r.sent_at >= since) or r.content == dedupe)
        ]
        return [PastContact.of(r) for r in rows]

    def _record(
        self, request: ContactRequest, known: LedgerRow | None, decision: Decision, dedupe: str
    ) -> LedgerRow:
        status = {"send": "sent", "defer": "deferred", "suppress": "suppressed"}[decision.action]
        numbered = dedupe if request.attempt == 0 else f"{dedupe}#{request.attempt}"
        if known is None and decision.reason != "duplicate_content":
            held = any(r.dedupe_key == numbered for r in self.ledger.values())
            if held:  # as the gate's unique key refuses a second holder
                status, decision = (
                    "suppressed",
                    decision.model_copy(
                        update={"action": "suppress", "reason": "duplicate_content", "until": None}
                    ),
                )
        holds = known.dedupe_key if known else None
        if known is None and decision.reason != "duplicate_content":
            holds = numbered
        row = LedgerRow(
            key=request.attempt_key,
            patient_ref=request.patient_ref,
            channel=decision.channel or (request.channels[0] if request.channels else "sms"),
            purpose=request.purpose,
            status=status,
            reason=decision.reason,
            decided_at=request.at,
            sent_at=request.at if status == "sent" else None,
            until=decision.until,
            dedupe_key=holds,
        )
        self.ledger[row.key] = row
        return row


def _outcome(row: LedgerRow) -> ContactOutcome:
    message_id = f"sim/{row.key}" if row.status == "sent" else None
    return ContactOutcome(
        status=row.status,
        channel=row.channel,
        message_id=message_id,
        until=row.until if row.status == "deferred" else None,
        reason=row.reason,
    )
