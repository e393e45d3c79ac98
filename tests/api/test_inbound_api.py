"""Inbound texts at the signed SMS webhook: who they belong to and what they change."""

from __future__ import annotations

import uuid

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


async def text(api: ApiStack, sender: str, body: str) -> list[str]:
    url = f"{api.settings.receiver.base_url()}/v1/webhooks/sms"
    sid = "SM" + uuid.uuid4().hex
    form = {"From": sender, "To": "+15555550100", "Body": body, "MessageSid": sid,
            "SmsStatus": "received"}  # fmt: skip
    token = api.settings.partners.twilio_auth_token.get_secret_value()
    headers = {TWILIO_SIGNATURE_HEADER: twilio_signature(token, url, form)}
    answer = await api.http.post("/v1/webhooks/sms", data=form, headers=headers)
    assert answer.status_code == 202, answer.text
    return list(answer.json()["outcomes"])


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
    # The first patient's own number opts back in that patient only.
    assert await text(api, "+15555550172", "unstop") == ["opted_in"]
    assert not api.store.preferences.opted_out(first)
    assert api.store.preferences.opted_out(second)


async def test_a_stop_repeated_changes_once_and_an_unknown_sender_is_kept(api: ApiStack) -> None:
    patient = await register(api, "+15555550174")
    for _ in range(3):
        assert await text(api, "+15555550174", "STOP") == ["opted_out"]
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
