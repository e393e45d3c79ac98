"""Adapters against the running sandbox over loopback."""

from __future__ import annotations

import uuid

import httpx
import pytest

from adapters import payer as payer_mod
from adapters.consent import ConsentClient
from adapters.email import EmailClient
from adapters.errors import PartnerRejected, PartnerUnavailable
from adapters.payer import PayerClient
from adapters.pharmacy import PharmacyClient
from adapters.signatures import verify_body
from adapters.sms import SmsClient
from domain.partners import (
    BenefitsRequest,
    ConsentRequest,
    EmailRequest,
    PharmacyReferralRequest,
    PriorAuthRequest,
    SmsRequest,
)
from tests.sandbox.harness import (
    SECRET,
    TWILIO_SID,
    TWILIO_TOKEN,
    Sink,
    containing,
    get_json,
    put_scenario,
)


def key() -> str:
    return f"wf-1/step-{uuid.uuid4().hex[:8]}"


def base(patient: str, **extra: object) -> dict[str, object]:
    return {
        "journey_ref": f"journey-{patient}",
        "patient_ref": patient,
        "program": "demo",
        "idempotency_key": key(),
        **extra,
    }


async def test_benefits_pa_required_and_not(sandbox_url: str, patient: str) -> None:
    client = PayerClient(sandbox_url)
    try:
        result = await client.verify_benefits(BenefitsRequest(**base(patient, drug_code="0001")))
        assert result.coverage_active is True
        assert result.pa_required is True
        assert result.out_of_pocket == 25.0
        assert result.plan_type is None  # the payer did not say

        other = patient + "-nopa"
        await put_scenario(sandbox_url, other, pa_required=False, out_of_pocket=0.0)
        result = await client.verify_benefits(BenefitsRequest(**base(other, drug_code="0001")))
        assert result.pa_required is False
        assert result.out_of_pocket == 0.0
    finally:
        await client.aclose()
    rows = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert [r["operation"] for r in rows] == ["eligibility"]
    assert rows[0]["journey_ref"] == f"journey-{patient}"


@pytest.mark.parametrize("plan_type", ["commercial", "medicare", "medicaid", "other"])
async def test_benefits_carry_the_plan_type_when_the_payer_says_it(
    sandbox_url: str, patient: str, plan_type: str
) -> None:
    """The CoverageEligibilityResponse's contained Coverage, typed by the Source of
    Payment Typology, decides the copay card (commercial only)."""
    await put_scenario(sandbox_url, patient, plan_type=plan_type)
    client = PayerClient(sandbox_url)
    try:
        result = await client.verify_benefits(BenefitsRequest(**base(patient, drug_code="0001")))
    finally:
        await client.aclose()
    assert result.plan_type == plan_type


@pytest.mark.parametrize(
    ("scenario", "outcome", "code"),
    [("approve", "approved", "A1"), ("deny", "denied", "A3"), ("pend_approve", "pended", "A4")],
)
async def test_prior_auth_outcomes(
    sandbox_url: str, patient: str, scenario: str, outcome: str, code: str
) -> None:
    await put_scenario(sandbox_url, patient, pa=scenario, pend_seconds=30)
    async with httpx.AsyncClient() as http:
        client = PayerClient(sandbox_url, http=http)
        result = await client.submit_prior_auth(PriorAuthRequest(**base(patient, drug_code="1")))
    assert result.outcome == outcome
    assert result.review_action_code == code
    assert result.pa_number.startswith("PA")
    rows = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert rows[0]["summary"]["pa_number"] == result.pa_number


async def test_no_pa_required_submission_is_approved(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, pa_required=False, pa="deny")
    client = PayerClient(sandbox_url)
    result = await client.submit_prior_auth(PriorAuthRequest(**base(patient, drug_code="1")))
    await client.aclose()
    assert result.outcome == "approved"


@pytest.mark.parametrize(
    ("scenario", "final"), [("deny_appeal_approve", "approved"), ("deny_appeal_deny", "denied")]
)
async def test_appeal_pends_then_decides_by_callback(
    sandbox_url: str, sink: Sink, patient: str, scenario: str, final: str
) -> None:
    await put_scenario(sandbox_url, patient, pa=scenario, appeal_pend_seconds=0.1)
    client = PayerClient(sandbox_url)
    try:
        first = await client.submit_prior_auth(PriorAuthRequest(**base(patient, drug_code="1")))
        assert (first.outcome, first.review_action_code) == ("denied", "A3")
        appeal = await client.submit_prior_auth(
            PriorAuthRequest(**base(patient, drug_code="1", appeal_of=first.pa_number))
        )
    finally:
        await client.aclose()
    assert (appeal.outcome, appeal.review_action_code) == ("pended", "A4")
    assert appeal.pa_number != first.pa_number

    [hit] = await sink.wait_for(containing(appeal.pa_number))
    assert hit.path == "/v1/webhooks/payer"
    [event] = payer_mod.parse_notification(hit.body)
    assert event.correlation_key == appeal.pa_number
    assert event.data["outcome"] == final
    assert event.data["appeal"] is True
    assert event.journey_ref == f"journey-{patient}"
    rows = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert [r["operation"] for r in rows] == ["pas_submit", "pas_appeal"]
    assert rows[1]["summary"]["appeal_of"] == first.pa_number


