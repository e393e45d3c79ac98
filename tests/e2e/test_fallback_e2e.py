"""Channel fallback against the sandbox's Twilio: an undelivered text (30003, unreachable
handset) and a landline (30006) each move the welcome to the next channel, and the
ledger and the timeline say so."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import PROGRAM, Stack


def consent_to_email(stack: Stack, patient: str) -> None:
    with httpx.Client(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        for purpose in ("treatment", "adherence"):
            grant = api.post(
                f"/v1/patients/{stack.external[patient]}/consents",
                json={"channel": "email", "purpose": purpose, "program": PROGRAM},
            )
            assert grant.status_code == 201, grant.text


async def test_an_undelivered_text_falls_back_to_email(stack: Stack) -> None:
    patient = stack.new_patient(
        {"pa": "approve", "sms_statuses": ["queued", "sent", "undelivered"],
         "sms_error_code": 30003}, phone="+15555550161",
    )  # fmt: skip
    consent_to_email(stack, patient)
    journey = await stack.start(patient)
    state = await stack.finished(journey)

    outcomes = {s.step_id: s.outcome for s in state.completed_steps}
    assert outcomes["welcome"] == "sent:email"
    welcome = [e for e in stack.store.ledger.for_patient(patient) if e.step_id == "welcome"]
    assert [(e.attempt, e.channel, e.status, e.reason) for e in welcome] == [
        (0, "sms", "failed", "30003"), (1, "email", "delivered", None),
    ]  # fmt: skip
    story = [e.summary for e in stack.store.timeline.for_patient(patient, journey_ref=journey)]
    assert "sms failed; next channel" in story
    channels = [m["channel"] for m in stack.messages(patient)]
    # 30003 is transient: the refill reminder still tries the text first.
    assert channels[:2] == ["sms", "email"] and channels[2] == "sms"


async def test_a_landline_stops_texts_to_that_number(stack: Stack) -> None:
    patient = stack.new_patient(
        {"pa": "approve", "sms_statuses": ["queued", "failed"], "sms_error_code": 30006},
        phone="+15555550162",
    )
    consent_to_email(stack, patient)
    journey = await stack.start(patient)
    state = await stack.finished(journey)

    outcomes = {s.step_id: s.outcome for s in state.completed_steps}
    assert (outcomes["welcome"], outcomes["refill_reminder"]) == ("sent:email", "sent:email")
    rows = stack.store.ledger.for_patient(patient)
    assert [(e.step_id, e.channel, e.status, e.reason) for e in rows] == [
        ("welcome", "sms", "failed", "30006"),
        ("welcome", "email", "delivered", None),
        ("refill_reminder", "email", "delivered", None),  # no second text to a landline
    ]
    assert [m["channel"] for m in stack.messages(patient)] == ["sms", "email", "email"]


def consent_to_calls(stack: Stack, patient: str) -> None:
    with httpx.Client(base_url=stack.receiver_url, headers=stack.admin_headers) as api:
        grant = api.post(
            f"/v1/patients/{stack.external[patient]}/consents",
            json={"channel": "voice", "purpose": "treatment", "program": PROGRAM},
        )
        assert grant.status_code == 201, grant.text


async def test_a_call_left_as_voicemail_reaches_the_patient(stack: Stack) -> None:
    patient = stack.new_patient({"pa": "approve", "voice": "voicemail"}, sms_consent=False,
                                phone="+15555550163")  # fmt: skip
    consent_to_calls(stack, patient)
    journey = await stack.start(patient)
    state = await stack.finished(journey)

    assert {s.step_id: s.outcome for s in state.completed_steps}["welcome"] == "sent:voice"
    [call] = [m for m in stack.messages(patient) if m["channel"] == "voice"]
    # The voicemail says nothing a stranger at that phone should not hear.
    assert call["body"].startswith("Hello, this is Pitwall Patient Support")
    assert "Zorvexa" not in call["body"]
    [row] = [e for e in stack.store.ledger.for_patient(patient) if e.step_id == "welcome"]
    assert (row.channel, row.status) == ("voice", "delivered")


async def test_an_unanswered_call_becomes_a_task_for_the_hub(stack: Stack) -> None:
    patient = stack.new_patient({"pa": "approve", "voice": "no_answer"}, sms_consent=False,
                                phone="+15555550164")  # fmt: skip
    consent_to_calls(stack, patient)
    journey = await stack.start(patient)
    state = await stack.finished(journey)

    assert {s.step_id: s.outcome for s in state.completed_steps}["welcome"] == "sent:task"
    welcome = [e for e in stack.store.ledger.for_patient(patient) if e.step_id == "welcome"]
    assert [(e.channel, e.status) for e in welcome] == [("voice", "failed"), ("task", "sent")]
    [task] = stack.store.tasks.for_patient(patient)
    assert (task.kind, task.owner_role, task.step_id) == ("outreach_call", "patient_navigator",
                                                          "welcome")  # fmt: skip
