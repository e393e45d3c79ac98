"""Callbacks the sandbox posts to a real sink: shape, signatures, duplicates, order, retry."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl

import httpx

from adapters import consent, email, payer, pharmacy, sms
from adapters.payer import PayerClient
from adapters.pharmacy import PharmacyClient
from adapters.signatures import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    verify_body,
    verify_twilio,
)
from adapters.sms import SmsClient
from domain.partners import PharmacyReferralRequest, PriorAuthRequest, SmsRequest
from tests.sandbox.harness import (
    SECRET,
    TWILIO_SID,
    TWILIO_TOKEN,
    Sink,
    SinkRequest,
    containing,
    get_json,
    put_scenario,
    settled,
)


def req(patient: str, **extra: object) -> dict[str, object]:
    return {
        "journey_ref": f"journey-{patient}",
        "patient_ref": patient,
        "program": "demo",
        "idempotency_key": f"wf/{uuid.uuid4().hex[:8]}",
        **extra,
    }


def signed_ok(hit: SinkRequest) -> bool:
    return verify_body(
        SECRET,
        hit.headers[TIMESTAMP_HEADER.lower()],
        hit.body,
        hit.headers[SIGNATURE_HEADER.lower()],
    )


async def test_pended_pa_decision_arrives_signed(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="pend_deny", pend_seconds=0.1)
    client = PayerClient(sandbox_url)
    result = await client.submit_prior_auth(PriorAuthRequest(**req(patient, drug_code="1")))
    await client.aclose()
    assert result.outcome == "pended"

    [hit] = await sink.wait_for(containing(result.pa_number))
    assert hit.path == "/v1/webhooks/payer"
    assert hit.headers["content-type"].startswith("application/fhir+json")
    assert signed_ok(hit)
    assert not verify_body(
        "wrong-secret",
        hit.headers["x-pitwall-timestamp"],
        hit.body,
        hit.headers["x-pitwall-signature"],
    )
    bundle = json.loads(hit.body)
    assert bundle["type"] == "history"
    assert bundle["entry"][0]["resource"]["resourceType"] == "Parameters"
    [event] = payer.parse_notification(hit.body)
    assert event.type == "pa.decided"
    assert event.correlation_key == result.pa_number
    assert event.journey_ref == f"journey-{patient}"
    assert event.data == {
        "outcome": "denied",
        "review_action_code": "A3",
        "pa_number": result.pa_number,
        "appeal": False,
        "expires_on": None,
    }
    assert event.event_id == bundle["id"]
    [record] = await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient)
    assert record["event_id"] == event.event_id
    assert record["delivered"] is True
    assert record["attempts"] == 1
    assert record["last_status"] == 200


async def test_same_key_resubmitted_schedules_no_second_callback(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="pend_approve", pend_seconds=0.05)
    client = PayerClient(sandbox_url)
    request = PriorAuthRequest(**req(patient, drug_code="1"))
    first = await client.submit_prior_auth(request)
    second = await client.submit_prior_auth(request)
    await client.aclose()
    assert first == second
    await sink.wait_for(containing(first.pa_number))
    await settled(sandbox_url, patient)
    assert len(sink.matching(containing(first.pa_number))) == 1
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert row["attempts"] == 2


async def test_duplicate_callbacks_carry_the_same_event_id(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, duplicate_callbacks=True, pa="pend_approve", pend_seconds=0.05
    )
    client = PayerClient(sandbox_url)
    result = await client.submit_prior_auth(PriorAuthRequest(**req(patient, drug_code="1")))
    await client.aclose()
    hits = await sink.wait_for(containing(result.pa_number), count=2)
    events = [payer.parse_notification(h.body)[0] for h in hits]
    assert events[0].event_id == events[1].event_id
    assert {e.data["outcome"] for e in events} == {"approved"}
    records = await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient)
    assert [r["copy"] for r in records] == [1, 2]


async def test_pharmacy_events_in_order_and_out_of_order(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    fast = {"fill_after_seconds": 0.0, "ship_after_seconds": 0.05, "deliver_after_seconds": 0.05}
    other = patient + "-ooo"
    await put_scenario(sandbox_url, patient, days_supply=30, **fast)
    await put_scenario(sandbox_url, other, out_of_order=True, **fast)
    client = PharmacyClient(sandbox_url)
    rx = await client.refer(PharmacyReferralRequest(**req(patient, drug_code="9", days_supply=28)))
    rx2 = await client.refer(PharmacyReferralRequest(**req(other, drug_code="9", days_supply=84)))
    await client.aclose()

    in_order = [
        pharmacy.parse_callback(h.body) for h in await sink.wait_for(containing(rx.rx_id), 4)
    ]
    assert [e.type for e in in_order] == [
        "pharmacy.claim_paid",
        "pharmacy.filled",
        "pharmacy.shipped",
        "pharmacy.delivered",
    ]
    assert in_order[0].data["transaction_response_status"] == "P"
    delivered = in_order[3]
    assert delivered.correlation_key == rx.rx_id
    assert delivered.journey_ref == f"journey-{patient}"
    assert delivered.data["days_supply"] == 30  # the scenario's, overriding the referral's
    assert delivered.data["is_fill"] is True
    assert delivered.data["dispensed_at"] is not None
    assert len({e.event_id for e in in_order}) == 4

    swapped = [
        pharmacy.parse_callback(h.body) for h in await sink.wait_for(containing(rx2.rx_id), 4)
    ]
    assert [e.type for e in swapped] == [
        "pharmacy.claim_paid",
        "pharmacy.filled",
        "pharmacy.delivered",
        "pharmacy.shipped",
    ]
    assert swapped[2].data["days_supply"] == 84
    # The events' own times still tell the true story.
    assert swapped[3].occurred_at < swapped[2].occurred_at


async def test_sms_status_callbacks_twilio_signed(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        sms_statuses=["queued", "sent", "delivered"],
        sms_status_interval_seconds=0.05,
        duplicate_callbacks=True,
    )
    callback = f"{sink.url}/v1/webhooks/sms/status?journey_ref=journey-{patient}&x=1%202"
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, "+15555550100")
    sent = await client.send(
        SmsRequest(**req(patient), to="+15555550123", body="hi", status_callback=callback)
    )
    await client.aclose()
    hits = await sink.wait_for(containing(sent.message_sid), count=4)
    events = []
    for hit in hits:
        form = dict(parse_qsl(hit.body.decode(), keep_blank_values=True))
        assert hit.url == callback
        assert verify_twilio(
            TWILIO_TOKEN, hit.url, form, hit.headers[TWILIO_SIGNATURE_HEADER.lower()]
        )
        assert not verify_twilio(
            TWILIO_TOKEN, hit.url + "&y=1", form, hit.headers[TWILIO_SIGNATURE_HEADER.lower()]
        )
        events.append(sms.parse_status_callback(form, journey_ref=f"journey-{patient}"))
    assert [e.data["status"] for e in events] == ["sent", "sent", "delivered", "delivered"]
    assert events[0].event_id == events[1].event_id
    assert events[0].event_id != events[2].event_id
    assert {e.correlation_key for e in events} == {sent.message_sid}


async def test_sms_out_of_order_delivered_before_sent(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, out_of_order=True, sms_status_interval_seconds=0.05)
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, "+15555550100")
    sent = await client.send(
        SmsRequest(
            **req(patient),
            to="+15555550123",
            body="hi",
            status_callback=f"{sink.url}/v1/webhooks/sms/status",
        )
    )
    await client.aclose()
    hits = await sink.wait_for(containing(sent.message_sid), count=2)
    statuses = [dict(parse_qsl(h.body.decode()))["MessageStatus"] for h in hits]
    assert statuses == ["delivered", "sent"]


async def test_consent_signed_and_declined(sandbox_url: str, sink: Sink, patient: str) -> None:
    other = patient + "-no"
    await put_scenario(sandbox_url, patient, consent="sign", consent_after_seconds=0.05)
    await put_scenario(sandbox_url, other, consent="decline", consent_after_seconds=0.05)
    async with httpx.AsyncClient() as http:
        from adapters.consent import ConsentClient
        from domain.partners import ConsentRequest

        client = ConsentClient(sandbox_url, http=http)
        yes = await client.request(ConsentRequest(**req(patient)))
        no = await client.request(ConsentRequest(**req(other)))
    [hit_yes] = await sink.wait_for(containing(yes.request_id))
    [hit_no] = await sink.wait_for(containing(no.request_id))
    assert signed_ok(hit_yes) and signed_ok(hit_no)
    signed, declined = consent.parse_callback(hit_yes.body), consent.parse_callback(hit_no.body)
    assert (signed.type, signed.correlation_key) == ("consent.signed", yes.request_id)
    assert (declined.type, declined.correlation_key) == ("consent.declined", no.request_id)
    assert signed.data["documents"] == ["hipaa_authorization", "program_terms"]


async def test_callback_retried_until_receiver_accepts(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    sink.fail_next["/v1/webhooks/consent"] = 2
    await put_scenario(sandbox_url, patient, consent_after_seconds=0.0)
    from adapters.consent import ConsentClient
    from domain.partners import ConsentRequest

    client = ConsentClient(sandbox_url)
    result = await client.request(ConsentRequest(**req(patient)))
    await client.aclose()
    hits = await sink.wait_for(containing(result.request_id), count=3)
    assert [h.status for h in hits] == [503, 503, 200]
    assert len({consent.parse_callback(h.body).event_id for h in hits}) == 1
    assert all(signed_ok(h) for h in hits)
    [record] = await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient)
    assert (record["attempts"], record["last_status"], record["delivered"]) == (3, 200, True)


async def test_email_bounce_batch(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(
        sandbox_url, patient, email_events=["processed", "bounce"], email_events_after_seconds=0.0
    )
    from adapters.email import EmailClient
    from domain.partners import EmailRequest

    client = EmailClient(sandbox_url, "SG.key", "hub@example.org")
    sent = await client.send(
        EmailRequest(**req(patient), to="a@example.com", subject="s", body="b")
    )
    await client.aclose()
    [hit] = await sink.wait_for(containing(sent.message_id))
    assert signed_ok(hit)
    events = email.parse_events(hit.body)
    assert [e.data["event"] for e in events] == ["processed", "bounce"]
    assert events[1].data["terminal"] == "failed"
    assert events[1].data["suppress"] is True
    assert "a@example.com" not in json.dumps([e.model_dump(mode="json") for e in events])


async def test_inbound_sms_reply(sandbox_url: str, sink: Sink, patient: str) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox_url}/_sandbox/sms/inbound",
            json={"from": "+15555550123", "body": "STOP", "patient_ref": patient},
        )
    sid = response.json()["message_sid"]
    [hit] = await sink.wait_for(containing(sid))
    assert hit.path == "/v1/webhooks/sms"
    form = dict(parse_qsl(hit.body.decode()))
    assert verify_twilio(TWILIO_TOKEN, hit.url, form, hit.headers["x-twilio-signature"])
    assert sms.is_inbound(form)
    event = sms.parse_callback(form)
    assert (event.type, event.event_id, event.data["body"]) == ("sms.reply", sid, "STOP")
