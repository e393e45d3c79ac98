"""refill_adherence for two years on a virtual clock: the production interpreter and the
refill_watch step, scripted pharmacy and payer (DOMAIN.md §3).

The history (28-day supply, New York, enrolled Monday 2026-01-05), worked by hand:

2026, treatment period Jan 5 - Dec 31 = 361 days
  Jan 5, Feb 2 on time                     Jan 5 - Mar 1                    56 days
  Feb 25, five days early: shifted         Mar 2 - Mar 29                   28
  (gap Mar 30 - Apr 19: AT_RISK on Apr 6, 7 days after run-out)
  Apr 20, 21 days late                     Apr 20 - May 17                  28
  May 18 dispense, entered-in-error May 20: never counts
  (gap May 18 - May 21)
  May 22                                   May 22 - Jun 18                  28
  Jun 10, another drug of the class: no shift, Jun 10 - Jul 7; Jun 19 - Jul 7 new   19
  Jul 8 … Nov 25, six fills on time        Jul 8 - Dec 22                  168
  Dec 18, five days early: shifted         Dec 23 - Jan 19, truncated Dec 31   9
  covered 336 / 361 = 0.9307
2027, treatment period Jan 1 - Dec 31 = 365 days (the supply carried in starts it)
  carried in                               Jan 1 - Jan 19                   19
  Jan 20 … Oct 27, eleven fills on time    Jan 20 - Nov 23                 308
  covered 327 / 365 = 0.8959; run-out Nov 24, AT_RISK Dec 1, DISCONTINUED after a 60-day
  gap: Jan 23, 2028.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from domain.actions import PartnerCall
from domain.journey import JourneyStart, JourneyState
from domain.partners import PartnerEvent
from domain.template_loader import get_template
from simulate.runtime import Simulated, VirtualRuntime, run_journey

REFILLS = get_template("refill_adherence")
ENROLLED = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)  # 09:00 in New York
RX = "RX-REFILL-1"
OURS, OTHER = "zorvexa", "other-drug"


def dispense(
    on: date, dispense_id: str, groups: str = OURS, status: str = "completed", days: int = 28
) -> tuple[datetime, PartnerEvent]:
    """A `pharmacy.dispensed` callback as the pharmacy adapter hands it to the journey."""
    at = datetime(on.year, on.month, on.day, 15, 0, tzinfo=UTC)
    data: dict[str, Any] = {"rx_id": RX, "dispense_id": dispense_id, "dispense_status": status,
                            "is_fill": status == "completed"}  # fmt: skip
    if status == "completed":
        data |= {"days_supply": days, "dispensed_at": at.isoformat(), "drug_groups": [groups]}
    event = PartnerEvent(event_id=f"evt-{dispense_id}-{status}", type="pharmacy.dispensed",
                         correlation_key=RX, occurred_at=at, data=data)  # fmt: skip
    return at, event


def every(first: date, count: int, group: str, prefix: str) -> list[tuple[datetime, PartnerEvent]]:
    return [dispense(first + timedelta(days=28 * k), f"{prefix}{k}", group) for k in range(count)]


HISTORY = [
    dispense(date(2026, 1, 5), "md-1"),
    dispense(date(2026, 2, 2), "md-2"),
    dispense(date(2026, 2, 25), "md-3"),
    dispense(date(2026, 4, 20), "md-4"),
    dispense(date(2026, 5, 18), "md-5"),
    dispense(date(2026, 5, 20), "md-5", status="entered-in-error"),
    dispense(date(2026, 5, 22), "md-6"),
    dispense(date(2026, 6, 10), "md-7", OTHER),
    *every(date(2026, 7, 8), 6, OTHER, "md-a"),
    dispense(date(2026, 12, 18), "md-8", OTHER),
    *every(date(2027, 1, 20), 11, OTHER, "md-b"),
]


def payer(expires: dict[str, date]) -> dict[str, Any]:
    """Benefits always ask for a PA; a PA is approved for a year from the day it is asked."""

    def authorize(call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
        n = sum(c.action == "payer.submit_prior_auth" for c in rt.calls)
        expires[f"PA-{n}"] = rt.now().date() + timedelta(days=365)
        return {"pa_number": f"PA-{n}", "outcome": "approved",
                "expires_on": expires[f"PA-{n}"].isoformat()}  # fmt: skip

    return {
        "pharmacy.enroll_refills": {"rx_id": RX},
        "payer.verify_benefits": {
            "coverage_active": True,
            "pa_required": True,
            "out_of_pocket": 25.0,
            "plan_type": "commercial",
        },
        "payer.submit_prior_auth": authorize,
        "copay.enroll": {"enrollment_id": "CP-1", "outcome": "approved"},
    }


@dataclass
class Seen:
    at: datetime
    kind: str
    summary: str


class Watched(VirtualRuntime):
    """Remembers when each timeline note was made."""

    seen: list[Seen]
    called: list[tuple[datetime, str]]

    async def partner_action(self, call: PartnerCall) -> dict[str, Any]:
        self.called.append((self.clock, call.action))
        return await super().partner_action(call)

    def note(self, kind: str, key: str, summary: str, **correlation: Any) -> None:
        super().note(kind, key, summary, **correlation)
        self.seen.append(Seen(self.clock, kind, summary))


async def two_years(switch_every: int | None = None) -> tuple[Simulated, dict[str, date]]:
    expires: dict[str, date] = {}

    def runtime(state: JourneyState) -> VirtualRuntime:
        rt = Watched(state, now=ENROLLED, answers=payer(expires), switch_every=switch_every)
        rt.seen, rt.called = [], []
        for at, event in HISTORY:
            rt.deliver(event, at)
        return rt

    start = JourneyStart(
        template=REFILLS, patient_ref="pt-refill1", program="demo",
        context={"pa_expires_on": "2026-07-31", "timezone": "America/New_York"},
    )  # fmt: skip
    return await run_journey(start, runtime), expires


def local_day(at: datetime) -> date:
    return (at - timedelta(hours=5)).date()  # New York, close enough at 10:00 local


async def test_two_years_of_refills_give_the_hand_worked_pdc_and_stages() -> None:
    done, _ = await two_years()
    state = done.state
    refill = state.refill
    assert refill is not None

    years = {
        y.year: (y.covered_days, y.treatment_days, y.pdc, y.adherent) for y in refill.pdc_by_year
    }
    assert years == {2026: (336, 361, 0.9307, True), 2027: (327, 365, 0.8959, True)}
    assert refill.fills_counted == len(HISTORY) - 2  # md-5 came and went

    rt = done.runtime
    assert isinstance(rt, Watched)
    stages = [(local_day(s.at), s.summary) for s in rt.seen if s.summary.startswith("stage ")]
    assert stages == [
        (date(2026, 1, 5), "stage ON_THERAPY"),
        (date(2026, 4, 6), "stage AT_RISK"),
        (date(2026, 4, 20), "stage ON_THERAPY"),
        (date(2027, 12, 1), "stage AT_RISK"),
        (date(2028, 1, 23), "stage DISCONTINUED"),
    ]
    assert (state.status, state.outcome_reason) == ("discontinued", "lost_to_follow_up")
    assert refill.status == "discontinued" and refill.discontinued_reason == "lost_to_follow_up"

    # Each AT_RISK opened a nurse call and a note to the prescriber's office; the refill
    # on Apr 20 closed the first two, the discontinuation the last two.
    opened = [(c.role, local_day(c.opened_at)) for c in rt.task_changes if c.change == "opened"]
    assert opened.count(("nurse_educator", date(2026, 4, 6))) == 1
    assert opened.count(("prescriber_office", date(2026, 4, 6))) == 1
    closed = {c.task_id: str(c.outcome) for c in rt.task_changes if c.change == "cancelled"}
    assert sorted(closed.values()) == ["discontinued", "discontinued", "refilled", "refilled"]


async def test_reminders_go_7_3_and_1_days_before_each_run_out_through_the_contact_policy() -> None:
    done, _ = await two_years()
    reminders = [c for c in done.runtime.contacts if c.step_id == "refill_reminder"]
    # The first cycle: run-out Feb 2 (fill Jan 5 + 28): Jan 26, Jan 30 and Feb 1.
    first = [local_day(c.at) for c in reminders[:3]]
    assert first == [date(2026, 1, 26), date(2026, 1, 30), date(2026, 2, 1)]
    assert all(c.purpose == "adherence" and c.channels == ["sms", "email"] for c in reminders)
    # Every reminder has its own reason (run-out and lead): the policy never takes one
    # for a repeat of another.
    assert len({c.reason for c in reminders}) == len(reminders)
    # Sent between 10:00 and 12:00 local, never before the earliest payable refill.
    for contact in reminders:
        local = contact.at - timedelta(hours=5 if contact.at.month not in range(4, 11) else 4)
        assert 10 <= local.hour < 13, contact.at


async def test_continue_as_new_keeps_the_adherence_state_exactly() -> None:
    plain, _ = await two_years()
    split, _ = await two_years(switch_every=3)
    assert plain.runs == 1 and split.runs > 20
    assert split.state.refill == plain.state.refill
    assert [c.reason for c in split.runtime.contacts] == [c.reason for c in plain.runtime.contacts]
    assert split.state.stage == plain.state.stage == "DISCONTINUED"


async def test_reauthorization_runs_30_days_ahead_and_leaves_no_day_without_a_pa() -> None:
    done, expires = await two_years()
    rt = done.runtime
    assert isinstance(rt, Watched)
    pa_days = [local_day(at) for at, action in rt.called if action == "payer.submit_prior_auth"]
    bv_days = [local_day(at) for at, action in rt.called if action == "payer.verify_benefits"]
    # The first PA (on file) ends Jul 31, 2026: re-authorized on Jul 1; the plan year is
    # checked on Dec 1 each year.
    assert date(2026, 7, 1) in pa_days and date(2026, 12, 1) in bv_days
    assert date(2027, 12, 1) in bv_days
    # Coverage, PA after PA, has no hole through the journey.
    valid_until = date(2026, 7, 31)
    for day, new_end in zip(pa_days, sorted(expires.values()), strict=True):
        assert day <= valid_until - timedelta(days=30) or day.month == 12, day
        assert day <= valid_until
        valid_until = max(valid_until, new_end)
    assert valid_until >= date(2028, 1, 23)


async def weekly(late_days: int, context: dict[str, Any]) -> Simulated:
    """Ten weekly fills, each `late_days` after run-out; then the journey is cancelled."""
    fills, day = [], ENROLLED.date()
    for k in range(10):
        fills.append(dispense(day, f"wk-{k}", days=7))
        day += timedelta(days=7 + late_days)

    def runtime(state: JourneyState) -> VirtualRuntime:
        rt = VirtualRuntime(state, now=ENROLLED, answers=payer({}))
        for at, event in fills:
            rt.deliver(event, at)
        rt.later(fills[-1][0] + timedelta(days=2), lambda: rt.cancel("test over"))
        return rt

    start = JourneyStart(template=REFILLS, patient_ref="pt-weekly1", program="demo",
                         params={"days_supply": 7}, context={"timezone": "America/New_York",
                                                             **context})  # fmt: skip
    return await run_journey(start, runtime)


async def test_a_high_risk_patient_gets_a_nurse_call_and_a_copay_check_before_run_out() -> None:
    risky = await weekly(5, {"pa_friction": 2, "out_of_pocket": 200, "plan_type": "commercial"})
    steady = await weekly(0, {})
    assert risky.state.refill is not None and steady.state.refill is not None
    assert risky.state.refill.risk is not None and risky.state.refill.risk.level == "high"
    assert steady.state.refill.risk is not None and steady.state.refill.risk.level == "low"

    calls = [c for c in risky.runtime.task_changes if c.change == "opened"]
    proactive = [c for c in calls if "-proactive-" in c.task_id]
    assert proactive and all(c.role == "nurse_educator" for c in proactive)
    assert not any(c.change == "opened" for c in steady.runtime.task_changes)
    # Before the fact: each call opens ahead of its cycle's run-out (the n-th fill's day
    # + 7); and with 5 days late (< 7) this patient never went AT_RISK at all.
    for call in proactive:
        n = int(call.task_id.rsplit("-", 1)[1])  # fills counted when it opened
        run_out = ENROLLED.date() + timedelta(days=12 * (n - 1) + 7)
        assert local_day(call.opened_at) < run_out, call.task_id
    assert not [c for c in calls if "-at-risk-" in c.task_id]
    rechecks = [c for c in risky.runtime.calls if c.action == "copay.enroll"]
    assert rechecks and not [c for c in steady.runtime.calls if c.action == "copay.enroll"]
