"""Refill-gap risk: each feature's points and reason, the levels, per-program weights."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from pydantic import ValidationError

from domain.refill_risk import RiskFeatures, RiskWeights, assess


def test_a_patient_with_nothing_against_them_is_low_risk() -> None:
    risk = assess(RiskFeatures(days_late=[0, 0, 0], pdc_now=Fraction(95, 100),
                               pdc_before=Fraction(9, 10), channels_answered_90d=2))  # fmt: skip
    assert (risk.score, risk.level, risk.reasons) == (0, "low", ())
    assert risk.summary() == "low (0): no risk factor"


def test_a_worked_high_risk_case_with_every_reason() -> None:
    risk = assess(RiskFeatures(
        days_late=[0, 2, 6, 10],  # the last 3: mean 6 days → 12 points
        pdc_now=Fraction(70, 100),  # below 0.80 → 15; down from 0.88: 18 points lost → 18
        pdc_before=Fraction(88, 100),
        pa_friction=2,  # → 10
        out_of_pocket=Decimal("75.00"),  # over $50 → 10
        unanswered_in_a_row=2,  # → 10
        channels_answered_90d=0,  # → 10
    ))  # fmt: skip
    assert [(r.code, r.points) for r in risk.reasons] == [
        ("pdc_falling", 18), ("pdc_below_adherent", 15), ("late_refills", 12),
        ("no_engagement", 10), ("out_of_pocket", 10), ("outreach_unanswered", 10),
        ("pa_friction", 10),
    ]  # fmt: skip
    assert (risk.score, risk.level) == (85, "high")
    assert risk.reasons[2].detail == "6.0 days late on average over the last 3 refills"
    assert risk.summary().startswith("high (85): pdc_falling +18, pdc_below_adherent +15")


def test_caps_and_bands() -> None:
    risk = assess(RiskFeatures(days_late=[40, 50, 60], pa_friction=9,
                               out_of_pocket=Decimal(400), unanswered_in_a_row=10))  # fmt: skip
    points = {r.code: r.points for r in risk.reasons}
    assert points == {"late_refills": 30, "pa_friction": 20, "out_of_pocket": 20,
                      "outreach_unanswered": 20}  # fmt: skip
    assert assess(RiskFeatures(out_of_pocket=Decimal(50))).reasons == ()  # not over $50


def test_levels_follow_the_thresholds() -> None:
    medium = assess(RiskFeatures(pdc_now=Fraction(79, 100), unanswered_in_a_row=2))  # 15 + 10
    assert (medium.score, medium.level) == (25, "medium")
    low = assess(RiskFeatures(pdc_now=Fraction(79, 100), unanswered_in_a_row=1))
    assert (low.score, low.level) == (20, "low")


def test_a_program_tunes_its_weights() -> None:
    features = RiskFeatures(out_of_pocket=Decimal(20), unanswered_in_a_row=1)
    assert assess(features).score == 5
    strict = RiskWeights(out_of_pocket_bands=((Decimal(10), 30),), medium_from=10, high_from=30)
    risk = assess(features, strict)
    assert (risk.score, risk.level) == (35, "high")
    with pytest.raises(ValidationError, match="high_from must be above medium_from"):
        RiskWeights(medium_from=50, high_from=50)
    with pytest.raises(ValidationError, match="lowest amount up"):
        RiskWeights(out_of_pocket_bands=((Decimal(150), 20), (Decimal(50), 10)))


def test_the_same_features_always_give_the_same_risk() -> None:
    features = RiskFeatures(days_late=[3, 1], pdc_now=Fraction(2, 3), pa_friction=1)
    assert assess(features) == assess(features)
    assert assess(features).score == 4 + 15 + 5  # mean 2 days late → 4


def test_late_refill_points_round_the_exact_mean_half_to_even() -> None:
    for days in [(1, 2), (0, 1), (1, 1, 2), (3,), (0, 0, 1), (5, 6), (2, 3, 3), (1, 2, 2, 2)]:
        mean = Fraction(sum(days), len(days))
        for per_day in (1, 2, 3):
            weights = RiskWeights(late_points_per_day=per_day, late_refills_considered=4,
                                  late_cap=1000)  # fmt: skip
            risk = assess(RiskFeatures(days_late=days), weights)
            late = [r for r in risk.reasons if r.code == "late_refills"]
            expected = round(mean * per_day)  # half to even: 0.5 -> 0, 1.5 -> 2, 2.5 -> 2
            assert [r.points for r in late] == ([expected] if expected else [])
            assert all(r.detail.startswith(f"{float(mean):.1f} days late") for r in late)
