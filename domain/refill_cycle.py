"""A refill journey's memory and its next move (DOMAIN.md §3), pure and deterministic.

The `refill_watch` step (workflows/steps/refill_watch.py) keeps a `RefillState` in the
journey state and asks `next_due` what comes next: a reminder 7 / 3 / 1 days before
run-out (never before the earliest payable refill), a nurse call or a copay re-check
when the refill risk is high, AT_RISK 7 days after run-out, DISCONTINUED after the gap
limit, a re-authorization ahead of a PA's expiry or the plan year, the close of a
measurement year. Dispenses move it (`apply_dispense`). The simulator runs the same code.

Bounded for a journey of years: fills whose supply ended before the open measurement
year (and the risk windows) are dropped with `adherence.prune`, whose carry keeps every
later figure exact; closed years keep one line each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain import adherence
from domain.adherence import Fill, Period
from domain.local_time import local_date
from domain.refill_risk import RiskFeatures, RiskLevel, RiskWeights, assess
from domain.refill_schedule import REMINDER_LEADS, SEND_AT, jitter

RefillStatus = Literal["awaiting_first_fill", "on_therapy", "at_risk", "discontinued"]
DueKind = Literal[
    "year_end",
    "reauthorize",
    "discontinue",
    "at_risk",
    "copay_recheck",
    "proactive_call",
    "reminder",
]
# When two things fall due at the same instant, in this order.
_ORDER: dict[str, int] = {k: i for i, k in enumerate(DueKind.__args__)}  # type: ignore[attr-defined]
DAYS_LATE_KEPT = 6
REAUTHORIZED_KEPT = 10
RISK_WINDOW_DAYS = 180  # PDC now: the last 180 days; the trend: the 180 before
ENGAGEMENT_DAYS = 90


class FillRecord(BaseModel):
    """A completed dispense the journey still counts (nothing identifying)."""

    dispense_id: str
    filled_on: date
    days_supply: int
    drug_groups: list[str]

    def as_fill(self) -> Fill:
        return _fill(self.filled_on, self.days_supply, tuple(self.drug_groups))


@lru_cache(maxsize=4096, typed=True)  # the same few fills, read at every turn of a journey
def _fill(filled_on: date, days_supply: int, drug_groups: tuple[str, ...]) -> Fill:
    return Fill(filled_on, days_supply, frozenset(drug_groups))


class YearPdc(BaseModel):
    """A closed measurement year (calendar year, as the PQA measures it)."""

    year: int
    pdc: float = Field(description="Covered days / treatment days, 4 decimals.")
    covered_days: int
    treatment_days: int
    in_population: bool
    adherent: bool


class RiskView(BaseModel):
    score: int
    level: RiskLevel
    reasons: list[str] = Field(description="`code +points: figures`, largest first.")
    assessed_on: date


class ReminderSent(BaseModel):
    on: date
    channel: str | None = Field(description="The channel it went on; None: it did not go.")


class RefillState(BaseModel):
    """What a refill journey carries from cycle to cycle (and run to run)."""

    status: RefillStatus = "awaiting_first_fill"
    enrolled_on: date
    open_year: int = Field(description="The measurement year still open.")
    fills: list[FillRecord] = Field(default_factory=list)
    carry: dict[str, date] = Field(
        default_factory=dict, description="Per drug group: where dropped fills' supply ended."
    )
    fills_counted: int = 0
    last_fill_on: date | None = None
    groups: list[str] = Field(default_factory=list, description="The current therapy's groups.")
    run_out: date | None = None
    days_late: list[int] = Field(default_factory=list, description="Recent refills, oldest first.")
    reminded: list[int] = Field(default_factory=list, description="Leads done for this run-out.")
    proactive_for: date | None = None
    copay_rechecked_for: date | None = None
    at_risk_since: date | None = None
    at_risk_episodes: int = 0
    unanswered_in_a_row: int = 0
    reminders: list[ReminderSent] = Field(default_factory=list)
    pdc_year_to_date: float | None = None
    pdc_by_year: list[YearPdc] = Field(default_factory=list)
    risk: RiskView | None = None
    reauthorized: list[str] = Field(default_factory=list, description="Keys done, newest last.")
    discontinued_reason: str | None = None

    def counted_fills(self) -> list[Fill]:
        return [r.as_fill() for r in self.fills]


@dataclass(frozen=True)
class RefillPolicy:
    """The refill_watch step's settings, resolved."""

    timezone: str
    jitter_key: str
    reminder_leads: tuple[int, ...] = REMINDER_LEADS
    high_risk_leads: tuple[int, ...] = (10,)
    proactive_lead: int = 10
    at_risk_after: int = 7
    discontinue_after: int = 60
    reauthorize_before: int = 30
    plan_year_check: tuple[int, int] | None = (12, 1)
    refill_threshold: Fraction = adherence.REFILL_THRESHOLD
    weights: RiskWeights = field(default_factory=RiskWeights)

    def at(self, day: date) -> datetime:
        """This journey's instant on `day`: the local send hour plus its jitter (UTC)."""
        return _send_instant(day, self.timezone, self.jitter_key)

    def today(self, now: datetime) -> date:
        return local_date(now, self.timezone)


