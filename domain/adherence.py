"""Adherence maths (DOMAIN.md §3): PDC as the Pharmacy Quality Alliance defines it, MPR,
the run-out date and the earliest payable refill. Pure and exact: dates in, dates and
fractions out, so journeys (workflow code), the API and the simulator share it.

PDC, step by step:
1. Only completed dispenses count (entered-in-error, cancelled, declined, or a reversed
   claim never do).
2. Each fill covers `days_supply` consecutive days. Within one drug group (the target
   active ingredient; a combination product that contains it belongs to its group too),
   a fill made while earlier supply remains starts the day after that supply runs out
   (the early-refill shift). Across groups there is no shift: each group's days are laid
   out on their own, and a day covered by any group counts once.
3. The treatment period runs from the index date to the end of the measurement period,
   or to disenrollment or death when earlier. The index date is the first covered day in
   the measurement period: the first fill in it, or the period's first day when supply
   from a fill before the period runs into it. No supply counts past the treatment end.
4. PDC = covered days / days in the treatment period (never above 1). Adherent at ≥ 0.80
   (0.90 for antiretrovirals: `threshold`).
5. Measure population: at least two fills on different dates in the period, and an index
   date at least 91 days before the period ends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from operator import attrgetter
from typing import Any, Literal

DispenseStatus = Literal[
    "completed", "entered-in-error", "cancelled", "declined", "in-progress", "reversed"
]
ADHERENT = Fraction(8, 10)
ADHERENT_ANTIRETROVIRAL = Fraction(9, 10)
POPULATION_MIN_DAYS = 91
REFILL_THRESHOLD = Fraction(3, 4)
_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Fill:
    """One dispense, as the pharmacy reported it (FHIR MedicationDispense, simplified)."""

    filled_on: date  # whenHandedOver
    days_supply: int
    drug_groups: frozenset[str]  # the active ingredients it counts under
    status: DispenseStatus = "completed"

    def __post_init__(self) -> None:
        if self.days_supply < 1:
            raise ValueError("days_supply must be at least 1")
        if not self.drug_groups:
            raise ValueError("a fill counts under at least one drug group")

    @property
    def counts(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a period ends on or after its start")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


@dataclass(frozen=True)
class Pdc:
    covered_days: int
    treatment: Period | None  # None: no supply in the measurement period at all
    in_population: bool
    why_not: tuple[str, ...] = field(default=())  # measure-population reasons

    @property
    def value(self) -> Fraction:
        if self.treatment is None:
            return Fraction(0)
        return Fraction(self.covered_days, self.treatment.days)

    def adherent(self, threshold: Fraction = ADHERENT) -> bool:
        return self.value >= threshold


def fill_of(data: Mapping[str, Any]) -> Fill | None:
    """The fill a pharmacy event reported (adapters.pharmacy: `is_fill`, `days_supply`,
    `dispensed_at`, `drug_groups`), or None when it is not one."""
    if not data.get("is_fill") or not data.get("dispensed_at"):
        return None
    handed = datetime.fromisoformat(str(data["dispensed_at"]))
    groups = frozenset(str(g) for g in data.get("drug_groups") or ()) or frozenset({"unknown"})
    return Fill(handed.date(), int(data["days_supply"]), groups)


def counted(fills: Iterable[Fill], groups: Iterable[str] | None = None) -> list[Fill]:
    """Completed fills (of `groups` when given), in date order."""
    if groups is None:
        kept = [f for f in fills if f.status == "completed"]  # Fill.counts
    else:
        wanted = frozenset(groups)
        kept = [f for f in fills if f.status == "completed" and f.drug_groups & wanted]
    return sorted(kept, key=_filled_on)


_filled_on = attrgetter("filled_on")


Carry = Mapping[str, date]  # group → the day after supply of fills no longer kept ran out


def covered_days_by_group(
    fills: Sequence[Fill], carry: Carry | None = None
) -> dict[str, set[date]]:
    """Each group's covered days, with the same-group early-refill shift.

    `carry` stands for fills dropped from a long journey's memory (`prune`): their supply
    ended before any day still counted, so only where it ended still shifts later fills.
    """
    covered: dict[str, set[date]] = {}
    next_free: dict[str, date] = dict(carry or {})
    for fill in fills:
        for group in sorted(fill.drug_groups):
            start = max(fill.filled_on, next_free.get(group, fill.filled_on))
            days = covered.setdefault(group, set())
            days.update(start + i * _DAY for i in range(fill.days_supply))
            next_free[group] = start + fill.days_supply * _DAY
    return covered


def pdc(
    fills: Iterable[Fill],
    period: Period,
    *,
    groups: Iterable[str] | None = None,
    ends_on: date | None = None,
    carry: Carry | None = None,
) -> Pdc:
    """PDC over `period` for the fills of `groups` (default: all), ending early at
    disenrollment or death (`ends_on`)."""
    kept = counted(fills, groups)
    end = min(period.end, ends_on) if ends_on is not None else period.end
    wanted = frozenset(groups) if groups is not None else None
    spans = _covered_spans([f for f in kept if f.filled_on <= end], carry, wanted)
    return _measured(kept, spans, period, end)


def pdcs(
    fills: Iterable[Fill], periods: Sequence[Period], *, carry: Carry | None = None
) -> list[Pdc]:
    """`pdc` over each period (all groups, no early end), the fills laid out once: a
    fill after a period's end only covers days after it, so it changes nothing there."""
    kept = counted(fills)
    spans = _covered_spans(kept, carry, None)
    return [_measured(kept, spans, period, period.end) for period in periods]


