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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

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


PARAM_DURATION = re.compile(r"^params\.[A-Za-z_][A-Za-z0-9_]*$")
DURATION_FIELDS = ("timeout", "duration", "sla", "give_up_after")


def _check_duration(value: str | None) -> str | None:
    """A literal duration (`3d`) or `params.NAME` naming a duration parameter."""
    if value is None or PARAM_DURATION.match(value) or is_duration(value):
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
    inputs: dict[str, Expression] = Field(
        default_factory=dict,
        description="Extra request fields, each an expression "
        "(e.g. appeal_of: steps.pa_submit.pa_number).",
    )
    on_error: dict[str, str] = Field(
        default_factory=dict,
        description="Partner error type (e.g. payer.invalid_request, or `*`) → step id.",
    )

    @field_validator("inputs")
    @classmethod
    def _input_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for expression in value.values():
            _check_expression(expression)
        return value

    def targets(self) -> list[str]:
        return [*super().targets(), *self.on_error.values()]


class MessageStep(StepBase):
    kind: Literal["message"]
    channel: Literal["sms", "email"]
    purpose: Literal["treatment", "adherence", "marketing"] = "treatment"
    message_class: Literal["safety", "clinical", "operational", "promotional"] = "operational"
    text: str = Field(description="Body; placeholders {program_name} {help_contact} ...")
    subject: str | None = Field(None, description="Email subject.")
    values: dict[str, Expression] = Field(
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
            _check_expression(expression)
        return value

    @model_validator(mode="after")
    def _channel_rules(self) -> MessageStep:
        if self.channel == "email" and not self.subject:
            raise ValueError("an email message needs a subject")
        return self


class WaitForEventStep(StepBase):
    kind: Literal["wait_for_event"]
    event: str | list[str] = Field(description="Event type(s) that answer, e.g. pa.decided.")
    correlation: Expression = Field(description="Expression giving the correlation key.")
    timeout: str = Field(description="How long to wait (journey time).")
    on_timeout: str = Field(description="Step to go to when the timeout passes.")

    _correlation = field_validator("correlation")(_check_expression)
    _timeout = field_validator("timeout")(_check_duration)

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

    _duration = field_validator("duration")(_check_duration)
    _until = field_validator("until")(_check_expression)

    @model_validator(mode="after")
    def _one_of(self) -> DelayStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a delay needs exactly one of `duration` or `until`")
        return self


class BranchCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: Expression
    goto: str

    _when = field_validator("when")(_check_expression)


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

    _sla = field_validator("sla")(_check_duration)
    _give_up = field_validator("give_up_after")(_check_duration)

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
        """All problems, one a line: `step 'id' (steps[i]) field 'f': what is wrong`."""
        problems: list[str] = []
        ids = [s.id for s in self.steps]
        for i, step in enumerate(self.steps):
            where = f"step {step.id!r} (steps[{i}])"
            if ids.index(step.id) != i:
                problems.append(
                    f"{where} field 'id': duplicate step id (also steps[{ids.index(step.id)}])"
                )
            links = step_links(step)
            # targets() is what the interpreter follows; step_links names the fields.
            unnamed = [t for t in step.targets() if t not in {t for _, t in links}]
            for field, target in [*links, *(("?", t) for t in unnamed)]:
                if target not in ids:
                    problems.append(f"{where} field {field!r}: goes to unknown step {target!r}")
            for field, name in _param_refs(step):
                value = self.parameters.get(name)
                if name not in self.parameters:
                    problems.append(f"{where} field {field!r}: undefined parameter {name!r}")
                elif field in DURATION_FIELDS and value is not None and not _is_duration(value):
                    problems.append(
                        f"{where} field {field!r}: parameter {name!r} is {value!r}, "
                        "not a duration (use e.g. 30m, 72h, 3d or P3D)"
                    )
        last = self.steps[-1]
        if not isinstance(last, ExitStep | BranchStep) and last.next is None:
            problems.append(
                f"step {last.id!r} (steps[{len(ids) - 1}]) field 'next': "
                "the last step must be an exit or name `next`"
            )
        if problems:
            raise ValueError("\n".join(problems))
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


def step_links(step: StepBase) -> list[tuple[str, str]]:
    """(field, step id) for each step this one names as where control may go."""
    links = [("next", step.next)] if step.next else []
    if isinstance(step, PartnerActionStep):
        links += [(f"on_error.{error}", target) for error, target in step.on_error.items()]
    elif isinstance(step, BranchStep):
        links += [(f"cases[{i}].goto", case.goto) for i, case in enumerate(step.cases)]
        links.append(("default", step.default))
    elif isinstance(step, WaitForEventStep | HumanTaskStep) and step.on_timeout:
        links.append(("on_timeout", step.on_timeout))
    return links


def _is_duration(value: Any) -> bool:
    return isinstance(value, str) and is_duration(value)


def _param_refs(step: StepBase) -> list[tuple[str, str]]:
    """(field path, parameter name) for each `params.NAME` in a step's fields."""
    found: list[tuple[str, str]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            found.extend((path, name) for name in dict.fromkeys(_PARAM_REF.findall(value)))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(step.model_dump(mode="json"), "")
    return found
