"""PDC, MPR, run-out and the earliest payable refill, on hand-worked cases (DOMAIN.md §3).
Each expected figure is worked out in the comment beside it, day by day."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from random import Random

import pytest

from domain.adherence import (
    ADHERENT_ANTIRETROVIRAL,
    Fill,
    Period,
    counted,
    covered_days_by_group,
    earliest_payable_refill,
    mpr,
    pdc,
    pdcs,
    run_out,
)

H1 = Period(date(2026, 1, 1), date(2026, 6, 30))  # 181 days
YEAR = Period(date(2026, 1, 1), date(2026, 12, 31))  # 365 days


def fill(day: date, days: int = 30, *groups: str, status: str = "completed") -> Fill:
    return Fill(day, days, frozenset(groups or ("adalimumab",)), status)  # type: ignore[arg-type]


def test_an_early_refill_of_the_same_drug_is_shifted_to_after_the_supply() -> None:
    fills = [
        fill(date(2026, 1, 1)),  # Jan 1-30
        fill(date(2026, 1, 25)),  # 6 days early: shifted to Jan 31 - Mar 1
        fill(date(2026, 3, 20)),  # Mar 20 - Apr 18
    ]
    result = pdc(fills, H1)
    assert result.covered_days == 90  # unshifted it would be 84 (6 days counted twice)
    assert result.treatment == H1 and result.value == Fraction(90, 181)
    assert result.in_population and not result.adherent()
    assert mpr(fills, H1) == Fraction(90, 181)
    assert run_out(fills) == date(2026, 4, 19)  # Jan 31 → Mar 2 → Apr 19


def test_another_drug_of_the_class_is_not_shifted_each_day_counts_once() -> None:
    fills = [
        fill(date(2026, 1, 1), 30, "adalimumab"),  # Jan 1-30
        fill(date(2026, 1, 20), 30, "etanercept"),  # Jan 20 - Feb 18, no shift
    ]
    result = pdc(fills, H1)
    assert result.covered_days == 49  # Jan 1 - Feb 18 (a shift would make it 60)
    assert pdc(fills, H1, groups=["adalimumab"]).covered_days == 30


def test_a_combination_product_counts_as_its_target_drug_and_shifts_like_it() -> None:
    fills = [
        fill(date(2026, 1, 1), 30, "emtricitabine"),  # Jan 1-30
        fill(date(2026, 1, 25), 30, "emtricitabine", "tenofovir"),  # shifted: Jan 31 - Mar 1
    ]
    assert pdc(fills, H1, groups=["emtricitabine"]).covered_days == 60
    assert pdc(fills, H1, groups=["tenofovir"]).covered_days == 30  # its own group: no shift


def test_an_early_refill_at_the_year_end_is_truncated_at_the_period_end() -> None:
    fills = [
        fill(date(2026, 9, 1), 90),  # Sep 1 - Nov 29 (30 + 31 + 29)
        fill(date(2026, 11, 20), 90),  # 10 days early: Nov 30 - Feb 27; Nov 30 - Dec 31 count
    ]
    result = pdc(fills, YEAR)
    assert result.covered_days == 90 + 32
    assert result.treatment == Period(date(2026, 9, 1), date(2026, 12, 31))  # 122 days
    assert result.value == 1 and result.adherent(ADHERENT_ANTIRETROVIRAL)


def test_supply_from_before_the_period_counts_from_its_first_day() -> None:
    fills = [
        fill(date(2025, 12, 15)),  # Dec 15 - Jan 13: Jan 1-13 in the period
        fill(date(2026, 1, 10)),  # early: shifted to Jan 14 - Feb 12
        fill(date(2026, 3, 1)),  # Mar 1-30
    ]
    result = pdc(fills, YEAR)
    assert result.treatment == YEAR  # the index date is the period's first covered day
    assert result.covered_days == 13 + 30 + 30
    assert result.value == Fraction(73, 365)
    assert mpr(fills, YEAR) == Fraction(60, 365)  # only fills in the period


def test_disenrollment_or_death_ends_the_treatment_period() -> None:
    fills = [fill(date(2025, 12, 15)), fill(date(2026, 1, 10)), fill(date(2026, 3, 1))]
    result = pdc(fills, YEAR, ends_on=date(2026, 3, 15))
    assert result.treatment == Period(date(2026, 1, 1), date(2026, 3, 15))  # 74 days
    assert result.covered_days == 13 + 30 + 15  # Mar 1-15 only
    assert result.value == Fraction(58, 74)


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled", "declined", "reversed"])
def test_only_completed_dispenses_count_and_the_others_shift_nothing(status: str) -> None:
    fills = [
        fill(date(2026, 1, 1)),  # Jan 1-30
        fill(date(2026, 1, 20), status=status),  # never counts, never pushes the next
        fill(date(2026, 2, 10)),  # Feb 10 - Mar 11
    ]
    assert pdc(fills, H1).covered_days == 60
    assert run_out(fills) == date(2026, 3, 12)


def test_the_measure_population_rule() -> None:
    one_fill = pdc([fill(date(2026, 1, 1), 90)], YEAR)
    assert not one_fill.in_population
    assert one_fill.why_not == ("fewer than two fills on different dates in the period",)
    same_day = pdc([fill(date(2026, 3, 1)), fill(date(2026, 3, 1))], YEAR)
    assert not same_day.in_population  # two fills, one date
    late = pdc([fill(date(2026, 10, 15)), fill(date(2026, 11, 14))], YEAR)
    assert late.why_not == ("index date less than 91 days before the period ends",)
    just_in = pdc([fill(date(2026, 10, 1)), fill(date(2026, 10, 31))], YEAR)
    assert just_in.in_population  # Oct 1 is 91 days before Dec 31
    nothing = pdc([fill(date(2025, 1, 1))], YEAR)
    assert nothing.treatment is None and nothing.value == 0 and not nothing.in_population


def test_each_covered_day_counts_once_and_pdc_never_exceeds_one() -> None:
    fills = [fill(date(2026, 1, 1), 90), fill(date(2026, 1, 2), 90, "etanercept"),
             fill(date(2026, 1, 3), 90, "certolizumab")]  # fmt: skip
    result = pdc(fills, Period(date(2026, 1, 1), date(2026, 3, 31)))
    assert result.covered_days == 90 and result.value == 1
    assert mpr(fills, Period(date(2026, 1, 1), date(2026, 3, 31))) == 1  # 270 / 90, capped


def test_the_earliest_payable_refill() -> None:
    last = fill(date(2026, 1, 1), 30)
    assert earliest_payable_refill(last) == date(2026, 1, 24)  # ceil(22.5) = 23 days on
    assert earliest_payable_refill(last, 0.8) == date(2026, 1, 25)  # 24 days on
    assert earliest_payable_refill(fill(date(2026, 1, 1), 28)) == date(2026, 1, 22)  # 21


def test_a_fill_needs_a_supply_and_a_group() -> None:
    with pytest.raises(ValueError, match="days_supply"):
        Fill(date(2026, 1, 1), 0, frozenset({"x"}))
    with pytest.raises(ValueError, match="drug group"):
        Fill(date(2026, 1, 1), 30, frozenset())
    with pytest.raises(ValueError, match="ends on or after"):
        Period(date(2026, 2, 1), date(2026, 1, 1))


def test_pdc_counts_exactly_the_covered_days_the_groups_lay_out() -> None:
    """PDC counts spans of days; on random fills (groups, early refills, carry, a death
    date, a group filter) it agrees with the days `covered_days_by_group` lists."""
    rng = Random(12)
    groups = ("adalimumab", "etanercept", "certolizumab")
    for _ in range(300):
        fills = [
            fill(date(2025, 11, 1) + timedelta(days=rng.randrange(0, 420)),
                 rng.choice((7, 28, 30, 90)), *rng.sample(groups, rng.randint(1, 2)),
                 status=rng.choice(("completed",) * 5 + ("cancelled",)))
            for _ in range(rng.randrange(0, 12))
        ]  # fmt: skip
        carry = {g: date(2025, 12, 1) + timedelta(days=rng.randrange(0, 60))
                 for g in groups if rng.random() < 0.3}  # fmt: skip
        wanted = set(rng.sample(groups, rng.randint(1, 3))) if rng.random() < 0.5 else None
        ends_on = date(2026, 1, 1) + timedelta(days=rng.randrange(0, 400))
        ends = ends_on if rng.random() < 0.3 else None
        result = pdc(fills, YEAR, groups=wanted, ends_on=ends, carry=carry)

        end = min(YEAR.end, ends) if ends else YEAR.end
        kept = [f for f in counted(fills, wanted) if f.filled_on <= end]
        days = {
            d
            for g, covered in covered_days_by_group(kept, carry).items()
            if wanted is None or g in wanted
            for d in covered
            if YEAR.start <= d <= end
        }
        assert result.covered_days == len(days)
        assert (result.treatment.start if result.treatment else None) == min(days, default=None)


def test_pdc_over_several_windows_at_once_is_pdc_over_each() -> None:
    rng = Random(7)
    for _ in range(200):
        fills = [
            fill(date(2025, 6, 1) + timedelta(days=rng.randrange(0, 500)),
                 rng.choice((28, 30, 90)), *rng.sample(("a", "b"), rng.randint(1, 2)))
            for _ in range(rng.randrange(0, 10))
        ]  # fmt: skip
        carry = {"a": date(2025, 7, 1)} if rng.random() < 0.3 else None
        today = date(2025, 9, 1) + timedelta(days=rng.randrange(0, 400))
        windows = [Period(today - timedelta(days=179), today),
                   Period(today - timedelta(days=359), today - timedelta(days=180))]  # fmt: skip
        assert pdcs(fills, windows, carry=carry) == [pdc(fills, w, carry=carry) for w in windows]
