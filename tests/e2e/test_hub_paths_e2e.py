"""specialty_start v2, each path of the case state machine (DOMAIN.md §2) to its end,
on the whole stack: the dev server on a compressed clock (a journey-day per second),
the sandbox's partners scripted per patient, and the hub working its tasks through
/v1/tasks as a person would. Nothing here signals the workflow directly."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.journey import JourneyState
from tests.e2e.conftest import Stack


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.receiver_url, headers=stack.admin_headers, timeout=15
    ) as client:
        yield client


async def open_task(
    api: httpx.AsyncClient, patient_id: str, journey: str, step: str
) -> dict[str, Any]:
    """The journey's open task of that step, once it is in the queue (by the hub's own
    patient id, as a hub worker looks a patient up)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = (await api.get("/v1/tasks", params={"patient_id": patient_id})).json()
        mine = [
            t for t in page["items"]
            if t["journey_id"] == journey and t["step_id"] == step
            and t["status"] in ("requested", "in-progress")
        ]  # fmt: skip
        if mine:
            return dict(mine[0])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no open {step} task for {journey}")


async def complete(api: httpx.AsyncClient, task: dict[str, Any], outcome: str = "done") -> None:
    done = await api.post(f"/v1/tasks/{task['id']}/complete", json={"outcome": outcome})
    assert done.status_code == 200, done.text


async def confirm_first_dose(api: httpx.AsyncClient, journey: str, patient_ref: str) -> None:
    sent = await api.post(f"/v1/journeys/{journey}/events", json={
        "event_id": f"dose-{uuid.uuid4().hex[:8]}", "type": "patient.first_dose_confirmed",
        "correlation_key": f"onboarding-{patient_ref}",
    })  # fmt: skip
    assert sent.status_code == 202, sent.text


async def onboard(stack: Stack, api: httpx.AsyncClient, journey: str, ref: str) -> JourneyState:
    """The nurse trains the patient (task), the first dose is confirmed: the end."""
    await complete(api, await open_task(api, stack.external[ref], journey, "onboarding"), "trained")
    await stack.reaches(journey, "first_dose")
    await confirm_first_dose(api, journey, ref)
    return await stack.finished(journey)


def steps(state: JourneyState) -> list[str]:
    return [s.step_id for s in state.completed_steps]


def operations(stack: Stack, ref: str) -> list[str]:
    return [f"{r['service']}.{r['operation']}" for r in stack.received(ref)]


async def test_approved_at_once_commercial_gets_a_copay_card_and_reaches_the_first_dose(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "approve"}, plan_type="commercial")
    journey = await stack.start(ref, version=2)
    state = await onboard(stack, api, journey, ref)
    assert (state.status, state.outcome_reason) == ("completed", "on_therapy")
    assert list(state.milestones) == [
        "referral_received", "consent_complete", "bv_complete", "pa_submitted", "pa_decided",
        "claim_paid", "shipped", "delivered", "first_dose_confirmed",
    ]  # fmt: skip
    assert "copay.enroll" in operations(stack, ref)
    assert operations(stack, ref).count("pharmacy.referral") == 1  # approved: no bridge


async def test_additional_information_then_approved(stack: Stack, api: httpx.AsyncClient) -> None:
    ref = stack.new_patient({"pa": "pend_info_approve", "pend_seconds": 1},
                            plan_type="commercial")  # fmt: skip
    journey = await stack.start(ref, version=2, params={"offers_bridge": False})
    info = await open_task(api, stack.external[ref], journey, "pa_info")
    assert info["owner_role"] == "prescriber_office"
    await complete(api, info, "sent")
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    path = steps(state)
    assert path.index("pa_info") < path.index("pa_resubmit") < path.index("pa_approved")
    assert state.stage == "ONBOARDED"


async def test_denied_then_appeal_approved(stack: Stack, api: httpx.AsyncClient) -> None:
    ref = stack.new_patient({"pa": "deny_appeal_approve", "appeal_pend_seconds": 1},
                            plan_type="commercial")  # fmt: skip
    journey = await stack.start(ref, version=2, params={"offers_bridge": False})
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    assert {"appeal_submit", "appeal_decided", "pa_approved"} <= set(steps(state))
    assert "free_drug_evaluation" not in steps(state)


async def test_appeal_upheld_goes_to_the_free_drug_evaluation(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "deny_appeal_deny", "appeal_pend_seconds": 1},
                            plan_type="commercial")  # fmt: skip
    journey = await stack.start(ref, version=2, params={"offers_bridge": False})
    evaluation = await open_task(api, stack.external[ref], journey, "free_drug_evaluation")
    assert evaluation["owner_role"] == "case_manager"
    await complete(api, evaluation, "referred_to_free_drug_program")
    state = await stack.finished(journey)
    assert (state.status, state.outcome_reason) == ("abandoned", "appeal_upheld")
    assert "pharmacy.referral" not in operations(stack, ref)


