"""What a simulated cohort would cost to orchestrate on Temporal.

The simulator counts, per journey, what Temporal would record: runs (continue-as-new
adds one), activities, timers and signalled events. A calibration, measured once by
running real journeys of the same template on the dev server (bench/calibrate.py) and
kept in simulate/calibration.json, turns those counts into billable actions and history
events and bytes. Without a calibration for the template, each count is one action
and one history event of DEFAULT_BYTES_PER_EVENT, and the estimate says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simulate.cohort import Cohort, PatientResult

CALIBRATION = Path(__file__).with_name("calibration.json")
DEFAULT_BYTES_PER_EVENT = 400.0
DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Calibration:
    actions_per_unit: float
    events_per_unit: float
    bytes_per_event: float
    source: str  # how and when it was measured


UNCALIBRATED = Calibration(1.0, 1.0, DEFAULT_BYTES_PER_EVENT, "uncalibrated")


@cache
def _calibrations(path: Path = CALIBRATION) -> dict[str, Calibration]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {template: Calibration(**values) for template, values in data.items()}


def calibration_for(template: str) -> Calibration:
    """`template` is "id@version" or "id"; a version's own calibration wins."""
    known = _calibrations()
    return known.get(template) or known.get(template.split("@", 1)[0]) or UNCALIBRATED


def units(patient: PatientResult) -> int:
    """What the simulator counted for one journey (the first run's start included)."""
    return 1 + sum(patient.cost.values())


@dataclass(frozen=True)
class CostEstimate:
    actions_per_patient_month: float
    history_events_per_journey: float
    history_bytes_per_journey: float
    calibration: str


def estimate(cohort: Cohort) -> CostEstimate:
    cal = calibration_for(cohort.template)
    total_units = sum(units(p) for p in cohort.patients)
    months = sum(p.days for p in cohort.patients) / DAYS_PER_MONTH
    journeys = max(len(cohort.patients), 1)
    events = total_units * cal.events_per_unit / journeys
    return CostEstimate(
        actions_per_patient_month=total_units * cal.actions_per_unit / months if months else 0.0,
        history_events_per_journey=events,
        history_bytes_per_journey=events * cal.bytes_per_event,
        calibration=cal.source,
    )
