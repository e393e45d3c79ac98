"""message: an SMS or email to the patient, checked at send time."""

from __future__ import annotations

import string
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from domain.steps.base import Show, StepBase, check_expression

MESSAGE_FIELDS = {"program_name", "help_contact", "days_until", "due_date"}
SMS_MAX_CHARS = 160


class MessageStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("[/", "/]")

    kind: Literal["message"]
    channel: Literal["sms", "email"]
    purpose: Literal["treatment", "adherence", "marketing"] = "treatment"
    message_class: Literal["safety", "clinical", "operational", "promotional"] = "operational"
    text: str = Field(description="Body; placeholders {program_name} {help_contact} ...")
    subject: str | None = Field(None, description="Email subject.")
    values: dict[str, str] = Field(
        default_factory=dict, description="Placeholder values, each an expression."
    )

    @field_validator("text")
    @classmethod
    def _placeholders_allowed(cls, value: str, info: ValidationInfo) -> str:
        used = {f for _, f, _, _ in string.Formatter().parse(value) if f}
        unknown = used - MESSAGE_FIELDS
        if unknown:
            raise ValueError(
                f"placeholder(s) {sorted(unknown)} not allowed in messages; "
                f"allowed: {sorted(MESSAGE_FIELDS)}"
            )
        # Checked here, not in the model validator, so the error names `text`;
        # channel and purpose are declared first, so info.data holds them when valid.
        channel, purpose = info.data.get("channel"), info.data.get("purpose", "treatment")
        if channel == "sms" and purpose == "treatment" and len(value) > SMS_MAX_CHARS:
            raise ValueError(f"treatment SMS text is {len(value)} chars; limit {SMS_MAX_CHARS}")
        return value

    @field_validator("values")
    @classmethod
    def _value_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for name, expression in value.items():
            if name not in MESSAGE_FIELDS:
                raise ValueError(f"value {name!r} is not a message placeholder")
            check_expression(expression)
        return value

    @model_validator(mode="after")
    def _channel_rules(self) -> MessageStep:
        if self.channel == "email" and not self.subject:
            raise ValueError("an email message needs a subject")
        return self

    def reads(self) -> list[tuple[str, str]]:
        return [(f"values.{name}", expr) for name, expr in self.values.items()]

    def describe(self, show: Show) -> str:
        out = f"{self.channel} {self.purpose}/{self.message_class}"
        if self.subject:
            out += f" {snippet(self.subject)!r}"
        return f"{out}: {snippet(self.text)!r}"

    def node_lines(self, show: Show) -> list[str]:
        return [f"{self.channel} · {self.purpose}"]


def snippet(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
