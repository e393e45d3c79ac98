"""delay: a durable timer to a journey time, optionally moved on to a local HH:MM."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain import expressions
from domain.local_time import next_local_time
from domain.steps.delay import DelayStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


@handles("delay")
async def delay(j: JourneyInterpreter, step: DelayStep, resume: list[Frame] | None) -> Outcome:
    if step.until is not None:
        when = expressions.evaluate(f"at({step.until})", j.scope())
    else:
        when = j.rt.now() + j.duration(step.duration or "0s")
    if step.at_local_time:
        when = next_local_time(when, step.at_local_time, j.timezone)
    j.state.next_due_at = when
    j.rt.publish(j.state)
    await j.rt.sleep_until(when)
    return step.next, "elapsed"
