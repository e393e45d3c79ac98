"""branch: the first case whose expression holds wins; else `default`."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.steps.base import Exit, Show, StepBase, as_written, check_expression


class BranchCase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    when: str = Field(min_length=1)
    goto: str

    _when = field_validator("when")(check_expression)


class BranchStep(StepBase):
    shape: ClassVar[tuple[str, str]] = ("{", "}")
    falls_through: ClassVar[bool] = False

    kind: Literal["branch"]
    cases: list[BranchCase] = Field(min_length=1)
    default: str

    def exits(self, show: Show = as_written) -> list[Exit]:
        return [
            *self.onward(),
            *(Exit(f"cases[{i}].goto", c.when, c.goto) for i, c in enumerate(self.cases)),
            Exit("default", "else", self.default),
        ]

    def reads(self) -> list[tuple[str, str]]:
        return [(f"cases[{i}].when", c.when) for i, c in enumerate(self.cases)]

    def describe(self, show: Show) -> str:
        cases = [f"if {c.when} → {c.goto}" for c in self.cases]
        return "; ".join([*cases, f"else → {self.default}"])

    def node_title(self) -> str:
        return f"{self.id}?"
