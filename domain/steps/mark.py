"""mark: a point on the way that only names a stage or a milestone, then goes on.

A place for a `branch` to go to at the end of a sequence (a parallel branch ends there),
or to timestamp a milestone no other step stands for (`PA_APPROVED`, `pa_decided`). Its
result, `steps.<id>.reached_at`, tells later steps it was passed (`'pa_approved' in steps`)."""

from __future__ import annotations

from typing import ClassVar, Literal

from domain.steps.base import Show, StepBase


class MarkStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("((", "))")
    # `steps.<id>.reached_at`: later steps can tell which way the journey went.
    writes: ClassVar[str | None] = "steps"

    def result_fields(self) -> set[str] | None:
        return {"reached_at"}

    kind: Literal["mark"]

    def describe(self, show: Show) -> str:
        named = [f"stage {self.stage}" if self.stage else "", self.milestone or ""]
        return ", ".join(n for n in named if n) or "a point on the way"

    def node_lines(self, show: Show) -> list[str]:
        return [self.describe(show)]
