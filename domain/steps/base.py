"""What every step kind shares, and the small protocol each kind implements.

A step kind is one model in this package (one module each). The model declares:
- its fields (validated by pydantic; errors name the step and field);
- `exits()`: every way control may leave it (read by validation, reachability, the
  Mermaid renderer and the interpreter's notion of "next");
- `children()`: nested step sequences, for kinds that hold steps (parallel, repeat);
- `describe()` / `node_lines()`: the text listing and the diagram node;
- `check()`: validation that needs the whole template (declared events, actions).
Its behaviour is one handler in `workflows/steps/`, registered with the interpreter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from domain import expressions
from domain.business_calendar import is_business_duration
from domain.durations import is_duration

if TYPE_CHECKING:
    from domain.steps import Step

STEP_ID = r"^[a-z][a-z0-9_]*$"
CONTEXT_ROOTS = {"params", "context", "steps", "events", "journey", "loops"}
PARAM_DURATION = re.compile(r"^params\.[A-Za-z_][A-Za-z0-9_]*$")
DURATION_FIELDS = ("timeout", "duration", "sla", "give_up_after", "receipt_window")
# Fields that may also be business time on the program's calendar (`8bh`, `2bd`).
BUSINESS_TIME_FIELDS = ("sla", "give_up_after")


class Exit(NamedTuple):
    """One way out of a step: the field that names it, an edge label, and the target.

    `target` None means "on to the following step" (the end of the sequence at its end).
    """

    field: str
    label: str
    target: str | None


@dataclass
class TemplateFacts:
    """What a step's `check()` may consult about the template around it."""

    parameters: Mapping[str, Any]
    event_types: set[str]
    result_fields: dict[str, set[str] | None] = field(default_factory=dict)  # step → fields


Problems = list[tuple[str, str]]  # (field path, what is wrong)
Show = Callable[[str | None], str]  # a duration as the reader should see it


def as_written(value: str | None) -> str:
    return value or ""


def check_expression(value: str | None) -> str | None:
    if value is None:
        return value
    unknown = expressions.names(value) - CONTEXT_ROOTS - {"true", "false", "null"}
    if unknown:
        raise ValueError(
            f"expression {value!r} reads unknown name(s) {sorted(unknown)}; "
            f"use {sorted(CONTEXT_ROOTS)}"
        )
    return value


def check_task_duration(value: str | None) -> str | None:
    """A duration, or business time on the program's calendar (`8bh`, `2bd`)."""
    if value is not None and is_business_duration(value):
        return value
    return check_duration(value)


def check_duration(value: str | None) -> str | None:
    """A literal duration (`3d`) or `params.NAME` naming a duration parameter."""
    if value is None or PARAM_DURATION.match(value) or is_duration(value):
        return value
    raise ValueError(f"invalid duration {value!r} (use e.g. 30m, 72h, 3d, P3D or params.NAME)")


class StepBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Diagram node shape (Mermaid open, close) and an optional highlight class.
    shape: ClassVar[tuple[str, str]] = ("[", "]")
    highlight: ClassVar[str | None] = None
    # False for kinds whose own fields name every way out (branch, exit).
    falls_through: ClassVar[bool] = True
    # The expression root this kind's result lands under (`steps`, `events`, `loops`).
    writes: ClassVar[str | None] = None

    if TYPE_CHECKING:
        kind: str  # each kind declares it as a Literal (the union's discriminator)

    id: str = Field(pattern=STEP_ID, description="Unique within the template.")
    title: str = ""
    stage: str | None = Field(
        None, description="Journey stage entered when this step starts (e.g. PA_SUBMITTED)."
    )
    next: str | None = Field(None, description="Step to go to after this one; default follows.")
    milestone: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="A milestone the journey has reached once it gets here (first time only), "
        "timestamped in the state and on the timeline: referral_received, consent_complete, "
        "bv_complete, pa_submitted, pa_decided, claim_paid, shipped, delivered, "
        "first_dose_confirmed (DOMAIN.md §2), or the template's own.",
    )

    def onward(self, label: str = "") -> list[Exit]:
        """The ordinary way out: `next`, or the following step."""
        if self.next is not None or self.falls_through:
            return [Exit("next", label, self.next)]
        return []

    def exits(self, show: Show = as_written) -> list[Exit]:
        return self.onward()

    def children(self) -> list[tuple[str, list[Step]]]:
        """(field path, steps) of each nested sequence."""
        return []

    def result_fields(self) -> set[str] | None:
        """Fields of the result under `writes`; None: not known in advance."""
        return None

    def child_labels(self) -> list[str]:
        """An edge label for entering each nested sequence."""
        return [path for path, _ in self.children()]

    def node_title(self) -> str:
        return self.id

    def reads(self) -> list[tuple[str, str]]:
        """(field, expression) of every expression the step evaluates."""
        return []

    def check(self, facts: TemplateFacts) -> Problems:
        return []

    def describe(self, show: Show) -> str:
        return ""

    def node_lines(self, show: Show) -> list[str]:
        return []
