"""A simulated refill cohort: the production interpreter, refill_watch step and contact
policy on a virtual clock, reproducible from its seed, and telling two scenarios apart."""

from __future__ import annotations

from domain.template_loader import get_template
from simulate.cohort import run_cohort
from simulate.cohort_scenario import load_scenario

REFILLS = get_template("refill_adherence")


def test_the_same_seed_gives_the_same_cohort_and_another_seed_another() -> None:
    typical = load_scenario("typical")
    first = run_cohort(REFILLS, typical, patients=12, months=6, seed=3)
    again = run_cohort(REFILLS, typical, patients=12, months=6, seed=3)
    other = run_cohort(REFILLS, typical, patients=12, months=6, seed=4)
    assert first.patients == again.patients
    assert first.patients != other.patients
    assert first.patient_years == 6


def test_a_riskier_scenario_shows_more_discontinued_and_more_nurse_calls() -> None:
    typical = run_cohort(REFILLS, load_scenario("typical"), patients=20, months=12, seed=11)
    risky = run_cohort(REFILLS, load_scenario("adherence_risk"), patients=20, months=12, seed=11)
    assert risky.stages()["DISCONTINUED"] > typical.stages()["DISCONTINUED"]
    assert risky.tasks()["nurse_educator"] > typical.tasks()["nurse_educator"]
    # The contact policy decided every reminder: sent by SMS (the only consent), or
    # suppressed after an opt-out (or held by a cap or quiet hours); nothing else.
    kinds = set(typical.contacts()) | set(risky.contacts())
    assert kinds <= {"send:sms", "suppress:opted_out", "defer:frequency_cap", "defer:quiet_hours"}
    assert typical.contacts()["send:sms"] > 0
