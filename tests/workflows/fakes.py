"""Scripted partners for workflow tests (one layer: the journey logic, not partners).

Derived from the partner-action registry: one fake activity per action, which builds the
action's typed request from the call exactly as the real activity does (so a template
that sends a bad request fails here too) and checks each scripted answer against the
action's result model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.partners import typed_request
from domain.actions import (
    ContactOutcome,
    ContactRequest,
    MessageOutcome,
    OutboundMessage,
    PartnerCall,
    TaskChange,
)
from domain.content import ContentRef, default_catalog
from domain.events import MESSAGE_RECEIPT
from domain.partner_actions import ACTIONS, PartnerAction
from domain.partners import PartnerEvent
from domain.timeline import TimelineNote

# Every step of specialty_start answered: consent sent, PA needed and approved at once.
APPROVING: dict[str, Any] = {
    "consent.request": {"request_id": "CR-1"},
    "payer.verify_benefits": {"coverage_active": True, "pa_required": True},
    "payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "approved"},
    "payer.submit_appeal": {"pa_number": "PA-2", "outcome": "pended"},
    "pharmacy.refer": {"rx_id": "RX-1"},
}

Answer = dict[str, Any] | Exception | Callable[[PartnerCall], dict[str, Any]]


@dataclass(frozen=True)
class Sent:
    """A message as the fake gateway saw it."""

    step_id: str
    idempotency_key: str
    text: str


class ScriptedPartners:
    """Answers per action; records every call (with its idempotency key)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[PartnerCall] = []
        self.messages: list[Sent] = []
        self.timeline: list[TimelineNote] = []
        # The delivery receipt each channel gets (None: none ever comes).
        self.receipts: dict[str, str | None] = {"sms": "delivered", "email": "delivered",
                                                "voice": "delivered"}  # fmt: skip
        self.client: Client | None = None
        self.task_changes: list[TaskChange] = []
        self._pending: list[asyncio.Task[None]] = []

    async def _receipt(self, workflow_id: str, message_id: str, outcome: str) -> None:
        assert self.client is not None
        event = PartnerEvent(
            event_id=f"receipt:{message_id}", type=MESSAGE_RECEIPT, correlation_key=message_id,
            journey_ref=workflow_id, occurred_at=datetime.now(UTC), data={"outcome": outcome},
        )  # fmt: skip
        await self.client.get_workflow_handle(workflow_id).signal("event", event)

    def activities(self) -> list[Callable[..., Any]]:
        def make(spec: PartnerAction) -> Callable[..., Any]:
            @activity.defn(name=spec.name)
            async def run(call: PartnerCall) -> dict[str, Any]:
                self.calls.append(call)
                typed_request(call)
                answer = self.answers[spec.name]
                if isinstance(answer, Exception):
                    raise answer
                result = answer(call) if callable(answer) else answer
                return spec.result.model_validate(result).model_dump(mode="json")

            return run

        @activity.defn(name="messaging.send")
        async def send(message: OutboundMessage) -> MessageOutcome:
            self.messages.append(Sent(message.step_id, message.idempotency_key, message.text))
            return MessageOutcome(status="sent", message_id=f"SM{len(self.messages)}")

        @activity.defn(name="messaging.contact")
        async def contact(request: ContactRequest) -> ContactOutcome:
            channel = next(c for c in request.channels if c not in request.exclude)
            text = request.text
            if request.content is not None and channel != "task":  # as read, in English
                text = default_catalog().render(
                    ContentRef.parse(request.content), channel, "en", request.values,
                    detail_allowed=False,
                ).text  # fmt: skip
            self.messages.append(Sent(request.step_id, request.idempotency_key, text or ""))
            message_id = f"SM{len(self.messages)}"
            receipt = self.receipts.get(channel)
            if receipt is not None and self.client is not None:
                # As the receiver does for a contact a journey waits on (fallback left).
                self._pending.append(
                    asyncio.create_task(
                        self._receipt(activity.info().workflow_id or "", message_id, receipt)
                    )
                )
            return ContactOutcome(status="sent", channel=channel, message_id=message_id)

        @activity.defn(name="timeline.record")
        async def record(notes: list[TimelineNote]) -> int:
            known = {n.idempotency_key for n in self.timeline}
            fresh = [n for n in notes if n.idempotency_key not in known]
            self.timeline.extend(fresh)
            return len(fresh)

        @activity.defn(name="tasks.record")
        async def task_changed(change: TaskChange) -> None:
            self.task_changes.append(change)

        return [*(make(spec) for spec in ACTIONS.values()), send, contact, record, task_changed]


def rejected(code: str) -> ApplicationError:
    return ApplicationError("partner rejected the request", type=code, non_retryable=True)


def unavailable() -> ApplicationError:
    """A partner outage, as the real activity raises it (retryable)."""
    return ApplicationError("partner unavailable (503)", type="partner.unavailable")
