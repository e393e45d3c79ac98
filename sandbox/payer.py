"""The simulated payer: FHIR R4B CoverageEligibility and Da Vinci PAS Claim/$submit."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from pydantic import ValidationError

from sandbox.scenario import Scenario
from sandbox.state import iso, utcnow

FHIR_JSON = "application/fhir+json"
PATIENT_SYSTEM = "urn:pitwall:patient-ref"
JOURNEY_SYSTEM = "urn:pitwall:journey-ref"
PA_NUMBER_SYSTEM = "urn:pitwall:pa-number"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
REVIEW_ACTION_URL = PAS + "extension-reviewAction"
REVIEW_ACTION_CODE_URL = PAS + "extension-reviewActionCode"
CERTIFICATION_TYPE_URL = PAS + "extension-certificationType"
CLAIM_UPDATE_PROFILE = PAS + "profile-claim-update"
COMMUNICATION_REQUEST_PROFILE = PAS + "profile-communicationrequest"
SERVICE_LINE_NUMBER_URL = PAS + "extension-serviceLineNumber"
X12_306 = "https://codesystem.x12.org/005010/306"
REVIEW_DISPLAY = {"A1": "Certified in total", "A3": "Not Certified", "A4": "Pending"}
PAS_TOPIC = "http://hl7.org/fhir/us/davinci-pas/SubscriptionTopic/PASSubscriptionTopic"
# How long an approval is valid unless told (`Scenario.pa_valid_days`'s default).
PA_VALID_DAYS: int = Scenario.model_fields["pa_valid_days"].default


class FhirReject(Exception):
    """Answer 4xx with an OperationOutcome."""

    def __init__(self, status: int, code: str, detail_code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.outcome = operation_outcome(code, detail_code, diagnostics)


def operation_outcome(code: str, detail_code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": code,
                "details": {
                    "coding": [{"system": "urn:pitwall-sandbox:error", "code": detail_code}]
                },
                "diagnostics": diagnostics,
            }
        ],
    }


def _load(body: bytes, resource_type: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FhirReject(400, "structure", "not-json", "body is not JSON") from exc
    if not isinstance(data, dict) or data.get("resourceType") != resource_type:
        raise FhirReject(400, "structure", "wrong-resource", f"expected a {resource_type}")
    return data


def _patient_from_reference(
    ref: dict[str, Any] | None, entries: dict[str, dict[str, Any]]
) -> str | None:
    if not ref:
        return None
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        return str(ident["value"])
    target = entries.get(str(ref.get("reference", "")))
    if target:
        for item in target.get("identifier") or []:
            if item.get("value"):
                return str(item["value"])
    return None


def _identifier(identifiers: list[dict[str, Any]] | None, system: str) -> str | None:
    for ident in identifiers or []:
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


# --------------------------------------------------------------------------- eligibility


def parse_eligibility(body: bytes) -> dict[str, Any]:
    data = _load(body, "CoverageEligibilityRequest")
    try:
        CoverageEligibilityRequest.model_validate(data)
    except ValidationError as exc:
        raise FhirReject(400, "structure", "invalid-resource", _summary(exc)) from exc
    contained = {f"#{c.get('id')}": c for c in data.get("contained") or []}
    patient_ref = _patient_from_reference(data.get("patient"), contained)
    if not patient_ref:
        raise FhirReject(400, "required", "missing-patient", "patient identifier is required")
    if not data.get("item"):
        raise FhirReject(400, "required", "missing-item", "item.productOrService is required")
    return {
        "resource": data,
        "patient_ref": patient_ref,
        "journey_ref": _identifier(data.get("identifier"), JOURNEY_SYSTEM),
    }


# Source of Payment Typology (PHDSC / NAHDO): the payer's kind, as X12 and FHIR carry it.
SOPT_SYSTEM = "https://nahdo.org/sopt"
SOPT_CODES = {
    "medicare": ("1", "MEDICARE"),
    "medicaid": ("2", "MEDICAID"),
    "commercial": ("5", "PRIVATE HEALTH INSURANCE"),
    "other": ("9", "MISCELLANEOUS"),
}


def eligibility_response(
    request: dict[str, Any],
    *,
    active: bool,
    pa_required: bool,
    out_of_pocket: float | None,
    plan_type: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "productOrService": request["item"][0].get("productOrService"),
        "authorizationRequired": pa_required,
    }
    if out_of_pocket is not None:
        item["benefit"] = [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/benefit-type",
                            "code": "copay",
                        }
                    ]
                },
                "allowedMoney": {"value": out_of_pocket, "currency": "USD"},
            }
        ]
    identifiers = request.get("identifier") or []
    coverage: dict[str, Any] = {
        "identifier": {
            "system": PATIENT_SYSTEM,
            "value": _patient_from_reference(request["patient"], {}) or "",
        }
    }
    contained: list[dict[str, Any]] = []
    if plan_type is not None:
        code, display = SOPT_CODES[plan_type]
        contained.append({
            "resourceType": "Coverage", "id": "coverage", "status": "active",
            "type": {"coding": [{"system": SOPT_SYSTEM, "code": code, "display": display}]},
            "beneficiary": request["patient"],
            "payor": [request.get("insurer") or {"display": "Sandbox Payer"}],
        })  # fmt: skip
        coverage = {"reference": "#coverage"}
    return {
        "resourceType": "CoverageEligibilityResponse",
        **({"contained": contained} if contained else {}),
        "identifier": identifiers,
        "status": "active",
        "purpose": request.get("purpose") or ["benefits"],
        "patient": request["patient"],
        "created": iso(),
        "request": {"identifier": identifiers[0]} if identifiers else {"display": "request"},
        "outcome": "complete",
        "insurer": request.get("insurer") or {"display": "Sandbox Payer"},
        "insurance": [
            {
                "coverage": coverage,
                "inforce": active,
                "item": [item],
            }
        ],
    }


# --------------------------------------------------------------------------- PAS


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        ".".join(str(p) for p in e.get("loc", ())) + f": {e.get('type')}" for e in exc.errors()[:5]
    )


def parse_pas_bundle(body: bytes) -> dict[str, Any]:
    data = _load(body, "Bundle")
    try:
        Bundle.model_validate(data)
    except ValidationError as exc:
        raise FhirReject(400, "structure", "invalid-bundle", _summary(exc)) from exc
    entries = data.get("entry") or []
    by_url: dict[str, dict[str, Any]] = {}
    claim: dict[str, Any] | None = None
    for entry in entries:
        resource = entry.get("resource") or {}
        if entry.get("fullUrl"):
            by_url[entry["fullUrl"]] = resource
        if resource.get("resourceType") and resource.get("id"):
            by_url[f"{resource['resourceType']}/{resource['id']}"] = resource
        if resource.get("resourceType") == "Claim" and claim is None:
            claim = resource
    if claim is None:
        raise FhirReject(400, "required", "missing-claim", "PAS request Bundle contains no Claim")
    try:
        Claim.model_validate(claim)
    except ValidationError as exc:
        raise FhirReject(400, "structure", "invalid-claim", _summary(exc)) from exc
    if claim.get("use") != "preauthorization":
        raise FhirReject(
            400, "invalid", "not-preauthorization", "Claim.use must be preauthorization"
        )
    patient_ref = _patient_from_reference(claim.get("patient"), by_url)
    if not patient_ref:
        for resource in by_url.values():
            if resource.get("resourceType") == "Coverage" and resource.get("subscriberId"):
                patient_ref = str(resource["subscriberId"])
                break
    if not patient_ref:
        raise FhirReject(400, "required", "missing-patient", "Claim patient has no identifier")
    # PAS Claim Update (profile-claim-update): related.claim → the Claim updated, by our
    # PA-number identifier or a reference to that Claim in the Bundle. Otherwise a related
    # claim is our appeal convention (related.claim.identifier = the PA number appealed).
    is_update = CLAIM_UPDATE_PROFILE in ((claim.get("meta") or {}).get("profile") or [])
    related_pa = None
    for related in claim.get("related") or []:
        target = related.get("claim") or {}
        ident = target.get("identifier") or {}
        if ident.get("value"):
            related_pa = str(ident["value"])
        elif is_update:
            prior = by_url.get(str(target.get("reference", ""))) or {}
            related_pa = _identifier(prior.get("identifier"), PA_NUMBER_SYSTEM) or related_pa
    if is_update and not related_pa:
        raise FhirReject(
            400, "required", "missing-related-claim", "Claim Update has no related.claim PA number"
        )
    appeal_of = None if is_update else related_pa
    update_of = related_pa if is_update else None
    certification = None
    for ext in (claim.get("item") or [{}])[0].get("extension") or []:
        if ext.get("url") == CERTIFICATION_TYPE_URL:
            certification = ext
    patient_resource = by_url.get(str((claim.get("patient") or {}).get("reference", "")))
    return {
        "claim": claim,
        "patient_ref": patient_ref,
        "journey_ref": _identifier(claim.get("identifier"), JOURNEY_SYSTEM),
        "appeal_of": appeal_of,
        "update_of": update_of,
        "certification": certification,
        "patient_resource": patient_resource,
    }


def communication_request(
    request_id: str, loinc: str, insurer: dict[str, Any] | None
) -> dict[str, Any]:
    """A PAS CommunicationRequest: the payer asks for one document (LOINC attachment code)."""
    resource: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "id": request_id,
        "meta": {"profile": [COMMUNICATION_REQUEST_PROFILE]},
        "identifier": [{"system": "urn:pitwall-sandbox:attachment-control", "value": request_id}],
        "status": "active",
        "payload": [
            {
                "extension": [{"url": SERVICE_LINE_NUMBER_URL, "valuePositiveInt": 1}],
                "contentString": loinc,
            }
        ],
    }
    if insurer:
        resource["requester"] = insurer
    return resource


def claim_response(
    parsed: dict[str, Any],
    pa_number: str,
    code: str,
    info_requests: list[str] | None = None,
    *,
    valid_days: int = PA_VALID_DAYS,
    today: date | None = None,
) -> dict[str, Any]:
    """The PAS ClaimResponse; ``info_requests`` (full URLs of CommunicationRequests in the
    same Bundle) make a pended one ask for additional information. An approval (A1)
    carries ``preAuthPeriod``: today (UTC, or the patient's stepped clock's) through
    today + ``valid_days``, as dates."""
    claim = parsed["claim"]
    item: dict[str, Any] = {
        "itemSequence": 1,
        "adjudication": [
            {
                "extension": [
                    {
                        "url": REVIEW_ACTION_URL,
                        "extension": [
                            {"url": "number", "valueString": pa_number},
                            {
                                "url": REVIEW_ACTION_CODE_URL,
                                "valueCodeableConcept": {
                                    "coding": [
                                        {
                                            "system": X12_306,
                                            "code": code,
                                            "display": REVIEW_DISPLAY.get(code, code),
                                        }
                                    ]
                                },
                            },
                        ],
                    }
                ],
                "category": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/adjudication",
                            "code": "submitted",
                        }
                    ]
                },
            }
        ],
    }
    if parsed.get("certification"):
        item["extension"] = [parsed["certification"]]
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "id": pa_number.lower(),
        "identifier": claim.get("identifier") or [],
        "status": "active",
        "type": claim.get("type"),
        "use": "preauthorization",
        "patient": claim.get("patient"),
        "created": iso(),
        "insurer": claim.get("insurer") or {"display": "Sandbox Payer"},
        "requestor": claim.get("provider"),
        "outcome": "complete",
        "preAuthRef": pa_number,
        "item": [item],
    }
    if info_requests:
        response["communicationRequest"] = [{"reference": url} for url in info_requests]
    if code == "A1":
        today = today or utcnow().date()
        end = today + timedelta(days=valid_days)
        response["preAuthPeriod"] = {"start": today.isoformat(), "end": end.isoformat()}
    return response


def response_bundle(
    parsed: dict[str, Any],
    pa_number: str,
    code: str,
    bundle_id: str,
    info_codes: list[str] | None = None,
    *,
    valid_days: int = PA_VALID_DAYS,
    today: date | None = None,
) -> dict[str, Any]:
    """The PAS response Bundle; ``info_codes`` (LOINC): the pended ClaimResponse asks for
    those documents, one CommunicationRequest each (PAS "request for additional info").
    ``valid_days``: an approval's length (`claim_response`), the scenario's
    ``pa_valid_days``."""
    requests = [
        (f"urn:uuid:{bundle_id}-comreq-{n}", f"{pa_number.lower()}-info-{n}", loinc)
        for n, loinc in enumerate(info_codes or [], start=1)
    ]
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": f"urn:uuid:{bundle_id}-cr",
            "resource": claim_response(
                parsed,
                pa_number,
                code,
                [url for url, _, _ in requests],
                valid_days=valid_days,
                today=today,
            ),
        }
    ]
    insurer = parsed["claim"].get("insurer")
    for url, request_id, loinc in requests:
        entries.append(
            {"fullUrl": url, "resource": communication_request(request_id, loinc, insurer)}
        )
    patient = parsed.get("patient_resource")
    claim_patient_ref = str((parsed["claim"].get("patient") or {}).get("reference", ""))
    if patient and claim_patient_ref:
        entries.append({"fullUrl": claim_patient_ref, "resource": patient})
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "type": "collection",
        "timestamp": iso(),
        "entry": entries,
    }


def notification_bundle(
    event_id: str, event_number: int, response: dict[str, Any]
) -> dict[str, Any]:
    """A PAS subscription notification (history Bundle) carrying the response Bundle."""
    now = iso()
    focus = f"urn:uuid:{response['id']}"
    return {
        "resourceType": "Bundle",
        "id": event_id,
        "type": "history",
        "timestamp": now,
        "entry": [
            {
                "fullUrl": f"urn:uuid:{event_id}-status",
                "resource": {
                    "resourceType": "Parameters",
                    "parameter": [
                        {
                            "name": "subscription",
                            "valueReference": {"reference": "Subscription/pitwall-pas"},
                        },
                        {"name": "topic", "valueCanonical": PAS_TOPIC},
                        {"name": "type", "valueCode": "event-notification"},
                        {
                            "name": "notification-event",
                            "part": [
                                {"name": "event-number", "valueString": str(event_number)},
                                {"name": "timestamp", "valueInstant": now},
                                {"name": "focus", "valueReference": {"reference": focus}},
                            ],
                        },
                    ],
                },
                "request": {"method": "GET", "url": "Subscription/pitwall-pas/$status"},
                "response": {"status": "200"},
            },
            {
                "fullUrl": focus,
                "resource": response,
                "request": {"method": "GET", "url": f"Bundle/{response['id']}"},
                "response": {"status": "200"},
            },
        ],
    }
