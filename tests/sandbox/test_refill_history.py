"""The sandbox pharmacy's refill program: a scripted refill history per scenario, sent as
signed `pharmacy.dispensed` callbacks (FHIR MedicationDispense), read back as our
adapter reads them."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapters import pharmacy
from adapters.pharmacy import PharmacyClient
from adapters.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_body
from domain.partners import PartnerEvent, RefillEnrollmentRequest
from tests.sandbox.harness import (
    SECRET,
    Sink,
    SinkRequest,
    containing,
    get_json,
    put_scenario,
    settled,
)

STARTS_ON = date(2025, 1, 6)
NDC = "00002-7510-01"
FAST = {"refill_day_seconds": 0.0}
ON_TIME_12 = [28 * n for n in range(12)]


def enrollment(patient: str, key: str | None = None, **fields: Any) -> RefillEnrollmentRequest:
    return RefillEnrollmentRequest(
        **{
            "journey_ref": f"journey-{patient}",
            "patient_ref": patient,
            "program": "demo",
            "idempotency_key": key or f"wf/{uuid.uuid4().hex[:8]}",
            "drug_code": NDC,
            "days_supply": 28,
            "starts_on": STARTS_ON,
            **fields,
        }
    )


async def enroll(base: str, request: RefillEnrollmentRequest) -> str:
    client = PharmacyClient(base)
    try:
        result = await client.enroll_refills(request)
    finally:
        await client.aclose()
    assert result.status == "enrolled"
    return result.rx_id


async def history(base: str, sink: Sink, patient: str, rx_id: str) -> list[SinkRequest]:
    """Everything the pharmacy sent for the prescription, once it has nothing more planned."""
    await settled(base, patient)
    hits = sink.matching(containing(rx_id))
    records = await get_json(base, "/_sandbox/callbacks", patient_ref=patient)
    assert len(records) == len(hits) and all(r["delivered"] for r in records)
    return hits


def events(hits: list[SinkRequest]) -> list[PartnerEvent]:
    return [pharmacy.parse_callback(h.body) for h in hits]


def day_of(event: PartnerEvent) -> int:
    """The fill's day in the program: its handover (whenHandedOver) after starts_on."""
    dispensed = datetime.fromisoformat(event.data["dispensed_at"])
    assert dispensed.astimezone(UTC).time().isoformat() == "15:00:00"
    return (dispensed.date() - STARTS_ON).days


def days_of(hits: list[SinkRequest]) -> list[int]:
    found = events(hits)
    assert all(e.type == "pharmacy.dispensed" and e.data["is_fill"] for e in found)
    return [day_of(e) for e in found]


async def test_on_time_by_default_a_signed_fhir_dispense_every_days_supply(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, **FAST)
    rx_id = await enroll(sandbox_url, enrollment(patient))
    hits = await history(sandbox_url, sink, patient, rx_id)
    assert days_of(hits) == ON_TIME_12

    first = hits[0]
    assert first.path == "/v1/webhooks/pharmacy"
    assert verify_body(
        SECRET,
        first.headers[TIMESTAMP_HEADER.lower()],
        first.body,
        first.headers[SIGNATURE_HEADER.lower()],
    )
    body = json.loads(first.body)
    assert set(body) == {
        "event_id", "type", "rx_id", "journey_ref", "patient_ref", "occurred_at",
        "medication_dispense",
    }  # fmt: skip
    assert body["type"] == "pharmacy.dispensed" and body["rx_id"] == rx_id
    assert body["journey_ref"] == f"journey-{patient}" and body["patient_ref"] == patient
    assert body["occurred_at"] == "2025-01-06T15:00:00Z"
    md = body["medication_dispense"]
    assert md["resourceType"] == "MedicationDispense" and md["status"] == "completed"
    assert md["medicationCodeableConcept"]["coding"] == [
        {"system": "http://hl7.org/fhir/sid/ndc", "code": NDC}
    ]
    assert md["subject"]["identifier"]["value"] == patient
    assert md["daysSupply"]["value"] == 28 and md["daysSupply"]["code"] == "d"
    assert md["quantity"]["system"] == "http://unitsofmeasure.org"
    assert md["whenHandedOver"] == "2025-01-06T15:00:00Z"
    assert "extension" not in md  # no drug groups in the scenario: none sent

    found = events(hits)
    assert len({e.event_id for e in found}) == 12
    assert len({e.data["dispense_id"] for e in found}) == 12  # every dispense its own
    assert {e.correlation_key for e in found} == {rx_id}
    assert {e.journey_ref for e in found} == {f"journey-{patient}"}
    assert all(e.data["days_supply"] == 28 for e in found)
    assert [e.occurred_at.date() for e in found] == [
        STARTS_ON + timedelta(days=d) for d in ON_TIME_12
    ]
    assert {tuple(e.data["drug_groups"]) for e in found} == {
        (f"http://hl7.org/fhir/sid/ndc|{NDC}",)
    }