@lru_cache(maxsize=8192)  # a turn asks for the same few days again and again
def _send_instant(day: date, timezone: str, jitter_key: str) -> datetime:
    local = datetime.combine(day, SEND_AT, ZoneInfo(timezone))
    return local.astimezone(UTC) + jitter(jitter_key)


@lru_cache(maxsize=1024)
def _new_year(year: int, timezone: str) -> datetime:
    """Midnight starting `year` where the patient lives (UTC)."""
    return datetime.combine(date(year, 1, 1), time(0), ZoneInfo(timezone)).astimezone(UTC)


@dataclass(frozen=True)
class Due:
    kind: DueKind
    at: datetime
    lead: int | None = None
    reason: str | None = None
    key: str | None = None
    # When it was planned for, if `at` caught it up to now (a late reauthorization).
    planned: datetime | None = None


# -- dispenses --------------------------------------------------------------------------
Applied = Literal["filled", "corrected", "duplicate", "ignored"]


def start(today: date) -> RefillState:
    return RefillState(enrolled_on=today, open_year=today.year)


def apply_dispense(
    state: RefillState, data: Mapping[str, Any], now: datetime, policy: RefillPolicy
) -> Applied:
    """A `pharmacy.dispensed` event's data (adapters.pharmacy): a completed dispense is a
    fill; any other status (entered-in-error, cancelled, declined) names a dispense that
    no longer counts, and takes it out."""
    dispense_id = str(data.get("dispense_id") or "")
    known = next((r for r in state.fills if r.dispense_id == dispense_id), None)
    fill = (
        adherence.fill_of(data) if data.get("dispense_status", "completed") == "completed" else None
    )
    if fill is None:
        if known is None:
            return "ignored"
        state.fills.remove(known)
        state.fills_counted -= 1
        _moved(state, now, policy)
        return "corrected"
    if known is not None:
        return "duplicate"
    if state.run_out is not None:
        state.days_late = [*state.days_late, max((fill.filled_on - state.run_out).days, 0)][
            -DAYS_LATE_KEPT:
        ]
        if state.reminded:  # reminded this cycle: did the patient act before running out?
            late = fill.filled_on > state.run_out
            state.unanswered_in_a_row = state.unanswered_in_a_row + 1 if late else 0
    state.fills.append(
        FillRecord(
            dispense_id=dispense_id or f"fill-{state.fills_counted + 1}",
            filled_on=fill.filled_on,
            days_supply=fill.days_supply,
            drug_groups=sorted(fill.drug_groups),
        )
    )
    state.fills.sort(key=lambda r: (r.filled_on, r.dispense_id))
    state.fills_counted += 1
    state.last_fill_on = max(state.last_fill_on or fill.filled_on, fill.filled_on)
    state.groups = sorted(fill.drug_groups)
    state.status = "on_therapy"
    state.at_risk_since = None
    _moved(state, now, policy)
    return "filled"


def _moved(state: RefillState, now: datetime, policy: RefillPolicy) -> None:
    """The fills changed: a new run-out; reminders already past for it are not sent late."""
    before = state.run_out
    state.run_out = adherence.run_out(state.counted_fills(), state.groups or None, state.carry)
    if state.run_out != before:
        state.reminded = [lead for lead, at in reminder_times(state, policy) if at < now]
    _prune(state, policy.today(now))
    state.pdc_year_to_date = _ytd(state, policy.today(now))


