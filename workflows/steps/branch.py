"""branch: the first case whose expression holds; else the default."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.steps.branch import BranchStep
from workflows.steps import Outcome, handles

if TYPE_CHECKING:
    from domain.journey import Frame
    from workflows.interpreter import JourneyInterpreter


@handles("branch")
async def branch(j: JourneyInterpreter, step: BranchStep, resume: list[Frame] | None) -> Outcome:
    for case in step.cases:
        if j.eval(case.when):
            return case.goto, case.when
    return step.default, "default"
