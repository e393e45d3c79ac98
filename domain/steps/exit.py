"""exit: end the journey with an outcome (from anywhere, nested steps included)."""

from __future__ import annotations

from typing import ClassVar, Literal

from domain.steps.base import Exit, Show, StepBase, as_written


class ExitStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("([", "])")
    highlight: ClassVar[str | None] = "exit"
    falls_through: ClassVar[bool] = False

    kind: Literal["exit"]
    outcome: Literal["completed", "abandoned", "discontinued", "cancelled"] = "completed"
    reason: str = ""

    def exits(self, show: Show = as_written) -> list[Exit]:
        return []

    def describe(self, show: Show) -> str:
        return self.outcome + (f" ({self.reason})" if self.reason else "")

    def node_lines(self, show: Show) -> list[str]:
        return [self.outcome + (f": {self.reason}" if self.reason else "")]
