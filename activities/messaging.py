"""Outbound messages: consent and opt-out are checked when the message is sent."""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

import structlog
from temporalio import activity

from activities.errors import partner_errors
from adapters.email import EmailClient
from adapters.sms import SmsClient
from domain.actions import MessageOutcome, OutboundMessage
from domain.partners import EmailRequest, SmsRequest
from store.patients import PatientDirectory

log = structlog.get_logger(__name__)


class MessagingActivities:
    def __init__(
        self,
        sms: SmsClient,
        email: EmailClient,
        directory: PatientDirectory,
        callback_base: str,
    ) -> None:
        self.sms = sms
        self.email = email
        self.directory = directory
        self.callback_base = callback_base.rstrip("/")

    @activity.defn(name="messaging.send")
    @partner_errors
    async def send(self, message: OutboundMessage) -> MessageOutcome:
        decision = await asyncio.to_thread(
            self.directory.decide,
            message.patient_ref,
            message.channel,
            message.purpose,
            message.program,
        )
        if decision.address is None:
            log.info(
                "message.suppressed",
                journey=message.journey_ref,
                step=message.step_id,
                reason=decision.reason,
            )
            return MessageOutcome(status="suppressed", reason=decision.reason)
        base = {
            "journey_ref": message.journey_ref,
            "patient_ref": message.patient_ref,
            "program": message.program,
            "idempotency_key": message.idempotency_key,
        }
        if message.channel == "sms":
            callback = f"{self.callback_base}/v1/webhooks/sms?" + urlencode(
                {"journey": message.journey_ref}
            )
            sent = await self.sms.send(
                SmsRequest(**base, to=decision.address, body=message.text, status_callback=callback)
            )
            message_id = sent.message_sid
        else:
            mail = await self.email.send(
                EmailRequest(
                    **base, to=decision.address, subject=message.subject or "", body=message.text
                )
            )
            message_id = mail.message_id
        log.info("message.sent", journey=message.journey_ref, step=message.step_id, id=message_id)
        return MessageOutcome(status="sent", message_id=message_id)
