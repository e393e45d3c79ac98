"""Programs: what one hub program sets for every journey it runs, whatever the template.

A program lives in templates/programs/<id>.yaml (PITWALL_TEMPLATES_DIR/programs when that
folder exists). Today it sets the business calendar that task SLAs (`8bh`, `2bd`) count
on, so two hubs that run the same template on different coasts, or with a state's own
holidays, each count their own working hours:

    id: west-coast-hub
    description: The Pacific hub.
    calendar:
      timezone: America/Los_Angeles
      open_at: "08:00"
      close_at: "18:00"
      holiday_country: US
      holiday_subdivision: CA

It may also set the refill-gap risk weights (`risk_weights:`, see domain/refill_risk.py).

A journey started for a program with a calendar carries that calendar in its template
snapshot (resolved at start, so a replay counts the same hours); any other journey
counts on its template's `calendar`. A program with no file is fine: the template
decides.
"""

from __future__ import annotations

import functools
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.business_calendar import BusinessCalendar
from domain.refill_risk import RiskWeights
from domain.template import JourneyTemplate
from domain.template_loader import DEFAULT_TEMPLATES_DIR, templates_dir

PROGRAMS_SUBDIR = "programs"
PROGRAM_ID = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class ProgramError(ValueError):
    """A program file that cannot be used; names the file and every problem."""


class Program(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=PROGRAM_ID)
    description: str = ""
    calendar: BusinessCalendar | None = Field(
        None, description="The hub's working hours, days and holidays for task SLAs."
    )
    risk_weights: RiskWeights | None = Field(
        None, description="The program's refill-gap risk weights (domain/refill_risk.py)."
    )

    def applied_to(self, template: JourneyTemplate) -> JourneyTemplate:
        """The template as this program runs it."""
        update: dict[str, object] = {}
        if self.calendar is not None:
            update["calendar"] = self.calendar
        if self.risk_weights is not None:
            update["risk_weights"] = self.risk_weights
        return template.model_copy(update=update) if update else template


def programs_dir() -> Path:
    folder = templates_dir() / PROGRAMS_SUBDIR
    return folder if folder.is_dir() else DEFAULT_TEMPLATES_DIR / PROGRAMS_SUBDIR


def load_programs(folder: Path) -> dict[str, Program]:
    """Every program file in `folder`; one ProgramError listing every bad file."""
    found: dict[str, Program] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            program = Program.model_validate(yaml.safe_load(path.read_text()))
        except (yaml.YAMLError, ValidationError) as err:
            problems.append(f"{path.name}: {_first_lines(err)}")
            continue
        if program.id != path.stem:
            problems.append(f"{path.name}: id {program.id!r} must match the file name")
        elif program.id in found:
            problems.append(f"{path.name}: program {program.id!r} is defined twice")
        else:
            found[program.id] = program
    if problems:
        raise ProgramError("invalid program file(s): " + "; ".join(problems))
    return found


@functools.cache
def default_programs() -> dict[str, Program]:
    """The configured programs, loaded once per process."""
    return load_programs(programs_dir())


def _first_lines(err: Exception) -> str:
    if isinstance(err, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in err.errors()
        )
    return str(err).splitlines()[0]
