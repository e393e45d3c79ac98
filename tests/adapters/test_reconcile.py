"""Reconciling after a crash, and voice calls: the adapters against the running sandbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import httpx
import pytest
from twilio.request_validator import RequestValidator

from adapters import voice
from adapters.email import EmailClient
from adapters.errors import CallbackInvalid, PartnerRejected, PartnerUnavailable
from adapters.sms import SmsClient
from adapters.voice import VoiceClient, build_twiml, parse_call_status
from domain.partners import EmailRequest, SmsRequest, VoiceRequest
from tests.sandbox.harness import (
    TWILIO_SID,
    TWILIO_TOKEN,
    Sink,
    containing,
    get_json,
    put_scenario,
)

FROM = "+15555550100"


def base(patient: str) -> dict[str, object]:
    return {
        "journey_ref": f"journey-{patient}",
        "patient_ref": patient,
        "program": "demo",
        "idempotency_key": f"wf-{patient}/step-{uuid.uuid4().hex[:8]}",
    }


def number() -> str:
    """A phone number of this test's own, so lookups by To see only this test's sends."""
    return "+1555" + str(uuid.uuid4().int % 10**7).zfill(7)


async def settled(client: SmsClient, sid: str, status: str) -> None:
    for _ in range(100):
        if (await client.fetch(sid)).status == status:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"message never reached {status}")


# ---------------------------------------------------------------------- SMS


async def test_find_sent_matches_to_body_and_since(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, sms_status_interval_seconds=0.02)
    to, other_to = number(), number()
    since = datetime.now(UTC)
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM)
    callback = f"{sink.url}/v1/webhooks/sms/status"
    try:
        mine = await client.send(
            SmsRequest(
                **base(patient), to=to, body="Your refill ships today.", status_callback=callback
            )
        )
        await client.send(
            SmsRequest(**base(patient), to=to, body="A different text.", status_callback=callback)
        )
        await client.send(
            SmsRequest(
                **base(patient),
                to=other_to,
                body="Your refill ships today.",
                status_callback=callback,
            )
        )
        await settled(client, mine.message_sid, "delivered")
        found = await client.find_sent(to, "Your refill ships today.", since)
        later = await client.find_sent(to, "Your refill ships today.", since + timedelta(hours=1))
        nobody = await client.find_sent(number(), "Your refill ships today.", since)
        fetched = await client.fetch(mine.message_sid)
    finally:
        await client.aclose()
    assert [r.message_sid for r in found] == [mine.message_sid]
    assert (found[0].status, found[0].error_code) == ("delivered", None)
    assert later == [] and nobody == []
    assert (fetched.status, fetched.error_code) == ("delivered", None)


async def test_find_sent_after_a_client_killed_in_the_held_answer(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, sms_response_delay_seconds=1.0, sms_status_interval_seconds=0.02
    )
    to = number()
    since = datetime.now(UTC)
    request = SmsRequest(
        **base(patient), to=to, body="Welcome to Demo.", status_callback=f"{sink.url}/s"
    )
    impatient = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM, timeout=0.2)
    with pytest.raises(PartnerUnavailable):
        await impatient.send(request)
    await impatient.aclose()
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM)
    try:
        for _ in range(100):  # until it left the queue (DateSent filters see sent messages)
            if found := await client.find_sent(to, "Welcome to Demo.", since):
                break
            await asyncio.sleep(0.02)
    finally:
        await client.aclose()
    [message] = await get_json(sandbox_url, "/_sandbox/messages", patient_ref=patient)
    assert [r.message_sid for r in found] == [message["id"]]


async def test_fetch_gives_the_failure_error_code(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        sms_statuses=["queued", "sent", "undelivered"],
        sms_status_interval_seconds=0.02,
    )
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM)
    try:
        sent = await client.send(
            SmsRequest(**base(patient), to=number(), body="hi", status_callback=f"{sink.url}/s")
        )
        await sink.wait_for(containing(f"MessageStatus=undelivered&SmsSid={sent.message_sid}"))
        fetched = await client.fetch(sent.message_sid)
        with pytest.raises(PartnerRejected) as info:
            await client.fetch("SM" + "0" * 32)
    finally:
        await client.aclose()
    assert (fetched.status, fetched.error_code) == ("undelivered", "30003")
    assert (info.value.status, info.value.code) == (404, "sms.not_found")


# ---------------------------------------------------------------------- email


async def test_email_find_sent_by_reference(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, email_events=[])
    client = EmailClient(sandbox_url, "SG.test-key", "hub@example.org")
    request = EmailRequest(**base(patient), to="p@example.com", subject="Hi", body="Hello.")
    try:
        sent = await client.send(request)
        await client.send(
            EmailRequest(**base(patient), to="p@example.com", subject="Hi", body="Other.")
        )
        found = await client.find_sent(request.idempotency_key)
        none = await client.find_sent(f"wf-{patient}/never-sent")
        with pytest.raises(ValueError):
            await client.find_sent('x") OR (status="delivered')
    finally:
        await client.aclose()
    assert found == [sent.message_id]
    assert none == []
    [message] = [
        m
        for m in await get_json(sandbox_url, "/_sandbox/messages", patient_ref=patient)
        if m["id"] == sent.message_id
    ]
    assert message["custom_args"]["pitwall_contact"] == request.idempotency_key


# ---------------------------------------------------------------------- voice


def test_twiml_is_a_say_in_the_patients_language() -> None:
    english = ET.fromstring(build_twiml("Your nurse will call <today> & tomorrow.", "en"))
    spanish = ET.fromstring(build_twiml("Su enfermera llamará hoy.", "es"))
    [say] = english.findall("Say")
    assert english.tag == "Response"
    assert (say.text, say.get("language"), say.get("voice")) == (
        "Your nurse will call <today> & tomorrow.",
        "en-US",
        "Polly.Joanna",
    )
    [say_es] = spanish.findall("Say")
    assert (say_es.text, say_es.get("language")) == ("Su enfermera llamará hoy.", "es-US")
    assert voice.twilio_language("es-MX") == "es-US"
    assert voice.twilio_language("fr") == "en-US"


SEQUENCES = {
    "answered": (["initiated", "ringing", "in-progress", "completed"], "answered", "human"),
    "voicemail": (
        ["initiated", "ringing", "in-progress", "completed"],
        "voicemail",
        "machine_end_beep",
    ),
    "no_answer": (["initiated", "ringing", "no-answer"], "no_answer", None),
    "busy": (["initiated", "busy"], "no_answer", None),
    "failed": (["initiated", "failed"], "failed", None),
}


@pytest.mark.parametrize("scenario", list(SEQUENCES))
async def test_call_outcomes_by_scenario(
    sandbox_url: str, sink: Sink, patient: str, scenario: str
) -> None:
    statuses, outcome, answered_by = SEQUENCES[scenario]
    await put_scenario(sandbox_url, patient, voice=scenario, voice_status_interval_seconds=0.02)
    callback = f"{sink.url}/v1/webhooks/voice/status?journey=journey-{patient}"
    client = VoiceClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM)
    text = "This is Demo. Your refill is ready."
    try:
        result = await client.call(
            VoiceRequest(
                **base(patient), to=number(), text=text, language="es", status_callback=callback
            )
        )
        hits = await sink.wait_for(containing(result.call_sid), count=len(statuses))
        fetched = await client.fetch(result.call_sid)
    finally:
        await client.aclose()
    assert (result.call_sid[:2], result.status) == ("CA", "queued")
    validator = RequestValidator(TWILIO_TOKEN)
    events = []
    for hit in hits:
        form = dict(parse_qsl(hit.body.decode(), keep_blank_values=True))
        assert hit.url == callback
        assert validator.validate(hit.url, form, hit.headers["x-twilio-signature"])
        events.append(parse_call_status(form, f"journey-{patient}"))
    assert [e.data["status"] for e in events] == statuses
    assert [e.event_id for e in events] == [f"{result.call_sid}:{s}" for s in statuses]
    assert all(e.type == "voice.status" and e.correlation_key == result.call_sid for e in events)
    assert [e.data["outcome"] for e in events[:-1]] == [None] * (len(statuses) - 1)
    assert [e.data["terminal"] for e in events] == [False] * (len(statuses) - 1) + [True]
    final = events[-1]
    assert (final.data["outcome"], final.data["answered_by"]) == (outcome, answered_by)
    last_form = dict(parse_qsl(hits[-1].body.decode()))
    if statuses[-1] == "completed":
        assert int(last_form["CallDuration"]) > 0
        assert dict(parse_qsl(hits[2].body.decode()))["AnsweredBy"] == answered_by
    assert fetched.status == statuses[-1]
    [call] = await get_json(sandbox_url, "/_sandbox/messages", patient_ref=patient, channel="voice")
    assert (call["id"], call["body"], call["language"]) == (result.call_sid, text, "es-US")


async def test_find_calls_by_number_and_since(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(sandbox_url, patient, voice_status_interval_seconds=0.02)
    to = number()
    since = datetime.now(UTC)
    client = VoiceClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM)
    try:
        placed = await client.call(
            VoiceRequest(**base(patient), to=to, text="Hello.", status_callback=f"{sink.url}/v")
        )
        for _ in range(100):  # listed once it started (StartTime filters)
            if found := await client.find_calls(to, since):
                break
            await asyncio.sleep(0.02)
        later = await client.find_calls(to, since + timedelta(hours=1))
        elsewhere = await client.find_calls(number(), since)
    finally:
        await client.aclose()
    assert [c.call_sid for c in found] == [placed.call_sid]
    assert later == [] and elsewhere == []


async def test_invalid_number_call_is_rejected_without_the_number(
    sandbox_url: str, patient: str
) -> None:
    client = VoiceClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM)
    with pytest.raises(PartnerRejected) as info:
        await client.call(
            VoiceRequest(**base(patient), to="555-CALL-ME", text="hi", status_callback="http://x/")
        )
    await client.aclose()
    assert (info.value.status, info.value.code) == (400, "voice.invalid_number")
    assert "555-CALL-ME" not in str(info.value)


def test_parse_call_status_edges() -> None:
    base_form = {"CallSid": "CA1", "CallStatus": "completed", "AnsweredBy": "machine_start"}
    assert parse_call_status(base_form).data["outcome"] == "voicemail"
    assert parse_call_status({**base_form, "AnsweredBy": "unknown"}).data["outcome"] == "answered"
    assert parse_call_status({**base_form, "AnsweredBy": "fax"}).data["outcome"] == "failed"
    no_amd = parse_call_status({"CallSid": "CA1", "CallStatus": "completed"})
    assert (no_amd.data["outcome"], no_amd.data["answered_by"]) == ("answered", None)
    ringing = parse_call_status({"CallSid": "CA1", "CallStatus": "ringing"})
    assert ringing.data == {
        "status": "ringing", "answered_by": None, "outcome": None, "terminal": False
    }  # fmt: skip
    assert parse_call_status({"CallSid": "CA1", "CallStatus": "canceled"}).data["terminal"]
    for bad in (
        {"CallStatus": "ringing"},
        {"CallSid": "CA1"},
        {"CallSid": "CA1", "CallStatus": "x"},
    ):
        with pytest.raises(CallbackInvalid):
            parse_call_status(bad)


async def test_voice_outage_is_unavailable(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, outage={"service": "voice", "seconds": 30})
    async with httpx.AsyncClient() as http:
        client = VoiceClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, FROM, http=http)
        with pytest.raises(PartnerUnavailable) as info:
            await client.call(
                VoiceRequest(**base(patient), to=number(), text="hi", status_callback="http://x/")
            )
    assert info.value.status == 503
