"""exit: the journey ends with the step's outcome (from any depth)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.steps.exit import ExitStep
from workflows.steps import END, Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


@handles("exit")
async def exit_(j: JourneyInterpreter, step: ExitStep, resume: list[Frame] | None) -> Outcome:
    j.state.status = step.outcome
    j.state.outcome_reason = step.reason or step.outcome
    j.state.current_step = None
    j.rt.note(
        "journey.ended", "finished", f"journey {step.outcome}: {step.reason}",
        outcome=step.outcome,
    )  # fmt: skip
    return END, step.outcome
