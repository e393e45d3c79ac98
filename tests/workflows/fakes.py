"""Scripted partners for workflow tests (one layer: the journey logic, not partners).

Derived from the partner-action registry: one fake activity per action, which builds the
action's typed request from the call exactly as the real activity does (so a template
that sends a bad request fails here too) and checks each scripted answer against the
action's result model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.partners import typed_request
from domain.actions import MessageOutcome, OutboundMessage, PartnerCall
from domain.partner_actions import ACTIONS, PartnerAction
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


class ScriptedPartners:
    """Answers per action; records every call (with its idempotency key)."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[PartnerCall] = []
        self.messages: list[OutboundMessage] = []
        self.timeline: list[TimelineNote] = []

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
            self.messages.append(message)
            return MessageOutcome(status="sent", message_id=f"SM{len(self.messages)}")

        @activity.defn(name="timeline.record")
        async def record(notes: list[TimelineNote]) -> int:
            known = {n.idempotency_key for n in self.timeline}
            fresh = [n for n in notes if n.idempotency_key not in known]
            self.timeline.extend(fresh)
            return len(fresh)

        return [*(make(spec) for spec in ACTIONS.values()), send, record]


def rejected(code: str) -> ApplicationError:
    return ApplicationError("partner rejected the request", type=code, non_retryable=True)


def unavailable() -> ApplicationError:
    """A partner outage, as the real activity raises it (retryable)."""
    return ApplicationError("partner unavailable (503)", type="partner.unavailable")
