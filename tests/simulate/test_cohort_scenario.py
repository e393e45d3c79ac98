"""Cohort scenarios: seeded, reproducible sampling whose shares and durations match the
configured distributions, and whose patients are valid sandbox scenarios.

Tolerances. A share p measured on n = 2,000 patients is binomial with standard error
sqrt(p(1-p)/n) (at most 0.0112); the tests allow 4 standard errors, which a correct
sampler misses with probability ~6e-5 per check (and the seed is fixed, so a pass is a
pass for good). Quantiles are checked the same way: the share of samples at or below
the configured median (p90) is binomial with p = 0.5 (0.9).
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path
from random import Random

import pytest

from sandbox.scenario import Scenario
from simulate.cohort_scenario import (
    CohortScenario,
    Fixed,
    LogNormal,
    PatientScenario,
    ScenarioError,
    bundled_scenarios,
    load_scenario,
    parse_scenario,
    sample,
    sample_patient,
)

N = 2000
TYPICAL = load_scenario(bundled_scenarios()["typical"])


def tolerance(p: float, n: int = N) -> float:
    return 4 * math.sqrt(p * (1 - p) / n)


def assert_share(observed: int, p: float, n: int = N) -> None:
    assert abs(observed / n - p) <= tolerance(p, n), (observed / n, p)


@pytest.fixture(scope="module")
def cohort() -> list[PatientScenario]:
    return sample(TYPICAL, N, seed=2026, months=12)


# ---------------------------------------------------------------- reproducibility


def test_same_seed_same_cohort(cohort: list[PatientScenario]) -> None:
    assert sample(TYPICAL, N, seed=2026, months=12) == cohort


def test_patient_i_does_not_depend_on_n() -> None:
    small = sample(TYPICAL, 5, seed="abc", months=12)
    large = sample(TYPICAL, 50, seed="abc", months=12)
    assert large[:5] == small
    assert sample_patient(TYPICAL, "abc", 37, 12) == large[37]


def test_different_seeds_differ() -> None:
    one, two = sample(TYPICAL, 50, seed=1), sample(TYPICAL, 50, seed=2)
    differing = sum(a.refill_days != b.refill_days or a.fill_days != b.fill_days
                    for a, b in zip(one, two, strict=True))  # fmt: skip
    assert differing >= 45


def test_reproducible_across_processes() -> None:
    """No hash(): another interpreter (other PYTHONHASHSEED) samples the same patient."""
    code = (
        "from simulate.cohort_scenario import bundled_scenarios, load_scenario, sample_patient;"
        "p = sample_patient(load_scenario(bundled_scenarios()['typical']), 'x', 3, 12);"
        "print(repr(p))"
    )
    root = Path(__file__).resolve().parents[2]
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hashseed, "PYTHONDONTWRITEBYTECODE": "1"},
        ).stdout
        for hashseed in ("1", "2")
    }
    assert outputs == {repr(sample_patient(TYPICAL, "x", 3, 12)) + "\n"}


def test_a_changed_distribution_leaves_the_other_draws_alone() -> None:
    """Each aspect has its own stream: a slower payer leaves refills, consent, ... as they were."""
    slower_pa = LogNormal(dist="lognormal", median=20, p90=40)
    slower = TYPICAL.model_copy(update={"pa_turnaround_days": slower_pa})
    for a, b in zip(sample(TYPICAL, 100, 9), sample(slower, 100, 9), strict=True):
        assert a.pa == b.pa
        assert (a.refill_days, a.consent, a.timezone) == (b.refill_days, b.consent, b.timezone)
    pairs = zip(sample(TYPICAL, 10, 9), sample(slower, 10, 9), strict=True)
    assert any(a.pa_turnaround_days != b.pa_turnaround_days for a, b in pairs)


# ---------------------------------------------------------------- shares converge


def test_shares_converge(cohort: list[PatientScenario]) -> None:
    s = TYPICAL
    assert_share(sum(p.pa_required for p in cohort), s.pa_required)
    assert_share(sum(p.outage for p in cohort), s.outage_rate)
    assert_share(sum(p.replies for p in cohort), s.reply_rate)
    assert_share(sum(p.opts_out for p in cohort), s.opt_out_rate)
    assert_share(sum(p.dropout_after_fills is not None for p in cohort), s.dropout_rate)
    assert_share(sum(bool(p.claim_rejects) for p in cohort), s.claim_reject_rate)


@pytest.mark.parametrize("field", ["plan_types", "timezones", "consent", "days_supply"])
def test_weights_converge(cohort: list[PatientScenario], field: str) -> None:
    attribute = {"plan_types": "plan_type", "timezones": "timezone"}.get(field, field)
    weights = getattr(TYPICAL, field)
    counts = Counter(getattr(p, attribute) for p in cohort)
    total = sum(weights.values())
    assert set(counts) <= set(weights)
    for key, weight in weights.items():
        assert_share(counts[key], weight / total)


def test_pa_outcomes_converge_among_patients_needing_pa(cohort: list[PatientScenario]) -> None:
    needing = [p for p in cohort if p.pa_required]
    counts = Counter(p.pa for p in needing)
    total = sum(TYPICAL.pa_outcomes.values())
    for outcome, weight in TYPICAL.pa_outcomes.items():
        assert_share(counts[outcome], weight / total, len(needing))
    assert {p.pa for p in cohort if not p.pa_required} == {"approve"}


def test_claim_reject_codes_converge() -> None:
    scenario = TYPICAL.model_copy(update={"claim_reject_rate": 1.0, "claim_reject_max": 1})
    counts = Counter(p.claim_rejects[0] for p in sample(scenario, N, 5))
    for code, weight in TYPICAL.claim_reject_codes.items():
        assert_share(counts[code], weight)


def test_claim_rejects_are_geometric_and_capped() -> None:
    scenario = TYPICAL.model_copy(update={"claim_reject_rate": 0.5, "claim_reject_max": 3})
    lengths = Counter(len(p.claim_rejects) for p in sample(scenario, N, 5))
    assert max(lengths) == 3
    assert_share(lengths[0], 0.5)
    assert_share(lengths[1], 0.25)


# ---------------------------------------------------------------- durations


def test_lognormal_median_and_p90() -> None:
    dist = LogNormal(dist="lognormal", median=5, p90=10)
    rng = Random("lognormal")
    values = [dist.sample(rng) for _ in range(N)]
    assert_share(sum(v <= 5 for v in values), 0.5)
    assert_share(sum(v <= 10 for v in values), 0.9)


def test_pa_turnaround_follows_its_distribution(cohort: list[PatientScenario]) -> None:
    """typical: lognormal median 11, p90 15, clamped to [1, 30] (clamping moves neither)."""
    values = [p.pa_turnaround_days for p in cohort]
    assert_share(sum(v <= 11 for v in values), 0.5)
    assert_share(sum(v <= 15 for v in values), 0.9)
    assert min(values) >= 1 and max(values) <= 30


def test_uniform_and_bounds(cohort: list[PatientScenario]) -> None:
    ships = [p.ship_days for p in cohort]
    assert min(ships) >= 1 and max(ships) <= 2
    assert_share(sum(v <= 1.5 for v in ships), 0.5)
    assert max(p.fill_days for p in cohort) <= 21


def test_refill_days_follow_lateness_and_dropout(cohort: list[PatientScenario]) -> None:
    horizon = round(12 * 365.25 / 12)
    gaps = []
    for p in cohort:
        days = p.refill_days
        assert days[0] == 0 and all(b > a for a, b in pairwise(days))
        assert days[-1] < horizon
        if p.dropout_after_fills is not None:
            assert len(days) <= p.dropout_after_fills
        gaps += [b - a - p.days_supply for a, b in pairwise(days)]
    # typical: 10% uniform(-3, 0), 70% uniform(0, 3), 20% lognormal(median 6, p90 20),
    # rounded to days. Early (< 0): 10% x 5/6 (above -0.5 rounds to 0). Within 0..3: the
    # 70%, the early part's 1/6 and the tail's P(X < 3.5).
    sigma = math.log(20 / 6) / 1.2815515655446004
    tail_within = 0.5 * math.erfc(-math.log(3.5 / 6) / sigma / math.sqrt(2))  # Phi(z)
    expected_within = 0.70 + 0.10 / 6 + 0.20 * tail_within
    assert_share(sum(0 <= g <= 3 for g in gaps), expected_within, len(gaps))
    assert_share(sum(g < 0 for g in gaps), 0.10 * 5 / 6, len(gaps))
    assert min(gaps) >= -3 and max(gaps) <= 60


def test_no_dropout_refills_to_the_horizon() -> None:
    steady = TYPICAL.model_copy(update={"dropout_rate": 0.0})
    on_time = steady.model_copy(update={"refill_lateness_days": Fixed(dist="fixed", value=0)})
    patient = sample_patient(on_time, 1, 0, months=24)
    assert patient.refill_days == tuple(range(0, round(24 * 365.25 / 12), patient.days_supply))


# ---------------------------------------------------------------- bundled examples, sandbox


@pytest.mark.parametrize("name", ["typical", "payer_friction", "adherence_risk"])
def test_bundled_examples_load_and_validate_as_sandbox_scenarios(name: str) -> None:
    path = bundled_scenarios()[name]
    assert path.read_text().startswith("# ")  # a comment header says what it models
    scenario = load_scenario(path)
    assert scenario.description
    for patient in sample(scenario, 300, seed=name, months=24):
        json = patient.sandbox_scenario(seconds_per_day=0.5)
        sandbox = Scenario.model_validate(json)
        assert sandbox.pa == patient.pa and sandbox.pa_required == patient.pa_required
        assert [f.day for f in sandbox.refill_script(patient.days_supply)] == list(
            patient.refill_days
        )
        assert sandbox.pend_seconds == pytest.approx(patient.pa_turnaround_days * 0.5)
        assert sandbox.claim_rejects == list(patient.claim_rejects)
        assert (sandbox.outage is not None) == patient.outage


def test_bundled_examples_differ_where_they_say() -> None:
    friction = load_scenario(bundled_scenarios()["payer_friction"])
    risk = load_scenario(bundled_scenarios()["adherence_risk"])
    assert friction.pa_turnaround_days.lowest() >= TYPICAL.pa_turnaround_days.lowest()
    typical, friction_c, risk_c = (sample(s, 500, 3) for s in (TYPICAL, friction, risk))
    mean = lambda c, f: sum(map(f, c)) / len(c)  # noqa: E731
    assert mean(friction_c, lambda p: p.pa_turnaround_days) > mean(
        typical, lambda p: p.pa_turnaround_days
    )
    assert mean(risk_c, lambda p: len(p.refill_days)) < mean(typical, lambda p: len(p.refill_days))


def test_load_by_bundled_name() -> None:
    assert load_scenario("typical") == TYPICAL


def test_outage_in_the_sandbox_scenario() -> None:
    scenario = TYPICAL.model_copy(update={"outage_rate": 1.0})
    patient = sample_patient(scenario, 0, 0, 12)
    assert patient.sandbox(1.0).outage is not None
    assert patient.sandbox_scenario(1.0)["outage"] == {
        "service": "payer",
        "seconds": 0.5,
        "status": 503,
    }


# ---------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("pa_required: 1.5\n", "pa_required"),
        ("pa_turnaround_days: {dist: lognormal, median: 5, p90: 4}\n", "pa_turnaround_days"),
        ("fill_days: {dist: normal, mean: 4, sd: 2}\n", "fill_days"),  # can go below 0
        ("timezones: {Mars/Olympus: 1}\n", "timezones"),
        ("pa_outcomes: {approve: 0}\n", "pa_outcomes"),
        ("pa_outcomes: {maybe: 1}\n", "pa_outcomes.maybe"),
        ("consent: {sign: -1}\n", "consent.sign"),
        ("claim_reject_codes: {'7 5': 1}\n", "claim_reject_codes"),
        ("ship_days: {dist: gamma, shape: 2}\n", "ship_days"),
        ("reply_rat: 0.5\n", "reply_rat"),
        (
            "refill_lateness_days: {dist: mixture, parts: [{weight: 1, of: {dist: uniform, "
            "low: 3, high: 1}}]}\n",
            "refill_lateness_days.mixture.parts.0.of",
        ),
    ],
)
def test_bad_files_name_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as error:
        load_scenario(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    assert f" {field}" in message, message


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("pa_required: [0.5\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: not valid YAML"):
        load_scenario(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: the scenario must be a mapping"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_unquoted_reject_codes_and_empty_file(tmp_path: Path) -> None:
    assert parse_scenario({"claim_reject_codes": {75: 1}}).claim_reject_codes == {"75": 1}
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing but defaults\n")
    assert load_scenario(path) == CohortScenario()


def test_months_and_n_are_checked() -> None:
    with pytest.raises(ValueError, match="months"):
        sample(TYPICAL, 1, 0, months=0)
    with pytest.raises(ValueError, match="n must not"):
        sample(TYPICAL, -1, 0)


# ---------------------------------------------------------------- hub staff, first dose


def test_task_draws_are_per_role_and_the_unworked_rate_leaves_the_hours_alone() -> None:
    sure = TYPICAL.model_copy(update={"task_unworked_rate": 0.0, "first_dose_never_rate": 0.0})
    busy = TYPICAL.model_copy(update={"task_unworked_rate": 0.5, "first_dose_never_rate": 1.0})
    a, b = sample_patient(sure, 9, 4, 12), sample_patient(busy, 9, 4, 12)
    for role, hours in a.task_hours:
        others = dict(b.task_hours)[role]
        assert None not in hours
        assert all(o is None or h == o for h, o in zip(hours, others, strict=True))
    assert dict(a.task_hours)["nurse_educator"] != dict(a.task_hours)["patient_navigator"]
    assert sum(h is None for _, hs in b.task_hours for h in hs) > 0
    assert (a.first_dose_days is not None, b.first_dose_days) == (True, None)
    # Everything else as it was (common random numbers).
    assert a.refill_days == b.refill_days and a.pa_turnaround_days == b.pa_turnaround_days
    # A role no scenario names takes the default draws; the k-th task past the draws wraps.
    assert a.task_hours_for("pharmacist", 0) == dict(a.task_hours)["default"][0]
    assert a.task_hours_for("case_manager", 16) == a.task_hours_for("case_manager", 0)


def test_task_hours_need_a_default() -> None:
    with pytest.raises(ScenarioError, match="task_hours"):
        parse_scenario({"task_hours": {"nurse_educator": {"dist": "fixed", "value": 4}}})
