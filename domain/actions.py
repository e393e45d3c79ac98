"""What a journey asks its side effects to do, and what they answer (activity payloads)."""

from __future__ import annotations

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
    channel: Literal["sms", "email"]
    purpose: Literal["treatment", "adherence", "marketing"]
    message_class: Literal["safety", "clinical", "operational", "promotional"]
    text: str
    subject: str | None = None


class MessageOutcome(BaseModel):
    status: Literal["sent", "suppressed"]
    reason: str | None = Field(None, description="Why suppressed: no_consent, opted_out, ...")
    message_id: str | None = None
