"""human_task: work for a person, with an SLA, an escalation and an optional give-up."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.steps.base import Exit, Show, StepBase, as_written, check_task_duration


class Escalation(BaseModel):
    """A further level: not done `after` this (from the level before), `to` takes it.
    The same role as before is a reminder to it."""

    model_config = ConfigDict(extra="forbid")

    after: str = Field(description="Duration or business time (`24h`, `16bh`, params.NAME).")
    to: str = Field(description="The role that takes it (the same role: a reminder).")

    _after = field_validator("after")(check_task_duration)


class HumanTaskStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("[[", "]]")
    writes: ClassVar[str | None] = "events"
    highlight: ClassVar[str | None] = "human_task"

    kind: Literal["human_task"]
    role: str = Field(description="Assignee role, e.g. case_manager.")
    sla: str = Field(
        description="Escalate when not done within this: wall-clock (`2d`) or business time "
        "on the template's calendar (`8bh`, `2bd`)."
    )
    escalate_to: str = Field(description="Role that receives the escalation.")
    escalations: list[Escalation] = Field(
        default_factory=list,
        description="Further levels after the first: each `{after, to}`, in order.",
    )
    give_up_after: str | None = Field(
        None, description="After escalation, stop waiting after this and go to on_timeout."
    )
    on_timeout: str | None = None

    _sla = field_validator("sla")(check_task_duration)
    _give_up = field_validator("give_up_after")(check_task_duration)

    @model_validator(mode="after")
    def _give_up_pair(self) -> HumanTaskStep:
        if (self.give_up_after is None) != (self.on_timeout is None):
            raise ValueError("`give_up_after` and `on_timeout` go together")
        return self

    def exits(self, show: Show = as_written) -> list[Exit]:
        if self.on_timeout is None:
            return self.onward()
        gave_up = Exit("on_timeout", f"timeout: gave up after {show(self.give_up_after)}",
                       self.on_timeout)  # fmt: skip
        return [*self.onward("done"), gave_up]

    def describe(self, show: Show) -> str:
        out = f"task for {self.role}"
        if self.title:
            out += f" {self.title!r}"
        out += f"; SLA {show(self.sla)}, escalate to {self.escalate_to}"
        for level in self.escalations:
            out += f", then after {show(level.after)} to {level.to}"
        if self.give_up_after:
            out += f"; give up after {show(self.give_up_after)} → {self.on_timeout}"
        return out

    def node_lines(self, show: Show) -> list[str]:
        return [f"task: {self.role}, SLA {show(self.sla)}"]