async def test_missing_information_is_reminded_escalated_then_completed_by_the_office(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "approve"}, plan_type="commercial")
    journey = await stack.start(ref, version=2, context={"intake_missing": "prescriber_npi"})
    task = await open_task(api, stack.external[ref], journey, "missing_info")
    assert task["owner_role"] == "prescriber_office"
    # Reminder at 24 h, then escalation to a case manager at 72 h (journey time).
    deadline = time.monotonic() + 30
    while (task := (await api.get(f"/v1/tasks/{task['id']}")).json())["owner_role"] != (
        "case_manager"
    ):
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.1)
    trail = [line.split(" ")[1] for line in task["trail"]]
    assert trail[:3] == ["opened", "reminded", "escalated:case_manager"], task["trail"]
    flagged = await stack.journeys.state(journey)
    assert flagged.needs_attention and flagged.stage == "INTAKE_INCOMPLETE"

    await complete(api, task, "received")
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    assert steps(state)[:3] == ["referral", "missing_info", "intake_checked"]


async def test_a_bridge_supply_ships_while_the_pa_is_pended(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "pend_approve", "pend_seconds": 3}, plan_type="commercial")
    journey = await stack.start(ref, version=2)
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    path = steps(state)
    assert path.index("bridge_marked") < path.index("pa_approved")
    referrals = [r for r in stack.received(ref) if r["operation"] == "referral"]
    assert [r["summary"]["days_supply"] for r in referrals] == [14, 28]  # bridge, then fill


async def test_a_medicare_patient_gets_no_copay_card(stack: Stack, api: httpx.AsyncClient) -> None:
    # The record on file still says commercial; the payer's eligibility answer says
    # Medicare (SOPT 1), and the payer's word wins: no copay card.
    ref = stack.new_patient({"pa_required": False, "plan_type": "medicare"},
                            plan_type="commercial")  # fmt: skip
    journey = await stack.start(ref, version=2)
    assistance = await open_task(api, stack.external[ref], journey, "assistance_evaluation")
    assert assistance["owner_role"] == "case_manager"
    await complete(api, assistance, "foundation_referred")
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    assert "copay.enroll" not in operations(stack, ref)
    assert "no_pa_required" in steps(state)


async def test_a_claim_rejected_75_goes_back_to_prior_authorization(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "approve", "claim_rejects": ["75"]}, plan_type="commercial")
    journey = await stack.start(ref, version=2)
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    assert state.visits["authorization"] == 2 and state.visits["sp_referral"] == 2
    referrals = [r for r in stack.received(ref) if r["operation"] == "referral"]
    assert [r["summary"]["claim"] for r in referrals] == ["rejected", "paid"]


async def test_on_hold_then_resumed_goes_on_where_it_was(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "pend_approve", "pend_seconds": 2}, plan_type="commercial")
    journey = await stack.start(ref, version=2, params={"offers_bridge": False})
    await stack.reaches(journey, "pa_open")
    held = await api.post(f"/v1/journeys/{journey}/pause", json={"reason": "hospitalised"})
    assert held.status_code == 200 and held.json()["paused_reason"] == "hospitalised"

    async def listed(stage: str) -> bool:
        page = await api.get("/v1/journeys", params={"stage": stage, "page_size": 100})
        return journey in {j["journey_id"] for j in page.json()["items"]}

    deadline = time.monotonic() + 10
    while not await listed("ON_HOLD"):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    resumed = await api.post(f"/v1/journeys/{journey}/resume", json={"reason": "discharged"})
    assert resumed.status_code == 200
    state = await onboard(stack, api, journey, ref)
    assert state.outcome_reason == "on_therapy"
    assert not await listed("ON_HOLD")


async def test_cancelled_from_any_state_closes_its_open_tasks(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    ref = stack.new_patient({"pa": "pend_info_approve", "pend_seconds": 1})
    journey = await stack.start(ref, version=2, params={"offers_bridge": False})
    info = await open_task(api, stack.external[ref], journey, "pa_info")
    cancelled = await api.post(f"/v1/journeys/{journey}/cancel", json={"reason": "withdrawn"})
    assert cancelled.status_code == 202
    state = await stack.finished(journey)
    assert (state.status, state.outcome_reason) == ("cancelled", "withdrawn")
    deadline = time.monotonic() + 10
    while (await api.get(f"/v1/tasks/{info['id']}")).json()["status"] != "cancelled":
        assert time.monotonic() < deadline, "the cancelled journey's task stays open"
        await asyncio.sleep(0.1)
