"""Outbound contacts, decided at send time by the contact policy, sent at most once.

`messaging.contact` runs one try at one contact:

1. The gate (store/contact_gate.py) decides and writes the ledger row in one
   transaction under the patient's lock: `sending`, `deferred` or `suppressed`.
2. On `sending`, the content is rendered for the chosen channel in the patient's
   language (detail only where the consent allows it) and handed to the gateway.
3. The gateway's id moves the row to `sent`, with its timeline note, in one transaction.

The gateways do not deduplicate (Twilio and SendGrid ignore idempotency keys), so a
retry that finds its row `sending` without a provider id never sends blindly: it asks the
gateway what it has (SMS and calls by number, body and time; email by the reference
SendGrid echoes). Found: the row becomes `sent`. Not found by an authoritative lookup, once
the first request can no longer be in flight: it sends. Otherwise the outcome is
`unknown`, and a task asks a person to find out.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from urllib.parse import quote, urlencode

import structlog
from temporalio import activity

from activities.errors import partner_errors
from adapters.email import EmailClient
from adapters.errors import PartnerRejected, PartnerUnavailable
from adapters.sms import SmsClient
from adapters.voice import VoiceClient
from domain.actions import (
    ContactOutcome,
    ContactRequest,
    MessageOutcome,
    OutboundMessage,
    dedupe_key,
)
from domain.content import ContentCatalog, ContentRef, default_catalog
from domain.partners import EmailRequest, SmsRequest, VoiceRequest
from domain.receipts import Settled, settled_status
from store import Store
from store.contact_gate import ContactAttempt, ContactGate, Recipient
from store.ledger import ContactLedgerEntry
from store.receipts import apply_receipt
from store.timeline import TimelineEvent
from store.types import utcnow

log = structlog.get_logger(__name__)

# A first try older than the partner timeout plus this margin cannot still be in flight.
IN_FLIGHT_MARGIN = timedelta(seconds=5)
# Twilio: 21610 the number replied STOP at the carrier; sends to it are refused.
CARRIER_STOP_REJECTION = "sms.opted_out"


class ContactInFlight(Exception):
    """A first try may still be talking to the gateway: look again later (retryable)."""


def _with_credentials(base: str, api_key: str) -> str:
    """`https://host` → `https://twilio:<key>@host` (keys are letters, digits and `_`)."""
    if not api_key:
        return base
    scheme, sep, rest = base.partition("://")
    return f"{scheme}{sep}twilio:{quote(api_key, safe='')}@{rest}" if sep else base


class MessagingActivities:
    def __init__(
        self,
        sms: SmsClient,
        email: EmailClient,
        store: Store,
        callback_base: str,
        callback_api_key: str = "",
        *,
        voice: VoiceClient | None = None,
        gate: ContactGate | None = None,
        catalog: ContentCatalog | None = None,
        partner_timeout: float = 10.0,
        in_flight: timedelta | None = None,
    ) -> None:
        self.sms = sms
        self.email = email
        self.voice = voice
        self.store = store
        self.gate = gate or ContactGate(store.engine)
        self.catalog = catalog or default_catalog()
        # How long an earlier try may still be talking to the gateway.
        self.in_flight = (
            in_flight
            if in_flight is not None
            else (timedelta(seconds=partner_timeout) + IN_FLIGHT_MARGIN)
        )
        self.callback_base = callback_base.rstrip("/")
        # Twilio can only authenticate to us with credentials embedded in the callback URL
        # (basic auth); it signs the URL without them, as the receiver rebuilds it.
        self.status_callback_base = _with_credentials(self.callback_base, callback_api_key)

    # -- activities ------------------------------------------------------------------
    @activity.defn(name="messaging.contact")
    @partner_errors
    async def contact(self, request: ContactRequest) -> ContactOutcome:
        decided = await asyncio.to_thread(self.gate.decide, self._attempt(request))
        entry = decided.entry
        if entry.status == "sending":
            if decided.fresh:
                assert decided.recipient is not None
                return await self._deliver(request, entry, decided.recipient)
            return await self._reconcile(request, entry)
        return _outcome_of(entry)

    @activity.defn(name="messaging.send")
    @partner_errors
    async def send(self, message: OutboundMessage) -> MessageOutcome:
        """The first generation's activity, kept for journeys that scheduled it: the same
        policy, on one channel. It cannot wait, so a deferral reads as suppressed."""
        outcome = await self.contact(
            ContactRequest(
                **message.model_dump(
                    include={
                        "journey_ref",
                        "patient_ref",
                        "program",
                        "step_id",
                        "idempotency_key",
                        "purpose",
                        "message_class",
                        "text",
                        "subject",
                    }
                ),
                channels=[message.channel],
                reason=f"{message.journey_ref}/{message.step_id}/{message.text}",
                at=utcnow(),
            )
        )
        if outcome.status == "sent":
            return MessageOutcome(status="sent", message_id=outcome.message_id)
        return MessageOutcome(status="suppressed", reason=outcome.reason or outcome.status)

    # -- steps -------------------------------------------------------------------------
    def _attempt(self, request: ContactRequest) -> ContactAttempt:
        return ContactAttempt(
            idempotency_key=request.attempt_key,
            patient_ref=request.patient_ref,
            journey_ref=request.journey_ref,
            program=request.program,
            step_id=request.step_id,
            content_ref=request.content,
            purpose=request.purpose,
            message_class=request.message_class,
            channels=tuple(request.channels),
            exclude=tuple(request.exclude),
            dedupe_key=dedupe_key(request),
            attempt=request.attempt,
            at=request.at,
        )

    def _render(
        self, request: ContactRequest, channel: str, recipient: Recipient
    ) -> tuple[str, str | None]:
        """(text, subject) for the channel, in the patient's language."""
        if request.content is None:  # first generation: the step's own text
            return request.text or "", request.subject
        values = {**request.values, "first_name": recipient.first_name or ""}
        rendered = self.catalog.render(
            ContentRef.parse(request.content),
            channel,
            recipient.language,
            values,
            # A call may end on a voicemail anyone at that phone can hear: never detail.
            detail_allowed=recipient.detail_allowed and channel != "voice",
        )
        return rendered.text, rendered.subject

    async def _deliver(
        self, request: ContactRequest, entry: ContactLedgerEntry, recipient: Recipient
    ) -> ContactOutcome:
        channel = entry.channel
        if channel == "task":
            return await asyncio.to_thread(self._outreach_task, request, entry)
        text, subject = self._render(request, channel, recipient)
        try:
            message_id = await self._gateway_send(request, channel, recipient, text, subject)
        except PartnerRejected as rejected:
            await asyncio.to_thread(self._rejected, request, entry, rejected)
            return ContactOutcome(status="failed", channel=channel, reason=rejected.code[:64])
        except PartnerUnavailable as down:
            if down.status is not None:  # it answered 5xx / 429: it did not take the message
                await asyncio.to_thread(
                    self.store.ledger.transition, entry.idempotency_key, "planned",
                    reason=f"gateway_{down.status}",
                )  # fmt: skip
            raise  # a timeout may have landed: the retry reconciles (the row stays sending)
        settled = await asyncio.to_thread(self._sent, request, entry, message_id, "sent")
        log.info("message.sent", journey=request.journey_ref, step=request.step_id, id=message_id)
        return ContactOutcome(
            status="sent",
            channel=channel,
            message_id=message_id,
            settled=settled,
        )

    async def _gateway_send(
        self,
        request: ContactRequest,
        channel: str,
        recipient: Recipient,
        text: str,
        subject: str | None,
    ) -> str:
        base = {
            "journey_ref": request.journey_ref,
            "patient_ref": request.patient_ref,
            "program": request.program,
            "idempotency_key": request.attempt_key,
        }
        query = urlencode({"journey": request.journey_ref})
        if channel == "sms":
            callback = f"{self.status_callback_base}/v1/webhooks/sms?{query}"
            sent = await self.sms.send(
                SmsRequest(**base, to=recipient.address, body=text, status_callback=callback)
            )
            return sent.message_sid
        if channel == "voice":
            if self.voice is None:
                raise PartnerRejected("voice", 0, "voice.not_configured")
            callback = f"{self.status_callback_base}/v1/webhooks/voice?{query}"
            call = await self.voice.call(
                VoiceRequest(
                    **base,
                    to=recipient.address,
                    text=text,
                    language=recipient.language,
                    status_callback=callback,
                )
            )
            return call.call_sid
        mail = await self.email.send(
            EmailRequest(**base, to=recipient.address, subject=subject or "", body=text)
        )
        return mail.message_id

    async def _reconcile(
        self, request: ContactRequest, entry: ContactLedgerEntry
    ) -> ContactOutcome:
        """A row left `sending` by an earlier try: find out, never send blindly."""
        if entry.provider_message_id:
            await asyncio.to_thread(self._sent, request, entry, entry.provider_message_id, "sent")
            return _outcome_of(entry, status="sent")
        if utcnow() - entry.updated_at < self.in_flight:
            raise ContactInFlight("an earlier try may still be sending; looking again later")
        recipient = await asyncio.to_thread(self.gate.recipient, entry)
        if recipient is None:  # the address is gone: nothing to compare with
            return await self._unknown(request, entry, "address_changed")
        try:
            found = await self._lookup(request, entry, recipient)
        except (PartnerUnavailable, PartnerRejected):
            return await self._unknown(request, entry, "lookup_failed")
        if found is not None:
            settled = await asyncio.to_thread(self._sent, request, entry, found, "reconciled")
            log.info("message.reconciled", journey=request.journey_ref, step=request.step_id)
            return ContactOutcome(
                status="sent",
                channel=entry.channel,
                message_id=found,
                settled=settled,
            )
        if entry.channel in ("sms", "voice"):  # the gateway's own list says it never came
            return await self._deliver(request, entry, recipient)
        return await self._unknown(request, entry, "not_found")

    async def _lookup(
        self, request: ContactRequest, entry: ContactLedgerEntry, recipient: Recipient
    ) -> str | None:
        since = entry.updated_at - timedelta(minutes=5)
        if entry.channel == "sms":
            text, _ = self._render(request, "sms", recipient)
            sent = await self.sms.find_sent(recipient.address, text, since)
            return sent[0].message_sid if sent else None
        if entry.channel == "voice" and self.voice is not None:
            calls = await self.voice.find_calls(recipient.address, since)
            return calls[0].call_sid if calls else None
        if entry.channel == "email":
            ids = await self.email.find_sent(request.attempt_key)
            return ids[0] if ids else None
        return None

    async def _unknown(
        self, request: ContactRequest, entry: ContactLedgerEntry, reason: str
    ) -> ContactOutcome:
        def write() -> None:
            note = _event(
                request, entry, "message.unknown", f"{entry.channel} outcome unknown: {reason}"
            )
            self.store.ledger.transition(entry.idempotency_key, "unknown", reason=reason, note=note)
            self.store.tasks.open(
                f"contact/{entry.idempotency_key}/unknown", "contact_outcome_unknown", reason,
                patient_ref=entry.patient_ref, journey_ref=entry.journey_ref,
                step_id=entry.step_id,
            )  # fmt: skip

        await asyncio.to_thread(write)
        log.warning(
            "message.unknown", journey=request.journey_ref, step=request.step_id, reason=reason
        )
        return ContactOutcome(status="unknown", channel=entry.channel, reason=reason)

    # -- store writes (in threads) -------------------------------------------------------
    def _sent(
        self, request: ContactRequest, entry: ContactLedgerEntry, message_id: str, how: str
    ) -> Settled | None:
        """The ledger row and its timeline note, in one transaction; then any receipt that
        came before we knew the id (the gateway may call back before it answers us)."""
        summary = f"{entry.channel} {entry.purpose} {how}"
        note = _event(request, entry, "message.sent", summary, message_id=message_id)
        self.store.ledger.transition(
            entry.idempotency_key, "sent", provider_message_id=message_id, note=note
        )
        settled: Settled | None = None
        for early in self.store.callbacks.kept_for(message_id, "unknown_message"):
            if apply_receipt(self.store, entry, early, None):
                settled = settled_status(early.type, early.data)
        return settled

    def _rejected(
        self, request: ContactRequest, entry: ContactLedgerEntry, rejected: PartnerRejected
    ) -> None:
        note = _event(
            request, entry, "message.failed", f"{entry.channel} rejected: {rejected.code}"
        )
        self.store.ledger.transition(
            entry.idempotency_key, "failed", reason=rejected.code[:64], note=note
        )
        if rejected.code == CARRIER_STOP_REJECTION:  # STOP at the carrier is an opt-out
            self.store.changes.opt_out(entry.patient_ref, "carrier_stop", entry.idempotency_key)

    def _outreach_task(self, request: ContactRequest, entry: ContactLedgerEntry) -> ContactOutcome:
        """The last channel: a person at the hub calls the patient."""
        task, _ = self.store.tasks.open(
            f"contact/{entry.idempotency_key}", "outreach_call", request.content or "message",
            patient_ref=entry.patient_ref, journey_ref=entry.journey_ref, step_id=entry.step_id,
        )  # fmt: skip
        message_id = f"task-{task.id}"
        self._sent(request, entry, message_id, "task opened")  # a task has no receipt
        return ContactOutcome(status="sent", channel="task", message_id=message_id)


def _outcome_of(entry: ContactLedgerEntry, status: str | None = None) -> ContactOutcome:
    status = status or entry.status
    shown = {"delivered": "sent", "sending": "sent"}.get(status, status)
    return ContactOutcome(
        status=shown,
        channel=entry.channel,
        message_id=entry.provider_message_id,
        until=entry.defer_until if status == "deferred" else None,
        reason=entry.reason,
    )


def _event(
    request: ContactRequest,
    entry: ContactLedgerEntry,
    kind: str,
    summary: str,
    **ids: str,
) -> TimelineEvent:
    return TimelineEvent(
        idempotency_key=f"{entry.idempotency_key}:{kind}",
        patient_ref=entry.patient_ref,
        journey_ref=entry.journey_ref,
        type=kind,
        summary=summary,
        correlation={"step": entry.step_id, "content": request.content, **ids},
    )
