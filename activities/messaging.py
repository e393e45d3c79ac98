"""Outbound messages, decided at send time against the store.

Each message is one contact-ledger row (unique idempotency key; unique content per
patient and reason), so a retried or replayed send never reaches the patient twice:
the gateway also dedupes on the same key. Consent, opt-out and do-not-contact are
checked when the message goes, not when it was planned.
"""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import quote, urlencode

import structlog
from temporalio import activity

from activities.errors import partner_errors
from adapters.email import EmailClient
from adapters.errors import PartnerRejected
from adapters.sms import SmsClient
from domain.actions import MessageOutcome, OutboundMessage
from domain.partners import EmailRequest, SmsRequest
from store import Store
from store.ledger import ContactLedgerEntry, ContactPlan
from store.timeline import TimelineEvent

log = structlog.get_logger(__name__)


def _with_credentials(base: str, api_key: str) -> str:
    """`https://host` → `https://twilio:<key>@host` (keys are letters, digits and `_`)."""
    if not api_key:
        return base
    scheme, sep, rest = base.partition("://")
    return f"{scheme}{sep}twilio:{quote(api_key, safe='')}@{rest}" if sep else base


def dedupe_key(message: OutboundMessage) -> str:
    """The same content for the same reason (journey step) is never sent twice."""
    digest = hashlib.sha256(f"{message.channel}\n{message.text}".encode()).hexdigest()[:16]
    return f"{message.journey_ref}/{message.step_id}/{digest}"


class MessagingActivities:
    def __init__(
        self,
        sms: SmsClient,
        email: EmailClient,
        store: Store,
        callback_base: str,
        callback_api_key: str = "",
    ) -> None:
        self.sms = sms
        self.email = email
        self.store = store
        self.callback_base = callback_base.rstrip("/")
        # Twilio can only authenticate to us with credentials embedded in the callback URL
        # (basic auth); it signs the URL without them, as the receiver rebuilds it.
        self.status_callback_base = _with_credentials(self.callback_base, callback_api_key)

    @activity.defn(name="messaging.send")
    @partner_errors
    async def send(self, message: OutboundMessage) -> MessageOutcome:
        entry = await asyncio.to_thread(self._plan, message)
        if entry.idempotency_key != message.idempotency_key:
            return await self._suppress(message, "duplicate_content", plan=False)
        if entry.status in ("sent", "delivered"):  # sent before a crash: answer as then
            return MessageOutcome(status="sent", message_id=entry.provider_message_id)
        if entry.status == "suppressed":
            return MessageOutcome(status="suppressed", reason=entry.reason)

        decision = await asyncio.to_thread(
            self.store.directory.decide,
            message.patient_ref,
            message.channel,
            message.purpose,
            message.program,
        )
        if decision.address is None:
            return await self._suppress(message, decision.reason or "no_contact")
        try:
            message_id = await self._deliver(message, decision.address)
        except PartnerRejected as rejected:
            await asyncio.to_thread(
                self.store.ledger.transition,
                message.idempotency_key,
                "failed",
                reason=rejected.code[:64],
            )
            raise
        await asyncio.to_thread(self._sent, message, message_id)
        log.info("message.sent", journey=message.journey_ref, step=message.step_id, id=message_id)
        return MessageOutcome(status="sent", message_id=message_id)

    def _plan(self, message: OutboundMessage) -> ContactLedgerEntry:
        recorded = self.store.ledger.record(
            ContactPlan(
                idempotency_key=message.idempotency_key,
                patient_ref=message.patient_ref,
                journey_ref=message.journey_ref,
                program=message.program,
                step_id=message.step_id,
                channel=message.channel,
                purpose=message.purpose,
                message_class=message.message_class,
                dedupe_key=dedupe_key(message),
            )
        )
        return recorded.entry

    async def _deliver(self, message: OutboundMessage, address: str) -> str:
        base = {
            "journey_ref": message.journey_ref,
            "patient_ref": message.patient_ref,
            "program": message.program,
            "idempotency_key": message.idempotency_key,
        }
        if message.channel == "sms":
            callback = f"{self.status_callback_base}/v1/webhooks/sms?" + urlencode(
                {"journey": message.journey_ref}
            )
            sent = await self.sms.send(
                SmsRequest(**base, to=address, body=message.text, status_callback=callback)
            )
            return sent.message_sid
        mail = await self.email.send(
            EmailRequest(**base, to=address, subject=message.subject or "", body=message.text)
        )
        return mail.message_id

    def _sent(self, message: OutboundMessage, message_id: str) -> None:
        """The ledger row and its timeline note, in one transaction."""
        self.store.ledger.transition(
            message.idempotency_key, "sent", provider_message_id=message_id,
            note=self._timeline_event(message, "message.sent",
                                      f"{message.channel} {message.purpose} sent",
                                      message_id=message_id),
        )  # fmt: skip

    async def _suppress(
        self, message: OutboundMessage, reason: str, *, plan: bool = True
    ) -> MessageOutcome:
        def write() -> None:
            if plan:
                self.store.ledger.transition(message.idempotency_key, "suppressed", reason=reason)
            self._note(message, "message.suppressed", f"{message.channel} suppressed: {reason}")

        await asyncio.to_thread(write)
        log.info(
            "message.suppressed", journey=message.journey_ref, step=message.step_id, reason=reason
        )
        return MessageOutcome(status="suppressed", reason=reason)

    def _note(self, message: OutboundMessage, kind: str, summary: str, **ids: str) -> None:
        self.store.timeline.record(self._timeline_event(message, kind, summary, **ids))

    @staticmethod
    def _timeline_event(
        message: OutboundMessage, kind: str, summary: str, **ids: str
    ) -> TimelineEvent:
        return TimelineEvent(
            idempotency_key=f"{message.idempotency_key}:{kind}",
            patient_ref=message.patient_ref,
            journey_ref=message.journey_ref,
            type=kind,
            summary=summary,
            correlation={"step": message.step_id, **ids},
        )
