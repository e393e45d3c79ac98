"""Partner callbacks, once verified and parsed: where each event goes.

- Delivery receipts (`sms.status`, `email.event`) settle the contact ledger and the
  timeline only: no journey step waits for them, and a workflow task per receipt is
  what saturated the stack at 20 events/s.
- Every other event is signalled to its journey (found by our reference, or by the
  partner's own reference when they did not echo ours); the journey dedupes by event id.
- An event whose journey cannot take it (none, unknown, finished) is kept for operator
  review: never dropped.

Signal first, record after: a partner retry after a failure here re-signals, and the
journey (by event id) and the store (by key) both drop the repeat.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import structlog
from temporalio.service import RPCError

from domain.inbound import Intent, classify
from domain.journey import patient_of
from domain.partners import PartnerEvent
from gateway.journeys import JourneyClosed, JourneyGateway, JourneyNotFound
from store import Store
from store.ledger import ContactStatus
from store.timeline import TimelineEvent

log = structlog.get_logger("callbacks")

Outcome = Literal["delivered", "recorded", "kept_for_review", "opted_out", "opted_in"]

REPLY = "sms.reply"
# Twilio ErrorCode 21610: the recipient has opted out at the carrier (replied STOP).
CARRIER_STOP = "21610"
# Receipts: facts about a message we sent, for the ledger, not for the journey.
RECEIPTS = frozenset({"sms.status", "email.event"})
# Gateway delivery statuses that settle a contact-ledger row (others are in-flight).
RECEIPT_STATUS: dict[str, ContactStatus] = {
    "delivered": "delivered",
    "undelivered": "failed",
    "failed": "failed",
}


class JourneysUnavailable(Exception):
    """Temporal is down or restarting: the partner should retry later; nothing is lost."""


class CallbackService:
    def __init__(self, store: Store, journeys: JourneyGateway | None = None) -> None:
        self.store = store
        self.journeys = journeys  # set when the app connects to Temporal

    async def deliver(self, partner: str, events: list[PartnerEvent]) -> list[Outcome]:
        outcomes = []
        for event in events:
            try:
                outcome = await self._deliver_one(partner, event)
            except RPCError as err:
                log.warning("callback.temporal_unavailable", partner=partner)
                raise JourneysUnavailable() from err
            outcomes.append(outcome)
            log.info(
                "callback.event", partner=partner, type=event.type, event_id=event.event_id,
                journey=event.journey_ref, outcome=outcome,
            )  # fmt: skip
        return outcomes

    async def _deliver_one(self, partner: str, event: PartnerEvent) -> Outcome:
        if event.type == REPLY:
            return await asyncio.to_thread(self._reply, partner, event)
        if event.type in RECEIPTS:
            await asyncio.to_thread(self._settle, partner, event)
            return "recorded"
        if not event.journey_ref:
            journey = await asyncio.to_thread(self._journey_by_reference, event)
            if journey is not None:
                event = event.model_copy(update={"journey_ref": journey})
        outcome: Outcome = "delivered"
        if not event.journey_ref:
            outcome = await self._keep(partner, event, "no_journey_reference")
        else:
            assert self.journeys is not None, "the gateway is set when the app starts"
            try:
                await self.journeys.signal_event(event.journey_ref, event)
            except JourneyNotFound:
                outcome = await self._keep(partner, event, "journey_not_found")
            except JourneyClosed:
                outcome = await self._keep(partner, event, "journey_finished")
        await asyncio.to_thread(self._note, partner, event)
        return outcome

    def _reply(self, partner: str, event: PartnerEvent) -> Outcome:
        """An inbound text, found by the sender's number. STOP and plain-language
        opt-outs opt out every patient of that number at once (send time checks the
        opt-out, so no later message of any journey goes); START opts back in. Help,
        possible side effects and free text are kept for a person to read, and so is a
        number that several patients share. The text itself never reaches the timeline."""
        intent = classify(str(event.data.get("body", "")))
        patients = self.store.patients.by_phone(str(event.data.get("from", "")))
        if not patients:
            self.store.callbacks.keep(partner, event, "unknown_sender")
            return "kept_for_review"
        outcome: Outcome = "kept_for_review"
        for patient_ref in patients:
            self.store.timeline.record(
                TimelineEvent(
                    idempotency_key=f"{partner}:{event.event_id}:{patient_ref}",
                    patient_ref=patient_ref,
                    type="message.reply",
                    summary=f"sms reply: {intent.value}",
                    correlation={"message_id": event.event_id},
                )
            )
            if intent is Intent.OPT_OUT:
                self.store.changes.opt_out(patient_ref, "sms_reply", event.event_id)
                outcome = "opted_out"
            elif intent is Intent.OPT_IN:
                self.store.changes.opt_in(patient_ref, "sms_reply", event.event_id)
                outcome = "opted_in"
        if outcome == "kept_for_review":
            self.store.callbacks.keep(partner, event, f"reply_{intent.value}")
        elif len(patients) > 1:
            self.store.callbacks.keep(partner, event, "shared_number")
        return outcome

    def _journey_by_reference(self, event: PartnerEvent) -> str | None:
        return self.store.correlations.journey_for(event.correlation_key)

    async def _keep(self, partner: str, event: PartnerEvent, reason: str) -> Outcome:
        await asyncio.to_thread(self.store.callbacks.keep, partner, event, reason)
        return "kept_for_review"

    def _settle(self, partner: str, event: PartnerEvent) -> None:
        """A receipt that settles a message (delivered, failed) moves its ledger row, with
        its timeline note in the same transaction; in-flight ones (queued, sent) change
        nothing and read nothing. A settling receipt for a message we never sent is kept
        for review."""
        # SMS: Twilio's MessageStatus; email: the parser's terminal delivered / failed.
        status = str(event.data.get("status") or event.data.get("terminal") or "")
        if status not in RECEIPT_STATUS:
            return
        entry = self.store.ledger.by_provider_message_id(event.correlation_key)
        if entry is None:
            self.store.callbacks.keep(partner, event, "unknown_message")
            return
        note = self._timeline_event(
            partner, event.model_copy(update={"journey_ref": entry.journey_ref})
        )
        error_code = event.data.get("error_code")
        self.store.ledger.transition(
            entry.idempotency_key, RECEIPT_STATUS[status], reason=error_code, note=note
        )
        if error_code == CARRIER_STOP:  # the recipient replied STOP at the carrier
            self.store.changes.opt_out(entry.patient_ref, "carrier_stop", event.event_id)

    def _note(self, partner: str, event: PartnerEvent) -> None:
        note = self._timeline_event(partner, event)
        if note is not None:
            self.store.timeline.record(note)

    @staticmethod
    def _timeline_event(partner: str, event: PartnerEvent) -> TimelineEvent | None:
        patient = patient_of(event.journey_ref)
        if patient is None:
            return None
        detail = event.data.get("status") or event.data.get("outcome") or event.data.get("event")
        return TimelineEvent(
            idempotency_key=f"{partner}:{event.event_id}",
            patient_ref=patient,
            journey_ref=event.journey_ref,
            type="partner.callback",  # when we heard of it: keeps the story in order
            summary=f"{event.type}" + (f": {detail}" if detail else ""),
            correlation={"key": event.correlation_key, "event_id": event.event_id},
        )
