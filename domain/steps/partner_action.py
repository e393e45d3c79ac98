"""partner_action: call a partner (from the registry); its result is `steps.<id>`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from domain.partner_actions import ACTIONS, ENVELOPE
from domain.steps.base import (
    Exit,
    Problems,
    Show,
    StepBase,
    TemplateFacts,
    as_written,
    check_expression,
)

Expression = str


class PartnerActionStep(StepBase):
    writes: ClassVar[str | None] = "steps"
    kind: Literal["partner_action"]
    action: str = Field(description="A registered partner action, e.g. payer.submit_prior_auth.")
    inputs: dict[str, Expression] = Field(
        default_factory=dict,
        description="Request fields, each an expression (e.g. appeal_of: "
        "steps.pa_submit.pa_number); a field not given here comes from the template "
        "parameter of the same name.",
    )
    on_error: dict[str, str] = Field(
        default_factory=dict,
        description="Partner error type (e.g. payer.invalid_request, or `*`) → step id.",
    )

    @field_validator("action")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"unknown partner action {value!r}; use one of {sorted(ACTIONS)}")
        return value

    @field_validator("inputs")
    @classmethod
    def _input_expressions(cls, value: dict[str, str]) -> dict[str, str]:
        for expression in value.values():
            check_expression(expression)
        return value

    def exits(self, show: Show = as_written) -> list[Exit]:
        errors = [
            Exit(f"on_error.{error}", "any error" if error == "*" else f"error: {error}", target)
            for error, target in self.on_error.items()
        ]
        return [*self.onward("ok" if self.on_error else ""), *errors]

    def result_fields(self) -> set[str] | None:
        return ACTIONS[self.action].result_fields() | {"error"}

    def reads(self) -> list[tuple[str, str]]:
        return [(f"inputs.{name}", expr) for name, expr in self.inputs.items()]

    def check(self, facts: TemplateFacts) -> Problems:
        spec = ACTIONS[self.action]
        wanted = spec.inputs()
        problems: Problems = []
        for name in self.inputs:
            if name not in wanted:
                known = ", ".join(wanted) or "none"
                why = (
                    "is set by Pitwall" if name in ENVELOPE else f"is not an input; inputs: {known}"
                )
                problems.append((f"inputs.{name}", f"{self.action}: {name!r} {why}"))
        for name, required in wanted.items():
            if required and name not in self.inputs and name not in facts.parameters:
                need = f"{self.action} needs input {name!r}: give it in `inputs` or as a parameter"
                problems.append(("inputs", need))
        return problems

    def describe(self, show: Show) -> str:
        out = self.action
        if self.inputs:
            out += " (" + ", ".join(f"{k}={v}" for k, v in self.inputs.items()) + ")"
        if self.on_error:
            out += "; on error " + ", ".join(f"{e} → {t}" for e, t in self.on_error.items())
        return out

    def node_lines(self, show: Show) -> list[str]:
        return [self.action]
