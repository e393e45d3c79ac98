"""PAS request for additional information and Claim Update: parser, builder, registry."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from adapters import payer
from adapters.errors import CallbackInvalid
from domain.actions import PartnerCall
from domain.events import declared_event_types
from domain.partner_actions import (
    PA_INFO_REQUESTED,
    PriorAuthSubmitRequest,
    RequestInvalid,
    action,
    build_request,
    callback_events,
)
from domain.template_loader import load_template

STANDARDS = Path(__file__).resolve().parents[1] / "fixtures" / "standards" / "pas"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
FREE_TEXT = "Please send the chart of JOE SMITH, DOB 1970-01-01"

# Da Vinci PAS 2.2.1 `CommunicationRequest-CommunicationRequestExample.json` (CC0), as in
# ../shared/data/standards/pas/other/, without its narrative.
OFFICIAL_COMMUNICATION_REQUEST: dict[str, Any] = {
    "resourceType": "CommunicationRequest",
    "id": "CommunicationRequestExample",
    "meta": {"profile": [PAS + "profile-communicationrequest"]},
    "language": "en",
    "extension": [{"url": PAS + "extension-serviceLineNumber", "valuePositiveInt": 1}],
    "identifier": [{"system": "http://example.org/CRD-ID", "value": "12345678901"}],
    "status": "active",
    "category": [
        {
            "coding": [
                {
                    "system": "https://codesystem.x12.org/005010/755",
                    "code": "15",
                    "display": "Justification for Admissions",
                }
            ]
        }
    ],
    "payload": [
        {
            "extension": [
                {
                    "url": PAS + "extension-communicatedDiagnosis",
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "G89.4"}]
                    },
                },
                {
                    "url": PAS + "extension-contentModifier",
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://loinc.org", "code": "18804-5"}]
                    },
                },
            ],
            "contentString": "18776-5",
        }
    ],
}


def load(path: str) -> Any:
    return json.loads((STANDARDS / path).read_text(encoding="utf-8"))


def notification(
    *requests: dict[str, Any],
    refs: list[str] | None = None,
    response: str = "response/Bundle-ReferralPendingAuthorizationResponseBundleExample.json",
) -> dict[str, Any]:
    """The official subscription notification carrying the official pended response, whose
    ClaimResponse asks for ``requests`` (added to the response Bundle)."""
    pended = load(response)
    cr = pended["entry"][0]["resource"]
    urls = [f"http://example.org/fhir/CommunicationRequest/{r['id']}" for r in requests]
    cr["communicationRequest"] = [{"reference": u} for u in (urls if refs is None else refs)]
    pended["entry"].extend(
        {"fullUrl": url, "resource": r} for url, r in zip(urls, requests, strict=True)
    )
    note = load("other/Bundle-PASSubscriptionNotification.json")
    note["entry"][1]["resource"] = pended
    return dict(note)


def comreq(rid: str, *, content: str | None = None, category: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "CommunicationRequest", "id": rid}
    resource["status"] = "active"
    if content is not None:
        resource["payload"] = [{"contentString": content}]
    if category is not None:
        resource["category"] = [
            {"coding": [{"system": "https://codesystem.x12.org/005010/755", "code": category}]}
        ]
    return resource


# --------------------------------------------------------------------------- parsing


def test_official_pended_response_asking_with_the_official_communication_request() -> None:
    [event] = payer.parse_notification(notification(OFFICIAL_COMMUNICATION_REQUEST))
    assert event.type == PA_INFO_REQUESTED
    assert event.event_id == "PASSubscriptionNotification"
    assert event.correlation_key == "PEND0001"
    assert event.data == {
        "outcome": "info_requested",
        "review_action_code": "A4",
        "pa_number": "PEND0001",
        "appeal": False,
        "requested": ["18776-5"],  # the LOINC payload; the X12 755 category is the fallback
    }


def test_references_resolve_by_type_and_id_and_contained() -> None:
    note = notification(comreq("a", content="11506-3"), refs=["CommunicationRequest/a"])
    assert payer.parse_notification(note)[0].data["requested"] == ["11506-3"]

    note = notification(refs=["#c1"])
    cr = note["entry"][1]["resource"]["entry"][0]["resource"]
    cr["contained"] = [comreq("c1", content="11502-2"), comreq("c2", content="18748-4")]
    cr["communicationRequest"].append({"reference": "#c2"})
    assert payer.parse_notification(note)[0].data["requested"] == ["11502-2", "18748-4"]


def test_codes_only_never_the_payers_text() -> None:
    note = notification(
        comreq("a", content=FREE_TEXT, category="09"),  # text: its PWK01 report type
        comreq("b", content=" 11506-3 "),
        comreq("c", content="11506-3"),  # asked twice: listed once
        comreq("d", category="bad code!"),  # not an X12 755 code
        comreq("e", content="11502-2", category="LA"),  # LOINC wins over the category
    )
    note_text = json.dumps(note)
    with pytest.raises(CallbackInvalid) as info:
        payer.parse_notification(note_text)
    assert "communicationRequest[3]" in str(info.value)
    assert FREE_TEXT not in str(info.value) and "bad code" not in str(info.value)

    cr = note["entry"][1]["resource"]["entry"][0]["resource"]
    del cr["communicationRequest"][3]  # d
    [event] = payer.parse_notification(note)
    assert event.data["requested"] == ["PWK01:09", "11506-3", "11502-2"]
    assert FREE_TEXT not in json.dumps(event.model_dump(mode="json"))


@pytest.mark.parametrize(
    ("refs", "requests", "where"),
    [
        (["http://example.org/fhir/CommunicationRequest/nope"], (), "[0] does not resolve"),
        (["Patient/SubscriberExample"], (), "[0] does not resolve"),  # not a CommunicationRequest
        (None, (comreq("a", content=FREE_TEXT),), "[0] names no LOINC"),
        (None, (comreq("a", content="11506-3"), comreq("b")), "[1] names no LOINC"),
    ],
)
def test_invalid_info_requests(
    refs: list[str] | None, requests: tuple[dict[str, Any], ...], where: str
) -> None:
    with pytest.raises(CallbackInvalid) as info:
        payer.parse_notification(notification(*requests, refs=refs))
    message = str(info.value)
    assert message.startswith("PAS notification: ClaimResponse.communicationRequest")
    assert where in message
    assert FREE_TEXT not in message


def test_an_identifier_only_reference_does_not_resolve() -> None:
    note = notification()
    cr = note["entry"][1]["resource"]["entry"][0]["resource"]
    cr["communicationRequest"] = [{"identifier": {"system": "urn:x", "value": "1"}}]
    with pytest.raises(CallbackInvalid, match=r"communicationRequest\[0\] does not resolve"):
        payer.parse_notification(note)


def test_a_withdrawn_request_asks_nothing() -> None:
    withdrawn = comreq("a", content="11506-3")
    withdrawn["status"] = "revoked"
    assert payer.parse_notification(notification(withdrawn)) == []


def test_a_decision_with_a_communication_request_is_just_the_decision() -> None:
    note = notification(
        comreq("a", content="11506-3"),
        response="response/Bundle-ReferralAuthorizationResponseBundleExample.json",
    )
    [event] = payer.parse_notification(note)
    assert event.type == "pa.decided"
    assert event.data == {
        "outcome": "approved",
        "review_action_code": "A1",
        "pa_number": "AUTH0001",
        "appeal": False,
        "expires_on": None,  # the official example carries no preAuthPeriod
    }


def test_requested_info_of_a_response_without_requests_is_empty() -> None:
    bundle = Bundle.model_validate(
        load("response/Bundle-ReferralPendingAuthorizationResponseBundleExample.json")
    )
    [cr] = payer._claim_responses(bundle)
    assert payer.requested_info(cr, {}) == []


# --------------------------------------------------------------------------- building


def base(**extra: Any) -> dict[str, Any]:
    return {
        "journey_ref": "wf-1",
        "patient_ref": "pt-1",
        "program": "demo",
        "idempotency_key": "wf-1/pa_resubmit/1",
        "drug_code": "0002-8215-01",
        **extra,
    }


def test_claim_update_bundle() -> None:
    req = PriorAuthSubmitRequest(
        **base(update_of="PA123", supporting_info=["11506-3", "11502-2", "11506-3"])
    )
    bundle = payer.build_pas_bundle(req).model_dump(mode="json")
    assert Bundle.model_validate(bundle)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["Claim", "Claim", "Patient", "Coverage"]  # the update first
    claim, prior = bundle["entry"][0]["resource"], bundle["entry"][1]["resource"]
    assert claim["meta"]["profile"] == [PAS + "profile-claim-update"]
    [related] = claim["related"]
    assert related["claim"]["reference"] == bundle["entry"][1]["fullUrl"]
    assert related["claim"]["identifier"] == {"system": "urn:pitwall:pa-number", "value": "PA123"}
    assert related["relationship"]["coding"][0]["code"] == "prior"
    assert {"system": "urn:pitwall:journey-ref", "value": "wf-1"} in claim["identifier"]
    assert prior["identifier"] == [{"system": "urn:pitwall:pa-number", "value": "PA123"}]
    assert "related" not in prior and "meta" not in prior and "supportingInfo" not in prior
    assert claim["item"] == prior["item"]
    certification = claim["item"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]
    assert certification["code"] == "I"
    assert [
        (
            s["sequence"],
            s["category"]["coding"][0]["code"],
            s["code"]["coding"][0],
            s["extension"],
            s["valueReference"]["identifier"]["value"],
        )
        for s in claim["supportingInfo"]
    ] == [
        (
            n,
            "additionalInformation",
            {"system": "http://loinc.org", "code": code},
            [{"url": PAS + "extension-infoChanged", "valueCode": "added"}],
            f"PA123/{code}",
        )
        for n, code in [(1, "11506-3"), (2, "11502-2")]
    ]


def test_initial_and_appeal_bundles_are_unchanged_by_the_new_fields() -> None:
    plain = payer.build_pas_bundle(PriorAuthSubmitRequest(**base())).model_dump(mode="json")
    legacy = payer.build_pas_bundle(payer.PriorAuthRequest(**base())).model_dump(mode="json")
    for bundle in (plain, legacy):
        claim = bundle["entry"][0]["resource"]
        assert len(bundle["entry"]) == 3
        assert not {"meta", "related", "supportingInfo"} & set(claim)
    plain_claim, legacy_claim = plain["entry"][0]["resource"], legacy["entry"][0]["resource"]
    assert {k: v for k, v in plain_claim.items() if k != "created"} == {
        k: v for k, v in legacy_claim.items() if k != "created"
    }
    appeal = payer.build_pas_bundle(PriorAuthSubmitRequest(**base(appeal_of="PA9")))
    claim = appeal.model_dump(mode="json")["entry"][0]["resource"]
    assert claim["related"][0]["claim"] == {
        "identifier": {"system": "urn:pitwall:pa-number", "value": "PA9"}
    }
    assert "meta" not in claim


@pytest.mark.parametrize(
    "extra",
    [
        {"update_of": "PA1", "appeal_of": "PA2"},
        {"supporting_info": ["11506-3"]},
        {"update_of": "PA1", "supporting_info": ["progress note"]},
        {"update_of": ""},
        {"update_of": "PA1", "supporting_info": ["11506-3"] * 21},
    ],
)
def test_invalid_update_requests(extra: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        PriorAuthSubmitRequest(**base(**extra))


def test_an_invalid_update_call_names_fields_not_values() -> None:
    call = PartnerCall(
        action="payer.submit_prior_auth",
        journey_ref="wf-1",
        patient_ref="pt-1",
        program="demo",
        idempotency_key="wf-1/pa_resubmit/1",
        step_id="pa_resubmit",
        fields={"drug_code": "1", "update_of": "PA1", "supporting_info": [FREE_TEXT]},
    )
    with pytest.raises(RequestInvalid) as info:
        build_request(call)
    assert "supporting_info" in str(info.value)
    assert FREE_TEXT not in str(info.value)
    call.fields["supporting_info"] = ["11506-3"]
    built = build_request(call)
    assert isinstance(built, PriorAuthSubmitRequest) and built.update_of == "PA1"


# --------------------------------------------------------------------------- registry


def test_info_request_is_declared_for_templates() -> None:
    spec = action("payer.submit_prior_auth")
    assert spec.request is PriorAuthSubmitRequest
    assert spec.events == ("pa.decided", PA_INFO_REQUESTED)
    assert {"update_of": False, "supporting_info": False}.items() <= spec.inputs().items()
    assert callback_events()[PA_INFO_REQUESTED] == "payer"
    assert PA_INFO_REQUESTED in declared_event_types()
    assert action("payer.submit_appeal").events == ("pa.decided",)


def test_a_template_may_wait_for_the_info_request_and_update(tmp_path: Path) -> None:
    path = tmp_path / "pa_info.yaml"
    path.write_text(
        """\
id: pa_info
version: 1
parameters:
  drug_code: "99999-0001-01"
steps:
  - id: pa_submit
    kind: partner_action
    action: payer.submit_prior_auth
  - id: pa_decision
    kind: wait_for_event
    event: [pa.decided, pa.info_requested]
    correlation: steps.pa_submit.pa_number
    timeout: 10d
    on_timeout: done
  - id: pa_decided
    kind: branch
    cases:
      - when: events.pa_decision.type == 'pa.info_requested'
        goto: pa_resubmit
    default: done
  - id: pa_resubmit
    kind: partner_action
    action: payer.submit_prior_auth
    inputs:
      update_of: steps.pa_submit.pa_number
      supporting_info: events.pa_decision.requested
    next: pa_decision
  - id: done
    kind: exit
""",
        encoding="utf-8",
    )
    template = load_template(path)
    assert template.step("pa_resubmit").kind == "partner_action"


def test_notification_input_is_not_mutated() -> None:
    note = notification(comreq("a", content="11506-3"))
    before = copy.deepcopy(note)
    payer.parse_notification(note)
    assert note == before
