"""specialty_start v2, every path of the case state machine, on a virtual clock: the
production interpreter with scripted partners (DOMAIN.md §2).

New journeys start on v2; v1 journeys finish on v1."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.actions import PartnerCall
from domain.partners import PartnerEvent
from domain.template_loader import get_template
from simulate.runtime import VirtualRuntime
from tests.interpreter.conftest import T0, event, simulate

V2 = get_template("specialty_start", version=2)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def referrals(call: PartnerCall, rt: VirtualRuntime) -> dict[str, Any]:
    """The bridge gets its own Rx; each fill referral a new one (RX-1, RX-2, ...)."""
    if call.step_id == "bridge_referral":
        return {"rx_id": "RX-BRIDGE"}
    return {"rx_id": f"RX-{sum(c.step_id == 'sp_referral' for c in rt.calls)}"}


def answers(**changes: Any) -> dict[str, Any]:
    return {
        "consent.request": {"request_id": "CR-1"},
        "payer.verify_benefits": {
            "coverage_active": True,
            "pa_required": True,
            "plan_type": "commercial",
        },
        "payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "approved"},
        "payer.submit_appeal": {"pa_number": "PA-2", "outcome": "pended"},
        "pharmacy.refer": referrals,
        "copay.enroll": {"enrollment_id": "CP-1", "outcome": "approved"},
        **changes,
    }


def fill(rx: str, at: timedelta) -> list[tuple[timedelta, PartnerEvent]]:
    return [
        (at, event("pharmacy.claim_paid", rx, transaction_response_status="P")),
        (at + DAY, event("pharmacy.shipped", rx)),
        (at + 2 * DAY, event("pharmacy.delivered", rx)),
    ]


def onboarded(at: timedelta) -> list[tuple[timedelta, PartnerEvent]]:
    return [
        (at, event("task.completed", "onboarding-1")),
        (at + DAY, event("patient.first_dose_confirmed", "onboarding-pt-test1")),
    ]


def path(state: Any) -> list[str]:
    return [s.step_id for s in state.completed_steps]


async def test_approved_at_once_goes_to_the_first_dose_with_every_milestone() -> None:
    sim = await simulate(
        V2, answers(),
        events=[(HOUR, event("consent.signed", "CR-1")), *fill("RX-1", DAY), *onboarded(4 * DAY)],
    )  # fmt: skip
    state = sim.state
    assert (state.status, state.outcome_reason) == ("completed", "on_therapy")
    assert [c.action for c in sim.runtime.calls] == [
        "consent.request", "payer.verify_benefits", "payer.submit_prior_auth",
        "copay.enroll", "pharmacy.refer",
    ]  # fmt: skip
    # Approved at once: no bridge supply is needed.
    assert [c.step_id for c in sim.runtime.calls if c.action == "pharmacy.refer"] == ["sp_referral"]
    assert list(state.milestones) == [
        "referral_received", "consent_complete", "bv_complete", "pa_submitted", "pa_decided",
        "claim_paid", "shipped", "delivered", "first_dose_confirmed",
    ]  # fmt: skip
    to_therapy = state.milestones["first_dose_confirmed"] - state.milestones["referral_received"]
    assert to_therapy == 5 * DAY
    assert [m.step_id for m in sim.runtime.contacts] == ["welcome", "on_therapy"]


async def test_more_information_then_approval() -> None:
    sim = await simulate(
        V2,
        answers(**{"payer.submit_prior_auth": lambda call, rt: {
            "pa_number": "PA-1", "outcome": "pended"}}),
        events=[
            (HOUR, event("consent.signed", "CR-1")),
            (DAY, event("pa.info_requested", "PA-1", requested=["11506-3"])),
            (2 * DAY, event("task.completed", "pa_info-1")),
            (3 * DAY, event("pa.decided", "PA-1", outcome="approved")),
            *fill("RX-1", 4 * DAY), *onboarded(7 * DAY),
        ],
    )  # fmt: skip
    state = sim.state
    assert state.outcome_reason == "on_therapy"
    submits = [c for c in sim.runtime.calls if c.action == "payer.submit_prior_auth"]
    assert [(c.step_id, c.fields.get("update_of")) for c in submits] == [
        ("authorization", None), ("pa_resubmit", "PA-1"),
    ]  # fmt: skip
    steps = path(state)
    assert steps.index("pa_info") < steps.index("pa_resubmit") < steps.index("pa_approved")
    # PA turnaround: submitted just after consent (1 h), decided on day 3.
    assert state.milestones["pa_decided"] - state.milestones["pa_submitted"] == 3 * DAY - HOUR


async def test_denied_then_appeal_approved() -> None:
    sim = await simulate(
        V2,
        answers(**{"payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "denied"}}),
        events=[
            (HOUR, event("consent.signed", "CR-1")),
            (5 * DAY, event("pa.decided", "PA-2", outcome="approved")),
            *fill("RX-1", 6 * DAY), *onboarded(9 * DAY),
        ],
    )  # fmt: skip
    assert sim.state.outcome_reason == "on_therapy"
    appeal = next(c for c in sim.runtime.calls if c.action == "payer.submit_appeal")
    assert appeal.fields["appeal_of"] == "PA-1"
    assert "appeal_decided" in path(sim.state) and "free_drug_evaluation" not in path(sim.state)


async def test_appeal_upheld_goes_to_the_free_drug_evaluation() -> None:
    sim = await simulate(
        V2,
        answers(**{"payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "denied"},
                   "payer.submit_appeal": {"pa_number": "PA-2", "outcome": "denied"}}),
        events=[(HOUR, event("consent.signed", "CR-1")),
                (DAY, event("task.completed", "free_drug_evaluation-1"))],
    )  # fmt: skip
    assert (sim.state.status, sim.state.outcome_reason) == ("abandoned", "appeal_upheld")
    assert "free_drug_evaluation" in path(sim.state)
    assert not any(c.step_id == "sp_referral" for c in sim.runtime.calls)


async def test_missing_information_is_reminded_escalated_then_completed_by_the_office() -> None:
    sim = await simulate(
        V2, answers(),
        events=[
            (80 * HOUR, event("task.completed", "missing_info-1", outcome="received")),
            (81 * HOUR, event("consent.signed", "CR-1")),
            *fill("RX-1", 4 * DAY), *onboarded(7 * DAY),
        ],
        context={"intake_missing": ["prescriber_npi"]},
    )  # fmt: skip
    assert sim.state.outcome_reason == "on_therapy"
    intake = [(c.change, c.role, c.due_at) for c in sim.runtime.task_changes
              if c.task_id == "missing_info-1"]  # fmt: skip
    assert intake == [
        ("opened", "prescriber_office", T0 + 24 * HOUR),
        ("escalated", "prescriber_office", T0 + 72 * HOUR),  # the 24 h reminder
        ("escalated", "case_manager", T0 + 72 * HOUR + 14 * DAY),  # the 72 h escalation
        ("completed", "prescriber_office", None),
    ]
    assert sim.state.completed_steps[0].step_id == "referral"


async def test_a_bridge_supply_ships_while_the_pa_is_pended() -> None:
    sim = await simulate(
        V2,
        answers(**{"payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "pended"}}),
        events=[
            (HOUR, event("consent.signed", "CR-1")),
            (DAY, event("pharmacy.shipped", "RX-BRIDGE")),
            (6 * DAY, event("pa.decided", "PA-1", outcome="approved")),
            *fill("RX-1", 7 * DAY), *onboarded(10 * DAY),
        ],
    )  # fmt: skip
    steps = path(sim.state)
    assert steps.index("bridge_marked") < steps.index("pa_approved")
    notes = [n.summary for n in sim.runtime.notes if n.kind == "journey.milestone"]
    assert "stage BRIDGE_SHIPPED" in notes and sim.state.outcome_reason == "on_therapy"


async def test_a_medicare_patient_gets_no_copay_card() -> None:
    sim = await simulate(
        V2,
        answers(**{"payer.verify_benefits": {"coverage_active": True, "pa_required": False,
                                             "plan_type": "medicare_part_d"}}),
        events=[(HOUR, event("consent.signed", "CR-1")),
                (DAY, event("task.completed", "assistance_evaluation-1")),
                *fill("RX-1", 2 * DAY), *onboarded(5 * DAY)],
    )  # fmt: skip
    assert not any(c.action == "copay.enroll" for c in sim.runtime.calls)
    assert "assistance_evaluation" in path(sim.state) and "no_pa_required" in path(sim.state)
    assert sim.state.outcome_reason == "on_therapy"


async def test_a_claim_rejected_75_goes_back_to_prior_authorization() -> None:
    sim = await simulate(
        V2, answers(),
        events=[
            (HOUR, event("consent.signed", "CR-1")),
            (DAY, event("pharmacy.claim_rejected", "RX-1", reject="pa_required",
                        reject_codes=["75"])),
            *fill("RX-2", 3 * DAY), *onboarded(6 * DAY),
        ],
    )  # fmt: skip
    assert sim.state.outcome_reason == "on_therapy"
    assert sim.state.visits["authorization"] == 2 and sim.state.visits["sp_referral"] == 2


async def test_on_hold_then_resumed_goes_on_where_it_was() -> None:
    def setup(rt: VirtualRuntime) -> None:
        rt.later(T0 + HOUR / 2, rt.pause)
        rt.later(T0 + 3 * DAY, rt.resume)

    sim = await simulate(
        V2, answers(), setup=setup,
        events=[(HOUR, event("consent.signed", "CR-1")), *fill("RX-1", 4 * DAY),
                *onboarded(7 * DAY)],
    )  # fmt: skip
    assert sim.state.outcome_reason == "on_therapy"
    benefits = next(s for s in sim.state.completed_steps if s.step_id == "benefits")
    assert benefits.started_at >= T0 + 3 * DAY  # nothing moved while on hold


async def test_cancelled_from_any_state() -> None:
    def setup(rt: VirtualRuntime) -> None:
        rt.later(T0 + 2 * DAY, lambda: rt.cancel("patient_withdrew"))

    sim = await simulate(
        V2,
        answers(**{"payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "pended"}}),
        setup=setup,
        events=[(HOUR, event("consent.signed", "CR-1")),
                (DAY, event("pa.info_requested", "PA-1", requested=["11506-3"]))],
    )  # fmt: skip
    assert sim.state.status == "cancelled"
    assert "pa_approved" not in path(sim.state)
    # The office's open task is cancelled in the queue with the journey (task-cancel-v1).
    assert [(c.task_id, c.change, c.outcome) for c in sim.runtime.task_changes] == [
        ("pa_info-1", "opened", None), ("pa_info-1", "escalated", None),  # 8 business h
        ("pa_info-1", "cancelled", "journey_cancelled"),
    ]  # fmt: skip
    assert all(t.closed_at is not None for t in sim.state.tasks)
