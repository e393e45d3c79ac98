"""refill_adherence on the real dev server (time skipping): dispenses move the run-out,
reminders go before it, AT_RISK a week after it with a nurse call and a note to the
prescriber's office, back on therapy at the refill, discontinued after the gap. Risk and
PDC are search attributes an operator filters on in the Temporal UI."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from domain.template_loader import get_template
from tests.workflows.conftest import Harness, HarnessFactory
from workflows import search_attributes as sa

REFILLS = get_template("refill_adherence")
RX = "RX-TEMPORAL-1"
ANSWERS: dict[str, Any] = {
    "pharmacy.enroll_refills": {"rx_id": RX},
    "payer.verify_benefits": {"coverage_active": True, "pa_required": False},
    "copay.enroll": {"enrollment_id": "CP-1", "outcome": "approved"},
}


async def dispensed(h: Harness, jid: str, on: date, dispense_id: str) -> None:
    handed = datetime.combine(on, time(15, 0), UTC)
    ack = await h.deliver(
        jid, "pharmacy.dispensed", RX, rx_id=RX, dispense_id=dispense_id,
        dispense_status="completed", is_fill=True, days_supply=28,
        dispensed_at=handed.isoformat(), drug_groups=["zorvexa"],
    )  # fmt: skip
    assert ack.accepted


async def indexed(h: Harness, jid: str) -> dict[str, Any]:
    described = await h.journeys.handle(jid).describe()
    return {p.key.name: p.value for p in described.typed_search_attributes}


async def test_a_refill_journey_goes_at_risk_and_back_then_is_discontinued_on_temporal(
    journey_harness: HarnessFactory,
) -> None:
    h = await journey_harness(ANSWERS, template=REFILLS)
    h.partners.receipts = {"sms": None, "email": None}  # no receipt: sms, then email
    jid = await h.start(patient_ref="pt-refill01", context={"timezone": "America/New_York"})
    state = await h.reaches(jid, "watch")
    assert state.stage == "ON_THERAPY" and state.refill is not None
    day0 = state.refill.enrolled_on

    await dispensed(h, jid, day0, "md-1")
    state = await h.state(jid)
    assert state.refill is not None and state.refill.run_out == day0 + timedelta(days=28)
    found = await indexed(h, jid)
    assert found[sa.RISK.name] == "low" and found[sa.PDC.name] == 100

    # A week past run-out with no fill: AT_RISK, a nurse call and a note to the office.
    await h.fast_forward(jid, days=36)
    state = await h.until(jid, lambda s: s.stage == "AT_RISK")
    reminders = [m for m in h.partners.messages if m.step_id == "refill_reminder"]
    assert len(reminders) == 6  # 7, 3 and 1 days before run-out; each by sms then email
    assert "due in 7 days" in reminders[0].text and "due in 1 days" in reminders[-1].text
    opened = {c.role for c in h.partners.task_changes if c.change == "opened"}
    assert opened == {"nurse_educator", "prescriber_office"}
    assert (await indexed(h, jid))[sa.STAGE.name] == "AT_RISK"

    # The refill comes: back on therapy, and nobody needs to call any more.
    assert state.refill is not None
    await dispensed(h, jid, state.refill.enrolled_on + timedelta(days=36), "md-2")
    state = await h.until(jid, lambda s: s.stage == "ON_THERAPY")
    closed = [c.outcome for c in h.partners.task_changes if c.change == "cancelled"]
    assert closed == ["refilled", "refilled"]

    # Then nothing for 28 + 60 days: discontinued, lost to follow-up.
    state = await h.finish(jid, record_as="refill_adherence_at_risk_discontinued")
    assert (state.status, state.outcome_reason) == ("discontinued", "lost_to_follow_up")
    assert state.refill is not None and state.refill.fills_counted == 2
    assert (await indexed(h, jid))[sa.STAGE.name] == "DISCONTINUED"
