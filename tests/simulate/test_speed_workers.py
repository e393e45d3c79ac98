"""A cohort run across worker processes is the cohort one process runs: the same
patients, in patient order, with the same outcomes (patient i depends on (seed, i)
alone), so parallel runs can be trusted for figures."""

from __future__ import annotations

from domain.template_loader import get_template
from simulate.cohort import run_cohort
from simulate.cohort_scenario import load_scenario

REFILLS = get_template("refill_adherence")


def test_a_cohort_across_two_processes_equals_the_cohort_in_one() -> None:
    scenario = load_scenario("adherence_risk")  # drop-outs, late refills, opt-outs
    seen: list[int] = []
    split = run_cohort(
        REFILLS, scenario, patients=24, months=14, seed="workers", workers=2,
        progress=seen.append,
    )  # fmt: skip
    single = run_cohort(REFILLS, scenario, patients=24, months=14, seed="workers")
    assert [p.index for p in split.patients] == list(range(24))
    assert split.patients == single.patients
    assert seen[-1] == 24 and seen == sorted(seen)
    # Not a trivially equal cohort: the patients went different ways.
    assert len(single.stages()) > 1 and single.contacts()["send:sms"] > 0