# -- years and bounds -------------------------------------------------------------------
def close_years(state: RefillState, today: date) -> list[YearPdc]:
    """Close every measurement year that has ended; returns the years closed."""
    closed = []
    while today.year > state.open_year:
        year = state.open_year
        result = adherence.pdc(
            state.counted_fills(), Period(date(year, 1, 1), date(year, 12, 31)),
            carry=state.carry,
        )  # fmt: skip
        line = YearPdc(
            year=year,
            pdc=round(float(result.value), 4),
            covered_days=result.covered_days,
            treatment_days=result.treatment.days if result.treatment else 0,
            in_population=result.in_population,
            adherent=result.adherent(),
        )
        state.pdc_by_year.append(line)
        closed.append(line)
        state.open_year += 1
    if closed:
        _prune(state, today)
        state.pdc_year_to_date = _ytd(state, today)
    return closed


def _prune(state: RefillState, today: date) -> None:
    keep_from = min(date(state.open_year, 1, 1), today - timedelta(days=2 * RISK_WINDOW_DAYS))
    kept, state.carry = adherence.prune(state.counted_fills(), keep_from, state.carry)
    drop = len(state.fills) - len(kept)
    del state.fills[:drop]  # a prefix in date order (adherence.prune)
    state.reminders = [r for r in state.reminders if (today - r.on).days <= ENGAGEMENT_DAYS]


def _ytd(state: RefillState, today: date) -> float | None:
    start_of_year = date(state.open_year, 1, 1)
    if today < start_of_year:
        return None
    result = adherence.pdc(state.counted_fills(), Period(start_of_year, today), carry=state.carry)
    return round(float(result.value), 4) if result.treatment else None


# -- risk -------------------------------------------------------------------------------
def assess_risk(
    state: RefillState,
    today: date,
    weights: RiskWeights,
    *,
    pa_friction: int = 0,
    out_of_pocket: Decimal | None = None,
) -> RiskView:
    fills = state.counted_fills()
    window = timedelta(days=RISK_WINDOW_DAYS)
    now_window = Period(today - window + timedelta(days=1), today)
    before_window = Period(now_window.start - window, now_window.start - timedelta(days=1))
    pdc_now, pdc_before = _window_pdcs(state, fills, (now_window, before_window))
    recent = [r for r in state.reminders if (today - r.on).days <= ENGAGEMENT_DAYS]
    features = RiskFeatures(
        days_late=tuple(state.days_late),
        pdc_now=pdc_now,
        pdc_before=pdc_before,
        pa_friction=pa_friction,
        out_of_pocket=out_of_pocket,
        unanswered_in_a_row=state.unanswered_in_a_row,
        channels_answered_90d=len({r.channel for r in recent if r.channel}) if recent else None,
    )
    risk = assess(features, weights)
    return RiskView(
        score=risk.score,
        level=risk.level,
        reasons=[f"{r.code} +{r.points}: {r.detail}" for r in risk.reasons],
        assessed_on=today,
    )


def _window_pdcs(
    state: RefillState, fills: list[Fill], windows: tuple[Period, ...]
) -> list[Fraction | None]:
    """PDC over each window the journey has fully seen (None before the journey began);
    the fills laid out once for all of them."""
    seen = [w for w in windows if w.start >= state.enrolled_on]
    results = iter(adherence.pdcs(fills, seen, carry=state.carry))
    values: list[Fraction | None] = []
    for window in windows:
        if window.start < state.enrolled_on:
            values.append(None)
            continue
        result = next(results)
        values.append(result.value if result.treatment else Fraction(0))
    return values


def high_risk(state: RefillState) -> bool:
    return state.risk is not None and state.risk.level == "high"


# -- what is due ------------------------------------------------------------------------
def earliest_payable(state: RefillState, policy: RefillPolicy) -> date | None:
    """The plan pays the next refill from here ("refill too soon" before)."""
    groups = set(state.groups)
    last = next((r for r in reversed(state.fills) if not groups.isdisjoint(r.drug_groups)), None)
    if last is None:
        return None
    # adherence.earliest_payable_refill(last.as_fill(), ...), without building the Fill
    return last.filled_on + adherence.payable_after(last.days_supply, policy.refill_threshold)


