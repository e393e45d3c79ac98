"""A pended PA on which the payer asks for more: PAS info request, Claim Update, decision.

Everything through the sandbox's HTTP API and the callback sink, as the platform sees it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from adapters import payer
from adapters.errors import PartnerRejected
from adapters.payer import PayerClient
from domain.partner_actions import PA_INFO_REQUESTED, PriorAuthSubmitRequest
from domain.partners import PriorAuthRequest
from tests.sandbox.harness import Sink, containing, get_json, put_scenario, settled

FHIR = {"Content-Type": "application/fhir+json"}
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"


def req(patient: str, **extra: Any) -> dict[str, Any]:
    return {
        "journey_ref": f"journey-{patient}",
        "patient_ref": patient,
        "program": "demo",
        "idempotency_key": f"wf/{uuid.uuid4().hex[:8]}",
        "drug_code": "1",
        **extra,
    }


def to_payer(pa_number: str) -> Any:
    return lambda r: r.path == "/v1/webhooks/payer" and pa_number.encode() in r.body


async def submit(client: PayerClient, patient: str, **extra: Any) -> Any:
    return await client.submit_prior_auth(PriorAuthSubmitRequest(**req(patient, **extra)))


@pytest.mark.parametrize(
    ("scenario", "outcome", "code"),
    [("pend_info_approve", "approved", "A1"), ("pend_info_deny", "denied", "A3")],
)
async def test_info_request_then_update_then_decision(
    sandbox_url: str, sink: Sink, patient: str, scenario: str, outcome: str, code: str
) -> None:
    await put_scenario(sandbox_url, patient, pa=scenario, pend_seconds=0.05)
    async with httpx.AsyncClient() as http:
        client = PayerClient(sandbox_url, http=http)
        first = await submit(client, patient)
        assert (first.outcome, first.review_action_code) == ("pended", "A4")

        # the info request: a notification with the pended ClaimResponse asking for documents
        [hit] = await sink.wait_for(to_payer(first.pa_number))
        note = json.loads(hit.body)
        response = note["entry"][1]["resource"]
        cr = response["entry"][0]["resource"]
        assert cr["resourceType"] == "ClaimResponse"
        assert cr["preAuthRef"] == first.pa_number
        review = cr["item"][0]["adjudication"][0]["extension"][0]["extension"][1]
        assert review["valueCodeableConcept"]["coding"][0]["code"] == "A4"
        urls = [ref["reference"] for ref in cr["communicationRequest"]]
        asked = {e["fullUrl"]: e["resource"] for e in response["entry"][1:] if e["fullUrl"] in urls}
        assert [r["resourceType"] for r in asked.values()] == ["CommunicationRequest"] * 2
        assert all(
            PAS + "profile-communicationrequest" in r["meta"]["profile"] for r in asked.values()
        )
        [event] = payer.parse_notification(hit.body)
        assert event.type == PA_INFO_REQUESTED
        assert event.event_id == note["id"]
        assert event.correlation_key == first.pa_number
        assert event.journey_ref == f"journey-{patient}"
        assert event.data == {
            "outcome": "info_requested",
            "review_action_code": "A4",
            "pa_number": first.pa_number,
            "appeal": False,
            "requested": ["11506-3", "11502-2"],
        }

        # no decision while the payer waits for the documents
        await asyncio.sleep(0.2)
        assert len(sink.matching(to_payer(first.pa_number))) == 1

        # the update (PAS Claim Update) with what was asked for: same PA, pended again
        again = await submit(
            client,
            patient,
            update_of=first.pa_number,
            supporting_info=event.data["requested"],
        )
        assert (again.pa_number, again.outcome, again.review_action_code) == (
            first.pa_number,
            "pended",
            "A4",
        )

    hits = await sink.wait_for(to_payer(first.pa_number), count=2)
    [decided] = payer.parse_notification(hits[1].body)
    decided_cr = json.loads(hits[1].body)["entry"][1]["resource"]["entry"][0]["resource"]
    period = decided_cr.get("preAuthPeriod")
    assert (period is not None) == (outcome == "approved")
    assert decided.type == "pa.decided"
    assert decided.correlation_key == first.pa_number
    assert decided.journey_ref == f"journey-{patient}"
    assert decided.data == {
        "outcome": outcome,
        "review_action_code": code,
        "pa_number": first.pa_number,
        "appeal": False,
        "expires_on": period["end"] if period else None,  # approved: the default 180 days on
    }
    assert decided.event_id != event.event_id

    rows = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert [r["operation"] for r in rows] == ["pas_submit", "pas_update"]
    assert rows[0]["summary"]["info_requested"] == ["11506-3", "11502-2"]
    assert rows[1]["summary"]["update_of"] == first.pa_number
    assert rows[1]["summary"]["final_review_action_code"] == code
    records = await get_json(sandbox_url, "/_sandbox/callbacks", patient_ref=patient)
    assert [r["type"] for r in records] == [PA_INFO_REQUESTED, "pa.decided"]
    assert all(r["delivered"] for r in records)


async def test_scenario_chooses_the_codes_asked_for(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, pa="pend_info_approve", pend_seconds=0.02, pa_info_codes=["18748-4"]
    )
    async with httpx.AsyncClient() as http:
        first = await submit(PayerClient(sandbox_url, http=http), patient)
    [hit] = await sink.wait_for(to_payer(first.pa_number))
    [event] = payer.parse_notification(hit.body)
    assert event.data["requested"] == ["18748-4"]


@pytest.mark.parametrize(
    "fields",
    [{"pa_info_codes": []}, {"pa_info_codes": ["progress note"]}, {"pa_info_codes": ["1-23"]}],
)
async def test_bad_info_codes_are_refused(
    sandbox_url: str, patient: str, fields: dict[str, Any]
) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.put(f"{sandbox_url}/_sandbox/scenarios/{patient}", json=fields)
    assert response.status_code == 422


async def test_a_second_update_schedules_nothing_more(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="pend_info_approve", pend_seconds=0.2)
    async with httpx.AsyncClient() as http:
        client = PayerClient(sandbox_url, http=http)
        first = await submit(client, patient)
        await sink.wait_for(to_payer(first.pa_number))
        update = PriorAuthSubmitRequest(**req(patient, update_of=first.pa_number))
        one = await client.submit_prior_auth(update)
        replay = await client.submit_prior_auth(update)  # same key: the stored answer
        other = await submit(client, patient, update_of=first.pa_number)  # a new key
        assert one == replay == other
        assert other.outcome == "pended"
        await sink.wait_for(to_payer(first.pa_number), count=2)
        await settled(sandbox_url, patient)
        assert len(sink.matching(to_payer(first.pa_number))) == 2
        # decided: no more updates (PAS: after a denial, a new request)
        with pytest.raises(PartnerRejected) as info:
            await submit(client, patient, update_of=first.pa_number)
    assert info.value.status == 400
    assert info.value.code == "payer.invalid_request"
    assert "business-rule (pa-not-pended)" in info.value.detail
    rows = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert [r["operation"] for r in rows] == ["pas_submit", *["pas_update"] * 3]
    assert [r["summary"].get("final_review_action_code") for r in rows[1:3]] == ["A1", None]


async def test_update_of_a_plain_pend_keeps_its_one_decision(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(sandbox_url, patient, pa="pend_deny", pend_seconds=0.2)
    async with httpx.AsyncClient() as http:
        client = PayerClient(sandbox_url, http=http)
        first = await client.submit_prior_auth(PriorAuthRequest(**req(patient)))
        again = await submit(client, patient, update_of=first.pa_number)
    assert (again.pa_number, again.outcome) == (first.pa_number, "pended")
    [hit] = await sink.wait_for(to_payer(first.pa_number))
    [event] = payer.parse_notification(hit.body)
    assert (event.type, event.data["outcome"]) == ("pa.decided", "denied")
    await settled(sandbox_url, patient)
    assert len(sink.matching(to_payer(first.pa_number))) == 1


async def test_update_of_an_unknown_or_other_patients_pa_is_rejected(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    other = patient + "-other"
    await put_scenario(sandbox_url, other, pa="pend_info_approve", pend_seconds=30)
    async with httpx.AsyncClient() as http:
        client = PayerClient(sandbox_url, http=http)
        theirs = await submit(client, other)
        for pa_number in ("PA-NOPE", theirs.pa_number):
            with pytest.raises(PartnerRejected) as info:
                await submit(client, patient, update_of=pa_number)
            assert info.value.status == 400
            assert "not-found (unknown-pa-number)" in info.value.detail
            assert patient not in str(info.value)
    rows = await get_json(sandbox_url, "/_sandbox/received", service="payer", patient_ref=patient)
    assert [r["summary"]["rejected"] for r in rows] == [400, 400]


async def test_update_found_through_the_included_prior_claim(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    """related.claim as a plain reference: the prior Claim in the Bundle names the PA."""
    await put_scenario(sandbox_url, patient, pa="pend_info_deny", pend_seconds=0.02)
    async with httpx.AsyncClient() as http:
        first = await submit(PayerClient(sandbox_url, http=http), patient)
        await sink.wait_for(to_payer(first.pa_number))
        bundle = payer.build_pas_bundle(
            PriorAuthSubmitRequest(**req(patient, update_of=first.pa_number))
        ).model_dump(mode="json")
        claim = bundle["entry"][0]["resource"]
        del claim["related"][0]["claim"]["identifier"]
        answer = await http.post(
            f"{sandbox_url}/fhir/Claim/$submit", content=json.dumps(bundle), headers=FHIR
        )
        assert answer.status_code == 200
        assert payer.parse_pas_response(answer.json()).pa_number == first.pa_number

        # a Claim Update naming no PA at all
        bundle["entry"][1]["resource"]["identifier"] = []
        bad = await http.post(
            f"{sandbox_url}/fhir/Claim/$submit", content=json.dumps(bundle), headers=FHIR
        )
    assert bad.status_code == 400
    issue = bad.json()["issue"][0]
    assert (issue["code"], issue["details"]["coding"][0]["code"]) == (
        "required",
        "missing-related-claim",
    )
    await sink.wait_for(to_payer(first.pa_number), count=2)


async def test_duplicate_info_requests_carry_one_event_id(
    sandbox_url: str, sink: Sink, patient: str
) -> None:
    await put_scenario(
        sandbox_url, patient, pa="pend_info_approve", pend_seconds=0.02, duplicate_callbacks=True
    )
    async with httpx.AsyncClient() as http:
        first = await submit(PayerClient(sandbox_url, http=http), patient)
    hits = await sink.wait_for(containing(first.pa_number), count=2)
    events = [payer.parse_notification(h.body)[0] for h in hits]
    assert {e.event_id for e in events} == {events[0].event_id}
    assert {e.type for e in events} == {PA_INFO_REQUESTED}
