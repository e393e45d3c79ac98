"""wait_for_event: wait for a declared event matching a correlation key, or time out."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from domain.events import EVENT_TYPE, did_you_mean
from domain.steps.base import (
    Exit,
    Problems,
    Show,
    StepBase,
    TemplateFacts,
    as_written,
    check_duration,
    check_expression,
)


class WaitForEventStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("{{", "}}")
    writes: ClassVar[str | None] = "events"
    highlight: ClassVar[str | None] = "wait_for_event"

    kind: Literal["wait_for_event"]
    event: str | list[str] = Field(description="Event type(s) that answer, e.g. pa.decided.")
    correlation: str = Field(min_length=1, description="Expression giving the correlation key.")
    timeout: str = Field(description="How long to wait (journey time).")
    on_timeout: str = Field(description="Step to go to when the timeout passes.")

    _correlation = field_validator("correlation")(check_expression)
    _timeout = field_validator("timeout")(check_duration)

    @field_validator("event")
    @classmethod
    def _event_types(cls, value: str | list[str]) -> str | list[str]:
        for event_type in [value] if isinstance(value, str) else value:
            if not EVENT_TYPE.match(event_type):
                raise ValueError(f"event type {event_type!r} must look like `pa.decided`")
        return value

    def event_types(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)

    def exits(self, show: Show = as_written) -> list[Exit]:
        return [
            *self.onward(" | ".join(self.event_types())),
            Exit("on_timeout", f"timeout {show(self.timeout)}", self.on_timeout),
        ]

    def reads(self) -> list[tuple[str, str]]:
        return [("correlation", self.correlation)]

    def check(self, facts: TemplateFacts) -> Problems:
        return [
            ("event", f"event type {t!r} is not declared{did_you_mean(t, facts.event_types)} "
             "(partner callbacks, task/operator events, or the template's `events:`)")
            for t in self.event_types()
            if t not in facts.event_types
        ]  # fmt: skip

    def describe(self, show: Show) -> str:
        return (
            f"wait for {' | '.join(self.event_types())} matching {self.correlation}; "
            f"timeout {show(self.timeout)} → {self.on_timeout}"
        )

    def node_lines(self, show: Show) -> list[str]:
        return ["wait: " + " | ".join(self.event_types())]
