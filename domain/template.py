"""Journey templates: the data a journey runs. Validated on load; see templates/*.yaml.

A template is a list of steps. Each step runs, then control passes to `next`
(default: the following step), or to the target a branch, timeout or error names.
Values that depend on the journey are expressions (domain/expressions.py) over:
`params` (template parameters, overridable at start), `context` (the start
request's context), `steps.<id>` (a partner action's result), `events.<id>` (the
event a wait received: its `data` plus `occurred_at`), and `journey` (id, program,
patient_ref, started_at).
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain import expressions
from domain.durations import is_duration

STEP_ID = r"^[a-z][a-z0-9_]*$"
EVENT_TYPE = re.compile(r"^[a-z_]+\.[a-z_]+$")
CONTEXT_ROOTS = {"params", "context", "steps", "events", "journey"}
PARTNER_ACTIONS = (
    "consent.request",
    "payer.verify_benefits",
    "payer.submit_prior_auth",
    "payer.submit_appeal",
    "pharmacy.refer",
)
MESSAGE_FIELDS = {"program_name", "help_contact", "days_until", "due_date"}
SMS_MAX_CHARS = 160


def _check_expression(value: str) -> str:
    unknown = expressions.names(value) - CONTEXT_ROOTS - {"true", "false", "null"}
    if unknown:
        raise ValueError(
            f"expression {value!r} reads unknown name(s) {sorted(unknown)}; "
            f"use {sorted(CONTEXT_ROOTS)}"
        )
    return value


Expression = Annotated[str, Field(min_length=1)]


def _check_duration(value: str) -> str:
    """A literal duration (`3d`) or `params.NAME` naming a duration parameter."""
    if value.startswith("params.") or is_duration(value):
        return value
    raise ValueError(f"invalid duration {value!r} (use e.g. 30m, 72h, 3d, P3D or params.NAME)")


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID, description="Unique within the template.")
    title: str = ""
    stage: str | None = Field(
        None, description="Journey stage entered when this step starts (e.g. PA_SUBMITTED)."
    )
    next: str | None = Field(None, description="Step to go to after this one; default follows.")

    def targets(self) -> list[str]:
        return [self.next] if self.next else []


class PartnerActionStep(StepBase):
    kind: Literal["partner_action"]
    action: Literal[PARTNER_ACTIONS]  # type: ignore[valid-type]
    on_error: dict[str, str] = Field(
        default_factory=dict,
        description="Partner error type (e.g. payer.invalid_request, or `*`) → step id.",
    )

    def targets(self) -> list[str]:
        return [*super().targets(), *self.on_error.values()]


class MessageStep(StepBase):
    kind: Literal["message"]
    channel: Literal["sms", "email"]
    purpose: Literal["treatment", "adherence", "marketing"] = "treatment"
    message_class: Literal["safety", "clinical", "operational", "promotional"] = "operational"
    text: str = Field(description="Body; placeholders {program_name} {help_contact} ...")
    subject: str | None = Field(None, description="Email subject.")

    @field_validator("text")
    @classmethod
    def _placeholders_allowed(cls, value: str) -> str:
        used = {f for _, f, _, _ in string.Formatter().parse(value) if f}
        unknown = used - MESSAGE_FIELDS
        if unknown:
            raise ValueError(
                f"placeholder(s) {sorted(unknown)} not allowed in messages; "
                f"allowed: {sorted(MESSAGE_FIELDS)}"
            )
        return value

    @model_validator(mode="after")
    def _channel_rules(self) -> MessageStep:
        if self.channel == "sms" and self.purpose == "treatment" and len(self.text) > SMS_MAX_CHARS:
            raise ValueError(f"treatment SMS text is {len(self.text)} chars; limit {SMS_MAX_CHARS}")
        if self.channel == "email" and not self.subject:
            raise ValueError("an email message needs a subject")
        return self


class WaitForEventStep(StepBase):
    kind: Literal["wait_for_event"]
    event: str | list[str] = Field(description="Event type(s) that answer, e.g. pa.decided.")
    correlation: Expression = Field(description="Expression giving the correlation key.")
    timeout: str = Field(description="How long to wait (journey time).")
    on_timeout: str = Field(description="Step to go to when the timeout passes.")

    _correlation = field_validator("correlation")(_check_expression)  # type: ignore[pydantic-field]
    _timeout = field_validator("timeout")(_check_duration)  # type: ignore[pydantic-field]

    @field_validator("event")
    @classmethod
    def _event_types(cls, value: str | list[str]) -> str | list[str]:
        for event_type in [value] if isinstance(value, str) else value:
            if not EVENT_TYPE.match(event_type):
                raise ValueError(f"event type {event_type!r} must look like `pa.decided`")
        return value

    def event_types(self) -> list[str]:
        return [self.event] if isinstance(self.event, str) else list(self.event)

    def targets(self) -> list[str]:
        return [*super().targets(), self.on_timeout]


class DelayStep(StepBase):
    kind: Literal["delay"]
    duration: str | None = None
    until: Expression | None = Field(None, description="Expression giving a date-time.")
    at_local_time: str | None = Field(
        None,
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Then on to the next HH:MM in the patient's time zone.",
    )

    _duration = field_validator("duration")(_check_duration)  # type: ignore[pydantic-field]
    _until = field_validator("until")(_check_expression)  # type: ignore[pydantic-field]

    @model_validator(mode="after")
    def _one_of(self) -> DelayStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a delay needs exactly one of `duration` or `until`")
        return self


class BranchCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: Expression
    goto: str

    _when = field_validator("when")(_check_expression)  # type: ignore[pydantic-field]


class BranchStep(StepBase):
    kind: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    default: str

    def targets(self) -> list[str]:
        return [*super().targets(), *(c.goto for c in self.cases), self.default]


class HumanTaskStep(StepBase):
    kind: Literal["human_task"]
    role: str = Field(description="Assignee role, e.g. case_manager.")
    sla: str = Field(description="Escalate when not done within this.")
    escalate_to: str = Field(description="Role that receives the escalation.")
    give_up_after: str | None = Field(
        None, description="After escalation, stop waiting after this and go to on_timeout."
    )
    on_timeout: str | None = None

    _sla = field_validator("sla")(_check_duration)  # type: ignore[pydantic-field]
    _give_up = field_validator("give_up_after")(_check_duration)  # type: ignore[pydantic-field]

    @model_validator(mode="after")
    def _give_up_pair(self) -> HumanTaskStep:
        if (self.give_up_after is None) != (self.on_timeout is None):
            raise ValueError("`give_up_after` and `on_timeout` go together")
        return self

    def targets(self) -> list[str]:
        return [*super().targets(), *([self.on_timeout] if self.on_timeout else [])]


class ExitStep(StepBase):
    kind: Literal["exit"]
    outcome: Literal["completed", "abandoned", "discontinued", "cancelled"] = "completed"
    reason: str = ""


Step = Annotated[
    PartnerActionStep
    | MessageStep
    | WaitForEventStep
    | DelayStep
    | BranchStep
    | HumanTaskStep
    | ExitStep,
    Field(discriminator="kind"),
]


class JourneyTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID)
    version: int = Field(ge=1)
    description: str = ""
    program_name: str = Field("Pitwall Patient Support", description="Name patients see.")
    help_contact: str = Field("1-800-555-0100", description="Help line shown in messages.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _graph_is_closed(self) -> JourneyTemplate:
        ids = [s.id for s in self.steps]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate step id(s): {dupes}")
        known = set(ids)
        for step in self.steps:
            for target in step.targets():
                if target not in known:
                    raise ValueError(f"step {step.id!r} goes to unknown step {target!r}")
            for name in _param_refs(step):
                if name not in self.parameters:
                    raise ValueError(f"step {step.id!r} uses undefined parameter {name!r}")
        if not isinstance(self.steps[-1], ExitStep) and self.steps[-1].next is None:
            raise ValueError(f"last step {self.steps[-1].id!r} must be an exit or name `next`")
        return self

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def following(self, step_id: str) -> str | None:
        ids = [s.id for s in self.steps]
        i = ids.index(step_id)
        return ids[i + 1] if i + 1 < len(ids) else None


_PARAM_REF = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")


def _param_refs(step: StepBase) -> set[str]:
    text = step.model_dump_json()
    return set(_PARAM_REF.findall(text))
