"""parallel: branches that run at the same time, joined on all or on the first to finish.

E.g. a bridge supply ships while the prior authorization is still open. Each branch is a
step sequence of its own; falling off its end finishes the branch. With `join: first`
the other branches are cancelled when one finishes. The result, `steps.<id>`, holds
`first` (the branch that finished first) and `finished` (branches that ran to the end).
An `exit` inside a branch ends the whole journey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.steps.base import STEP_ID, Exit, Show, StepBase, as_written

if TYPE_CHECKING:
    from domain.steps import Step

RESULT_FIELDS = {"first", "finished"}


class Branch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID, description="Names the branch (unique in the step).")
    steps: list[Step] = Field(min_length=1)


class ParallelStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("[\\", "/]")
    writes: ClassVar[str | None] = "steps"

    kind: Literal["parallel"]
    branches: list[Branch] = Field(min_length=2)
    join: Literal["all", "first"] = Field("all", description="Go on when all / the first end.")

    def exits(self, show: Show = as_written) -> list[Exit]:
        return self.onward(f"join {self.join}")

    def result_fields(self) -> set[str] | None:
        return RESULT_FIELDS

    def children(self) -> list[tuple[str, list[Step]]]:
        return [(f"branches[{i}].steps", b.steps) for i, b in enumerate(self.branches)]

    def child_labels(self) -> list[str]:
        return [b.id for b in self.branches]

    def describe(self, show: Show) -> str:
        return (
            f"{len(self.branches)} branches ({', '.join(b.id for b in self.branches)}), "
            f"join {self.join}"
        )

    def node_lines(self, show: Show) -> list[str]:
        return [f"parallel, join {self.join}"]