@pytest.mark.parametrize(
    ("fields", "days"),
    [
        ({"refill_history": "on_time", "refill_cycles": 3}, [0, 28, 56]),
        ({"refill_history": "late"}, [38 * n for n in range(12)]),
        ({"refill_history": "late", "refill_late_days": 5, "refill_cycles": 4}, [0, 33, 66, 99]),
        ({"refill_history": "early"}, [25 * n for n in range(12)]),
        ({"refill_history": "skipped"}, [d for d in ON_TIME_12 if d != 84]),
        ({"refill_history": "stopped"}, [0, 28, 56]),
        ({"refill_history": "switched"}, ON_TIME_12),
    ],
)
async def test_each_pattern_fills_on_its_days(
    sandbox_url: str, sink: Sink, patient: str, fields: dict[str, Any], days: list[int]
) -> None:
    await put_scenario(sandbox_url, patient, **FAST, **fields)
    rx_id = await enroll(sandbox_url, enrollment(patient))
    assert days_of(await history(sandbox_url, sink, patient, rx_id)) == days


async def test_skipped_leaves_a_gap_of_two_supplies(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, refill_history="skipped", **FAST)
    rx_id = await enroll(sandbox_url, enrollment(patient, days_supply=30))
    days = days_of(await history(sandbox_url, sink, patient, rx_id))
    gaps = [b - a for a, b in itertools.pairwise(days)]
    assert gaps == [30, 30, 60] + [30] * 7


async def test_switched_changes_drug_group_and_ndc_from_the_fifth_fill(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, refill_history="switched", drug_groups=["adalimumab"], **FAST
    )
    rx_id = await enroll(sandbox_url, enrollment(patient))
    found = events(await history(sandbox_url, sink, patient, rx_id))
    assert [e.data["drug_groups"] for e in found] == [["adalimumab"]] * 4 + [["switched-drug"]] * 8
    codes = [e.data["medication_code"] for e in found]
    ndc = "http://hl7.org/fhir/sid/ndc|"
    assert codes == [ndc + NDC] * 4 + [ndc + "99999-0002-01"] * 8

    other = patient + "-own"
    await put_scenario(
        sandbox_url,
        other,
        refill_history="switched",
        refill_cycles=6,
        switch_to_group="ustekinumab",
        switch_to_ndc="57894-0060-03",
        **FAST,
    )
    rx_other = await enroll(sandbox_url, enrollment(other))
    found = events(await history(sandbox_url, sink, other, rx_other))
    assert [e.data["drug_groups"] for e in found][4:] == [["ustekinumab"]] * 2
    assert [e.data["medication_code"] for e in found][4:] == [ndc + "57894-0060-03"] * 2


