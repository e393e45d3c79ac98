"""TherapyJourney against the real dev server, with days compressed by time skipping."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta

import pytest

from domain.journey import JourneyStart, JourneyState
from domain.template_loader import get_template
from gateway.journeys import ControlRejected, JourneyClosed, JourneyGateway, JourneyNotFound
from tests.workflows.conftest import Harness, HarnessFactory
from tests.workflows.fakes import APPROVING, rejected

TEMPLATE = get_template("specialty_start", version=1)


def step_times(state: JourneyState, step_id: str) -> tuple[datetime, datetime]:
    record = next(r for r in state.completed_steps if r.step_id == step_id)
    assert record.finished_at is not None
    return record.started_at, record.finished_at


async def through_consent(h: Harness, jid: str) -> None:
    await h.reaches(jid, "consent")
    await h.send(jid, "consent.signed", "CR-1")


async def through_pharmacy(h: Harness, jid: str) -> None:
    await h.reaches(jid, "shipped")
    await h.send(jid, "pharmacy.shipped", "RX-1")
    await h.send(jid, "pharmacy.delivered", "RX-1")


async def test_approved_journey_reaches_first_refill_reminder(harness: HarnessFactory) -> None:
    h = await harness(APPROVING)
    jid = await h.start()
    await through_consent(h, jid)
    await through_pharmacy(h, jid)
    state = await h.finish(jid, record_as="specialty_start_v1_approved")

    assert state.status == "completed"
    assert state.outcome_reason == "first_refill_reminded"
    assert [c.action for c in h.partners.calls] == [
        "consent.request",
        "payer.verify_benefits",
        "payer.submit_prior_auth",
        "pharmacy.refer",
    ]
    assert [m.step_id for m in h.partners.messages] == ["welcome", "refill_reminder"]
    assert "Pitwall Patient Support" in h.partners.messages[0].text
    kinds = [n.type for n in h.partners.timeline]
    assert kinds[0] == "journey.started" and kinds[-1] == "journey.ended"
    stages = [n.summary for n in h.partners.timeline if n.type == "journey.milestone"]
    assert stages == [
        "stage CONSENT_PENDING", "stage BV_IN_PROGRESS", "stage PA_SUBMITTED",
        "stage TRIAGED_TO_SP", "stage SP_INTAKE", "stage SHIPPED", "stage DELIVERED",
        "stage ON_THERAPY",
    ]  # fmt: skip
    assert all(n.patient_ref == jid.split("/")[2] for n in h.partners.timeline)
    assert "due in 7 days" in h.partners.messages[1].text
    # The refill reminder waits for run-out minus the lead: 21 days after delivery, at 10:00.
    _, delivered = step_times(state, "delivered")
    _, reminded = step_times(state, "refill_due")
    assert timedelta(days=20) < reminded - delivered <= timedelta(days=22)
    assert reminded.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")).hour == 10


async def test_ten_day_pended_prior_auth_completes_in_seconds(harness: HarnessFactory) -> None:
    answers = {**APPROVING, "payer.submit_prior_auth": {"pa_number": "PA-9", "outcome": "pended"}}
    h = await harness(answers)
    began = time.monotonic()
    jid = await h.start()
    await through_consent(h, jid)
    waiting = await h.reaches(jid, "pa_decision")
    assert waiting.stage == "PA_PENDED"
    assert waiting.pending_wait is not None
    assert waiting.pending_wait.correlation_key == "PA-9"

    await h.fast_forward(jid, days=10)
    await h.send(jid, "pa.decided", "PA-9", outcome="approved")
    await through_pharmacy(h, jid)
    state = await h.finish(jid, record_as="specialty_start_v1_pended")

    submitted, _ = step_times(state, "pa_submit")
    _, decided = step_times(state, "pa_decision")
    assert timedelta(days=10) <= decided - submitted < timedelta(days=11)
    assert state.status == "completed"
    assert time.monotonic() - began < 60


async def test_denial_goes_to_appeal_and_upheld_appeal_closes(harness: HarnessFactory) -> None:
    answers = {**APPROVING, "payer.submit_prior_auth": {"pa_number": "PA-3", "outcome": "denied"}}
    h = await harness(answers)
    jid = await h.start()
    await through_consent(h, jid)
    await h.reaches(jid, "appeal_decision")
    await h.send(jid, "pa.decided", "PA-2", outcome="denied")
    task_state = await h.reaches(jid, "appeal_denied")
    assert task_state.stage == "APPEAL_DENIED"
    await h.send(jid, "task.completed", "appeal_denied-1")
    state = await h.journeys.result(jid)

    assert state.status == "abandoned"
    assert state.outcome_reason == "appeal_denied"
    appeal = next(c for c in h.partners.calls if c.action == "payer.submit_appeal")
    assert appeal.fields["appeal_of"] == "PA-3"
    assert not h.partners.messages


async def test_silent_payer_opens_a_task_and_escalates(harness: HarnessFactory) -> None:
    answers = {**APPROVING, "payer.submit_prior_auth": {"pa_number": "PA-4", "outcome": "pended"}}
    h = await harness(answers)
    jid = await h.start()
    await through_consent(h, jid)
    await h.reaches(jid, "pa_decision")
    await h.fast_forward(jid, days=14.1)
    followup = await h.reaches(jid, "pa_followup")
    assert [t.task_id for t in followup.tasks] == ["pa_followup-1"]
    assert not followup.needs_attention

    await h.fast_forward(jid, days=2.1)  # past the 2-day SLA
    escalated = await h.reaches(jid, "pa_followup")
    assert escalated.needs_attention
    assert escalated.tasks[0].escalated_to == "case_manager"
    await h.noted("task.escalated")
    assert [n.type for n in h.partners.timeline if n.type.startswith("task.")] == [
        "task.opened", "task.escalated",
    ]  # fmt: skip

    await h.send(jid, "task.completed", "pa_followup-1")
    back = await h.reaches(jid, "pa_decision")
    assert not back.needs_attention
    assert back.visits["pa_decision"] == 2


async def test_events_before_their_wait_are_kept_and_duplicates_ignored(
    harness: HarnessFactory,
) -> None:
    h = await harness(APPROVING)
    jid = await h.start()
    await h.reaches(jid, "consent")
    # Delivered before shipped, each twice, all before the pharmacy step: nothing is lost.
    for _ in range(2):
        await h.send(jid, "pharmacy.delivered", "RX-1", event_id="dlv-1")
        await h.send(jid, "pharmacy.shipped", "RX-1", event_id="shp-1")
    await h.send(jid, "consent.signed", "CR-1", event_id="cns-1")
    await h.send(jid, "consent.signed", "CR-1", event_id="cns-1")
    state = await h.finish(jid)

    assert state.status == "completed"
    assert state.events["shipped"]["event_id"] == "shp-1"
    assert state.events["delivered"]["event_id"] == "dlv-1"
    assert state.visits["consent"] == 1


async def test_rejected_partner_call_parks_journey_until_operator_retries(
    harness: HarnessFactory,
) -> None:
    answers = {**APPROVING, "payer.verify_benefits": rejected("payer.invalid_request")}
    h = await harness(answers)
    jid = await h.start()
    await through_consent(h, jid)
    parked = await h.reaches(jid, "benefits")
    assert parked.needs_attention
    assert parked.attention_reason == "benefits: payer.invalid_request"

    h.partners.answers["payer.verify_benefits"] = {"coverage_active": True, "pa_required": False}
    await h.send(jid, "operator.retry", "benefits")
    await through_pharmacy(h, jid)
    state = await h.finish(jid, record_as="specialty_start_v1_operator_retry")
    keys = [c.idempotency_key for c in h.partners.calls if c.action == "payer.verify_benefits"]
    assert len(keys) == 2 and len(set(keys)) == 2  # a retried step is a new request
    assert "pa_submit" not in state.visits
    assert state.status == "completed"


async def test_pause_resume_cancel_and_invalid_control(harness: HarnessFactory) -> None:
    h = await harness(APPROVING)
    jid = await h.start()
    await h.reaches(jid, "consent")
    paused = await h.journeys.pause(jid, "patient hospitalised")
    assert paused.status == "paused"
    with pytest.raises(ControlRejected, match="cannot pause a journey that is paused"):
        await h.journeys.pause(jid)
    # The update answers after the activation that took the event: unpaused, the journey
    # would have gone on to benefits in that same activation.
    assert (await h.deliver(jid, "consent.signed", "CR-1")).accepted
    still = await h.state(jid)
    assert still.status == "paused"
    assert "benefits" not in still.visits  # nothing moves while paused

    await h.journeys.resume(jid)
    await h.reaches(jid, "shipped")
    await h.journeys.cancel(jid, "withdrawn by prescriber")
    state = await h.journeys.result(jid)
    assert state.status == "cancelled"
    assert state.outcome_reason == "withdrawn by prescriber"
    with pytest.raises(JourneyClosed):
        await h.journeys.resume(jid)
    operator = [(n.type, n.summary) for n in h.partners.timeline if n.type.startswith("operator.")]
    assert operator == [
        ("operator.paused", "paused by operator: patient hospitalised"),
        ("operator.resumed", "resumed by operator"),
        ("operator.cancelled", "cancelled by operator: withdrawn by prescriber"),
    ]
    with pytest.raises(JourneyNotFound):
        await h.journeys.state("journey/demo/pt-nobody")


async def runs_of(h: Harness, journey_id: str) -> int:
    """Runs of this workflow id, once visibility (eventually consistent) lists one."""
    deadline = time.monotonic() + 10
    while True:
        runs = [w async for w in h.env.client.list_workflows(f"WorkflowId = '{journey_id}'")]
        if runs or time.monotonic() > deadline:
            return len(runs)
        await asyncio.sleep(0.05)


async def test_repeated_start_returns_the_same_journey(harness: HarnessFactory) -> None:
    h = await harness(APPROVING)
    patient = f"pt-x{uuid.uuid4().hex[:10]}"
    acks = await asyncio.gather(
        *(
            h.journeys.start(JourneyStart(template=TEMPLATE, patient_ref=patient, program="demo"))
            for _ in range(5)
        )
    )
    assert len({a.journey_id for a in acks}) == 1
    assert sum(a.created for a in acks) == 1
    assert await runs_of(h, acks[0].journey_id) == 1


async def test_racing_gateways_create_one_journey_and_say_so_once(
    harness: HarnessFactory,
) -> None:
    """Two API replicas (two gateways, no shared memory) race 100 starts each."""
    h = await harness(APPROVING)
    other = JourneyGateway(h.env.client, h.journeys.task_queue)
    start = JourneyStart(template=TEMPLATE, patient_ref=f"pt-x{uuid.uuid4().hex[:10]}",
                         program="demo")  # fmt: skip
    acks = await asyncio.gather(
        *(gateway.start(start) for _ in range(100) for gateway in (h.journeys, other))
    )
    assert len({a.journey_id for a in acks}) == 1
    assert sum(a.created for a in acks) == 1
    assert await runs_of(h, acks[0].journey_id) == 1


def test_patient_data_cannot_become_a_journey_id() -> None:
    from domain.journey import JourneyKey

    for bad in ("5551234567", "jane.doe@example.com", "1984-03-02", "123-45-6789"):
        with pytest.raises(ValueError):
            JourneyKey(patient_ref=bad, program="demo")
    assert JourneyKey(patient_ref="pt-7f3a", program="demo").workflow_id == "journey/demo/pt-7f3a"