def reminder_times(state: RefillState, policy: RefillPolicy) -> list[tuple[int, datetime]]:
    """(lead, instant) of each reminder for the current run-out, earliest first; a high
    risk adds earlier ones. None goes before the earliest payable refill."""
    if state.run_out is None:
        return []
    return list(
        _reminder_times(
            state.run_out, earliest_payable(state, policy), policy.reminder_leads,
            policy.high_risk_leads if high_risk(state) else (), policy.timezone,
            policy.jitter_key,
        )
    )  # fmt: skip


@lru_cache(maxsize=4096)  # the same run-out is asked about at every turn of a cycle
def _reminder_times(
    run_out: date,
    payable: date | None,
    leads: tuple[int, ...],
    high_risk_leads: tuple[int, ...],
    timezone: str,
    jitter_key: str,
) -> tuple[tuple[int, datetime], ...]:
    out = []
    for lead in sorted(set(leads) | set(high_risk_leads), reverse=True):
        day = run_out - timedelta(days=lead)
        if payable is not None and day < payable:
            day = payable
        out.append((lead, _send_instant(day, timezone, jitter_key)))
    return tuple(out)


def next_due(
    state: RefillState,
    policy: RefillPolicy,
    now: datetime,
    *,
    pa_expires_on: date | None = None,
    copay_recheck: bool = False,
    ties_by_plan: bool = False,
) -> Due | None:
    """The next thing to do, or None: nothing until the next dispense.

    `ties_by_plan`: things compare by when they were planned for, so two planned for one
    instant go in their kind's order however late the journey woke (`now` is always a
    little after the timer: caught-up times would otherwise lose every tie)."""
    if state.status == "discontinued":
        return None
    today = policy.today(now)
    due: list[Due] = [Due("year_end", _new_year(state.open_year + 1, policy.timezone))]
    if state.run_out is None:
        limit = state.enrolled_on + timedelta(days=policy.discontinue_after)
        due.append(Due("discontinue", policy.at(limit), reason="never_filled"))
    else:
        run_out = state.run_out
        gap_end = run_out + timedelta(days=policy.discontinue_after)
        due.append(Due("discontinue", policy.at(gap_end), reason="lost_to_follow_up"))
        if state.status == "on_therapy":
            due.append(Due("at_risk", policy.at(run_out + timedelta(days=policy.at_risk_after))))
        for lead, at in reminder_times(state, policy):
            if lead not in state.reminded:
                due.append(Due("reminder", at, lead=lead))
        if high_risk(state) and today < run_out and state.status == "on_therapy":
            planned = policy.at(run_out - timedelta(days=policy.proactive_lead))
            act = max(planned, now)
            if state.proactive_for != run_out:
                due.append(Due("proactive_call", act, planned=planned))
            if copay_recheck and state.copay_rechecked_for != run_out:
                due.append(Due("copay_recheck", act, planned=planned))
    if pa_expires_on is not None:
        key = f"pa_expiry/{pa_expires_on.isoformat()}"
        if key not in state.reauthorized:
            ahead = policy.at(pa_expires_on - timedelta(days=policy.reauthorize_before))
            due.append(
                Due("reauthorize", max(ahead, now), reason="pa_expiry", key=key, planned=ahead)
            )
    if policy.plan_year_check is not None and state.run_out is not None:
        month, day = policy.plan_year_check
        check_on = date(today.year, month, day)
        key = f"plan_year/{today.year + 1}"
        if key not in state.reauthorized and state.enrolled_on < check_on:
            planned = policy.at(check_on)
            due.append(Due("reauthorize", max(planned, now), reason="plan_year", key=key,
                           planned=planned))  # fmt: skip
    if ties_by_plan:
        return min(due, key=lambda d: (d.planned or d.at, _ORDER[d.kind]))
    return min(due, key=lambda d: (d.at, _ORDER[d.kind]))


def mark_reauthorized(state: RefillState, key: str) -> None:
    state.reauthorized = [*state.reauthorized, key][-REAUTHORIZED_KEPT:]


def mark_reminded(state: RefillState, due: Due, policy: RefillPolicy) -> list[int]:
    """Every lead that falls at this instant is done (an earliest-payable clamp can put
    two on one day: one message)."""
    leads = [lead for lead, at in reminder_times(state, policy) if at == due.at]
    state.reminded = sorted({*state.reminded, *leads}, reverse=True)
    return leads
