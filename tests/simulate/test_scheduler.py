"""A cohort on one clock: journeys interleaved by the CohortScheduler end as each would
alone, whatever runs beside them (patients share nothing the production logic counts)."""

from __future__ import annotations

import asyncio

import pytest

from domain.template_loader import get_template
from simulate.cohort import PatientResult, run_patient, run_patients
from simulate.cohort_scenario import load_scenario, sample


@pytest.mark.parametrize(
    ("template", "scenario", "months"),
    [("refill_adherence", "adherence_risk", 14), ("specialty_start", "payer_friction", 4)],
)
def test_interleaved_journeys_end_as_each_would_alone(
    template: str, scenario: str, months: float
) -> None:
    chosen = get_template(template)
    patients = sample(load_scenario(scenario), 40, "interleave", months)

    async def alone() -> list[PatientResult]:
        return [await run_patient(chosen, p, months) for p in patients]

    together = asyncio.run(run_patients(chosen, patients, months))
    assert together == asyncio.run(alone())
    # Not a trivial cohort: journeys ran for months, stopped at different stages, and
    # were at the horizon together (so they did overlap on the clock).
    assert len({p.stage for p in together}) >= 3
    assert sum(p.outcome_reason == "horizon" for p in together) >= 5
