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
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import structlog
from temporalio.service import RPCError

from domain.content import ContentCatalog, ContentRef, default_catalog
from domain.events import CONTACT_CHANGED, MESSAGE_RECEIPT
from domain.inbound import Intent, classify
from domain.journey import patient_of
from domain.partners import PartnerEvent
from domain.receipts import RECEIPT_TYPES, settled_status
from gateway.journeys import JourneyClosed, JourneyGateway, JourneyNotFound
from gateway.visibility import JourneyFilter
from store import Store
from store.ledger import ContactPlan
from store.receipts import apply_receipt
from store.timeline import TimelineEvent

log = structlog.get_logger("callbacks")

Outcome = Literal["delivered", "recorded", "kept_for_review", "opted_out", "opted_in", "answered"]

REPLY = "sms.reply"
DEFAULT_PROGRAM = {"program_name": "Pitwall Patient Support", "help_contact": "1-800-555-0100"}
# The ledger's program for keyword answers (HELP, STOP, START), which no journey sends.
REPLY_PROGRAM = "keyword-reply"


@dataclass(frozen=True)
class Reply:
    outcome: Outcome
    patients: list[str]
    answer: str | None  # the text to answer the sender with (TwiML), if any


class JourneysUnavailable(Exception):
    """Temporal is down or restarting: the partner should retry later; nothing is lost."""


