"""The refill journey's memory and next move (domain/refill_cycle.py): exact when old
fills are dropped, reminders spread and inside waking hours, risk acted on before
run-out only when it is high."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import adherence
from domain import refill_cycle as cycle
from domain.adherence import Fill, Period
from domain.contact_policy import ContactRules
from domain.quiet_hours import is_allowed

START = date(2025, 1, 6)


def policy(key: str = "journey/demo/pt-a1", tz: str = "America/New_York") -> cycle.RefillPolicy:
    return cycle.RefillPolicy(timezone=tz, jitter_key=key)


def fill_event(on: date, dispense_id: str, days: int = 28, group: str = "g") -> dict[str, object]:
    return {"dispense_id": dispense_id, "dispense_status": "completed", "is_fill": True,
            "days_supply": days, "dispensed_at": f"{on.isoformat()}T15:00:00+00:00",
            "drug_groups": [group]}  # fmt: skip


def noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 17, 0, tzinfo=UTC)


fills_strategy = st.lists(
    st.tuples(st.integers(0, 900), st.sampled_from([7, 28, 30, 90]), st.sampled_from("ab")),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fills_strategy, st.integers(0, 900))
def test_dropping_old_fills_with_their_carry_changes_no_later_figure(
    raw: list[tuple[int, int, str]], cut: int
) -> None:
    fills = [Fill(START + timedelta(days=d), s, frozenset({g})) for d, s, g in raw]
    keep_from = START + timedelta(days=cut)
    kept, carry = adherence.prune(fills, keep_from)
    period = Period(keep_from, keep_from + timedelta(days=364))
    assert adherence.pdc(kept, period, carry=carry) == adherence.pdc(fills, period)
    for group in ("a", "b"):
        assert adherence.run_out(kept, [group], carry) == adherence.run_out(fills, [group])


def test_a_dispense_entered_in_error_stops_counting_and_a_repeat_counts_once() -> None:
    p = policy()
    state = cycle.start(START)
    assert cycle.apply_dispense(state, fill_event(START, "md-1"), noon(START), p) == "filled"
    assert cycle.apply_dispense(state, fill_event(START, "md-1"), noon(START), p) == "duplicate"
    later = START + timedelta(days=28)
    assert cycle.apply_dispense(state, fill_event(later, "md-2"), noon(later), p) == "filled"
    assert state.run_out == START + timedelta(days=56)
    wrong = {"dispense_id": "md-2", "dispense_status": "entered-in-error", "is_fill": False}
    assert cycle.apply_dispense(state, wrong, noon(later), p) == "corrected"
    assert state.run_out == START + timedelta(days=28) and state.fills_counted == 1
    unknown = {"dispense_id": "md-9", "dispense_status": "cancelled", "is_fill": False}
    assert cycle.apply_dispense(state, unknown, noon(later), p) == "ignored"


def test_a_thousand_same_day_reminders_spread_over_two_hours_and_none_in_quiet_hours() -> None:
    run_out = date(2027, 3, 10)
    times = []
    for n in range(1000):
        tz = ("America/New_York", "America/Chicago", "America/Los_Angeles")[n % 3]
        state = cycle.start(date(2027, 2, 1))
        p = policy(f"journey/demo/pt-{n:05d}", tz)
        cycle.apply_dispense(state, fill_event(run_out - timedelta(days=28), "md-1"),
                             noon(date(2027, 2, 10)), p)  # fmt: skip
        assert state.run_out == run_out
        for _, at in cycle.reminder_times(state, p):
            local = at.astimezone(ZoneInfo(tz))
            waking = ContactRules()  # the contact policy's own default window
            assert is_allowed(at, ZoneInfo(tz), waking.quiet_start, waking.quiet_end), local
            times.append(local.hour * 60 + local.minute)
    seven_days = times[::3]
    assert min(seven_days) >= 600 and max(seven_days) < 720  # 10:00 to 12:00 local
    per_quarter_hour = [sum(600 + 15 * q <= t < 615 + 15 * q for t in seven_days) for q in range(8)]
    assert min(per_quarter_hour) > 1000 / 8 * 0.7  # no minute takes the crowd


def test_a_high_risk_patient_is_called_before_run_out_and_a_low_risk_one_is_not() -> None:
    p = policy()
    low, high = cycle.start(START), cycle.start(START)
    on_time = [START + timedelta(days=28 * k) for k in range(4)]
    late = [START + timedelta(days=38 * k) for k in range(4)]  # ten days late each time
    for state, days in ((low, on_time), (high, late)):
        for k, day in enumerate(days):
            cycle.apply_dispense(state, fill_event(day, f"md-{k}"), noon(day), p)
    low.risk = cycle.assess_risk(low, on_time[-1], p.weights)
    high.risk = cycle.assess_risk(high, late[-1], p.weights, pa_friction=3,
                                  out_of_pocket=Decimal(200))  # fmt: skip
    assert low.risk is not None and low.risk.level == "low"
    assert high.risk is not None and high.risk.level == "high"
    assert high.risk.reasons[0].startswith("late_refills +20")

    def plan(state: cycle.RefillState) -> list[tuple[str, date]]:
        now = noon(state.last_fill_on or START)
        out: list[tuple[str, date]] = []
        while (due := cycle.next_due(state, p, now)) is not None and due.kind != "at_risk":
            out.append((due.kind, p.today(due.at)))
            if due.kind == "proactive_call":
                state.proactive_for = state.run_out
            elif due.kind == "reminder":
                cycle.mark_reminded(state, due, p)
            now = due.at
        return out

    assert high.run_out is not None and low.run_out is not None
    # The earlier reminder (10 days) would come before the plan pays the refill (fill
    # date + 21 days, 7 before run-out): it goes with the 7-day one, as one message.
    assert plan(high) == [
        ("proactive_call", high.run_out - timedelta(days=10)),
        ("reminder", high.run_out - timedelta(days=7)),
        ("reminder", high.run_out - timedelta(days=3)),
        ("reminder", high.run_out - timedelta(days=1)),
    ]
    assert [kind for kind, _ in plan(low)] == ["reminder"] * 3


def test_the_same_history_always_gives_the_same_risk_reasons() -> None:
    p = policy()

    def risk() -> list[str]:
        state = cycle.start(START)
        for k in range(12):
            day = START + timedelta(days=33 * k)
            cycle.apply_dispense(state, fill_event(day, f"md-{k}"), noon(day), p)
        return cycle.assess_risk(state, START + timedelta(days=400), p.weights).reasons

    assert risk() == risk()
    assert risk()[0].startswith("late_refills +10: 5.0 days late")


def test_five_years_of_refills_keep_a_bounded_memory() -> None:
    p = policy()
    state = cycle.start(START)
    sizes = {}
    for k in range(5 * 13):
        day = START + timedelta(days=28 * k)
        cycle.close_years(state, day)
        cycle.apply_dispense(state, fill_event(day, f"md-{k}"), noon(day), p)
        state.risk = cycle.assess_risk(state, day, p.weights)
        sizes[day.year] = len(state.model_dump_json())
    assert len(state.fills) <= 30
    assert [y.year for y in state.pdc_by_year] == [2025, 2026, 2027, 2028]
    assert sizes[2029] < sizes[2026] * 1.2, sizes


def test_a_reauthorization_and_a_reminder_planned_for_one_instant_go_in_kind_order() -> None:
    """A journey wakes a little after its timer. Compared by when they were planned for,
    the reauthorization planned for the reminder's instant still goes first (its kind
    comes first); compared by the caught-up time, it lost every such tie."""
    p = policy()
    state = cycle.start(START)
    cycle.apply_dispense(state, fill_event(START, "md-1"), noon(START), p)
    assert state.run_out is not None
    reminder_at = dict(cycle.reminder_times(state, p))[7]
    # The PA runs out so that its reauthorization is planned on the reminder's day.
    pa_expires_on = reminder_at.astimezone(ZoneInfo(p.timezone)).date() + timedelta(days=30)
    woke = reminder_at + timedelta(milliseconds=40)
    planned = cycle.next_due(state, p, woke, pa_expires_on=pa_expires_on, ties_by_plan=True)
    assert planned is not None and planned.kind == "reauthorize" and planned.at == woke
    caught_up = cycle.next_due(state, p, woke, pa_expires_on=pa_expires_on)
    assert caught_up is not None and caught_up.kind == "reminder"
