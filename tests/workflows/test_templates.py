"""Templates other than specialty_start on the real dev server, through the shared
harness (tests/workflows/conftest.py), and partner outages past the retry limit."""

from __future__ import annotations

import itertools
from typing import Any

from domain.events import OPERATOR_RETRY
from domain.template_loader import get_template
from tests.workflows.conftest import HarnessFactory
from tests.workflows.fakes import APPROVING, unavailable

SPECIALTY = {**APPROVING, "payer.verify_benefits": {"coverage_active": True, "pa_required": False}}


def v2_answers(**changes: Any) -> dict[str, Any]:
    """specialty_start v2's partners: a commercial plan that needs a PA; the bridge
    supply gets its own Rx, each fill referral a new one (RX-1, RX-2...)."""
    fills = itertools.count(1)
    return {
        **SPECIALTY,
        "payer.verify_benefits": {
            "coverage_active": True,
            "pa_required": True,
            "plan_type": "commercial",
        },
        "pharmacy.refer": lambda call: {
            "rx_id": "RX-B" if call.step_id == "bridge_referral" else f"RX-{next(fills)}"
        },
        "copay.enroll": {"enrollment_id": "CP-1", "outcome": "approved"},
        **changes,
    }


async def test_nurse_onboarding_waits_for_its_declared_program_event(
    journey_harness: HarnessFactory,
) -> None:
    h = await journey_harness({}, template="nurse_onboarding")
    jid = await h.start(patient_ref="pt-nurse01")
    task = await h.reaches(jid, "schedule_training")
    assert task.stage == "ONBOARDING" and task.tasks[0].role == "nurse_educator"
    await h.send(jid, "task.completed", "schedule_training-1")
    waiting = await h.reaches(jid, "first_dose")
    assert waiting.pending_wait is not None
    assert waiting.pending_wait.event_types == ["patient.first_dose_confirmed"]
    assert waiting.pending_wait.correlation_key == "schedule_training-pt-nurse01"

    await h.fast_forward(jid, days=7.1)  # late: a nurse calls
    followup = await h.reaches(jid, "dose_followup")
    await h.send(jid, "task.completed", followup.tasks[-1].task_id)
    await h.reaches(jid, "first_dose")
    await h.send(jid, "patient.first_dose_confirmed", "schedule_training-pt-nurse01")
    state = await h.finish(jid)
    assert (state.status, state.outcome_reason) == ("completed", "onboarded")
    assert state.stage == "ONBOARDED"
    assert [m.step_id for m in h.partners.messages] == ["on_therapy"]
    assert state.visits["first_dose"] == 2
    # The task queue heard of each task as it opened and closed (patch task-queue-v1).
    assert [(c.task_id, c.change, c.role) for c in h.partners.task_changes] == [
        ("schedule_training-1", "opened", "nurse_educator"),
        ("schedule_training-1", "completed", "nurse_educator"),
        ("dose_followup-1", "opened", "nurse_educator"),
        ("dose_followup-1", "completed", "nurse_educator"),
    ]


async def test_an_overdue_task_escalates_in_the_queue_then_is_given_up(
    journey_harness: HarnessFactory,
) -> None:
    h = await journey_harness({}, template="nurse_onboarding")
    jid = await h.start(patient_ref="pt-nurse02")
    await h.reaches(jid, "schedule_training")
    await h.send(jid, "task.completed", "schedule_training-1")
    await h.reaches(jid, "first_dose")
    state = await h.finish(jid)  # time skips: no dose, nobody calls, given up
    assert state.outcome_reason == "first_dose_not_confirmed"
    changes = h.partners.task_changes
    followup = [(c.change, c.role) for c in changes if c.task_id.startswith("dose")]
    assert followup == [
        ("opened", "nurse_educator"),
        ("escalated", "case_manager"),
        ("abandoned", "nurse_educator"),
    ]


async def test_a_partner_down_past_the_retry_limit_holds_the_journey_then_goes_on(
    journey_harness: HarnessFactory,
) -> None:
    template = get_template("specialty_start", version=1).model_copy(update={"partner_attempts": 2})
    h = await journey_harness({**SPECIALTY, "consent.request": unavailable()}, template=template)
    jid = await h.start()
    held = await h.until(jid, lambda s: s.needs_attention)
    assert held.attention_reason == (
        "consent_request: partner.unavailable: partner unavailable (503)"
    )
    assert held.pending_wait is not None and held.pending_wait.event_types == [OPERATOR_RETRY]
    tries = [c.idempotency_key for c in h.partners.calls]
    assert len(tries) == 2 and len(set(tries)) == 1  # retried up to the limit, then held

    h.partners.answers["consent.request"] = SPECIALTY["consent.request"]
    await h.send(jid, OPERATOR_RETRY, "consent_request")
    await h.reaches(jid, "consent")
    assert h.partners.calls[-1].idempotency_key == tries[0]  # the same request again
    assert not (await h.state(jid)).needs_attention


