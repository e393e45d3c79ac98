"""Journey templates: the data a journey runs. Validated on load; see templates/*.yaml.

A template is a sequence of steps (kinds: domain/steps/). Each step runs, then control
passes to `next` (default: the following step), or to the target a branch, timeout or
error names. Kinds that hold steps (parallel, repeat) hold sequences of their own;
control moves only within a sequence, and falling off the end of a nested one ends it.
Values that depend on the journey are expressions (domain/expressions.py) over:
`params` (template parameters, overridable at start), `context` (the start request's
context), `steps.<id>` (a partner action's or parallel step's result), `events.<id>`
(the event a wait received: its `data` plus `occurred_at`), `loops.<id>.iteration`
and `journey` (id, program, patient_ref, started_at).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from domain.business_calendar import DEFAULT_CALENDAR, BusinessCalendar, is_business_duration
from domain.durations import is_duration
from domain.events import EVENT_TYPE, core_event_types, declared_event_types, did_you_mean
from domain.refill_risk import RiskWeights
from domain.steps import Step
from domain.steps.base import (
    BUSINESS_TIME_FIELDS,
    DURATION_FIELDS,
    STEP_ID,
    StepBase,
    TemplateFacts,
)


@dataclass(frozen=True)
class Placement:
    """Where a step sits: its path (`steps[3].branches[0].steps[1]`) and its sequence."""

    step: StepBase
    path: str
    sequence: tuple[str, ...]  # ids of the steps in the same sequence, in order
    nested: bool

    def following(self) -> str | None:
        i = self.sequence.index(self.step.id)
        return self.sequence[i + 1] if i + 1 < len(self.sequence) else None


class JourneyTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID)
    version: int = Field(ge=1)
    description: str = ""
    program_name: str = Field("Pitwall Patient Support", description="Name patients see.")
    help_contact: str = Field("1-800-555-0100", description="Help line shown in messages.")
    calendar: BusinessCalendar = Field(
        DEFAULT_CALENDAR,
        description="The program's business calendar: task SLAs in business time (`8bh`, "
        "`2bd`) count its working hours, days and holidays, in its time zone.",
    )
    products: list[str] = Field(
        default_factory=list,
        description="The program's own product names: never in an SMS, push or voicemail "
        "unless the patient's consent allows detail (checked with the drug dictionary).",
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    risk_weights: RiskWeights = Field(
        default_factory=RiskWeights,
        description="Refill-gap risk weights (domain/refill_risk.py); a program may set its own.",
    )
    partner_attempts: int = Field(
        12,
        ge=1,
        le=100,
        description="Attempts at a partner call that meets an outage (5xx, timeout), with "
        "backoff from 1 s doubling to 30 s (12: about 4 minutes); then the journey is held "
        "for an operator, and goes on after `operator.retry`.",
    )
    events: dict[str, str] = Field(
        default_factory=dict,
        description="Program events this template waits for (type → what it means), "
        "beyond partner callbacks and task/operator events.",
    )
    steps: list[Step] = Field(min_length=1)

    _places: dict[str, Placement] = PrivateAttr(default_factory=dict)

    @field_validator("events")
    @classmethod
    def _program_events(cls, value: dict[str, str]) -> dict[str, str]:
        core = core_event_types()
        for event_type in value:
            if not EVENT_TYPE.match(event_type):
                raise ValueError(f"event type {event_type!r} must look like `patient.dose_taken`")
            if event_type in core:
                raise ValueError(f"event type {event_type!r} is built in; do not declare it")
        return value

    @model_validator(mode="after")
    def _graph_is_closed(self) -> JourneyTemplate:
        """All problems, one a line: `step 'id' (steps[i]) field 'f': what is wrong`."""
        problems: list[str] = []
        places: list[Placement] = []
        _place(self.steps, "steps", False, places)
        first_at: dict[str, str] = {}
        for place in places:
            if place.step.id in first_at:
                problems.append(
                    f"step {place.step.id!r} ({place.path}) field 'id': duplicate step id "
                    f"(also {first_at[place.step.id]})"
                )
            else:
                first_at[place.step.id] = place.path
        self._places = {p.step.id: p for p in places if first_at[p.step.id] == p.path}
        facts = TemplateFacts(
            parameters=self.parameters,
            event_types=declared_event_types(self.events),
            result_fields={i: p.step.result_fields() for i, p in self._places.items()},
        )
        for place in places:
            problems += [
                f"step {place.step.id!r} ({place.path}) field {field!r}: {what}"
                for field, what in self._step_problems(place, facts)
            ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _step_problems(self, place: Placement, facts: TemplateFacts) -> list[tuple[str, str]]:
        step, found = place.step, []
        for exit_ in step.exits():
            if exit_.target is None:
                if not place.nested and place.following() is None:
                    found.append((exit_.field, "the last step must be an exit or name `next`"))
            elif exit_.target not in self._places:
                found.append((exit_.field, f"goes to unknown step {exit_.target!r}"))
            elif exit_.target not in place.sequence:
                found.append((exit_.field, f"goes to step {exit_.target!r}, which is in another "
                              "sequence (control moves only within a sequence)"))  # fmt: skip
        found += _param_problems(step, self.parameters)
        found += step.check(facts)
        for field, expression in step.reads():
            found += [(field, what) for what in _read_problems(expression, self._places, facts)]
        return found

    # -- lookups -------------------------------------------------------------------------
    def places(self) -> dict[str, Placement]:
        return self._places

    def step(self, step_id: str) -> Step:
        try:
            return self._places[step_id].step
        except KeyError:
            raise KeyError(step_id) from None

    def following(self, step_id: str) -> str | None:
        """The step after this one in its own sequence (None at the end)."""
        return self._places[step_id].following()

    def all_steps(self) -> list[StepBase]:
        return [p.step for p in self._places.values()]


def _place(steps: list[Any], path: str, nested: bool, out: list[Placement]) -> None:
    ids = tuple(s.id for s in steps)
    for i, step in enumerate(steps):
        here = f"{path}[{i}]"
        out.append(Placement(step, here, ids, nested))
        for child_path, children in step.children():
            _place(children, f"{here}.{child_path}", True, out)


_PARAM_REF = re.compile(r"\bparams\.([A-Za-z_][A-Za-z0-9_]*)")
_READ = re.compile(r"\b(steps|events|loops)\.([a-z][a-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?")


def _read_problems(
    expression: str, places: dict[str, Placement], facts: TemplateFacts
) -> list[str]:
    """`steps.X.Y` must name a step whose result has Y; `events.X` a step that waits."""
    found = []
    for root, step_id, attr in _READ.findall(expression):
        place = places.get(step_id)
        if place is None:
            found.append(f"{expression!r} reads {root}.{step_id}, but there is no step "
                         f"{step_id!r}{did_you_mean(step_id, places)}")  # fmt: skip
            continue
        if place.step.writes != root:
            found.append(f"{expression!r} reads {root}.{step_id}, but a "
                         f"{place.step.kind} step puts nothing under {root}")  # fmt: skip
            continue
        fields = facts.result_fields.get(step_id)
        if attr and fields is not None and attr not in fields:
            found.append(f"{expression!r} reads {root}.{step_id}.{attr}, which step "
                         f"{step_id!r} never returns; it returns {sorted(fields)}")  # fmt: skip
    return found


def _param_problems(step: StepBase, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for field, name in _param_refs(step):
        value = parameters.get(name)
        if name not in parameters:
            found.append((field, f"undefined parameter {name!r}"))
        elif field in DURATION_FIELDS and value is not None and not _is_duration(value, field):
            found.append((field, f"parameter {name!r} is {value!r}, "
                          "not a duration (use e.g. 30m, 72h, 3d or P3D)"))  # fmt: skip
    return found


def _is_duration(value: Any, field: str) -> bool:
    if not isinstance(value, str):
        return False
    return is_duration(value) or (field in BUSINESS_TIME_FIELDS and is_business_duration(value))


def _param_refs(step: StepBase) -> list[tuple[str, str]]:
    """(field path, parameter name) for each `params.NAME` in a step's own fields."""
    found: list[tuple[str, str]] = []
    nested = {path.split("[")[0].split(".")[0] for path, _ in step.children()}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, str):
            found.extend((path, name) for name in dict.fromkeys(_PARAM_REF.findall(value)))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(step.model_dump(mode="json", exclude=nested or None), "")
    return found
