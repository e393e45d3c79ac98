"""refill_watch: follow a patient's refills, cycle after cycle, for years (DOMAIN.md §3).

One visit lasts until something needs the template: a dispense (the step's `next`,
usually itself again), a reminder (`on_reminder`: a message step), a copay re-check
(`on_copay_recheck`), a re-authorization (`on_reauthorize`) or the end
(`on_discontinued`). In between it handles on its own what needs no step: AT_RISK 7 days
after run-out with a nurse call task and a note to the prescriber's office, a nurse call
ahead of run-out when the refill risk is high, the close of each measurement year. Its
memory (fills, run-out, PDC, risk) is `JourneyState.refill` (domain/refill_cycle.py).

The result, `steps.<id>`: `due` (what the visit ended on), `lead`, `days_until`,
`due_date` (the run-out), `reason`, `risk_level`, `pdc`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from domain.events import did_you_mean
from domain.steps.base import (
    Exit,
    Problems,
    Show,
    StepBase,
    TemplateFacts,
    as_written,
    check_duration,
    check_expression,
    check_task_duration,
)

DISPENSED = "pharmacy.dispensed"
RESULT_FIELDS = {"due", "lead", "days_until", "due_date", "reason", "risk_level", "pdc"}


class RefillWatchStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("{{", "}}")
    writes: ClassVar[str | None] = "steps"
    highlight: ClassVar[str | None] = "wait_for_event"

    kind: Literal["refill_watch"]
    correlation: str = Field(min_length=1, description="Expression: the Rx the dispenses name.")
    reminder_leads: list[int] = Field(
        default_factory=lambda: [7, 3, 1], min_length=1, description="Days before run-out."
    )
    high_risk_leads: list[int] = Field(
        default_factory=lambda: [10], description="Earlier reminders when the risk is high."
    )
    proactive_lead: int = Field(
        10, ge=1, description="Days before run-out a high-risk patient gets a nurse call."
    )
    at_risk_after: str = Field("7d", description="No fill this long after run-out: AT_RISK.")
    discontinue_after: str = Field(
        "60d", description="A gap this long after run-out: DISCONTINUED (lost to follow-up)."
    )
    reauthorize_before: str = Field(
        "30d", description="Re-authorize this long before a PA expires."
    )
    plan_year_check: str | None = Field(
        "12-01",
        pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        description="MM-DD: re-check benefits for next year's plan (None: never).",
    )
    refill_threshold: float = Field(
        0.75, gt=0, le=1, description="Earliest payable refill: fill date + ceil(supply * this)."
    )
    pa_expires_on: list[str] = Field(
        default_factory=list, description="Expressions giving a PA's last day; the latest wins."
    )
    out_of_pocket: list[str] = Field(
        default_factory=list,
        description="Expressions giving the cost per fill; the first set wins.",
    )
    pa_friction: str | None = Field(
        None, description="Expression: PA setbacks (pends, denials, info requests) in a year."
    )
    nurse_role: str = "nurse_educator"
    prescriber_role: str = "prescriber_office"
    task_sla: str = Field("1bd", description="SLA of the tasks the step opens.")
    on_reminder: str
    on_copay_recheck: str | None = None
    on_reauthorize: str | None = None
    on_discontinued: str

    _correlation = field_validator("correlation")(check_expression)
    _durations = field_validator("at_risk_after", "discontinue_after", "reauthorize_before")(
        check_duration
    )
    _sla = field_validator("task_sla")(check_task_duration)

    @field_validator("pa_expires_on", "out_of_pocket")
    @classmethod
    def _expressions(cls, value: list[str]) -> list[str]:
        for expression in value:
            check_expression(expression)
        return value

    @field_validator("pa_friction")
    @classmethod
    def _friction(cls, value: str | None) -> str | None:
        return check_expression(value)

    @field_validator("reminder_leads", "high_risk_leads")
    @classmethod
    def _leads(cls, value: list[int]) -> list[int]:
        if any(lead < 0 or lead > 60 for lead in value):
            raise ValueError("reminder leads are days before run-out, 0 to 60")
        return value

    def exits(self, show: Show = as_written) -> list[Exit]:
        out = [
            *self.onward("dispensed"),
            Exit("on_reminder", "reminder due", self.on_reminder),
        ]
        if self.on_copay_recheck:
            out.append(Exit("on_copay_recheck", "high risk: cost", self.on_copay_recheck))
        if self.on_reauthorize:
            out.append(Exit("on_reauthorize", "PA expiry / plan year", self.on_reauthorize))
        gap = f"gap over {show(self.discontinue_after)}"
        return [*out, Exit("on_discontinued", gap, self.on_discontinued)]

    def result_fields(self) -> set[str] | None:
        return RESULT_FIELDS

    def reads(self) -> list[tuple[str, str]]:
        reads = [("correlation", self.correlation)]
        reads += [(f"pa_expires_on[{i}]", e) for i, e in enumerate(self.pa_expires_on)]
        reads += [(f"out_of_pocket[{i}]", e) for i, e in enumerate(self.out_of_pocket)]
        return reads + ([("pa_friction", self.pa_friction)] if self.pa_friction else [])

    def check(self, facts: TemplateFacts) -> Problems:
        if DISPENSED in facts.event_types:
            return []
        hint = did_you_mean(DISPENSED, facts.event_types)
        return [("kind", f"needs the {DISPENSED!r} event{hint} (action pharmacy.enroll_refills)")]

    def describe(self, show: Show) -> str:
        leads = "/".join(str(d) for d in self.reminder_leads)
        return (
            f"refills of {self.correlation}: reminders {leads} days before run-out, AT_RISK "
            f"{show(self.at_risk_after)} after, discontinued after {show(self.discontinue_after)}"
        )

    def node_lines(self, show: Show) -> list[str]:
        return ["refills: " + "/".join(str(d) for d in self.reminder_leads) + " d before run-out"]