def _measured(kept: list[Fill], spans: list[tuple[int, int]], period: Period, end: date) -> Pdc:
    """PDC over `period`, ending on `end`, from the fills and the spans they cover."""
    # The covered days in the window: the groups' spans clipped to it, overlaps once.
    first, last = period.start.toordinal(), end.toordinal()
    clipped = sorted((max(a, first), min(b, last + 1)) for a, b in spans if a <= last and b > first)
    covered, reach, index_ordinal = 0, first, None
    for a, b in clipped:
        a = max(a, reach)
        if b > a:
            covered += b - a
            reach = b
            if index_ordinal is None:
                index_ordinal = a
    why: list[str] = []
    fill_dates = {f.filled_on for f in kept if period.start <= f.filled_on <= period.end}
    if len(fill_dates) < 2:
        why.append("fewer than two fills on different dates in the period")
    if index_ordinal is None:
        return Pdc(0, None, False, (*why, "no supply in the period"))
    index = date.fromordinal(index_ordinal)
    if (period.end - index).days < POPULATION_MIN_DAYS:
        why.append(f"index date less than {POPULATION_MIN_DAYS} days before the period ends")
    treatment = Period(index, end)
    return Pdc(covered, treatment, not why, tuple(why))


def _covered_spans(
    fills: Sequence[Fill], carry: Carry | None, wanted: frozenset[str] | None
) -> list[tuple[int, int]]:
    """`covered_days_by_group` as spans of day ordinals, [first, past the last), for the
    `wanted` groups (default: all): the same days, without listing them one by one."""
    # Day ordinals throughout; each group's layout is its own, so the order in which a
    # fill's groups are taken changes nothing (the spans are sorted when clipped).
    spans: list[tuple[int, int]] = []
    next_free = {group: day.toordinal() for group, day in (carry or {}).items()}
    for fill in fills:
        filled, supply = fill.filled_on.toordinal(), fill.days_supply
        for group in fill.drug_groups:
            start = max(filled, next_free.get(group, filled))
            next_free[group] = start + supply
            if wanted is None or group in wanted:
                spans.append((start, start + supply))
    return spans


def mpr(fills: Iterable[Fill], period: Period, groups: Iterable[str] | None = None) -> Fraction:
    """Medication Possession Ratio: days supplied by fills in the period over its days,
    capped at 1."""
    supplied = sum(f.days_supply for f in counted(fills, groups) if f.filled_on in period)
    return min(Fraction(supplied, period.days), Fraction(1))


def run_out(
    fills: Iterable[Fill], groups: Iterable[str] | None = None, carry: Carry | None = None
) -> date | None:
    """The day supply runs out: for each fill, max(previous run-out, fill date) + days
    supply. None before any fill."""
    wanted = frozenset(groups) if groups is not None else None
    carried = [d for g, d in (carry or {}).items() if wanted is None or g in wanted]
    out: date | None = max(carried, default=None)
    for fill in counted(fills, groups):
        start = fill.filled_on if out is None else max(out, fill.filled_on)
        out = start + fill.days_supply * _DAY
    return out


def earliest_payable_refill(last: Fill, threshold: Fraction | float = REFILL_THRESHOLD) -> date:
    """A plan pays a refill from fill date + ceil(days supply * threshold) ("refill too
    soon" before that); threshold 0.75 unless the plan says otherwise."""
    return last.filled_on + payable_after(last.days_supply, threshold)


@lru_cache(maxsize=1024, typed=True)  # a few supplies and thresholds, asked at every turn
def payable_after(days_supply: int, threshold: Fraction | float = REFILL_THRESHOLD) -> timedelta:
    """How long after a fill of `days_supply` days the plan pays the next one."""
    share = Fraction(str(threshold)) if isinstance(threshold, float) else threshold
    return math.ceil(days_supply * share) * _DAY


def prune(
    fills: Sequence[Fill], keep_from: date, carry: Carry | None = None
) -> tuple[list[Fill], dict[str, date]]:
    """Drop the oldest fills whose supply ran out before `keep_from`, exactly: what they
    still decide (where each group's supply ended, for the early-refill shift) goes into
    the returned carry. PDC and run-out over days from `keep_from` on come out the same.
    Returns the completed fills kept, in date order, and the new carry.

    Only a prefix in date order is dropped, so a fill that a dropped one shifted is never
    computed differently."""
    kept = counted(fills)
    next_free: dict[str, date] = dict(carry or {})
    dropped = 0
    for fill in kept:
        ends = {}
        for group in sorted(fill.drug_groups):
            start = max(fill.filled_on, next_free.get(group, fill.filled_on))
            ends[group] = start + fill.days_supply * _DAY
        if any(end > keep_from for end in ends.values()):
            break
        next_free.update(ends)
        dropped += 1
    return kept[dropped:], next_free