async def test_appeal_of_unknown_pa_is_rejected(sandbox_url: str, patient: str) -> None:
    client = PayerClient(sandbox_url)
    with pytest.raises(PartnerRejected) as info:
        await client.submit_prior_auth(
            PriorAuthRequest(**base(patient, drug_code="1", appeal_of="PA-NOPE"))
        )
    await client.aclose()
    assert info.value.status == 400
    assert info.value.code == "payer.invalid_request"
    assert "not-found" in info.value.detail
    assert patient not in str(info.value)


async def test_pharmacy_referral_and_consent_request(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        consent_after_seconds=0.05,
        fill_after_seconds=0.05,
        ship_after_seconds=0.05,
        deliver_after_seconds=0.05,
    )
    pharmacy = PharmacyClient(sandbox_url)
    consent = ConsentClient(sandbox_url)
    try:
        rx = await pharmacy.refer(
            PharmacyReferralRequest(**base(patient, drug_code="0002", days_supply=28))
        )
        cr = await consent.request(ConsentRequest(**base(patient)))
    finally:
        await pharmacy.aclose()
        await consent.aclose()
    assert rx.rx_id.startswith("rx_")
    assert cr.request_id.startswith("cr_")
    delivered = await sink.wait_for(containing(rx.rx_id), count=3)
    assert all(
        verify_body(
            SECRET, r.headers["x-pitwall-timestamp"], r.body, r.headers["x-pitwall-signature"]
        )
        for r in delivered
    )
    [signed] = await sink.wait_for(containing(cr.request_id))
    assert signed.path == "/v1/webhooks/consent"


async def test_pharmacy_invalid_referral_is_rejected(sandbox_url: str, patient: str) -> None:
    client = PharmacyClient(sandbox_url)
    with pytest.raises(PartnerRejected) as info:
        # Our model refuses 0 too; built unchecked here to prove the partner refuses it.
        fields = base(patient, drug_code="1", days_supply=0)
        bad = PharmacyReferralRequest.model_construct(**fields)  # type: ignore[arg-type]
        await client.refer(bad)
    await client.aclose()
    assert info.value.code == "pharmacy.invalid_request"
    assert "days_supply" in info.value.detail


async def test_sms_same_key_twice_is_two_texts_like_twilio(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, sms_statuses=["queued"])
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, "+15555550100")
    request = SmsRequest(
        **base(patient),
        to="+15555550123",
        body="You have a message from Demo.",
        status_callback=f"{sink.url}/v1/webhooks/sms/status",
    )
    try:
        first = await client.send(request)
        second = await client.send(request)
    finally:
        await client.aclose()
    assert first.message_sid.startswith("SM")
    assert first.status == "queued"
    assert second.message_sid != first.message_sid  # Twilio ignores Idempotency-Key
    rows = await get_json(sandbox_url, "/_sandbox/received", service="sms", patient_ref=patient)
    assert [r["attempts"] for r in rows] == [1, 1]
    assert {r["idempotency_key"] for r in rows} == {request.idempotency_key}
    assert rows[0]["summary"]["to"] == "+15555550123"
    messages = await get_json(sandbox_url, "/_sandbox/messages", patient_ref=patient)
    assert [m["id"] for m in messages] == [first.message_sid, second.message_sid]


async def test_sms_idempotency_switch_deduplicates(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, sms_statuses=["queued"], sms_idempotency=True)
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, "+15555550100")
    request = SmsRequest(
        **base(patient),
        to="+15555550123",
        body="You have a message from Demo.",
        status_callback=f"{sink.url}/v1/webhooks/sms/status",
    )
    try:
        first = await client.send(request)
        second = await client.send(request)
    finally:
        await client.aclose()
    assert second == first
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="sms", patient_ref=patient)
    assert row["attempts"] == 2
    messages = await get_json(sandbox_url, "/_sandbox/messages", patient_ref=patient)
    assert [m["id"] for m in messages] == [first.message_sid]


