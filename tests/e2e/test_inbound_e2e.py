"""A patient texts STOP mid-journey (through the sandbox, Twilio-signed) and every later
message of every journey of theirs is suppressed; START opts back in; HELP and free
text go to a person. Each patient here has a number of their own."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from store.ledger import ContactLedgerEntry
from tests.e2e.conftest import FAST_PARAMS, PROGRAM, Stack


async def text_from(stack: Stack, phone: str, body: str) -> dict[str, Any]:
    """The patient's text, as the sandbox's carrier posts it to our SMS webhook."""
    async with httpx.AsyncClient() as sandbox:
        sent = await sandbox.post(
            f"{stack.sandbox_url}/_sandbox/sms/inbound", json={"from": phone, "body": body}
        )
    sent.raise_for_status()
    return dict(sent.json())


async def until_opted_out(stack: Stack, patient: str, value: bool) -> None:
    deadline = time.monotonic() + 10
    while stack.store.preferences.opted_out(patient) is not value:
        assert time.monotonic() < deadline, f"opted_out never became {value}"
        await asyncio.sleep(0.05)


async def test_stop_mid_journey_suppresses_every_later_message(stack: Stack) -> None:
    phone = "+15555550187"
    patient = stack.new_patient({"pa": "approve", "ship_after_seconds": 600}, phone=phone)
    journey = await stack.start(patient)
    waiting = await stack.reaches(journey, "shipped")

    await text_from(stack, phone, "  Stop ")
    await until_opted_out(stack, patient, True)
    rx_id = waiting.outputs["sp_referral"]["rx_id"]
    assert await stack.pharmacy_says(rx_id, "shipped", "delivered") == [["delivered"]] * 2
    state = await stack.finished(journey)

    outcomes = {s.step_id: s.outcome for s in state.completed_steps}
    assert outcomes["welcome"] == "suppressed:opted_out"
    assert outcomes["refill_reminder"] == "suppressed:opted_out"
    assert stack.messages(patient) == []
    story = [(e.type, e.summary) for e in stack.store.timeline.for_patient(patient)]
    assert ("message.reply", "sms reply: opt_out") in story
    assert all("Stop" not in summary for _, summary in story)  # the text stays out

    async with httpx.AsyncClient(headers=stack.admin_headers) as api:
        url = f"{stack.receiver_url}/v1/patients/{stack.external[patient]}/contacts"
        contacts = (await api.get(url)).json()
    assert contacts["opted_out"] is True
    assert [(c["step_id"], c["status"], c["reason"]) for c in contacts["contacts"]] == [
        (None, "sent", "opt_out_confirmation"),  # the one confirmation a STOP may get
        ("welcome", "suppressed", "opted_out"), ("refill_reminder", "suppressed", "opted_out"),
    ]  # fmt: skip
    # Twilio sent the TwiML answer to the patient's number: one text, the confirmation.
    replies = [m for m in all_messages(stack) if m["to"] == phone]
    assert ["unsubscribed" in m["body"] for m in replies] == [True]

    await text_from(stack, phone, "START")
    await until_opted_out(stack, patient, False)


async def test_a_message_waiting_for_quiet_hours_is_suppressed_the_moment_stop_arrives(
    stack: Stack,
) -> None:
    """Real time (time scale 1): the welcome waits hours for the patient's quiet hours to
    end; their STOP reaches the running journey, which decides again at once."""
    phone = "+15555550185"
    patient = stack.new_patient({"pa": "approve"}, phone=phone)
    now = datetime.now(ZoneInfo("America/New_York"))
    quiet = {"start": f"{(now - timedelta(hours=1)):%H:%M}",
             "end": f"{(now + timedelta(hours=3)):%H:%M}"}  # fmt: skip
    async with httpx.AsyncClient(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        put = await api.put(
            f"/v1/patients/{stack.external[patient]}/preferences", json={"quiet_hours": quiet}
        )
        assert put.status_code == 200, put.text
        started = await api.post("/v1/journeys", json={
            "template": "specialty_start", "template_version": 1,
            "patient_id": stack.external[patient],
            "program": PROGRAM, "params": FAST_PARAMS, "time_scale": 1.0,
        })  # fmt: skip
        assert started.status_code == 201, started.text
    journey = str(started.json()["journey_id"])
    row = await until_ledger(stack, f"{journey}/welcome/1", "deferred")
    assert row.reason == "quiet_hours" and row.defer_until is not None
    assert timedelta(hours=2) < row.defer_until - datetime.now(UTC) <= timedelta(hours=3)

    await text_from(stack, phone, "stop texting me please")
    row = await until_ledger(stack, f"{journey}/welcome/1", "suppressed")
    assert row.reason == "opted_out"
    assert [m for m in stack.messages(patient) if m["channel"] == "sms"] == []
    await stack.journeys.cancel(journey, "test_done")


async def until_ledger(stack: Stack, key: str, status: str) -> ContactLedgerEntry:
    deadline = time.monotonic() + 20
    while (row := stack.store.ledger.get(key)) is None or row.status != status:
        assert time.monotonic() < deadline, f"{key} never became {status}: {row}"
        await asyncio.sleep(0.05)
    return row


def all_messages(stack: Stack) -> list[dict[str, Any]]:
    rows = httpx.get(f"{stack.sandbox_url}/_sandbox/messages")
    rows.raise_for_status()
    return list(rows.json())


async def test_help_and_free_text_go_to_a_person_and_change_nothing(stack: Stack) -> None:
    phone = "+15555550186"
    patient = stack.new_patient({"pa": "approve", "ship_after_seconds": 600}, phone=phone)
    for body in ("HELP", "when does my package come?", "I got a rash after the shot"):
        await text_from(stack, phone, body)
    deadline = time.monotonic() + 10
    while len(replies := [e for e in stack.store.timeline.for_patient(patient)
                          if e.type == "message.reply"]) < 3:  # fmt: skip
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert sorted(e.summary for e in replies) == [
        "sms reply: ambiguous", "sms reply: help", "sms reply: side_effect"
    ]  # fmt: skip
    assert not stack.store.preferences.opted_out(patient)
