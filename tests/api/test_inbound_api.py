"""Inbound texts at the signed SMS webhook: who they belong to and what they change."""

from __future__ import annotations

import uuid
from datetime import timedelta
from xml.etree import ElementTree

from adapters.signatures import TWILIO_SIGNATURE_HEADER, twilio_signature
from store.ledger import ContactPlan
from tests.api.conftest import ApiStack, new_patient


async def register(api: ApiStack, phone: str | None, caregiver_phone: str | None = None) -> str:
    body: dict[str, object] = {"telecom": [{"system": "phone", "value": phone}] if phone else []}
    if caregiver_phone:
        body["caregiver"] = {"telecom": [{"system": "phone", "value": caregiver_phone}]}
    patient_id = new_patient()
    put = await api.http.put(f"/v1/patients/{patient_id}", json=body)
    assert put.status_code == 201, put.text
    return str(put.json()["patient_ref"])


async def answered(
    api: ApiStack, sender: str, body: str, sid: str | None = None
) -> tuple[str, list[str]]:
    """POST a signed inbound text: (outcome, the texts Twilio would send back)."""
    url = f"{api.settings.receiver.base_url()}/v1/webhooks/sms"
    sid = sid or "SM" + uuid.uuid4().hex
    form = {"From": sender, "To": "+15555550100", "Body": body, "MessageSid": sid,
            "SmsStatus": "received"}  # fmt: skip
    token = api.settings.partners.twilio_auth_token.get_secret_value()
    headers = {TWILIO_SIGNATURE_HEADER: twilio_signature(token, url, form)}
    answer = await api.http.post("/v1/webhooks/sms", data=form, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    twiml = ElementTree.fromstring(answer.text)
    assert twiml.tag == "Response"
    return answer.headers["Pitwall-Outcome"], [m.text or "" for m in twiml.iter("Message")]


async def text(api: ApiStack, sender: str, body: str) -> list[str]:
    outcome, _ = await answered(api, sender, body)
    return [outcome]


async def test_a_number_shared_by_two_patients_opts_out_both_and_is_kept_for_a_person(
    api: ApiStack,
) -> None:
    caregiver = "+15555550171"
    first = await register(api, "+15555550172", caregiver_phone=caregiver)
    second = await register(api, "+15555550173", caregiver_phone=caregiver)
    assert await text(api, caregiver, "No más, gracias") == ["opted_out"]
    assert api.store.preferences.opted_out(first) and api.store.preferences.opted_out(second)
    kept = [c.reason for c in api.store.callbacks.recent() if c.reason == "shared_number"]
    assert kept
    tasks = [t for p in (first, second) for t in api.store.tasks.for_patient(p)]
    assert [(t.kind, t.owner_role) for t in tasks] == [("shared_number", "patient_navigator")] * 2
    # The first patient's own number opts back in that patient only.
    assert await text(api, "+15555550172", "unstop") == ["opted_in"]
    assert not api.store.preferences.opted_out(first)
    assert api.store.preferences.opted_out(second)


async def test_a_stop_repeated_changes_once_and_an_unknown_sender_is_kept(api: ApiStack) -> None:
    patient = await register(api, "+15555550174")
    answers = [await answered(api, "+15555550174", "STOP") for _ in range(3)]
    assert [outcome for outcome, _ in answers] == ["opted_out"] * 3
    # One confirmation, for the STOP that changed something; none for the repeats.
    assert [len(texts) for _, texts in answers] == [1, 0, 0]
    assert "unsubscribed" in answers[0][1][0] and "START" in answers[0][1][0]
    assert len(api.store.preferences.opt_outs(patient)) == 1
    notes = [e for e in api.store.timeline.for_patient(patient) if e.type == "consent.changed"]
    assert len(notes) == 1 and "opted out" in notes[0].summary
    assert await text(api, "+15555550999", "STOP") == ["kept_for_review"]


async def test_a_carrier_stop_on_a_receipt_opts_the_patient_out(api: ApiStack) -> None:
    patient = await register(api, "+15555550175")
    key = f"journey/api-program/{patient}/welcome/1"
    api.store.ledger.record(
        ContactPlan(
            idempotency_key=key,
            patient_ref=patient,
            program="api-program",
            channel="sms",
            purpose="treatment",
        )
    )
    sid = "SM" + uuid.uuid4().hex
    assert api.store.ledger.transition(key, "sent", provider_message_id=sid)
    url = f"{api.settings.receiver.base_url()}/v1/webhooks/sms"
    form = {"MessageSid": sid, "MessageStatus": "undelivered", "ErrorCode": "21610",
            "To": "+15555550175"}  # fmt: skip
    token = api.settings.partners.twilio_auth_token.get_secret_value()
    headers = {TWILIO_SIGNATURE_HEADER: twilio_signature(token, url, form)}
    answer = await api.http.post("/v1/webhooks/sms", data=form, headers=headers)
    assert answer.json()["outcomes"] == ["recorded"]
    assert api.store.preferences.opted_out(patient)
    row = api.store.ledger.by_provider_message_id(sid)
    assert row is not None and (row.status, row.reason) == ("failed", "21610")


async def test_help_is_always_answered_with_what_the_law_asks(api: ApiStack) -> None:
    patient = await register(api, "+15555550176")
    await text(api, "+15555550176", "STOP")
    for sender in ("+15555550176", "+15555550998"):  # opted out, and unknown: still answered
        outcome, [reply] = await answered(api, sender, "  help ")
        assert outcome == "answered"
        for words in ("Pitwall Patient Support", "1-800-555-0100", "Msg & data rates may apply",
                      "STOP", "msgs/"):  # fmt: skip
            assert words in reply, (words, reply)
        assert len(reply) <= 160
    # The answer is on the ledger, outside every cap (purpose `reply`).
    replies = [e for e in api.store.ledger.for_patient(patient) if e.purpose == "reply"]
    assert [(e.content_ref, e.status) for e in replies] == [
        ("opt_out_confirmation@1", "sent"), ("help_reply@1", "sent"),
    ]  # fmt: skip


async def test_a_spanish_speaker_is_answered_in_spanish(api: ApiStack) -> None:
    patient_id = new_patient()
    body = {"telecom": [{"system": "phone", "value": "+15555550177"}],
            "language": "es-US"}  # fmt: skip
    put = await api.http.put(f"/v1/patients/{patient_id}", json=body)
    assert put.status_code == 201, put.text
    _, [reply] = await answered(api, "+15555550177", "No más")
    assert "START" in reply and "unsubscribed" not in reply


async def test_a_possible_side_effect_becomes_a_pharmacovigilance_task_with_a_trail(
    api: ApiStack,
) -> None:
    patient = await register(api, "+15555550178")
    words = "I got a rash and dizziness after the injection"
    outcome, texts = await answered(api, "+15555550178", words)
    assert (outcome, texts) == ("kept_for_review", [])
    [task] = api.store.tasks.for_patient(patient)
    assert (task.kind, task.owner_role, task.priority, task.status) == (
        "pharmacovigilance", "pharmacovigilance", "urgent", "requested",
    )  # fmt: skip
    assert task.note == words  # safety staff read the patient's own words...
    assert words not in repr(task)  # ...which no repr or log shows
    assert task.due_at - task.opened_at <= timedelta(hours=24)
    [opened] = api.store.tasks.trail(task.id or 0)
    assert opened.action == "opened" and opened.at == task.opened_at
    notes = [e.summary for e in api.store.timeline.for_patient(patient)]
    assert notes[-1] == "sms reply: side_effect" and all(words not in n for n in notes)
    assert not api.store.preferences.opted_out(patient)


async def test_an_ambiguous_reply_becomes_a_task_for_a_navigator(api: ApiStack) -> None:
    patient = await register(api, "+15555550179")
    sid = "SM" + uuid.uuid4().hex
    for _ in range(2):  # Twilio retries a webhook it did not hear back from
        outcome, _ = await answered(api, "+15555550179", "can you call me tomorrow?", sid)
        assert outcome == "kept_for_review"
    [task] = api.store.tasks.for_patient(patient)
    assert (task.kind, task.owner_role) == ("ambiguous_reply", "patient_navigator")
    assert task in api.store.tasks.open_tasks("patient_navigator")
