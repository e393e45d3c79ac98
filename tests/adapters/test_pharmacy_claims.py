"""Pharmacy claim callbacks: NCPDP Telecom reject codes → what the journey acts on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters import pharmacy
from adapters.errors import CallbackInvalid
from domain.events import declared_event_types
from domain.partner_actions import action, callback_events
from domain.template_loader import load_template

SECRET_VALUE = "PATIENT-SMITH-1970"


def rejected(**fields: Any) -> dict[str, Any]:
    return {
        "event_id": "evt-1",
        "type": "pharmacy.claim_rejected",
        "rx_id": "rx_1",
        "journey_ref": "wf-1",
        "patient_ref": "pt-1",
        "occurred_at": "2025-03-03T10:00:00Z",
        "transaction_response_status": "R",
        "reject_codes": ["75"],
        **fields,
    }


@pytest.mark.parametrize(
    ("codes", "reject"),
    [
        (["75"], "pa_required"),
        (["70"], "not_covered"),
        (["79"], "refill_too_soon"),
        (["MR"], "other"),
        (["76", "ZZ9"], "other"),
        # The first code we act on decides; the others are kept.
        (["M4", "70", "75"], "not_covered"),
        (["75", "79"], "pa_required"),
    ],
)
def test_reject_codes(codes: list[str], reject: str) -> None:
    event = pharmacy.parse_callback(rejected(reject_codes=codes))
    assert event.type == "pharmacy.claim_rejected"
    assert event.correlation_key == "rx_1"
    assert event.journey_ref == "wf-1"
    assert event.data == {
        "rx_id": "rx_1",
        "transaction_response_status": "R",
        "reject_codes": codes,
        "reject": reject,
        "earliest_fill_date": None,
    }


def test_refill_too_soon_with_next_available_fill_date() -> None:
    event = pharmacy.parse_callback(
        rejected(
            reject_codes=["79"],
            reject_count=1,
            reject_messages=["Refill Too Soon"],
            earliest_fill_date="2025-03-08",
        )
    )
    assert event.data["reject"] == "refill_too_soon"
    assert event.data["earliest_fill_date"] == "2025-03-08"
    # The payer's free text is not passed on.
    assert "reject_messages" not in event.data
    assert event.occurred_at.isoformat() == "2025-03-03T10:00:00+00:00"


def test_codes_and_status_are_normalised() -> None:
    event = pharmacy.parse_callback(
        rejected(reject_codes=[" mr ", "75"], transaction_response_status="r")
    )
    assert event.data["reject_codes"] == ["MR", "75"]
    assert event.data["reject"] == "pa_required"
    assert event.data["transaction_response_status"] == "R"


def test_a_rejected_claim_is_never_a_fill() -> None:
    dispense = {
        "resourceType": "MedicationDispense",
        "status": "completed",
        "daysSupply": {"value": 28},
    }
    event = pharmacy.parse_callback(rejected(medication_dispense=dispense, days_supply=28))
    assert "is_fill" not in event.data and "days_supply" not in event.data


def test_claim_paid() -> None:
    event = pharmacy.parse_callback(
        {
            "event_id": "evt-2",
            "type": "pharmacy.claim_paid",
            "rx_id": "rx_2",
            "transaction_response_status": "P",
            "authorization_number": "AUTH1",
        }
    )
    assert event.type == "pharmacy.claim_paid"
    assert event.correlation_key == "rx_2"
    assert event.data == {
        "rx_id": "rx_2",
        "transaction_response_status": "P",
        "authorization_number": "AUTH1",
    }
    bare = pharmacy.parse_callback(
        {"event_id": "e", "type": "pharmacy.claim_paid", "rx_id": "r",
         "transaction_response_status": "P"}
    )  # fmt: skip
    assert bare.data["authorization_number"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reject_codes": None}, "reject_codes"),
        ({"reject_codes": []}, "reject_codes"),
        ({"reject_codes": SECRET_VALUE}, "reject_codes"),
        ({"reject_codes": [75]}, "reject_codes"),
        ({"reject_codes": [""]}, "reject_codes"),
        ({"reject_codes": [SECRET_VALUE]}, "reject_codes"),
        ({"reject_codes": ["7-5"]}, "reject_codes"),
        ({"reject_codes": ["75"] * 11}, "reject_codes"),
        ({"transaction_response_status": None}, "transaction_response_status"),
        ({"transaction_response_status": "P"}, "transaction_response_status"),
        ({"transaction_response_status": SECRET_VALUE}, "transaction_response_status"),
        ({"earliest_fill_date": SECRET_VALUE}, "earliest_fill_date"),
        ({"earliest_fill_date": "2025-02-30"}, "earliest_fill_date"),
        ({"earliest_fill_date": "20250308"}, "earliest_fill_date"),
        ({"earliest_fill_date": "2025-03-08T00:00:00Z"}, "earliest_fill_date"),
        ({"earliest_fill_date": 20250308}, "earliest_fill_date"),
        ({"reject_messages": SECRET_VALUE}, "reject_messages"),
        ({"reject_messages": [1]}, "reject_messages"),
        ({"reject_count": 2}, "reject_count"),
        ({"reject_count": True}, "reject_count"),
        ({"rx_id": None}, "rx_id"),
    ],
)
def test_malformed_rejection_names_the_field_never_the_value(
    fields: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in rejected(**fields).items() if v is not None}
    with pytest.raises(CallbackInvalid) as info:
        pharmacy.parse_callback(body)
    message = str(info.value)
    assert f"'{field}'" in message
    assert SECRET_VALUE not in message


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "transaction_response_status"),
        ({"transaction_response_status": "R"}, "transaction_response_status"),
        ({"transaction_response_status": "P", "authorization_number": 7}, "authorization_number"),
    ],
)
def test_malformed_claim_paid(fields: dict[str, Any], field: str) -> None:
    body = {"event_id": "e", "type": "pharmacy.claim_paid", "rx_id": "r", **fields}
    with pytest.raises(CallbackInvalid, match=field):
        pharmacy.parse_callback(body)


def test_claim_events_are_declared_for_templates() -> None:
    events = callback_events()
    assert {e for e, partner in events.items() if partner == "pharmacy"} == pharmacy.EVENT_TYPES
    assert "pharmacy.claim_rejected" in action("pharmacy.refer").events
    assert {"pharmacy.claim_paid", "pharmacy.claim_rejected"} <= declared_event_types()


def test_a_template_may_wait_for_the_claim(tmp_path: Path) -> None:
    path = tmp_path / "claim.yaml"
    path.write_text(
        """\
id: claim_wait
version: 1
parameters:
  drug_code: "99999-0001-01"
  days_supply: 28
steps:
  - id: sp_referral
    kind: partner_action
    action: pharmacy.refer
  - id: claim
    kind: wait_for_event
    event: [pharmacy.claim_paid, pharmacy.claim_rejected]
    correlation: steps.sp_referral.rx_id
    timeout: 3d
    on_timeout: done
  - id: adjudicated
    kind: branch
    cases:
      - when: events.claim.reject == 'pa_required'
        goto: done
    default: done
  - id: done
    kind: exit
""",
        encoding="utf-8",
    )
    template = load_template(path)
    assert template.step("claim").kind == "wait_for_event"
