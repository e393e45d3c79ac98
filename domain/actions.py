"""What a journey asks its side effects to do, and what they answer (activity payloads)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class SideEffect(BaseModel):
    journey_ref: str
    patient_ref: str
    program: str
    step_id: str
    idempotency_key: str = Field(description="Workflow id + step id + visit; never the attempt.")


class PartnerCall(SideEffect):
    action: str
    fields: dict[str, Any] = Field(default_factory=dict, description="Template params + inputs.")


class OutboundMessage(SideEffect):
    """A message of the first message steps (one channel, inline text). Journeys that
    recorded it still replay with it; new steps send a `ContactRequest`."""

    channel: Literal["sms", "email"]
    purpose: Literal["treatment", "adherence", "marketing"]
    message_class: Literal["safety", "clinical", "operational", "promotional"]
    text: str
    subject: str | None = None


class MessageOutcome(BaseModel):
    status: Literal["sent", "suppressed"]
    reason: str | None = Field(None, description="Why suppressed: no_consent, opted_out, ...")
    message_id: str | None = None


ContactChannel = Literal["sms", "email", "voice", "push", "task"]


class ContactRequest(SideEffect):
    """One try at one contact, decided by the contact policy when it goes.

    `idempotency_key` is the step visit's; the n-th fallback (`attempt`) gets its own
    ledger row. `at` is the journey's clock: quiet hours, caps and deferrals count on it,
    so a time-skipped test and the simulator see the same rules as production."""

    content: str | None = Field(None, description="Approved content, e.g. welcome@1.")
    text: str | None = Field(None, description="Inline text of a first-generation step.")
    subject: str | None = None
    purpose: Literal["treatment", "adherence", "marketing"]
    message_class: Literal["safety", "clinical", "operational", "promotional"]
    channels: list[ContactChannel]
    values: dict[str, str] = Field(default_factory=dict, description="Placeholder values.")
    reason: str = Field(description="Why it is sent: the same content for one reason goes once.")
    attempt: int = 0
    exclude: list[ContactChannel] = Field(default_factory=list)
    at: datetime

    @property
    def attempt_key(self) -> str:
        return (
            self.idempotency_key
            if self.attempt == 0
            else (f"{self.idempotency_key}/fallback-{self.attempt}")
        )


class ContactOutcome(BaseModel):
    status: Literal["sent", "deferred", "suppressed", "failed", "unknown"]
    channel: ContactChannel | None = None
    message_id: str | None = Field(None, description="The gateway's id (SMS sid, call sid...).")
    until: datetime | None = Field(None, description="Deferred: decide again at this time.")
    reason: str | None = None
    settled: Literal["delivered", "failed"] | None = Field(
        None, description="Sent, and its receipt already in: no need to wait for it."
    )


class TaskChange(SideEffect):
    """What happened to a journey's human task, for the task queue (the store)."""

    change: Literal["opened", "escalated", "completed", "abandoned", "cancelled"]
    task_id: str = Field(description="The journey's own task id, e.g. schedule_training-1.")
    title: str = ""
    role: str
    priority: Literal["routine", "urgent", "asap", "stat"] = "routine"
    opened_at: datetime
    due_at: datetime | None = None
    outcome: str | None = None


def dedupe_key(request: ContactRequest) -> str:
    """The same content for the same reason is never sent twice (to one patient)."""
    what = request.content or hashlib.sha256((request.text or "").encode()).hexdigest()[:16]
    digest = hashlib.sha256(request.reason.encode()).hexdigest()[:24]
    return f"{what}:{digest}"
