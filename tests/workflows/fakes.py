"""Scripted activities for workflow tests (one layer: the journey logic, not partners)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.actions import MessageOutcome, OutboundMessage, PartnerCall
from domain.timeline import TimelineNote


class ScriptedPartners:
    """Answers per action; records every call (with its idempotency key)."""

    def __init__(self, answers: dict[str, dict[str, Any] | Exception]) -> None:
        self.answers = answers
        self.calls: list[PartnerCall] = []
        self.messages: list[OutboundMessage] = []
        self.timeline: list[TimelineNote] = []

    def activities(self) -> list[Callable[..., Any]]:
        def make(name: str) -> Callable[..., Any]:
            @activity.defn(name=name)
            async def run(call: PartnerCall) -> dict[str, Any]:
                self.calls.append(call)
                answer = self.answers[name]
                if isinstance(answer, Exception):
                    raise answer
                return answer

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

        names = [
            "consent.request",
            "payer.verify_benefits",
            "payer.submit_prior_auth",
            "payer.submit_appeal",
            "pharmacy.refer",
        ]
        return [*(make(n) for n in names), send, record]


def rejected(code: str) -> ApplicationError:
    return ApplicationError("partner rejected the request", type=code, non_retryable=True)