async def test_none_sends_nothing(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(sandbox_url, patient, refill_history="none", **FAST)
    rx_id = await enroll(sandbox_url, enrollment(patient))
    assert await history(sandbox_url, sink, patient, rx_id) == []
    [row] = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    assert row["operation"] == "refill_enrollment"
    assert row["summary"]["refill_history"] == "none" and row["summary"]["dispenses"] == 0


async def test_the_scenario_days_supply_overrides_the_enrollment(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, days_supply=90, refill_cycles=4, **FAST)
    rx_id = await enroll(sandbox_url, enrollment(patient, days_supply=28))
    found = events(await history(sandbox_url, sink, patient, rx_id))
    assert [day_of(e) for e in found] == [0, 90, 180, 270]
    assert {e.data["days_supply"] for e in found} == {90}
    [row] = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    assert row["summary"] == {
        "rx_id": rx_id,
        "ndc": NDC,
        "days_supply": 90,
        "starts_on": "2025-01-06",
        "refill_history": "on_time",
        "dispenses": 4,
    }


async def test_explicit_fills_with_a_correction(sandbox_url: str, sink: Sink, patient: str) -> None:
    """An explicit history wins over the pattern: a fill, one entered in error (re-sent
    under its id), a declined one, and a fill of another product and groups."""
    fills: list[dict[str, Any]] = [
        {"day": 0},
        {"day": 30, "days_supply": 30},
        {"day": 33, "status": "entered-in-error", "corrects": 1},
        {"day": 34, "status": "declined"},
        {"day": 35, "status": "cancelled"},
        {"day": 36, "drug_groups": ["tenofovir", "emtricitabine"], "ndc": "61958-0701-01"},
    ]
    await put_scenario(
        sandbox_url,
        patient,
        refill_history="late",
        refill_fills=fills,
        drug_groups=["base"],
        **FAST,
    )
    rx_id = await enroll(sandbox_url, enrollment(patient))
    hits = await history(sandbox_url, sink, patient, rx_id)
    found = events(hits)
    bodies = [json.loads(h.body)["medication_dispense"] for h in hits]
    assert [e.data["dispense_status"] for e in found] == [
        "completed", "completed", "entered-in-error", "declined", "cancelled", "completed",
    ]  # fmt: skip
    assert [e.data["is_fill"] for e in found] == [True, True, False, False, False, True]
    assert [e.occurred_at.date() for e in found] == [
        STARTS_ON + timedelta(days=f["day"]) for f in fills
    ]
    ids = [e.data["dispense_id"] for e in found]
    assert ids[2] == ids[1]  # the correction names the dispense it cancels
    assert len({ids[0], ids[1], ids[3], ids[4], ids[5]}) == 5

    first, second, correction, declined, cancelled, combo = found
    assert (day_of(first), first.data["days_supply"]) == (0, 28)
    assert (day_of(second), second.data["days_supply"]) == (30, 30)
    assert first.data["drug_groups"] == ["base"]
    # Re-sent as it was, only the status changed; never a fill.
    assert bodies[2] == {**bodies[1], "status": "entered-in-error"}
    assert "days_supply" not in correction.data and "dispensed_at" not in correction.data
    # Never handed over: no handover time.
    assert "whenHandedOver" not in bodies[3] and "whenHandedOver" not in bodies[4]
    assert "days_supply" not in declined.data and "days_supply" not in cancelled.data
    assert (day_of(combo), combo.data["drug_groups"]) == (36, ["emtricitabine", "tenofovir"])
    assert combo.data["medication_code"] == "http://hl7.org/fhir/sid/ndc|61958-0701-01"
    [row] = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    assert row["summary"]["refill_history"] == "explicit" and row["summary"]["dispenses"] == 6


async def test_an_empty_explicit_list_wins_too(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(sandbox_url, patient, refill_fills=[], **FAST)
    rx_id = await enroll(sandbox_url, enrollment(patient))
    assert await history(sandbox_url, sink, patient, rx_id) == []


async def test_each_day_takes_refill_day_seconds(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, refill_fills=[{"day": 0}, {"day": 25}], refill_day_seconds=0.01
    )
    before = time.monotonic()
    rx_id = await enroll(sandbox_url, enrollment(patient))
    hits = await history(sandbox_url, sink, patient, rx_id)
    assert len(hits) == 2
    assert hits[1].at - before >= 0.25  # day 25: no earlier than 25 days at 0.01 s
    assert days_of(hits) == [0, 25]


async def test_duplicates_share_the_event_id(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(
        sandbox_url,
        patient,
        refill_fills=[{"day": 0}, {"day": 28}],
        duplicate_callbacks=True,
        **FAST,
    )
    rx_id = await enroll(sandbox_url, enrollment(patient))
    found = events(await history(sandbox_url, sink, patient, rx_id))
    assert [day_of(e) for e in found] == [0, 0, 28, 28]
    assert found[0].event_id == found[1].event_id != found[2].event_id == found[3].event_id
    assert found[0].data["dispense_id"] == found[1].data["dispense_id"]


async def test_out_of_order_swaps_each_pair_and_keeps_the_true_times(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, refill_cycles=5, out_of_order=True, **FAST)
    rx_id = await enroll(sandbox_url, enrollment(patient))
    found = events(await history(sandbox_url, sink, patient, rx_id))
    assert [day_of(e) for e in found] == [28, 0, 84, 56, 112]
    assert [(e.occurred_at.date() - STARTS_ON).days for e in found] == [28, 0, 84, 56, 112]


async def test_a_replayed_enrollment_scripts_nothing_more(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, refill_cycles=3, **FAST)
    same = enrollment(patient)
    first = await enroll(sandbox_url, same)
    again = await enroll(sandbox_url, same)
    assert again == first
    assert days_of(await history(sandbox_url, sink, patient, first)) == [0, 28, 56]
    [row] = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    assert row["attempts"] == 2


VALID = {
    "journey_ref": "journey-x",
    "program": "demo",
    "medication": {"ndc": NDC},
    "days_supply": 28,
    "starts_on": "2025-01-06",
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"patient_ref": None}, "patient_ref"),
        ({"patient_ref": ""}, "patient_ref"),
        ({"medication": None}, "medication.ndc"),
        ({"medication": {"ndc": ""}}, "medication.ndc"),
        ({"medication": {"ndc": 2}}, "medication.ndc"),
        ({"days_supply": None}, "days_supply"),
        ({"days_supply": 0}, "days_supply"),
        ({"days_supply": 366}, "days_supply"),
        ({"days_supply": "28"}, "days_supply"),
        ({"days_supply": True}, "days_supply"),
        ({"starts_on": None}, "starts_on"),
        ({"starts_on": "2025-02-30"}, "starts_on"),
        ({"starts_on": "20250106"}, "starts_on"),
        ({"starts_on": "2025-01-06T00:00:00Z"}, "starts_on"),
        ({"starts_on": 20250106}, "starts_on"),
    ],
)
async def test_an_invalid_enrollment_names_the_field_and_scripts_nothing(
    sandbox_url: str, patient: str, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**VALID, "patient_ref": patient, **change}.items() if v is not None}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{sandbox_url}/pharmacy/refill-enrollments", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"] == field
    await settled(sandbox_url, patient)
    assert await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient) == []


