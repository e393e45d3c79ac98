"""The messaging gateways over raw HTTP, behaving like the real Twilio and SendGrid: no
idempotency keys, held answers, list / fetch lookups, receipts with ErrorCodes, TwiML
replies to inbound texts, voice calls, and signatures by Twilio's reference validator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from twilio.request_validator import RequestValidator

from adapters import sms
from tests.sandbox.harness import (
    TWILIO_SID,
    TWILIO_TOKEN,
    Sink,
    containing,
    get_json,
    put_scenario,
    wait_until,
)

MESSAGES = f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{TWILIO_SID}/Calls.json"
AUTH = (TWILIO_SID, TWILIO_TOKEN)
SENDGRID = {"Authorization": "Bearer SG.test"}


def text_form(patient: str, to: str = "+15555550123", body: str = "hi", **extra: str) -> dict:
    return {"To": to, "From": "+15555550100", "Body": body, "PitwallPatientRef": patient, **extra}


def mail(patient: str, key: str) -> dict[str, Any]:
    args = {"patient_ref": patient, "pitwall_contact": key}
    return {
        "personalizations": [{"to": [{"email": "p@example.com"}], "custom_args": args}],
        "from": {"email": "hub@example.org"},
        "subject": "Hello",
        "content": [{"type": "text/plain", "value": "Body."}],
        "custom_args": args,
    }


def form_of(hit: Any) -> dict[str, str]:
    return dict(parse_qsl(hit.body.decode(), keep_blank_values=True))


async def messages_of(base: str, patient: str, **params: str) -> list[dict[str, Any]]:
    return list(await get_json(base, "/_sandbox/messages", patient_ref=patient, **params))


# ---------------------------------------------------------------------- idempotency


@pytest.mark.parametrize(("switch", "count"), [(False, 2), (True, 1)])
async def test_sms_idempotency_key_only_with_the_switch(
    sandbox_url: str, patient: str, switch: bool, count: int
) -> None:
    await put_scenario(sandbox_url, patient, sms_statuses=["queued"], sms_idempotency=switch)
    headers = {"Idempotency-Key": f"wf/{uuid.uuid4().hex[:8]}"}
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        answers = [
            await http.post(MESSAGES, data=text_form(patient), headers=headers) for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [201, 201]
    assert len({a.json()["sid"] for a in answers}) == count
    assert len(await messages_of(sandbox_url, patient)) == count


@pytest.mark.parametrize(("switch", "count"), [(False, 2), (True, 1)])
async def test_email_idempotency_key_only_with_the_switch(
    sandbox_url: str, sink: Sink, patient: str, switch: bool, count: int
) -> None:
    await put_scenario(sandbox_url, patient, email_idempotency=switch, email_events=["processed"])
    key = f"wf/{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=sandbox_url, headers=SENDGRID) as http:
        answers = [
            await http.post(
                "/v3/mail/send", json=mail(patient, key), headers={"Idempotency-Key": key}
            )
            for _ in range(2)
        ]
    assert [a.status_code for a in answers] == [202, 202]
    ids = {a.headers["X-Message-Id"] for a in answers}
    assert len(ids) == count
    assert len(await messages_of(sandbox_url, patient)) == count
    for message_id in ids:  # each new message gets its own events
        await sink.wait_for(containing(message_id))


async def test_payer_side_services_still_deduplicate(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, consent="never")
    body = {"patient_ref": patient, "documents": ["hipaa_authorization"]}
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        answers = [
            await http.post("/consent/requests", json=body, headers={"Idempotency-Key": "k1"})
            for _ in range(2)
        ]
    assert answers[0].json() == answers[1].json()
    [row] = await get_json(sandbox_url, "/_sandbox/received", patient_ref=patient)
    assert row["attempts"] == 2


# ---------------------------------------------------------------------- held answers


async def test_held_sms_answer_message_recorded_before_the_answer(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, sms_response_delay_seconds=1.0, sms_status_interval_seconds=0.05
    )
    callback = f"{sink.url}/v1/webhooks/sms/status?p={patient}"
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        began = time.monotonic()
        post = asyncio.ensure_future(
            http.post(MESSAGES, data=text_form(patient, StatusCallback=callback))
        )
        [message] = await wait_until(lambda: messages_of(sandbox_url, patient))
        assert not post.done()  # visible at the gateway, the client has heard nothing yet
        # ... and its receipts are already on their way.
        await sink.wait_for(containing(message["id"]), count=2)
        assert not post.done()
        answer = await post
    assert time.monotonic() - began >= 0.9
    assert answer.status_code == 201
    assert answer.json()["sid"] == message["id"]


async def test_client_killed_during_held_email_answer(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, email_response_delay_seconds=1.0, email_events=[])
    async with httpx.AsyncClient(base_url=sandbox_url, headers=SENDGRID, timeout=0.3) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("/v3/mail/send", json=mail(patient, "wf/held"))
    [message] = await messages_of(sandbox_url, patient)
    assert message["custom_args"]["pitwall_contact"] == "wf/held"


# ---------------------------------------------------------------------- Twilio lookups


async def test_messages_list_filters_pages_and_auth(sandbox_url: str, patient: str) -> None:
    to = "+15555557" + str(uuid.uuid4().int % 1000).zfill(3)
    await put_scenario(sandbox_url, patient, sms_statuses=["queued", "sent"])
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        sids = [
            (await http.post(MESSAGES, data=text_form(patient, to=to, body=f"n{i}"))).json()["sid"]
            for i in range(3)
        ]
        await wait_until(
            lambda: _all_status(sandbox_url, patient, "sent"), within=5
        )  # date_sent set once sent
        today = datetime.now(UTC).date()
        listed = (await http.get(MESSAGES, params={"To": to, "DateSent>": str(today)})).json()
        assert [m["sid"] for m in listed["messages"]] == sids[::-1]  # newest first
        assert listed["messages"][0]["body"] == "n2"
        assert listed["messages"][0]["status"] == "sent"
        assert listed["messages"][0]["date_sent"] is not None
        assert (listed["page"], listed["page_size"], listed["next_page_uri"]) == (0, 50, None)
        assert listed["uri"].startswith(MESSAGES + "?")
        # The literal `DateSent>=` spelling and the exact day; a later day finds nothing.
        same = (await http.get(f"{MESSAGES}?To={to.replace('+', '%2B')}&DateSent>={today}")).json()
        assert [m["sid"] for m in same["messages"]] == sids[::-1]
        exact = (await http.get(MESSAGES, params={"To": to, "DateSent": str(today)})).json()
        assert len(exact["messages"]) == 3
        later = str(today + timedelta(days=1))
        assert (await http.get(MESSAGES, params={"To": to, "DateSent>": later})).json()[
            "messages"
        ] == []
        before = (await http.get(MESSAGES, params={"To": to, "DateSent<": later})).json()
        assert len(before["messages"]) == 3
        # Paging: PageSize 2 → a next page with the oldest.
        first = (await http.get(MESSAGES, params={"To": to, "PageSize": "2"})).json()
        assert [m["sid"] for m in first["messages"]] == sids[:0:-1]
        nxt = (await http.get(first["next_page_uri"])).json()
        assert [m["sid"] for m in nxt["messages"]] == sids[:1]
        assert nxt["next_page_uri"] is None
        bad = await http.get(MESSAGES, params={"DateSent>": "yesterday"})
        fetched = (await http.get(f"{MESSAGES[:-5]}/{sids[0]}.json")).json()
        missing = await http.get(f"{MESSAGES[:-5]}/SM{'0' * 32}.json")
    async with httpx.AsyncClient(base_url=sandbox_url) as anon:
        no_auth = await anon.get(MESSAGES)
    assert (bad.status_code, bad.json()["code"]) == (400, 20001)
    assert (fetched["sid"], fetched["status"], fetched["to"]) == (sids[0], "sent", to)
    assert (missing.status_code, missing.json()["code"]) == (404, 20404)
    assert (no_auth.status_code, no_auth.json()["code"]) == (401, 20003)


async def _all_status(base: str, patient: str, status: str) -> bool:
    rows = await messages_of(base, patient)
    return bool(rows) and all(r["status"] == status for r in rows)


async def test_queued_message_has_no_date_sent_yet(sandbox_url: str, patient: str) -> None:
    to = "+15555558" + str(uuid.uuid4().int % 1000).zfill(3)
    await put_scenario(sandbox_url, patient, sms_statuses=["queued"])
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        sid = (await http.post(MESSAGES, data=text_form(patient, to=to))).json()["sid"]
        everything = (await http.get(MESSAGES, params={"To": to})).json()["messages"]
        dated = (
            await http.get(MESSAGES, params={"To": to, "DateSent>": str(datetime.now(UTC).date())})
        ).json()["messages"]
    assert [m["sid"] for m in everything] == [sid]
    assert everything[0]["date_sent"] is None
    assert dated == []  # as Twilio: a DateSent filter cannot see an unsent message


async def test_failed_receipt_carries_the_scenario_error_code(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        sms_statuses=["queued", "sent", "failed"],
        sms_error_code=30006,
        sms_status_interval_seconds=0.02,
    )
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        answer = await http.post(
            MESSAGES, data=text_form(patient, StatusCallback=f"{sink.url}/v1/webhooks/sms/s")
        )
        sid = answer.json()["sid"]
        hits = await sink.wait_for(containing(sid), count=2)
        fetched = (await http.get(f"{MESSAGES[:-5]}/{sid}.json")).json()
    forms = [form_of(h) for h in hits]
    assert [f["MessageStatus"] for f in forms] == ["sent", "failed"]
    assert "ErrorCode" not in forms[0]
    assert forms[1]["ErrorCode"] == "30006"
    event = sms.parse_status_callback(forms[1])
    assert (event.data["status"], event.data["error_code"]) == ("failed", "30006")
    assert event.data["terminal_failure"] is True
    assert (fetched["status"], fetched["error_code"]) == ("failed", 30006)


async def test_undelivered_receipt_defaults_to_30003(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        sms_statuses=["queued", "sent", "undelivered"],
        sms_status_interval_seconds=0.02,
    )
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        answer = await http.post(
            MESSAGES, data=text_form(patient, StatusCallback=f"{sink.url}/v1/webhooks/sms/s")
        )
    hits = await sink.wait_for(containing(answer.json()["sid"]), count=2)
    assert form_of(hits[1])["ErrorCode"] == "30003"
    assert sms.RECEIPT_ERRORS["30003"] == "unreachable"


# ---------------------------------------------------------------------- SendGrid activity


async def test_email_activity_query_by_unique_arg(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, email_events=["processed", "delivered"])
    key = f"wf/{uuid.uuid4().hex[:8]}/welcome/1"
    async with httpx.AsyncClient(base_url=sandbox_url, headers=SENDGRID) as http:
        sent = await http.post("/v3/mail/send", json=mail(patient, key))
        other = await http.post("/v3/mail/send", json=mail(patient, key + "-other"))
        message_id = sent.headers["X-Message-Id"]

        async def activity(query: str) -> list[dict[str, Any]]:
            answer = await http.get("/v3/messages", params={"query": query, "limit": "10"})
            assert answer.status_code == 200, answer.text
            return list(answer.json()["messages"])

        plain = await activity(f"unique_args['pitwall_contact']=\"{key}\"")
        wrapped = await activity(
            f'(unique_args[\'pitwall_contact\']="{key}") AND (to_email="p@example.com")'
        )
        await wait_until(lambda: _delivered(activity, key))
        bad = await http.get("/v3/messages", params={"query": "pitwall_contact=" + key})
    async with httpx.AsyncClient(base_url=sandbox_url) as anon:
        no_auth = await anon.get("/v3/messages")
    assert [m["msg_id"].split(".filter")[0] for m in plain] == [message_id]
    assert [m["msg_id"] for m in wrapped] == [m["msg_id"] for m in plain]
    assert set(plain[0]) >= {
        "msg_id", "from_email", "subject", "to_email", "status", "last_event_time"
    }  # fmt: skip
    assert other.headers["X-Message-Id"] != message_id
    assert bad.status_code == 400
    assert no_auth.status_code == 401


async def _delivered(activity: Any, key: str) -> bool:
    rows = await activity(f"(unique_args['pitwall_contact']=\"{key}\")")
    return bool(rows) and rows[0]["status"] == "delivered"


# ---------------------------------------------------------------------- inbound + TwiML


async def _inbound(base: str, patient: str, url: str, body: str = "HELP") -> str:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{base}/_sandbox/sms/inbound",
            json={"from": "+15555550123", "to": "+15555550199", "body": body,
                  "patient_ref": patient, "journey_ref": f"j-{patient}", "url": url,
                  "account_sid": TWILIO_SID},
        )  # fmt: skip
    return str(answer.json()["message_sid"])


async def _delivered_callback(base: str, patient: str, event_id: str) -> bool:
    rows = await get_json(base, "/_sandbox/callbacks", patient_ref=patient)
    return any(r["event_id"] == event_id and r["delivered"] for r in rows)


async def test_twiml_answer_to_an_inbound_text_is_sent_back(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    path = f"/twiml/{patient}"
    sink.answers[path] = (
        b'<?xml version="1.0" encoding="UTF-8"?><Response>'
        b"<Message>Reply STOP to opt out.</Message><Message><Body>Call 555-0100.</Body>"
        b"</Message></Response>",
        "text/xml",
    )
    sid = await _inbound(sandbox_url, patient, f"{sink.url}{path}")
    replies = await wait_until(lambda: messages_of(sandbox_url, patient, in_reply_to=sid))
    assert [r["body"] for r in replies] == ["Reply STOP to opt out.", "Call 555-0100."]
    for reply in replies:
        assert (reply["channel"], reply["to"], reply["from"]) == (
            "sms",
            "+15555550123",
            "+15555550199",
        )
        assert (reply["patient_ref"], reply["journey_ref"]) == (patient, f"j-{patient}")
        assert reply["in_reply_to"] == sid
    # The replies are Twilio messages like any other: listed and fetchable.
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        fetched = (await http.get(f"{MESSAGES[:-5]}/{replies[0]['id']}.json")).json()
    assert (fetched["direction"], fetched["body"]) == ("outbound-reply", "Reply STOP to opt out.")


@pytest.mark.parametrize(
    ("body", "media_type"),
    [
        (b'{"received": 1}', "application/json"),
        (b"<Response><Message>x", "text/xml"),  # not well-formed: nothing sent
        (b"<Response><Message>plain</Message></Response>", "text/plain"),
    ],
)
async def test_non_twiml_answer_sends_nothing(
    sandbox_url: str, sink: Sink, patient: str, body: bytes, media_type: str
) -> None:
    path = f"/plain/{patient}"
    sink.answers[path] = (body, media_type)
    sid = await _inbound(sandbox_url, patient, f"{sink.url}{path}")
    await wait_until(lambda: _delivered_callback(sandbox_url, patient, sid))
    assert await messages_of(sandbox_url, patient) == []


# ---------------------------------------------------------------------- voice (raw)


async def test_call_without_status_events_gets_completed_only(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, voice_status_interval_seconds=0.02)
    form = {
        "To": "+15555550123",
        "From": "+15555550100",
        "Twiml": "<Response><Say>Hello there</Say></Response>",
        "StatusCallback": f"{sink.url}/v1/webhooks/voice/status",
        "PitwallPatientRef": patient,
    }
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        answer = await http.post(CALLS, data=form)
        sid = answer.json()["sid"]
        [hit] = await sink.wait_for(containing(sid))
        bad = await http.post(CALLS, data={**form, "Twiml": "<Response><Say>"})
        no_to = await http.post(CALLS, data={**form, "To": ""})
    assert answer.status_code == 201
    assert (answer.json()["status"], sid[:2]) == ("queued", "CA")
    received = form_of(hit)
    assert (received["CallStatus"], received["CallDuration"]) == ("completed", "3")
    assert "AnsweredBy" not in received  # no MachineDetection asked for
    assert (bad.status_code, bad.json()["code"]) == (400, 12100)
    assert (no_to.status_code, no_to.json()["code"]) == (400, 21201)
    [call] = await messages_of(sandbox_url, patient, channel="voice")
    assert (call["id"], call["body"], call["status"]) == (sid, "Hello there", "completed")


# ---------------------------------------------------------------------- signatures


async def test_reference_validator_accepts_sandbox_signatures(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, sms_status_interval_seconds=0.02)
    callback = f"{sink.url}/v1/webhooks/sms/status?journey=j-{patient}&x=a%20b"
    async with httpx.AsyncClient(base_url=sandbox_url, auth=AUTH) as http:
        answer = await http.post(MESSAGES, data=text_form(patient, StatusCallback=callback))
    hits = await sink.wait_for(containing(answer.json()["sid"]), count=2)
    validator = RequestValidator(TWILIO_TOKEN)
    for hit in hits:
        form, signature = form_of(hit), hit.headers["x-twilio-signature"]
        assert validator.validate(hit.url, form, signature)
        assert not validator.validate(hit.url, {**form, "MessageStatus": "read"}, signature)
        assert not validator.validate(hit.url + "&y=1", form, signature)
        assert not RequestValidator("other-token").validate(hit.url, form, signature)


async def test_signature_covers_the_url_without_credentials(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    host = sink.url.removeprefix("http://")
    url = f"http://twilio:s3cret@{host}/creds/{patient}"
    sid = await _inbound(sandbox_url, patient, url)
    [hit] = await sink.wait_for(containing(sid))
    assert "authorization" not in hit.headers  # sent only when challenged, as Twilio
    bare = f"{sink.url}/creds/{patient}"
    assert hit.url == bare
    form, signature = form_of(hit), hit.headers["x-twilio-signature"]
    assert RequestValidator(TWILIO_TOKEN).validate(bare, form, signature)
    assert not RequestValidator(TWILIO_TOKEN).validate(bare + "?x=1", form, signature)
    rows = await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient)
    assert json.dumps(rows).count("s3cret") == 0
