"""repeat: run the body while `while` holds, at most `max` times; resumable mid-loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.journey import Frame
from domain.steps.repeat import RepeatStep
from workflows.runtime import SwitchRun
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from workflows.interpreter import JourneyInterpreter


@handles("repeat")
async def repeat(j: JourneyInterpreter, step: RepeatStep, resume: list[Frame] | None) -> Outcome:
    limit = step.max_iterations(j.params)
    inner = resume[1:] if resume else None
    if resume is None:
        j.state.loops[step.id] = 0
    try:
        while inner or (j.state.loops[step.id] < limit and j.eval(step.while_)):
            await j.run_sequence(step.steps, inner)
            inner = None
            j.state.loops[step.id] += 1
    except SwitchRun as switch:
        switch.frames.insert(0, Frame(step_id=step.id, iteration=j.state.loops[step.id]))
        raise
    done = j.state.loops.pop(step.id)
    return step.next, f"iterations:{done}"
