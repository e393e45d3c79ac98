"""Refill-gap risk: an explainable, deterministic score computed at each refill cycle.

No opaque model: a sum of points, each with its reason, so a nurse reads why a patient
is flagged and a program manager tunes it. It runs in workflow code (integers and
fractions only, no clock, no I/O). Weights are per program (`RiskWeights`); defaults:

| feature | points (default) |
|---|---|
| days late on past refills | 2 per day, mean of the last 3 refills, at most 30 |
| PDC below the adherent threshold (0.80) | 15 |
| PDC falling since the window before | 1 per point of PDC lost (0.10 → 10), at most 25 |
| PA friction in the last year (pends, denials, information requests) | 5 each, at most 20 |
| out-of-pocket cost per fill | 10 over $50, 20 over $150 |
| reminders left unanswered in a row | 5 each, at most 20 |
| no channel answered in the last 90 days | 10 |

Level: high from 50 points, medium from 25, else low. A high risk makes the journey act
before run-out (earlier outreach, a nurse call, a copay re-check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RiskLevel = Literal["low", "medium", "high"]
ADHERENT = Fraction(8, 10)


class RiskWeights(BaseModel):
    """Points per feature and the level thresholds (per program; see the module table)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    late_points_per_day: int = Field(2, ge=0)
    late_refills_considered: int = Field(3, ge=1)
    late_cap: int = Field(30, ge=0)
    below_adherent: int = Field(15, ge=0)
    adherent_threshold: Fraction = ADHERENT
    pdc_drop_per_point: int = Field(1, ge=0)
    pdc_drop_cap: int = Field(25, ge=0)
    pa_friction_each: int = Field(5, ge=0)
    pa_friction_cap: int = Field(20, ge=0)
    out_of_pocket_bands: tuple[tuple[Decimal, int], ...] = (
        (Decimal(50), 10),
        (Decimal(150), 20),
    )
    unanswered_each: int = Field(5, ge=0)
    unanswered_cap: int = Field(20, ge=0)
    no_engagement: int = Field(10, ge=0)
    medium_from: int = Field(25, ge=1)
    high_from: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskWeights:
        if self.high_from <= self.medium_from:
            raise ValueError("high_from must be above medium_from")
        amounts = [amount for amount, _ in self.out_of_pocket_bands]
        if amounts != sorted(amounts):
            raise ValueError("out_of_pocket_bands go from the lowest amount up")
        return self


@dataclass(frozen=True)
class RiskFeatures:
    """What the journey knows at a refill cycle (nothing identifying)."""

    days_late: Sequence[int] = ()  # past refills, oldest first: days after run-out, 0 if not
    pdc_now: Fraction | None = None  # the current window
    pdc_before: Fraction | None = None  # the window before it, for the trend
    pa_friction: int = 0  # pends, denials and information requests in the last year
    out_of_pocket: Decimal | None = None  # the patient's cost of the last fill
    unanswered_in_a_row: int = 0  # reminders since the patient last answered one
    channels_answered_90d: int | None = None  # None: no contact history yet


@dataclass(frozen=True)
class RiskReason:
    code: str
    points: int
    detail: str  # figures only, never the patient


@dataclass(frozen=True)
class Risk:
    score: int
    level: RiskLevel
    reasons: tuple[RiskReason, ...] = field(default=())

    def summary(self) -> str:
        why = ", ".join(f"{r.code} +{r.points}" for r in self.reasons) or "no risk factor"
        return f"{self.level} ({self.score}): {why}"


def assess(features: RiskFeatures, weights: RiskWeights | None = None) -> Risk:
    """The score, its level and its reasons, largest first."""
    w = weights or RiskWeights()
    reasons = [
        r
        for r in (
            _late_refills(features, w),
            _below_adherent(features, w),
            _pdc_falling(features, w),
            _pa_friction(features, w),
            _out_of_pocket(features, w),
            _unanswered(features, w),
            _not_engaged(features, w),
        )
        if r is not None and r.points > 0
    ]
    reasons.sort(key=lambda r: (-r.points, r.code))
    score = sum(r.points for r in reasons)
    level: RiskLevel = (
        "high" if score >= w.high_from else "medium" if score >= w.medium_from else "low"
    )
    return Risk(score, level, tuple(reasons))


def _late_refills(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    recent = list(f.days_late)[-w.late_refills_considered :]
    if not recent:
        return None
    # The mean, exactly, in integers: round(Fraction(total, n) * per_day) and its float,
    # without building Fractions at every turn of a journey.
    total, n = sum(max(d, 0) for d in recent), len(recent)
    points = min(_round_half_even(total * w.late_points_per_day, n), w.late_cap)
    return RiskReason("late_refills", points, f"{total / n:.1f} days late on average "
                      f"over the last {n} refills")  # fmt: skip


def _round_half_even(numerator: int, denominator: int) -> int:
    """round(Fraction(numerator, denominator)) for a positive denominator."""
    floor, remainder = divmod(numerator, denominator)
    if 2 * remainder != denominator:
        return floor + (2 * remainder > denominator)
    return floor + floor % 2


def _below_adherent(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    if f.pdc_now is None or f.pdc_now >= w.adherent_threshold:
        return None
    below = f"PDC {float(f.pdc_now):.2f} < {float(w.adherent_threshold):.2f}"
    return RiskReason("pdc_below_adherent", w.below_adherent, below)


def _pdc_falling(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    if f.pdc_now is None or f.pdc_before is None or f.pdc_now >= f.pdc_before:
        return None
    lost = (f.pdc_before - f.pdc_now) * 100
    points = min(round(lost * w.pdc_drop_per_point), w.pdc_drop_cap)
    return RiskReason("pdc_falling", points,
                      f"PDC {float(f.pdc_before):.2f} → {float(f.pdc_now):.2f}")  # fmt: skip


def _pa_friction(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    if f.pa_friction <= 0:
        return None
    points = min(f.pa_friction * w.pa_friction_each, w.pa_friction_cap)
    return RiskReason("pa_friction", points, f"{f.pa_friction} PA setbacks in a year")


def _out_of_pocket(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    if f.out_of_pocket is None:
        return None
    points = max((p for amount, p in w.out_of_pocket_bands if f.out_of_pocket > amount), default=0)
    return RiskReason("out_of_pocket", points, f"${f.out_of_pocket} per fill")


def _unanswered(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    if f.unanswered_in_a_row <= 0:
        return None
    points = min(f.unanswered_in_a_row * w.unanswered_each, w.unanswered_cap)
    return RiskReason("outreach_unanswered", points,
                      f"{f.unanswered_in_a_row} reminders unanswered in a row")  # fmt: skip


def _not_engaged(f: RiskFeatures, w: RiskWeights) -> RiskReason | None:
    if f.channels_answered_90d is None or f.channels_answered_90d > 0:
        return None
    return RiskReason("no_engagement", w.no_engagement, "no channel answered in 90 days")
