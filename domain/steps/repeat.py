"""repeat: a bounded loop. Its `steps` run again while `while` holds, at most `max` times.

A refill cycle is a loop, not a `next` pointing backwards. `while` is evaluated before
each iteration; `loops.<id>.iteration` is the number of iterations done so far. Falling
off the end of `steps` ends an iteration; an `exit` inside ends the journey.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator

from domain.steps.base import (
    Exit,
    Problems,
    Show,
    StepBase,
    TemplateFacts,
    as_written,
    check_expression,
)

if TYPE_CHECKING:
    from domain.steps import Step

PARAM = re.compile(r"^params\.([A-Za-z_][A-Za-z0-9_]*)$")


class RepeatStep(StepBase):
    model_config = ConfigDict(
        extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )
    shape: ClassVar[tuple[str, str]] = ("[/", "\\]")
    writes: ClassVar[str | None] = "loops"

    kind: Literal["repeat"]
    steps: list[Step] = Field(min_length=1)
    while_: str = Field("true", alias="while", min_length=1,
                        description="Expression checked before each iteration.")  # fmt: skip
    max: int | str = Field(description="At most this many iterations (or params.NAME).")

    _while = field_validator("while_")(check_expression)

    @field_validator("max")
    @classmethod
    def _bounded(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("max must be at least 1")
        elif not PARAM.match(value):
            raise ValueError(f"max must be a whole number or params.NAME, not {value!r}")
        return value

    def max_iterations(self, params: dict[str, Any]) -> int:
        if isinstance(self.max, int):
            return self.max
        return int(params[self.max.removeprefix("params.")])

    def exits(self, show: Show = as_written) -> list[Exit]:
        return self.onward("done")

    def result_fields(self) -> set[str] | None:
        return {"iteration"}

    def children(self) -> list[tuple[str, list[Step]]]:
        return [("steps", self.steps)]

    def child_labels(self) -> list[str]:
        return [f"while {self.while_}"]

    def reads(self) -> list[tuple[str, str]]:
        return [("while", self.while_)]

    def check(self, facts: TemplateFacts) -> Problems:
        if isinstance(self.max, str):
            name = self.max.removeprefix("params.")
            value = facts.parameters.get(name)
            if name in facts.parameters and not (isinstance(value, int) and value >= 1):
                return [("max", f"parameter {name!r} is {value!r}, not a whole number ≥ 1")]
        return []

    def describe(self, show: Show) -> str:
        return f"{len(self.steps)} steps while {self.while_}, at most {self.max} times"

    def node_lines(self, show: Show) -> list[str]:
        return [f"repeat ≤ {self.max}"]