class CallbackService:
    def __init__(
        self,
        store: Store,
        journeys: JourneyGateway | None = None,
        *,
        program_values: Mapping[str, str] | None = None,
        catalog: ContentCatalog | None = None,
    ) -> None:
        self.store = store
        self.journeys = journeys  # set when the app connects to Temporal
        # program_name / help_contact for keyword answers (HELP, STOP, START).
        self.program_values = dict(program_values or DEFAULT_PROGRAM)
        self.catalog = catalog or default_catalog()

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
            return (await self.reply(partner, event)).outcome
        if event.type in RECEIPT_TYPES:  # for the ledger (and a journey falling back)
            receipt = await asyncio.to_thread(self._settle, partner, event)
            if receipt is not None and receipt.journey_ref and self.journeys is not None:
                # A journey waits on this one to fall back to its next channel.
                with contextlib.suppress(JourneyNotFound, JourneyClosed):
                    await self.journeys.signal_event(receipt.journey_ref, receipt)
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

    async def reply(self, partner: str, event: PartnerEvent) -> Reply:
        """An inbound text: act on it, and say what to answer the sender (TwiML)."""
        reply = await asyncio.to_thread(self._reply, partner, event)
        if reply.outcome in ("opted_out", "opted_in"):
            await self._tell_journeys(reply.patients, event, reply.outcome)
        return reply

    def _reply(self, partner: str, event: PartnerEvent) -> Reply:
        """Found by the sender's number (patient or caregiver). STOP and plain-language
        opt-outs opt out every patient of that number at once, START opts back in: one
        confirmation each, when something changed. HELP is always answered. A possible
        side effect opens a pharmacovigilance task; an ambiguous reply, or a number that
        several patients share, a task for a navigator. The text itself reaches only the
        task (PHI), never the timeline or a log."""
        body = str(event.data.get("body", ""))
        intent = classify(body)
        patients = self.store.patients.by_phone(str(event.data.get("from", "")))
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
        first = patients[0] if patients else None
        if intent is Intent.HELP:
            return Reply("answered", patients, self._answer(event, first, "help_reply"))
        if not patients:
            self.store.callbacks.keep(partner, event, "unknown_sender")
            self._task(
                event, "unknown_sender", None, body if intent is Intent.SIDE_EFFECT else None
            )
            return Reply("kept_for_review", patients, None)
        if intent in (Intent.SIDE_EFFECT, Intent.AMBIGUOUS):
            kind = "pharmacovigilance" if intent is Intent.SIDE_EFFECT else "ambiguous_reply"
            for patient_ref in patients:
                self._task(event, kind, patient_ref, body)
            self.store.callbacks.keep(partner, event, f"reply_{intent.value}")
            return Reply("kept_for_review", patients, None)
        changed = [
            patient_ref
            for patient_ref in patients
            if (
                self.store.changes.opt_out
                if intent is Intent.OPT_OUT
                else self.store.changes.opt_in
            )(patient_ref, "sms_reply", event.event_id)
        ]
        if len(patients) > 1:  # a caregiver's number: both are opted out; a person checks
            self.store.callbacks.keep(partner, event, "shared_number")
            for patient_ref in patients:
                self._task(event, "shared_number", patient_ref, None)
        outcome: Outcome = "opted_out" if intent is Intent.OPT_OUT else "opted_in"
        content = "opt_out_confirmation" if intent is Intent.OPT_OUT else "opt_in_confirmation"
        # One confirmation, for the message that changed something (a repeat changes nothing).
        answer = self._answer(event, first, content) if changed else None
        return Reply(outcome, patients, answer)

    def _answer(self, event: PartnerEvent, patient_ref: str | None, content: str) -> str:
        """The reply text, in the patient's language, on the ledger as a keyword answer
        (purpose `reply`: it counts against no cap, and it is sent even after a STOP)."""
        language = "en"
        if patient_ref is not None:
            patient = self.store.patients.get(patient_ref)
            language = patient.language if patient is not None else "en"
        ref = ContentRef(id=content, version=1)
        text = self.catalog.render(
            ref, "sms", language, self.program_values, detail_allowed=False
        ).text
        if patient_ref is not None:
            self.store.ledger.record(
                ContactPlan(
                    idempotency_key=f"reply/{event.event_id}",
                    patient_ref=patient_ref,
                    program=REPLY_PROGRAM,  # no journey or program: the sender wrote to us
                    channel="sms",
                    purpose="reply",
                    message_class="operational",
                    status="sent",
                    content_ref=str(ref),
                    reason=content,
                )
            )
        return text

    def _task(
        self, event: PartnerEvent, kind: str, patient_ref: str | None, note: str | None
    ) -> None:
        self.store.tasks.open(
            f"reply/{event.event_id}/{kind}/{patient_ref or '-'}", kind, f"sms_reply_{kind}",
            patient_ref=patient_ref, note=note, at=event.occurred_at,
        )  # fmt: skip

    async def _tell_journeys(
        self, patients: list[str], event: PartnerEvent, outcome: Outcome
    ) -> None:
        """Every running journey of these patients learns it now: a message waiting for
        quiet hours or a cap to pass is decided again (and suppressed after a STOP)."""
        if self.journeys is None:
            return
        for patient_ref in patients:
            for journey_ref in await self._running_journeys(patient_ref):
                change = PartnerEvent(
                    event_id=f"contact:{event.event_id}:{patient_ref}",
                    type=CONTACT_CHANGED,
                    correlation_key=patient_ref,
                    journey_ref=journey_ref,
                    occurred_at=event.occurred_at,
                    data={"change": outcome},
                )
                with contextlib.suppress(JourneyNotFound, JourneyClosed):
                    await self.journeys.signal_event(journey_ref, change)

    async def _running_journeys(self, patient_ref: str) -> list[str]:
        """Running journeys by visibility (eventually consistent), plus any journey the
        timeline knows of that visibility has not caught up with."""
        assert self.journeys is not None
        found: set[str] = set()
        page_token: str | None = None
        while True:
            page = await self.journeys.find(
                JourneyFilter(patient_ref=patient_ref, running=True), page_token=page_token
            )
            found.update(item.journey_id for item in page.items)
            page_token = page.next_page_token
            if not page_token:
                break
        known = await asyncio.to_thread(self.store.timeline.journeys_of, patient_ref)
        return sorted(found | set(known))

    def _journey_by_reference(self, event: PartnerEvent) -> str | None:
        return self.store.correlations.journey_for(event.correlation_key)

    async def _keep(self, partner: str, event: PartnerEvent, reason: str) -> Outcome:
        await asyncio.to_thread(self.store.callbacks.keep, partner, event, reason)
        return "kept_for_review"

    def _settle(self, partner: str, event: PartnerEvent) -> PartnerEvent | None:
        """A receipt that settles a message (delivered, failed; a call answered, left as
        voicemail, unanswered) moves its ledger row, with its timeline note in the same
        transaction; in-flight ones change nothing and read nothing. A settling receipt
        for a message we never sent is kept for review. Returns the `message.receipt` to
        signal when a journey waits on it to fall back."""
        settled = settled_status(event.type, event.data)
        if settled is None:
            return None
        entry = self.store.ledger.by_provider_message_id(event.correlation_key)
        if entry is None:
            # Before the gateway's answer told us the id (it may call back first): keep it,
            # then look again, since the activity, having written the id, looks at what was
            # kept. Each side writes, then reads the other: one of them applies it.
            self.store.callbacks.keep(partner, event, "unknown_message")
            entry = self.store.ledger.by_provider_message_id(event.correlation_key)
            if entry is None:
                return None
        note = self._timeline_event(
            partner, event.model_copy(update={"journey_ref": entry.journey_ref})
        )
        moved = apply_receipt(self.store, entry, event, note)
        error_code = event.data.get("error_code")
        if not (moved and entry.awaits_receipt):
            return None
        return PartnerEvent(
            event_id=f"receipt:{entry.idempotency_key}",
            type=MESSAGE_RECEIPT,
            correlation_key=event.correlation_key,
            journey_ref=entry.journey_ref,
            occurred_at=event.occurred_at,
            data={"outcome": settled, "error_code": error_code},
        )

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
