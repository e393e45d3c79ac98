"""delay: a durable timer, for a duration or until a time, optionally to a local HH:MM."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from domain.steps.base import Show, StepBase, check_duration, check_expression


class DelayStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("(", ")")

    kind: Literal["delay"]
    duration: str | None = None
    until: str | None = Field(None, min_length=1, description="Expression giving a date-time.")
    at_local_time: str | None = Field(
        None,
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Then on to the next HH:MM in the patient's time zone.",
    )

    _duration = field_validator("duration")(check_duration)
    _until = field_validator("until")(check_expression)

    @model_validator(mode="after")
    def _one_of(self) -> DelayStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a delay needs exactly one of `duration` or `until`")
        return self

    def reads(self) -> list[tuple[str, str]]:
        return [("until", self.until)] if self.until else []

    def describe(self, show: Show) -> str:
        out = f"for {show(self.duration)}" if self.duration else f"until {self.until}"
        if self.at_local_time:
            out += f", then {self.at_local_time} local time"
        return out

    def node_lines(self, show: Show) -> list[str]:
        lines = [f"delay {show(self.duration)}" if self.duration else f"until {self.until}"]
        if self.at_local_time:
            lines.append(f"then {self.at_local_time} local")
        return lines
