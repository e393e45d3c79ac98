"""message: one contact with the patient, decided by the contact policy when it goes.

A step names what it is: the approved content (`content: welcome@1`, from
templates/messages/), its purpose and class, and the channels allowed in order of
preference. The text is rendered at send time, per channel, in the patient's language.

Steps of the first generation (one `channel`, an inline `text`) still parse, so journeys
that carry them in their template snapshot keep running; the template loader refuses
them in new templates.
"""

from __future__ import annotations

import string
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from domain.steps.base import Show, StepBase, check_duration, check_expression

# Placeholders of first-generation inline texts.
MESSAGE_FIELDS = {"program_name", "help_contact", "days_until", "due_date"}
# Values a step may pass (each an expression); the rest come from the template and the
# patient record at send time. The drug's name only ever fills detail wording.
VALUE_FIELDS = MESSAGE_FIELDS | {"drug_name"}
SMS_MAX_CHARS = 160
Channel = Literal["sms", "email", "voice", "push", "task"]


class MessageStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("[/", "/]")

    kind: Literal["message"]
    purpose: Literal["treatment", "adherence", "marketing"] = "treatment"
    message_class: Literal["safety", "clinical", "operational", "promotional"] = "operational"
    content: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9_]*@[1-9][0-9]*$", description="Approved content id@version."
    )
    channels: list[Channel] = Field(
        default_factory=list, description="Allowed channels, most preferred first."
    )
    values: dict[str, str] = Field(
        default_factory=dict, description="Placeholder values, each an expression."
    )
    reason: str | None = Field(
        None,
        description="Expression naming why it is sent; the same content for the same reason "
        "goes once per patient across journeys (default: this journey and step, with the "
        "values).",
    )
    receipt_window: str = Field(
        "4h", description="No delivery receipt by then: fall back to the next channel."
    )
    # -- first generation (inline text, one channel) -----------------------------------
    channel: Literal["sms", "email"] | None = None
    text: str | None = Field(None, description="Retired: inline body.")
    subject: str | None = Field(None, description="Retired: inline email subject.")

    @field_validator("text")
    @classmethod
    def _placeholders_allowed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
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
            if name not in VALUE_FIELDS:
                raise ValueError(f"value {name!r} is not a message placeholder")
            check_expression(expression)
        return value

    @field_validator("reason")
    @classmethod
    def _reason_expression(cls, value: str | None) -> str | None:
        return check_expression(value)

    @field_validator("receipt_window")
    @classmethod
    def _window(cls, value: str) -> str:
        check_duration(value)
        return value

    @model_validator(mode="after")
    def _content_or_inline(self) -> MessageStep:
        if self.content is not None:
            if self.text is not None or self.channel is not None:
                raise ValueError("name `content` and `channels`, or (retired) `channel` + `text`")
            if not self.channels:
                raise ValueError("a message needs `channels`, most preferred first")
            if len(set(self.channels)) != len(self.channels):
                raise ValueError("`channels` lists a channel twice")
            if self.channels[-1:] != ["task"] and "task" in self.channels:
                raise ValueError("`task` (a person calls) can only be the last channel")
            if self.purpose == "marketing" and "task" in self.channels:
                raise ValueError("marketing never becomes a task for the hub")
            return self
        if self.text is None or self.channel is None:
            raise ValueError("a message needs `content` (approved content id@version)")
        if self.channels:
            raise ValueError("`channels` goes with `content`")
        if self.channel == "email" and not self.subject:
            raise ValueError("an email message needs a subject")
        return self

    @property
    def allowed_channels(self) -> list[Channel]:
        return list(self.channels) if self.content else [self.channel or "sms"]

    def reads(self) -> list[tuple[str, str]]:
        reads = [(f"values.{name}", expr) for name, expr in self.values.items()]
        return reads + ([("reason", self.reason)] if self.reason else [])

    def describe(self, show: Show) -> str:
        if self.content:
            return (
                f"{' > '.join(self.channels)} {self.purpose}/{self.message_class}: {self.content}"
            )
        out = f"{self.channel} {self.purpose}/{self.message_class}"
        if self.subject:
            out += f" {snippet(self.subject)!r}"
        return f"{out}: {snippet(self.text or '')!r}"

    def node_lines(self, show: Show) -> list[str]:
        if self.content:
            return [f"{self.content} · {self.purpose}", " > ".join(self.channels)]
        return [f"{self.channel} · {self.purpose}"]


def snippet(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
