"""Callback / response parsers on the standards' own published examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters import consent, email, payer, pharmacy, sms
from adapters.errors import CallbackInvalid, PartnerRejected
from domain import adherence

STANDARDS = Path(__file__).resolve().parents[1] / "fixtures" / "standards"


def raw(path: str) -> bytes:
    return (STANDARDS / path).read_bytes()


def load(path: str) -> Any:
    return json.loads(raw(path))


@pytest.mark.parametrize(
    ("path", "pa_number", "code", "outcome"),
    [
        (
            "pas/response/Bundle-ReferralAuthorizationResponseBundleExample.json",
            "AUTH0001",
            "A1",
            "approved",
        ),
        (
            "pas/response/Bundle-ReferralPendingAuthorizationResponseBundleExample.json",
            "PEND0001",
            "A4",
            "pended",
        ),
        ("pas/response/Bundle-RejectionResponseBundleExample.json", "111099", "A3", "denied"),
    ],
)
def test_pas_responses(path: str, pa_number: str, code: str, outcome: str) -> None:
    result = payer.parse_pas_response(raw(path))
    assert (result.pa_number, result.review_action_code, result.outcome) == (
        pa_number,
        code,
        outcome,
    )


def test_pas_error_response_records_no_decision() -> None:
    with pytest.raises(PartnerRejected) as info:
        payer.parse_pas_response(raw("pas/response/Bundle-ErrorResponseBundleExample.json"))
    assert info.value.code == "payer.pa_error"
    assert "T4" in info.value.detail


def test_pas_subscription_notification_example() -> None:
    [event] = payer.parse_notification(raw("pas/other/Bundle-PASSubscriptionNotification.json"))
    assert event.type == "pa.decided"
    assert event.event_id == "PASSubscriptionNotification"
    assert event.correlation_key == "AUTH0001"
    assert event.data == {
        "outcome": "approved",
        "review_action_code": "A1",
        "pa_number": "AUTH0001",
        "appeal": False,
        "expires_on": None,  # the official example carries no preAuthPeriod
    }
    assert event.journey_ref is None
    assert event.occurred_at.isoformat().startswith("2020-05-29T11:44:33")


def test_pended_response_in_a_notification_is_not_a_decision() -> None:
    pended = load("pas/response/Bundle-ReferralPendingAuthorizationResponseBundleExample.json")
    note = load("pas/other/Bundle-PASSubscriptionNotification.json")
    note["entry"][1]["resource"] = pended
    assert payer.parse_notification(json.dumps(note).encode()) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"resourceType": "Patient"}',
        json.dumps({"resourceType": "Bundle", "id": "x", "type": "history", "entry": []}).encode(),
    ],
)
def test_malformed_notifications(body: bytes) -> None:
    with pytest.raises(CallbackInvalid):
        payer.parse_notification(body)


def test_invalid_bundle_message_names_field_not_value() -> None:
    body = json.dumps(
        {
            "resourceType": "Bundle",
            "id": "n1",
            "type": "history",
            "entry": [{"resource": {"resourceType": "Patient", "id": "JOE SMITH"}}],
        }
    )
    with pytest.raises(CallbackInvalid) as info:
        payer.parse_notification(body.encode())
    assert "JOE SMITH" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "is_fill", "days"),
    [
        ("fhir-r4/MedicationDispense/medicationdispense0307.json", True, 30),
        ("fhir-r4/MedicationDispense/medicationdispense0305.json", False, None),  # entered-in-error
        ("fhir-r4/MedicationDispense/medicationdispense0302.json", False, None),  # in-progress
    ],
)
def test_only_completed_dispense_is_a_fill(path: str, is_fill: bool, days: int | None) -> None:
    dispense = load(path)
    fill = pharmacy.dispense_fill(dispense)
    assert (fill is not None) == is_fill
    event = pharmacy.parse_callback(
        json.dumps(
            {
                "event_id": "e1",
                "type": "pharmacy.delivered",
                "rx_id": "rx1",
                "medication_dispense": dispense,
            }
        ).encode()
    )
    assert event.data["is_fill"] is is_fill
    assert event.data.get("days_supply") == days
    if is_fill:
        assert event.data["dispensed_at"].startswith("2015-01-15T16:20:00")


def test_pharmacy_callback_without_fhir() -> None:
    event = pharmacy.parse_callback(
        {
            "event_id": "e2",
            "type": "pharmacy.delivered",
            "rx_id": "rx9",
            "days_supply": 28,
            "dispensed_at": "2024-03-01T10:00:00Z",
            "journey_ref": "j9",
        }
    )
    assert (event.correlation_key, event.journey_ref, event.data["days_supply"]) == (
        "rx9",
        "j9",
        28,
    )


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"event_id": "e", "type": "pharmacy.lost", "rx_id": "r"}',
        b'{"event_id": "e", "type": "pharmacy.delivered", "rx_id": "r"}',
        b"oops",
    ],
)
def test_pharmacy_malformed(body: bytes) -> None:
    with pytest.raises(CallbackInvalid):
        pharmacy.parse_callback(body)


def test_sendgrid_documented_batch() -> None:
    doc = load("messaging/sendgrid_event_webhook_examples.json")
    events = email.parse_events(json.dumps(doc["combined_batch_example_as_documented"]).encode())
    assert len(events) == len(doc["combined_batch_example_as_documented"])
    assert all(e.type == "email.event" for e in events)


def test_sendgrid_per_event_examples() -> None:
    doc = load("messaging/sendgrid_event_webhook_examples.json")
    seen = {}
    for example in doc["per_event_examples"]:
        [event] = email.parse_events(example["payload_as_documented"])
        assert event.correlation_key == "14c5d75ce93.dfd.64b469"
        assert event.event_id == example["payload_as_documented"][0]["sg_event_id"]
        assert event.occurred_at.year == 2017
        seen[example["event_key"]] = event.data
        reading = example["expected_handling_our_reading"]
        if reading.get("suppress_future_email") is True:
            assert event.data["suppress"] is True, example["event_key"]
        if reading.get("suppress_future_email") is False:
            assert event.data["suppress"] is False, example["event_key"]
    assert seen["blocked"]["event"] == "blocked"
    assert seen["delivered"]["terminal"] == "delivered"
    assert seen["bounce"]["terminal"] == "failed"
    assert seen["unsubscribe"]["opt_out"] is True
    assert seen["open"]["terminal"] is None


@pytest.mark.parametrize(
    "batch",
    [
        {"not": "a list"},
        [{"event": "delivered", "sg_message_id": "m"}],
        [{"sg_event_id": "x", "event": "teleported", "sg_message_id": "m"}],
    ],
)
def test_sendgrid_malformed(batch: Any) -> None:
    with pytest.raises(CallbackInvalid):
        email.parse_events(json.dumps(batch).encode())


def test_sms_status_event_ids() -> None:
    form = {"MessageSid": "SM1", "MessageStatus": "sent", "To": "+15555550123"}
    a = sms.parse_status_callback(form, "j1")
    b = sms.parse_status_callback(dict(form), "j1")
    c = sms.parse_status_callback({**form, "MessageStatus": "delivered"}, None)
    assert a.event_id == b.event_id != c.event_id
    assert (a.correlation_key, a.journey_ref, a.data["status"]) == ("SM1", "j1", "sent")
    failed = sms.parse_status_callback(
        {**form, "MessageStatus": "undelivered", "ErrorCode": "30003"}
    )
    assert failed.data == {"status": "undelivered", "terminal_failure": True, "error_code": "30003"}
    with pytest.raises(CallbackInvalid) as info:
        sms.parse_status_callback({"MessageStatus": "sent", "To": "+15555550123"})
    assert "+1555" not in str(info.value)
    with pytest.raises(CallbackInvalid):
        sms.parse_status_callback({"MessageSid": "SM1", "MessageStatus": "teleported"})


def test_sms_parse_callback_dispatch() -> None:
    inbound = {"MessageSid": "SM9", "SmsStatus": "received", "From": "+15555550123", "Body": "YES"}
    status = {"MessageSid": "SM8", "MessageStatus": "delivered", "SmsStatus": "delivered"}
    assert sms.parse_callback(inbound).type == "sms.reply"
    assert sms.parse_callback(status).type == "sms.status"
    assert sms.parse_callback({"MessageSid": "SM7", "From": "+1", "Body": ""}).type == "sms.reply"
    # A receiver routing on the presence of SmsStatus still gets real inbound texts right.
    assert sms.parse_status_callback(inbound).type == "sms.reply"


def test_consent_callback() -> None:
    event = consent.parse_callback(
        b'{"event_id": "e", "type": "consent.signed", "request_id": "cr_1", "documents": ["a"]}'
    )
    assert (event.type, event.correlation_key, event.journey_ref) == (
        "consent.signed",
        "cr_1",
        None,
    )
    with pytest.raises(CallbackInvalid):
        consent.parse_callback(b'{"event_id": "e", "type": "consent.maybe", "request_id": "x"}')


def _eligibility(coverage_type: Any, reference: str = "#cov") -> dict[str, Any]:
    contained = (
        [{"resourceType": "Coverage", "id": "cov", "status": "active", "type": coverage_type,
          "beneficiary": {"display": "patient"}, "payor": [{"display": "payer"}]}]
        if coverage_type is not None else []
    )  # fmt: skip
    return {
        "resourceType": "CoverageEligibilityResponse", "status": "active",
        "purpose": ["benefits"], "patient": {"display": "patient"}, "created": "2026-12-01",
        "request": {"display": "request"}, "outcome": "complete",
        "insurer": {"display": "payer"}, "contained": contained,
        "insurance": [{"coverage": {"reference": reference}, "inforce": True}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("code", "plan_type"),
    [
        ("1", "medicare"),
        ("121", "medicare"),
        ("2", "medicaid"),
        ("51", "commercial"),
        ("61", "commercial"),
        ("81", "other"),
    ],
)
def test_the_plan_type_is_read_from_the_sopt_typed_coverage(code: str, plan_type: str) -> None:
    sopt = {"coding": [{"system": "https://nahdo.org/sopt", "code": code}]}
    assert payer.parse_eligibility_response(_eligibility(sopt)).plan_type == plan_type


def test_no_plan_type_when_the_payer_does_not_say_it() -> None:
    other_system = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "HIP"}]}  # fmt: skip
    assert payer.parse_eligibility_response(_eligibility(other_system)).plan_type is None
    sopt = {"coding": [{"system": "https://nahdo.org/sopt", "code": "1"}]}
    dangling = _eligibility(sopt, reference="#elsewhere")
    assert payer.parse_eligibility_response(dangling).plan_type is None
    assert payer.parse_eligibility_response(_eligibility(None)).plan_type is None


def test_a_fill_says_its_quantity_medication_and_drug_group() -> None:
    """The published NDC example: the product code is its own group; our extension names
    the group (a combination product, two); a contained Medication gives its ingredients."""
    fill = pharmacy.dispense_fill(load("fhir-r4/MedicationDispense/medicationdispense0307.json"))
    assert fill is not None
    assert (fill["quantity"], fill["quantity_unit"]) == (90.0, "TAB")
    assert fill["medication_code"] == "http://hl7.org/fhir/sid/ndc|76388-713-25"
    assert fill["drug_groups"] == ["http://hl7.org/fhir/sid/ndc|76388-713-25"]

    combination = load("fhir-r4/MedicationDispense/medicationdispense0307.json")
    combination["extension"] = [
        {"url": pharmacy.DRUG_GROUP_EXTENSION, "valueCode": group}
        for group in ("tenofovir", "emtricitabine")
    ]
    assert pharmacy.dispense_fill(combination)["drug_groups"] == [  # type: ignore[index]
        "emtricitabine", "tenofovir",
    ]  # fmt: skip

    contained = load("fhir-r4/MedicationDispense/medicationdispense0302.json")
    contained["status"] = "completed"
    from_medication = pharmacy.dispense_fill(contained)
    assert from_medication is not None
    assert from_medication["medication_code"] == "http://hl7.org/fhir/sid/ndc|0169-7501-11"
    assert from_medication["drug_groups"] == ["325072002"]  # insulin aspart (SNOMED)
    assert (from_medication["quantity"], from_medication["quantity_unit"]) == (10.0, "ml")


def test_a_reported_fill_becomes_an_adherence_fill() -> None:
    event = pharmacy.parse_callback(json.dumps({
        "event_id": "e-fill", "type": "pharmacy.delivered", "rx_id": "rx1",
        "medication_dispense": load("fhir-r4/MedicationDispense/medicationdispense0307.json"),
    }).encode())  # fmt: skip
    fill = adherence.fill_of(event.data)
    assert fill is not None
    assert (fill.filled_on.isoformat(), fill.days_supply) == ("2015-01-15", 30)
    assert fill.drug_groups == frozenset({"http://hl7.org/fhir/sid/ndc|76388-713-25"})
    not_a_fill = pharmacy.parse_callback(json.dumps({
        "event_id": "e-eie", "type": "pharmacy.delivered", "rx_id": "rx1",
        "medication_dispense": load("fhir-r4/MedicationDispense/medicationdispense0305.json"),
    }).encode())  # fmt: skip
    assert adherence.fill_of(not_a_fill.data) is None  # entered-in-error never counts
