"""Pharmacy claim adjudication: NCPDP reject codes per referral, paid claims before fills."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from adapters import pharmacy
from adapters.pharmacy import PharmacyClient
from adapters.signatures import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_body
from domain import adherence
from domain.partners import PartnerEvent, PharmacyReferralRequest
from tests.sandbox.harness import (
    SECRET,
    Sink,
    SinkRequest,
    containing,
    get_json,
    put_scenario,
    settled,
)

FAST = {"fill_after_seconds": 0.0, "ship_after_seconds": 0.05, "deliver_after_seconds": 0.05}
PAID_CHAIN = [
    "pharmacy.claim_paid",
    "pharmacy.filled",
    "pharmacy.shipped",
    "pharmacy.delivered",
]


def referral(patient: str, key: str | None = None) -> PharmacyReferralRequest:
    return PharmacyReferralRequest(
        journey_ref=f"journey-{patient}",
        patient_ref=patient,
        program="demo",
        idempotency_key=key or f"wf/{uuid.uuid4().hex[:8]}",
        drug_code="00002-7510-01",
        days_supply=28,
    )


async def refer(base: str, *requests: PharmacyReferralRequest) -> list[str]:
    client = PharmacyClient(base)
    try:
        return [(await client.refer(r)).rx_id for r in requests]
    finally:
        await client.aclose()


async def callbacks_for(sink: Sink, rx_id: str, count: int) -> list[SinkRequest]:
    return await sink.wait_for(containing(rx_id), count)


async def only_rejection(
    sandbox_url: str, patient: str, sink: Sink, rx_id: str
) -> tuple[PartnerEvent, dict[str, object]]:
    """The one callback of a rejected claim; nothing else follows it (no fill, no ship)."""
    [hit] = await callbacks_for(sink, rx_id, 1)
    await settled(sandbox_url, patient)  # everything it planned for the patient is sent
    assert len(sink.matching(containing(rx_id))) == 1
    assert hit.path == "/v1/webhooks/pharmacy"
    assert verify_body(
        SECRET,
        hit.headers[TIMESTAMP_HEADER.lower()],
        hit.body,
        hit.headers[SIGNATURE_HEADER.lower()],
    )
    return pharmacy.parse_callback(hit.body), json.loads(hit.body)


async def test_pa_required_rejects_the_first_referral_and_pays_the_next(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["75"], **FAST)
    [first] = await refer(sandbox_url, referral(patient))
    event, body = await only_rejection(sandbox_url, patient, sink, first)
    assert body["type"] == "pharmacy.claim_rejected"
    assert body["transaction_response_status"] == "R"
    assert body["reject_count"] == 1
    assert body["reject_codes"] == ["75"]
    assert body["reject_messages"] == ["Prior Authorization Required"]
    assert "earliest_fill_date" not in body
    assert body["journey_ref"] == f"journey-{patient}" and body["patient_ref"] == patient
    assert event.type == "pharmacy.claim_rejected"
    assert event.correlation_key == first
    assert event.journey_ref == f"journey-{patient}"
    assert event.data == {
        "rx_id": first,
        "transaction_response_status": "R",
        "reject_codes": ["75"],
        "reject": "pa_required",
        "earliest_fill_date": None,
    }
    records = await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient)
    assert [r["type"] for r in records] == ["pharmacy.claim_rejected"]

    # Back through prior authorization, the journey refers again: this claim pays.
    [second] = await refer(sandbox_url, referral(patient))
    events = [pharmacy.parse_callback(h.body) for h in await callbacks_for(sink, second, 4)]
    assert [e.type for e in events] == PAID_CHAIN
    paid = events[0]
    assert paid.data["transaction_response_status"] == "P"
    assert str(paid.data["authorization_number"]).startswith("AUTH")
    assert events[3].data["is_fill"] is True
    assert paid.occurred_at <= events[1].occurred_at

    rows = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    claims = {r["summary"]["rx_id"]: r["summary"] for r in rows}
    assert claims[first]["claim"] == "rejected" and claims[first]["reject_code"] == "75"
    assert claims[second]["claim"] == "paid" and "reject_code" not in claims[second]


async def test_refill_too_soon_names_the_earliest_fill_date(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["79"], refill_too_soon_days=12, **FAST)
    before = datetime.now(UTC).date()
    [rx_id] = await refer(sandbox_url, referral(patient))
    after = datetime.now(UTC).date()
    event, body = await only_rejection(sandbox_url, patient, sink, rx_id)
    assert body["reject_messages"] == ["Refill Too Soon"]
    assert event.data["reject"] == "refill_too_soon"
    assert event.data["reject_codes"] == ["79"]
    earliest = event.data["earliest_fill_date"]
    assert earliest == (event.occurred_at.astimezone(UTC).date() + timedelta(days=12)).isoformat()
    assert earliest in {(d + timedelta(days=12)).isoformat() for d in (before, after)}


async def test_default_refill_too_soon_is_five_days(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["79"], **FAST)
    [rx_id] = await refer(sandbox_url, referral(patient))
    event, _ = await only_rejection(sandbox_url, patient, sink, rx_id)
    assert (
        event.data["earliest_fill_date"]
        == (event.occurred_at.astimezone(UTC).date() + timedelta(days=5)).isoformat()
    )


async def test_rejects_answered_in_order_then_claims_pay(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["70", "MR", "79"], **FAST)
    rx = await refer(sandbox_url, *(referral(patient) for _ in range(4)))
    not_covered, body = await only_rejection(sandbox_url, patient, sink, rx[0])
    assert not_covered.data["reject"] == "not_covered"
    assert body["reject_messages"] == ["Product/Service Not Covered"]
    other, body = await only_rejection(sandbox_url, patient, sink, rx[1])
    # A code we do not act on: kept, with no message of ours.
    assert other.data["reject"] == "other" and other.data["reject_codes"] == ["MR"]
    assert "reject_messages" not in body
    too_soon, _ = await only_rejection(sandbox_url, patient, sink, rx[2])
    assert too_soon.data["reject"] == "refill_too_soon"
    events = [pharmacy.parse_callback(h.body) for h in await callbacks_for(sink, rx[3], 4)]
    assert [e.type for e in events] == PAID_CHAIN


async def test_a_replayed_referral_adjudicates_nothing(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["75"], **FAST)
    same = referral(patient, key=f"wf/{uuid.uuid4().hex[:8]}")
    first, again = await refer(sandbox_url, same, same)
    assert first == again
    await only_rejection(sandbox_url, patient, sink, first)
    [row] = await get_json(
        sandbox_url, "/_sandbox/received", service="pharmacy", patient_ref=patient
    )
    assert row["attempts"] == 2
    [paid] = await refer(sandbox_url, referral(patient))
    assert [pharmacy.parse_callback(h.body).type for h in await callbacks_for(sink, paid, 4)] == (
        PAID_CHAIN
    )


async def test_put_starts_the_rejects_again(sandbox_url: str, sink: Sink, patient: str) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["75"], **FAST)
    [first] = await refer(sandbox_url, referral(patient))
    await only_rejection(sandbox_url, patient, sink, first)
    await put_scenario(sandbox_url, patient, claim_rejects=["75"], **FAST)
    [second] = await refer(sandbox_url, referral(patient))
    event, _ = await only_rejection(sandbox_url, patient, sink, second)
    assert event.data["reject"] == "pa_required"


async def test_duplicate_rejection_callbacks_share_an_event_id(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, claim_rejects=["70"], duplicate_callbacks=True, **FAST)
    [rx_id] = await refer(sandbox_url, referral(patient))
    hits = await callbacks_for(sink, rx_id, 2)
    events = [pharmacy.parse_callback(h.body) for h in hits]
    assert {e.type for e in events} == {"pharmacy.claim_rejected"}
    assert events[0].event_id == events[1].event_id


async def test_claim_scenario_fields_are_checked(sandbox_url: str, patient: str) -> None:
    async with httpx.AsyncClient() as client:
        url = f"{sandbox_url}/_sandbox/scenarios/{patient}"
        for bad in (
            {"claim_rejects": ["7x"]},
            {"claim_rejects": ["7500"]},
            {"claim_rejects": "75"},
            {"refill_too_soon_days": 0},
        ):
            assert (await client.put(url, json=bad)).status_code == 422, bad
        shown = (await client.put(url, json={"claim_rejects": ["75", "76"]})).json()
    assert shown["claim_rejects"] == ["75", "76"]
    assert shown["refill_too_soon_days"] == 5
    assert not [k for k in shown if k.startswith("_")]
    assert (await get_json(sandbox_url, f"/_sandbox/scenarios/{patient}")) == shown


async def test_the_delivered_dispense_names_its_drug_groups(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    """What the sandbox pharmacy reports, read by our adapter, is an adherence fill of the
    scenario's drug groups (a combination product: two); without them, the product's NDC."""
    await put_scenario(sandbox_url, patient, drug_groups=["tenofovir", "emtricitabine"], **FAST)
    [rx_id] = await refer(sandbox_url, referral(patient))
    hits = await callbacks_for(sink, rx_id, len(PAID_CHAIN))
    delivered = next(pharmacy.parse_callback(h.body) for h in hits
                     if b'"pharmacy.delivered"' in h.body)  # fmt: skip
    fill = adherence.fill_of(delivered.data)
    assert fill is not None and fill.days_supply == 28
    assert fill.drug_groups == frozenset({"tenofovir", "emtricitabine"})

    other = patient + "-plain"
    await put_scenario(sandbox_url, other, **FAST)
    [plain_rx] = await refer(sandbox_url, referral(other))
    plain = next(pharmacy.parse_callback(h.body)
                 for h in await callbacks_for(sink, plain_rx, len(PAID_CHAIN))
                 if b'"pharmacy.delivered"' in h.body)  # fmt: skip
    assert plain.data["drug_groups"] == ["http://hl7.org/fhir/sid/ndc|00002-7510-01"]
    assert b'"extension"' not in next(h.body for h in await callbacks_for(sink, plain_rx, 4)
                                      if b'"pharmacy.delivered"' in h.body)  # fmt: skip