async def test_a_body_that_is_not_json_is_refused(sandbox_url: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{sandbox_url}/pharmacy/refill-enrollments",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


@pytest.mark.parametrize(
    "bad",
    [
        {"refill_history": "sometimes"},
        {"refill_cycles": 0},
        {"refill_late_days": 0},
        {"refill_day_seconds": -1},
        {"switch_to_group": "Not A Group"},
        {"switch_to_ndc": ""},
        {"refill_fills": [{"day": -1}]},
        {"refill_fills": [{"day": 0, "status": "in-progress"}]},
        {"refill_fills": [{"day": 0, "days_supply": 0}]},
        {"refill_fills": [{"day": 0, "drug_groups": []}]},
        {"refill_fills": [{"day": 0, "when": "later"}]},
        {"refill_fills": [{"day": 0, "corrects": 0}]},  # not an earlier fill
        {"refill_fills": [{"day": 0}, {"day": 5, "corrects": 2}]},
        {"refill_fills": [{"day": 10}, {"day": 5}]},  # not in order of day
    ],
)
async def test_refill_scenario_fields_are_checked(
    sandbox_url: str, patient: str, bad: dict[str, Any]
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.put(f"{sandbox_url}/_sandbox/scenarios/{patient}", json=bad)
    assert response.status_code == 422, bad


async def test_refill_scenario_defaults(sandbox_url: str, patient: str) -> None:
    shown = await put_scenario(sandbox_url, patient)
    assert {k: v for k, v in shown.items() if k.startswith(("refill_", "switch_to"))} == {
        "refill_history": "on_time",
        "refill_fills": None,
        "refill_cycles": 12,
        "refill_late_days": 10,
        "refill_too_soon_days": 5,
        "refill_day_seconds": 1.0,
        "switch_to_group": "switched-drug",
        "switch_to_ndc": "99999-0002-01",
    }
