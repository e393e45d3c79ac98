"""mark: nothing to do; the interpreter records the step's stage and milestone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.steps.mark import MarkStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


@handles("mark")
async def mark(j: JourneyInterpreter, step: MarkStep, resume: list[Frame] | None) -> Outcome:
    j.outputs[step.id] = {"reached_at": j.rt.now().isoformat()}
    return step.next, "reached"
