"""Journeys that last years: hundreds of cycles across many continue-as-new boundaries,
on a dev server that suggests continue-as-new every 200 history events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from temporalio.testing import WorkflowEnvironment

from domain.journey import JourneyStart, JourneyState
from domain.partners import PartnerEvent
from domain.template_loader import load_template
from simulate.runtime import VirtualRuntime, run_journey
from tests.workflows.conftest import HarnessFactory

TEMPLATES = Path(__file__).parents[1] / "fixtures" / "templates"
REFILL_LOOP = load_template(TEMPLATES / "refill_loop.yaml")
CHECKINS = load_template(TEMPLATES / "checkins.yaml")
ANSWERS: dict[str, Any] = {
    "payer.submit_prior_auth": {"pa_number": "PA-1", "outcome": "approved"},
    "pharmacy.refer": {"rx_id": "RX-1"},
}
# The dev server fires timers at about 1 s resolution, so the refill gap is 0s here (no
# timer at all); the virtual-clock suite covers real gaps.
NO_GAP = {"cycle_gap": "0s"}


def checkin(k: int, event_id: str | None = None) -> PartnerEvent:
    return PartnerEvent(
        event_id=event_id or f"checkin-{k}",
        type="patient.checkin",
        correlation_key=str(k),
        occurred_at=datetime.now(UTC),
    )


async def test_500_refill_cycles_cross_20_boundaries_and_end_as_without_them(
    journey_harness: HarnessFactory, short_history_env: WorkflowEnvironment
) -> None:
    h = await journey_harness(ANSWERS, template=REFILL_LOOP, env=short_history_env)
    patient = "pt-loop500"
    jid = await h.start(patient_ref=patient, params=NO_GAP)
    state = await h.journeys.result(jid)

    histories = await h.runs(jid)
    events = [len(history.events) for history in histories]
    print(f"\n500 cycles: {len(histories)} runs, events per run {events}, total {sum(events)}")
    assert len(histories) >= 21  # at least 20 boundaries
    assert state.runs == len(histories)
    assert max(events) < 3 * 200  # no run grows without bound
    last = await h.journeys.handle(jid).describe()  # the last run is indexed as the first
    found = {
        key.name: value for key, value in [(p.key, p.value) for p in last.typed_search_attributes]
    }
    assert found["PitwallTemplate"] == "refill_loop" and found["PitwallPatient"] == patient
    assert found["PitwallProgram"] == "demo"

    # The same template, same journey, no boundaries at all (the interpreter on a
    # virtual clock): everything a user sees is the same.
    plain = await run_journey(
        JourneyStart(template=REFILL_LOOP, patient_ref=patient, program="demo", params=NO_GAP),
        lambda s: VirtualRuntime(s, now=datetime.now(UTC), answers=ANSWERS),
    )
    assert plain.runs == 1
    assert (state.status, state.outcome_reason) == ("completed", "cycles_done")
    for field in ("status", "outcome_reason", "visits", "steps_completed", "messages_sent",
                  "loops", "stage"):  # fmt: skip
        assert getattr(state, field) == getattr(plain.state, field), field
    # Which parallel branch answered first is a real race on Temporal (two activities at
    # once); that both finished is not.
    joined, plain_joined = state.outputs.pop("start"), plain.state.outputs.pop("start")
    assert sorted(joined["finished"]) == sorted(plain_joined["finished"]) == ["bridge", "pa"]
    assert state.outputs == plain.state.outputs
    assert state.visits["refill_order"] == state.visits["refill_reminder"] == 500
    assert state.messages_sent == 500
    assert [(r.step_id, r.outcome) for r in state.completed_steps] == [
        (r.step_id, r.outcome) for r in plain.state.completed_steps
    ]
    sent = [(m.step_id, m.idempotency_key) for m in h.partners.messages]
    assert sent == [(m.step_id, m.idempotency_key) for m in plain.runtime.contacts]
    assert len(set(sent)) == 500  # each reminder once: none lost, none twice at a boundary
    calls = [c.idempotency_key for c in h.partners.calls]
    expected = [c.idempotency_key for c in plain.runtime.calls]
    assert set(calls[:2]) == set(expected[:2])  # the two parallel branches, in either order
    assert calls[2:] == expected[2:] and len(calls) == 502


def consumed(state: JourneyState, k: int) -> bool:
    """Check-in k was taken: the journey ended, or it waits for the next one."""
    wait = state.pending_wait
    return state.status != "running" or (wait is not None and wait.correlation_key == str(k + 1))


async def test_events_survive_the_switch_applied_once_and_deduplicated_across_it(
    journey_harness: HarnessFactory, short_history_env: WorkflowEnvironment
) -> None:
    h = await journey_harness({}, template=CHECKINS, env=short_history_env)
    count = 60
    jid = await h.start(params={"count": count}, time_scale=1.0)
    straddled = 0
    for k in range(count):
        before = await h.state(jid)
        ack = await h.journeys.send_event(jid, checkin(k))
        assert ack.accepted, k
        after = await h.until(jid, partial(consumed, k=k))
        if k and after.status == "running":
            # The previous check-in again: delivered before, repeated now, maybe after a
            # boundary in between. Still a duplicate, and changes nothing.
            again = await h.journeys.send_event(jid, checkin(k - 1))
            assert again.duplicate, k
            straddled += after.runs > before.runs
    state = await h.journeys.result(jid)
    assert (state.status, state.outcome_reason) == ("completed", "all_checked_in")
    assert state.runs >= 3 and straddled >= 1
    assert state.visits["checkin"] == count and "missed" not in state.visits


async def test_a_burst_of_events_during_switches_is_all_applied(
    journey_harness: HarnessFactory, short_history_env: WorkflowEnvironment
) -> None:
    h = await journey_harness({}, template=CHECKINS, env=short_history_env)
    count = 300
    jid = await h.start(params={"count": count}, time_scale=1.0)
    # Check-ins in concurrent bursts of 10 (each burst in reverse), as signals, while the
    # journey consumes them and continues as new again and again: whatever lands during a
    # switch is kept (the inbox travels in the memory) and applied.
    for first in range(0, count, 10):
        burst = reversed(range(first, min(first + 10, count)))
        await asyncio.gather(*(h.send(jid, "patient.checkin", str(k), event_id=f"c{k}")
                               for k in burst))  # fmt: skip
        await asyncio.sleep(0.05)
    state = await h.until(jid, lambda s: s.status != "running", within=90)
    assert (state.status, state.outcome_reason) == ("completed", "all_checked_in")
    assert state.runs >= 2  # the bursts kept arriving across a switch
    assert state.visits["checkin"] == count
    await h.record(jid, "checkins_run1_continued_as_new", run=0)
    await h.record(jid, "checkins_run2_from_memory", run=1)
