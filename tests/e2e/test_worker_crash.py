"""Kill the worker (SIGKILL) mid-journey: nothing is lost, nothing is sent twice."""

from __future__ import annotations

import asyncio
import time

from tests.e2e.conftest import Stack


async def wait_for_request(stack: Stack, patient: str, key_suffix: str, within: float = 30) -> None:
    """Until the partner has the request in hand (the worker is mid-call)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(stack.received, patient)
        if any(str(r["idempotency_key"]).endswith(key_suffix) for r in rows):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"partner never received {key_suffix}")


async def test_killed_worker_loses_nothing_and_sends_nothing_twice(stack: Stack) -> None:
    """The SMS gateway ignores idempotency keys (as Twilio does) and holds its answer 3 s
    after accepting the text: the worker dies between the gateway taking the welcome
    and the ledger hearing of it. The retry finds the contact `sending`, asks the
    gateway, finds the text, and records it: the patient gets it once."""
    patient = stack.new_patient(
        {"pa": "pend_approve", "pend_seconds": 0.5, "sms_response_delay_seconds": 3.0}
    )
    journey = await stack.start(patient)

    # 1. While the pended PA waits for the payer's callback (a durable wait).
    await stack.reaches(journey, "pa_decision")
    stack.kill_worker()
    await asyncio.sleep(1.0)  # the payer's decision arrives while no worker runs
    stack.start_worker()

    # 2. While the welcome SMS request is at the gateway, before its answer comes back.
    await wait_for_request(stack, patient, "/welcome/1")
    stack.kill_worker()
    stack.start_worker()

    state = await stack.finished(journey, within=90)
    assert state.status == "completed"
    assert state.visits["pa_decision"] == 1
    assert state.events["pa_decision"]["outcome"] == "approved"

    messages = stack.messages(patient)
    assert len(messages) == 2, messages  # the welcome and the refill reminder, once each
    rows = stack.received(patient)
    # The gateway took exactly one welcome request: the retry asked, it did not send.
    assert sorted(r["operation"] for r in rows) == [
        "eligibility", "pas_submit", "referral", "request", "send", "send",
    ]  # fmt: skip
    # And the store saw each contact and each milestone once; the ledger says how the
    # welcome was known to have gone (reconciled with the gateway's own list).
    ledger = stack.store.ledger.for_patient(patient)
    assert sorted(e.step_id or "" for e in ledger) == ["refill_reminder", "welcome"]
    assert all(e.status in ("sent", "delivered") for e in ledger)
    welcome = next(e for e in ledger if e.step_id == "welcome")
    assert welcome.provider_message_id == next(
        m["id"] for m in messages if m["body"].startswith("Welcome")
    )
    story = [(e.type, e.summary) for e in stack.store.timeline.for_patient(patient)]
    assert ("message.sent", "sms treatment reconciled") in story
    kinds = [kind for kind, _ in story]
    assert kinds.count("message.sent") == 2
    assert kinds.count("journey.started") == 1 and kinds.count("journey.ended") == 1
