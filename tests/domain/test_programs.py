"""Programs set what every journey of one hub shares: the business calendar of its SLAs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.journeys import StartJourney
from domain.journey import JourneyStart, StartAck
from domain.programs import Program, ProgramError, default_programs, load_programs
from domain.template_loader import get_template
from services.journeys import JourneyStarter
from tests.interpreter.conftest import T0, simulate

PACIFIC = """\
id: west-hub
calendar:
  timezone: America/Los_Angeles
  open_at: "08:00"
  close_at: "18:00"
  holiday_country: US
  holiday_subdivision: CA
"""


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)


def test_the_bundled_demo_program_has_its_own_calendar() -> None:
    demo = default_programs()["demo-program"]
    assert demo.calendar is not None and demo.calendar.timezone == "America/New_York"
    # The hub closes the day after Thanksgiving 2026, which is no federal holiday.
    assert demo.calendar.is_holiday(T0.replace(month=11, day=27).date())


def test_bad_program_files_are_refused_with_every_problem(tmp_path: Path) -> None:
    write(tmp_path, "west-hub.yaml", PACIFIC)
    write(tmp_path, "other.yaml", PACIFIC.replace("id: west-hub", "id: elsewhere"))
    write(tmp_path, "nowhere.yaml", "id: nowhere\ncalendar: {timezone: Mars/Olympus}\n")
    with pytest.raises(ProgramError) as err:
        load_programs(tmp_path)
    message = str(err.value)
    assert "other.yaml: id 'elsewhere' must match the file name" in message
    assert "nowhere.yaml: calendar.timezone" in message and "Mars/Olympus" in message
    assert load_programs(tmp_path / "missing") == {}


async def test_a_program_calendar_decides_the_task_sla() -> None:
    """The same v2 template: the intake task's 24 h reminder is wall-clock, but an 8
    business-hour SLA counts the program's own hours: 08:00-18:00 Pacific."""
    west = Program.model_validate({"id": "west-hub", "calendar": {
        "timezone": "America/Los_Angeles", "open_at": "08:00", "close_at": "18:00"}})  # fmt: skip
    v2 = get_template("specialty_start", version=2)
    answers: dict[str, Any] = {"consent.request": {"request_id": "CR-1"}}
    east = await simulate(v2, answers, events=[], params={"intake_reminder": "8bh"},
                          context={"intake_missing": "npi"})  # fmt: skip
    pacific = await simulate(west.applied_to(v2), answers, events=[],
                             params={"intake_reminder": "8bh"},
                             context={"intake_missing": "npi"})  # fmt: skip

    def first_due(sim: Any) -> Any:
        return next(c.due_at for c in sim.runtime.task_changes if c.change == "opened")

    # T0 is Monday 09:00 New York = 06:00 Los Angeles.
    assert first_due(east) == T0 + timedelta(hours=8)  # 17:00 New York
    assert first_due(pacific) == T0 + timedelta(hours=2 + 8)  # 08:00 PT opening + 8 h


class RecordingGateway:
    def __init__(self) -> None:
        self.started: list[JourneyStart] = []

    async def start(self, start: JourneyStart) -> StartAck:
        self.started.append(start)
        return StartAck(journey_id="j-1", created=True, template_id=start.template.id,
                        template_version=start.template.version)  # fmt: skip


class Pseudonyms:
    async def pseudonym(self, patient_id: str) -> str:
        return "pt-" + patient_id


async def test_a_journey_starts_with_its_program_calendar_in_the_snapshot(
    tmp_path: Path,
) -> None:
    write(tmp_path, "west-hub.yaml", PACIFIC)
    gateway = RecordingGateway()
    starter = JourneyStarter(gateway, Pseudonyms(), load_programs(tmp_path))  # type: ignore[arg-type]
    v2 = get_template("specialty_start", version=2)
    for program in ("west-hub", "no-file-program"):
        await starter.start(StartJourney(template=v2.id, patient_id="p1", program=program), v2)
    west, other = gateway.started
    assert west.template.calendar.timezone == "America/Los_Angeles"
    assert west.template.calendar.holiday_subdivision == "CA"
    assert other.template.calendar == v2.calendar  # no program file: the template decides


def test_a_program_sets_its_own_refill_risk_weights(tmp_path: Path) -> None:
    write(
        tmp_path,
        "strict-hub.yaml",
        "id: strict-hub\nrisk_weights: {high_from: 30, medium_from: 10}\n",
    )
    (program,) = load_programs(tmp_path).values()
    refills = get_template("refill_adherence")
    applied = program.applied_to(refills)
    assert (applied.risk_weights.high_from, applied.risk_weights.medium_from) == (30, 10)
    assert refills.risk_weights.high_from == 50  # the template's own default is untouched
    write(tmp_path, "bad-hub.yaml", "id: bad-hub\nrisk_weights: {high_from: 5, medium_from: 10}\n")
    with pytest.raises(ProgramError, match=r"bad-hub\.yaml: .*high_from must be above medium_from"):
        load_programs(tmp_path)