@pytest.mark.parametrize(
    ("to", "code"), [("", "sms.invalid_request"), ("555-CALL-ME", "sms.invalid_number")]
)
async def test_sms_invalid_number_is_rejected(
    sandbox_url: str, sink: Sink, patient: str, to: str, code: str
) -> None:
    client = SmsClient(sandbox_url, TWILIO_SID, TWILIO_TOKEN, "+15555550100")
    with pytest.raises(PartnerRejected) as info:
        await client.send(
            SmsRequest(**base(patient), to=to, body="hi", status_callback=f"{sink.url}/s")
        )
    await client.aclose()
    assert info.value.code == code
    assert info.value.status == 400
    if to:
        assert to not in str(info.value)  # Twilio's message echoes the number; we drop it


async def test_sms_wrong_auth_token_is_rejected(sandbox_url: str, sink: Sink, patient: str) -> None:
    client = SmsClient(sandbox_url, TWILIO_SID, "wrong-token", "+15555550100")
    with pytest.raises(PartnerRejected) as info:
        await client.send(
            SmsRequest(**base(patient), to="+15555550123", body="hi", status_callback=sink.url)
        )
    await client.aclose()
    assert (info.value.status, info.value.code) == (401, "sms.auth_failed")


async def test_email_send_with_custom_args(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(
        sandbox_url, patient, email_events_after_seconds=0.05, email_idempotency=True
    )
    client = EmailClient(sandbox_url, "SG.test-key", "hub@example.org", "Demo Program")
    request = EmailRequest(
        **base(patient), to="patient@example.com", subject="Welcome", body="Hello from Demo."
    )
    result = await client.send(request)
    again = await client.send(request)  # deduplicated: the scenario turned the switch on
    await client.aclose()
    assert again == result
    [hit] = await sink.wait_for(containing(result.message_id))
    assert hit.path == "/v1/webhooks/email"
    from adapters.email import parse_events

    events = parse_events(hit.body)
    assert [e.data["event"] for e in events] == ["processed", "delivered"]
    assert {e.correlation_key for e in events} == {result.message_id}
    assert {e.journey_ref for e in events} == {f"journey-{patient}"}
    assert events[0].data["idempotency_key"] == request.idempotency_key
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="email", patient_ref=patient)
    assert row["attempts"] == 2


async def test_email_same_key_twice_is_two_emails_like_sendgrid(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, email_events=[])
    client = EmailClient(sandbox_url, "SG.test-key", "hub@example.org")
    request = EmailRequest(**base(patient), to="patient@example.com", subject="Hi", body="Hello.")
    try:
        first = await client.send(request)
        second = await client.send(request)
    finally:
        await client.aclose()
    assert first.message_id != second.message_id
    messages = await get_json(sandbox_url, "/_sandbox/messages", patient_ref=patient)
    assert [m["id"] for m in messages] == [first.message_id, second.message_id]
    assert {m["custom_args"]["pitwall_contact"] for m in messages} == {request.idempotency_key}


async def test_email_invalid_address_is_rejected(sandbox_url: str, patient: str) -> None:
    client = EmailClient(sandbox_url, "SG.test-key", "hub@example.org")
    with pytest.raises(PartnerRejected) as info:
        await client.send(EmailRequest(**base(patient), to="not-an-address", subject="s", body="b"))
    await client.aclose()
    assert info.value.code == "email.invalid_address"
    assert "not-an-address" not in str(info.value)


async def test_outage_then_recovery(sandbox_url: str, patient: str) -> None:
    await put_scenario(
        sandbox_url, patient, outage={"service": "payer", "seconds": 0.3, "status": 503}
    )
    client = PayerClient(sandbox_url)
    request = PriorAuthRequest(**base(patient, drug_code="1"))
    try:
        with pytest.raises(PartnerUnavailable) as info:
            await client.submit_prior_auth(request)
        assert info.value.status == 503
        # Another service of the same patient is unaffected.
        await PharmacyClient(sandbox_url).refer(
            PharmacyReferralRequest(**base(patient, drug_code="1", days_supply=28))
        )
        import asyncio

        await asyncio.sleep(0.35)
        result = await client.submit_prior_auth(request)
    finally:
        await client.aclose()
    assert result.outcome == "approved"
    [row] = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert row["attempts"] == 2
    assert row["status"] == 200


async def test_slow_partner_times_out_as_unavailable(sandbox_url: str, patient: str) -> None:
    await put_scenario(sandbox_url, patient, slow_ms=400)
    client = ConsentClient(sandbox_url, timeout=0.1)
    with pytest.raises(PartnerUnavailable) as info:
        await client.request(ConsentRequest(**base(patient)))
    await client.aclose()
    assert info.value.status is None
    assert "timeout" in info.value.detail


async def test_connection_refused_is_unavailable(patient: str) -> None:
    client = PharmacyClient("http://127.0.0.1:9")
    with pytest.raises(PartnerUnavailable) as info:
        await client.refer(PharmacyReferralRequest(**base(patient, drug_code="1", days_supply=28)))
    await client.aclose()
    assert info.value.status is None