async def test_specialty_start_v2_runs_pended_with_more_information_on_temporal(
    journey_harness: HarnessFactory,
) -> None:
    """v2 on the real dev server (time skipping): pended, more information,
    resubmitted, approved; claim paid; onboarded. The queue hears of every task."""
    v2 = get_template("specialty_start", version=2)
    answers = v2_answers(**{"payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "pended"}})
    h = await journey_harness(answers, template=v2)
    jid = await h.start(patient_ref="pt-hub0001")
    await h.reaches(jid, "consent")
    await h.send(jid, "consent.signed", "CR-1")
    await h.until(jid, lambda s: s.branches.get("pa_open.decision") == "pa_decision")
    await h.send(jid, "pa.info_requested", "PA-1", requested=["11506-3"])
    await h.until(jid, lambda s: s.branches.get("pa_open.decision") == "pa_info")
    await h.send(jid, "task.completed", "pa_info-1")
    await h.send(jid, "pharmacy.shipped", "RX-B")
    await h.until(jid, lambda s: s.branches.get("pa_open.decision") == "pa_decision")
    await h.send(jid, "pa.decided", "PA-1", outcome="approved")
    await h.reaches(jid, "claim")
    await h.send(jid, "pharmacy.claim_paid", "RX-1", transaction_response_status="P")
    await h.send(jid, "pharmacy.shipped", "RX-1")
    await h.send(jid, "pharmacy.delivered", "RX-1")
    await h.reaches(jid, "onboarding")
    await h.send(jid, "task.completed", "onboarding-1")
    await h.send(jid, "patient.first_dose_confirmed", "onboarding-pt-hub0001")
    state = await h.finish(jid, record_as="specialty_start_v2_info_requested")

    assert (state.status, state.outcome_reason) == ("completed", "on_therapy")
    assert [c.step_id for c in h.partners.calls] == [
        "consent_request", "benefits", "authorization", "bridge_referral", "pa_resubmit",
        "copay_card", "sp_referral",
    ]  # fmt: skip
    assert set(state.milestones) >= {"pa_submitted", "pa_decided", "claim_paid", "delivered",
                                     "first_dose_confirmed"}  # fmt: skip
    opened = [c.task_id for c in h.partners.task_changes if c.change == "opened"]
    assert opened == ["pa_info-1", "onboarding-1"]


async def test_specialty_start_v2_appeal_on_hold_and_a_claim_reject_on_temporal(
    journey_harness: HarnessFactory,
) -> None:
    """Denied, appealed with a bridge shipped meanwhile, put on hold and resumed, the
    appeal approved; the claim rejected 75 sends it back to PA (approved), then paid."""
    submits = iter([{"pa_number": "PA-1", "outcome": "denied"},
                    {"pa_number": "PA-3", "outcome": "approved"}])  # fmt: skip
    answers = v2_answers(**{"payer.submit_prior_auth": lambda call: next(submits)})
    h = await journey_harness(answers, template=get_template("specialty_start", version=2))
    jid = await h.start(patient_ref="pt-hub0002")
    await h.reaches(jid, "consent")
    await h.send(jid, "consent.signed", "CR-1")
    await h.until(jid, lambda s: s.branches.get("pa_open.decision") == "appeal_decision")
    await h.send(jid, "pharmacy.shipped", "RX-B")
    await h.until(jid, lambda s: "bridge_marked" in s.visits)
    held = await h.journeys.pause(jid, "hospitalised")
    assert held.status == "paused"
    await h.journeys.resume(jid)
    await h.send(jid, "pa.decided", "PA-2", outcome="approved")
    await h.reaches(jid, "claim")
    await h.send(jid, "pharmacy.claim_rejected", "RX-1", reject="pa_required",
                 reject_codes=["75"])  # fmt: skip
    await h.until(jid, lambda s: s.visits.get("sp_referral") == 2)
    await h.send(jid, "pharmacy.claim_paid", "RX-2", transaction_response_status="P")
    await h.send(jid, "pharmacy.shipped", "RX-2")
    await h.send(jid, "pharmacy.delivered", "RX-2")
    await h.reaches(jid, "onboarding")
    await h.send(jid, "task.completed", "onboarding-1")
    await h.send(jid, "patient.first_dose_confirmed", "onboarding-pt-hub0002")
    state = await h.finish(jid, record_as="specialty_start_v2_appeal_hold_reject75")

    assert (state.status, state.outcome_reason) == ("completed", "on_therapy")
    assert state.visits["authorization"] == 2
    assert [c.step_id for c in h.partners.calls if c.action == "pharmacy.refer"] == [
        "bridge_referral", "sp_referral", "sp_referral",
    ]  # fmt: skip
    operator = [n.type for n in h.partners.timeline if n.type.startswith("operator.")]
    assert operator == ["operator.paused", "operator.resumed"]


async def test_specialty_start_v2_cancelled_with_a_task_open_on_temporal(
    journey_harness: HarnessFactory,
) -> None:
    """Missing information: the office's task is open when the journey is cancelled; the
    queue hears the task is cancelled with it."""
    h = await journey_harness(v2_answers(), template=get_template("specialty_start", version=2))
    jid = await h.start(patient_ref="pt-hub0003", context={"intake_missing": "prescriber_npi"})
    waiting = await h.reaches(jid, "missing_info")
    assert waiting.stage == "INTAKE_INCOMPLETE"
    await h.journeys.cancel(jid, "withdrawn")
    state = await h.journeys.result(jid)
    await h.record(jid, "specialty_start_v2_cancelled_task_open")
    assert (state.status, state.outcome_reason) == ("cancelled", "withdrawn")
    assert [(c.task_id, c.change, c.outcome) for c in h.partners.task_changes] == [
        ("missing_info-1", "opened", None),
        ("missing_info-1", "cancelled", "journey_cancelled"),
    ]
