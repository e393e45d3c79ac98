"""Payer adapter: FHIR R4B benefits check and Da Vinci PAS prior authorization.

Wire conventions (the sandbox and any PAS payer see the same):

- Benefits: ``POST {base}/fhir/CoverageEligibilityRequest`` with a
  CoverageEligibilityRequest (purpose auth-requirements + benefits, the patient as a
  logical reference ``{system: urn:pitwall:patient-ref, value: patient_ref}``, the drug as
  an NDC ``item.productOrService``). The CoverageEligibilityResponse answers
  ``insurance.inforce`` (coverage active), ``insurance.item.authorizationRequired`` (PA
  required), a ``copay`` benefit's ``allowedMoney`` (out of pocket) and, when the payer
  says it, the plan type: ``insurance.coverage`` referencing a contained Coverage whose
  ``type`` is a Source of Payment Typology code (1 Medicare, 2 Medicaid, 5 / 6 private;
  `plan_type_of`). A payer that does not say leaves it to the patient's coverage on file.
- Prior auth: ``POST {base}/fhir/Claim/$submit`` with a PAS request Bundle (Claim,
  Patient, Coverage). ``Claim.identifier`` carries ``urn:pitwall:journey-ref`` (journey_ref)
  and ``urn:pitwall:idempotency-key``; the payer echoes Claim identifiers on its
  ClaimResponse, which is how callbacks find their journey.
- Appeal (PAS itself has no appeal operation; this is our convention): the same
  ``Claim/$submit`` with ``Claim.related[0].claim.identifier = {system:
  urn:pitwall:pa-number, value: <PA number appealed>}`` and relationship ``prior``, and the
  item's PAS ``extension-certificationType`` set to X12 1322 ``2`` (Appeal - Standard).
  The payer echoes the certification type on the ClaimResponse item, so a decision
  notification says whether it decided an appeal.
- Update of a pended PA (PAS Claim Update, e.g. after the payer asked for more:
  `PriorAuthSubmitRequest.update_of` = its PA number): the same ``Claim/$submit``, the
  Claim with ``meta.profile`` PAS ``profile-claim-update``, ``related[0]`` relationship
  ``prior`` whose ``claim`` references the prior Claim (included in the Bundle, after
  the update; its identifier the PA number) and names the PA number
  (``identifier {urn:pitwall:pa-number}``); each supplied document a
  ``supportingInfo`` ``additionalInformation`` entry (``code`` its LOINC, flagged PAS
  ``infoChanged = added``, ``valueReference.identifier`` ``urn:pitwall:attachment-ref``).
  The payer answers under the same PA number (``preAuthRef``), typically A4 again.
- Request for additional information (a notification): a ClaimResponse still A4 with
  ``communicationRequest`` → PAS CommunicationRequests in the Bundle, each asking for a
  LOINC attachment code (``payload.contentString``) or an X12 755 report type
  (``category``, PWK01) → ``pa.info_requested`` (`requested_info`).
- Decision: per item ``adjudication.extension[reviewAction].extension[reviewActionCode]``
  (X12 306): A1/A2/A6 approved, A3 denied, A4 pended, C (cancelled) denied. PA number:
  ``ClaimResponse.preAuthRef``, else the reviewAction ``number``, else the item's
  ``administrationReferenceNumber``, else the ClaimResponse identifier / id. An approval
  is valid through ``ClaimResponse.preAuthPeriod.end`` (`approval_expires_on`): the
  result's ``expires_on``, a ``pa.decided`` event's ``data.expires_on`` (ISO date).
- Errors: 4xx + OperationOutcome → `PartnerRejected` (code ``payer.invalid_request`` …,
  detail lists the OperationOutcome issue codes); 5xx → `PartnerUnavailable`; a
  ClaimResponse with ``outcome = error`` → `PartnerRejected` ``payer.pa_error`` with the
  X12 error codes.
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claimresponse import ClaimResponse
from fhir.resources.R4B.communicationrequest import CommunicationRequest
from fhir.resources.R4B.coverageeligibilityrequest import CoverageEligibilityRequest
from fhir.resources.R4B.coverageeligibilityresponse import CoverageEligibilityResponse
from fhir.resources.R4B.extension import Extension
from fhir.resources.R4B.operationoutcome import OperationOutcome
from pydantic import ValidationError

from adapters._common import load_json, now, parse_time, validation_summary
from adapters.errors import CallbackInvalid, PartnerRejected, PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp
from domain.partner_actions import PA_INFO_REQUESTED, PriorAuthSubmitRequest
from domain.partners import (
    BenefitsRequest,
    BenefitsResult,
    PaOutcome,
    PartnerEvent,
    PriorAuthRequest,
    PriorAuthResult,
)

PARTNER = "payer"
FHIR_JSON = "application/fhir+json"

JOURNEY_SYSTEM = "urn:pitwall:journey-ref"
PATIENT_SYSTEM = "urn:pitwall:patient-ref"
IDEMPOTENCY_SYSTEM = "urn:pitwall:idempotency-key"
PA_NUMBER_SYSTEM = "urn:pitwall:pa-number"
PAYER_SYSTEM = "urn:pitwall:payer-id"
PROGRAM_EXTENSION = "urn:pitwall:extension:program"
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"

PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
REVIEW_ACTION_URL = PAS + "extension-reviewAction"
REVIEW_ACTION_CODE_URL = PAS + "extension-reviewActionCode"
ADMIN_REFERENCE_URL = PAS + "extension-administrationReferenceNumber"
CERTIFICATION_TYPE_URL = PAS + "extension-certificationType"
CLAIM_UPDATE_PROFILE = PAS + "profile-claim-update"
INFO_CHANGED_URL = PAS + "extension-infoChanged"
SUPPORTING_INFO_TYPE = "http://hl7.org/fhir/us/davinci-pas/CodeSystem/PASSupportingInfoType"
ATTACHMENT_SYSTEM = "urn:pitwall:attachment-ref"
LOINC_SYSTEM = "http://loinc.org"
X12_755 = "https://codesystem.x12.org/005010/755"
RELATED_CLAIM = "http://terminology.hl7.org/CodeSystem/ex-relatedclaimrelationship"
X12_306 = "https://codesystem.x12.org/005010/306"
X12_1322 = "https://codesystem.x12.org/005010/1322"
APPEAL_CERTIFICATION_CODES = frozenset({"1", "2"})  # X12 1322: Appeal - Immediate / Standard
LOINC_CODE = re.compile(r"^[0-9]{1,7}-[0-9]$")
X12_755_CODE = re.compile(r"^[0-9A-Z]{2}$")

REVIEW_OUTCOMES: dict[str, PaOutcome] = {
    "A1": "approved",
    "A2": "approved",
    "A6": "approved",
    "A3": "denied",
    "C": "denied",
    "A4": "pended",
}


class PasErrorResponse(ValueError):
    """A ClaimResponse with outcome=error: the payer recorded no decision."""

    def __init__(self, codes: list[str]) -> None:
        self.codes = codes
        super().__init__(
            "ClaimResponse outcome=error; X12 error codes: " + (", ".join(codes) or "none")
        )


@dataclass(frozen=True)
class PasDecision:
    pa_number: str
    review_action_code: str
    outcome: PaOutcome
    journey_ref: str | None
    appeal: bool
    created: datetime | None
    expires_on: date | None = None


# --------------------------------------------------------------------------- building


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _our_identifiers(req: BenefitsRequest | PriorAuthRequest) -> list[dict[str, str]]:
    return [
        {"system": JOURNEY_SYSTEM, "value": req.journey_ref},
        {"system": IDEMPOTENCY_SYSTEM, "value": req.idempotency_key},
    ]


def build_eligibility_request(
    req: BenefitsRequest, *, payer_id: str = "SANDBOX-PAYER", provider_npi: str = "1234567893"
) -> CoverageEligibilityRequest:
    return CoverageEligibilityRequest.model_validate(
        {
            "resourceType": "CoverageEligibilityRequest",
            "extension": [{"url": PROGRAM_EXTENSION, "valueString": req.program}],
            "identifier": _our_identifiers(req),
            "status": "active",
            "purpose": ["auth-requirements", "benefits"],
            "patient": {"identifier": {"system": PATIENT_SYSTEM, "value": req.patient_ref}},
            "created": now().isoformat(),
            "provider": {"identifier": {"system": NPI_SYSTEM, "value": provider_npi}},
            "insurer": {"identifier": {"system": PAYER_SYSTEM, "value": payer_id}},
            "item": [{"productOrService": _coding(NDC_SYSTEM, req.drug_code)}],
        }
    )


def build_pas_bundle(
    req: PriorAuthRequest, *, payer_id: str = "SANDBOX-PAYER", provider_npi: str = "1234567893"
) -> Bundle:
    """A PAS request Bundle (Claim first, then Patient and Coverage)."""
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"pitwall:pas:{req.idempotency_key}")
    claim_url = f"urn:uuid:{uuid.uuid5(ns, 'claim')}"
    patient_url = f"urn:uuid:{uuid.uuid5(ns, 'patient')}"
    coverage_url = f"urn:uuid:{uuid.uuid5(ns, 'coverage')}"
    created = now().isoformat()
    certification = ("2", "Appeal - Standard") if req.appeal_of else ("I", "Initial")
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "extension": [{"url": PROGRAM_EXTENSION, "valueString": req.program}],
        "identifier": _our_identifiers(req),
        "status": "active",
        "type": _coding("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
        "use": "preauthorization",
        "patient": {"reference": patient_url},
        "created": created,
        "insurer": {"identifier": {"system": PAYER_SYSTEM, "value": payer_id}},
        "provider": {"identifier": {"system": NPI_SYSTEM, "value": provider_npi}},
        "priority": _coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": coverage_url}}],
        "item": [
            {
                "extension": [
                    {
                        "url": CERTIFICATION_TYPE_URL,
                        "valueCodeableConcept": _coding(X12_1322, *certification),
                    }
                ],
                "sequence": 1,
                "productOrService": _coding(NDC_SYSTEM, req.drug_code),
            }
        ],
    }
    if req.appeal_of:
        claim["related"] = [
            {
                "claim": {"identifier": {"system": PA_NUMBER_SYSTEM, "value": req.appeal_of}},
                "relationship": _coding(RELATED_CLAIM, "prior"),
            }
        ]
    prior: dict[str, Any] | None = None
    if isinstance(req, PriorAuthSubmitRequest) and req.update_of:
        update_of = req.update_of
        # PAS Claim Update: the Claim updated goes in the Bundle, related.claim points at it
        # (and names its PA number); items and supporting info are all repeated, new ones
        # flagged infoChanged=added.
        prior_url = f"urn:uuid:{uuid.uuid5(ns, 'prior-claim')}"
        prior = {
            "fullUrl": prior_url,
            "resource": {**claim, "identifier": [{"system": PA_NUMBER_SYSTEM, "value": update_of}]},
        }
        claim["meta"] = {"profile": [CLAIM_UPDATE_PROFILE]}
        claim["related"] = [
            {
                "claim": {
                    "reference": prior_url,
                    "identifier": {"system": PA_NUMBER_SYSTEM, "value": update_of},
                },
                "relationship": _coding(RELATED_CLAIM, "prior"),
            }
        ]
        if req.supporting_info:
            claim["supportingInfo"] = [
                {
                    "extension": [{"url": INFO_CHANGED_URL, "valueCode": "added"}],
                    "sequence": n,
                    "category": _coding(SUPPORTING_INFO_TYPE, "additionalInformation"),
                    "code": _coding(LOINC_SYSTEM, code),
                    "valueReference": {
                        "identifier": {"system": ATTACHMENT_SYSTEM, "value": f"{update_of}/{code}"}
                    },
                }
                for n, code in enumerate(dict.fromkeys(req.supporting_info), start=1)
            ]
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": PATIENT_SYSTEM, "value": req.patient_ref}],
    }
    coverage = {
        "resourceType": "Coverage",
        "status": "active",
        "subscriberId": req.patient_ref,
        "beneficiary": {"reference": patient_url},
        "payor": [{"identifier": {"system": PAYER_SYSTEM, "value": payer_id}}],
    }
    entries = [
        {"fullUrl": claim_url, "resource": claim},
        {"fullUrl": patient_url, "resource": patient},
        {"fullUrl": coverage_url, "resource": coverage},
    ]
    if prior is not None:
        entries.insert(1, prior)
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "identifier": {"system": IDEMPOTENCY_SYSTEM, "value": req.idempotency_key},
            "type": "collection",
            "timestamp": created,
            "entry": entries,
        }
    )


# --------------------------------------------------------------------------- reading


def _ext_value_code(ext: Extension) -> str | None:
    concept = ext.valueCodeableConcept
    if concept is not None and concept.coding:
        return concept.coding[0].code
    return None


def _review_action(cr: ClaimResponse) -> tuple[str, str | None, str | None]:
    """(review action code, reviewAction number, administrationReferenceNumber)."""
    admin_ref: str | None = None
    for item in cr.item or []:
        for ext in item.extension or []:
            if ext.url == ADMIN_REFERENCE_URL and ext.valueString:
                admin_ref = admin_ref or ext.valueString
        for adjudication in item.adjudication or []:
            for ext in adjudication.extension or []:
                if ext.url != REVIEW_ACTION_URL:
                    continue
                code: str | None = None
                number: str | None = None
                for sub in ext.extension or []:
                    if sub.url == REVIEW_ACTION_CODE_URL:
                        code = _ext_value_code(sub)
                    elif sub.url == "number" and sub.valueString:
                        number = sub.valueString
                if code:
                    return code, number, admin_ref
    raise ValueError("ClaimResponse has no item.adjudication reviewAction reviewActionCode")


def _is_appeal(cr: ClaimResponse) -> bool:
    for item in cr.item or []:
        for ext in item.extension or []:
            if (
                ext.url == CERTIFICATION_TYPE_URL
                and _ext_value_code(ext) in APPEAL_CERTIFICATION_CODES
            ):
                return True
    return False


def _identifier_value(identifiers: list[Any] | None, system: str) -> str | None:
    for ident in identifiers or []:
        if ident.system == system and ident.value:
            return str(ident.value)
    return None


_PARTIAL_DATE = re.compile(r"^([0-9]{4})(?:-([0-9]{2}))?$")


def period_end_date(value: Any) -> date | None:
    """A FHIR Period.end (date or dateTime) → the last calendar day it covers.

    A dateTime gives its date as written, in its own offset (the payer's day, not
    converted to UTC); a partial date covers its whole month / year (FHIR: the end
    includes any matching date/time), so ``2025-05`` → 2025-05-31, ``2025`` → 2025-12-31.
    Anything else → None.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        match = _PARTIAL_DATE.match(text)
        if match:
            year, month = int(match[1]), int(match[2] or 12)
            if 1 <= month <= 12:
                return date(year, month, calendar.monthrange(year, month)[1])
            return None
        moment = parse_time(text) if not text.isdigit() else None
        return moment.date() if moment is not None else None
    return None


def approval_expires_on(cr: ClaimResponse, outcome: PaOutcome) -> date | None:
    """The last day an approval is valid: ``preAuthPeriod.end``; None when the decision
    is not an approval (A3 / A4 / C: any period is ignored) or the payer gives no end."""
    if outcome != "approved" or cr.preAuthPeriod is None:
        return None
    return period_end_date(cr.preAuthPeriod.end)


def decision_from_claim_response(cr: ClaimResponse) -> PasDecision:
    """Read the decision; raises PasErrorResponse for outcome=error, ValueError if absent."""
    if cr.outcome == "error":
        codes = []
        for err in cr.error or []:
            for coding in err.code.coding or []:
                if coding.code:
                    codes.append(coding.code)
        raise PasErrorResponse(codes)
    code, number, admin_ref = _review_action(cr)
    outcome = REVIEW_OUTCOMES.get(code)
    if outcome is None:
        raise ValueError(f"unsupported X12 306 review action code {code!r}")
    first_identifier = cr.identifier[0].value if cr.identifier else None
    pa_number = cr.preAuthRef or number or admin_ref or first_identifier or cr.id
    if not pa_number:
        raise ValueError("ClaimResponse carries no PA number")
    created = cr.created
    return PasDecision(
        pa_number=str(pa_number),
        review_action_code=code,
        outcome=outcome,
        journey_ref=_identifier_value(cr.identifier, JOURNEY_SYSTEM),
        appeal=_is_appeal(cr),
        created=parse_time(created) if created is not None else None,
        expires_on=approval_expires_on(cr, outcome),
    )


def _claim_responses(bundle: Bundle) -> list[ClaimResponse]:
    """ClaimResponses in a bundle, including those in nested bundles (notifications)."""
    found: list[ClaimResponse] = []
    for entry in bundle.entry or []:
        resource = entry.resource
        if isinstance(resource, ClaimResponse):
            found.append(resource)
        elif isinstance(resource, Bundle):
            found.extend(_claim_responses(resource))
    return found


def _resources(bundle: Bundle, found: dict[str, Any] | None = None) -> dict[str, Any]:
    """Resources in a bundle and its nested bundles, by fullUrl and by ``Type/id``."""
    found = {} if found is None else found
    for entry in bundle.entry or []:
        resource = entry.resource
        if resource is None:
            continue
        if entry.fullUrl:
            found.setdefault(str(entry.fullUrl), resource)
        if getattr(resource, "id", None):
            found.setdefault(f"{resource.get_resource_type()}/{resource.id}", resource)
        if isinstance(resource, Bundle):
            _resources(resource, found)
    return found


def requested_info(cr: ClaimResponse, resources: Mapping[str, Any]) -> list[str]:
    """What a ClaimResponse asks the provider for (PAS "request for additional
    information"): per active ``communicationRequest``, the LOINC attachment codes of its
    payload (``contentString``), else its X12 755 report type categories (PWK01) as
    ``PWK01:<code>``. Codes only: the payer's free text is never read back.

    Raises ValueError (naming the position, not the content) for a reference that does
    not resolve to a CommunicationRequest in the bundle (or contained), or one that names
    no code.
    """
    contained = {f"#{c.id}": c for c in cr.contained or [] if getattr(c, "id", None)}
    requested: list[str] = []
    for index, ref in enumerate(cr.communicationRequest or []):
        where = f"ClaimResponse.communicationRequest[{index}]"
        key = str(ref.reference or "")
        target = contained.get(key) or resources.get(key)
        if not isinstance(target, CommunicationRequest):
            raise ValueError(f"{where} does not resolve to a CommunicationRequest in the Bundle")
        if target.status != "active":
            continue  # withdrawn or answered: no longer asked
        codes = [
            payload.contentString.strip()
            for payload in target.payload or []
            if payload.contentString and LOINC_CODE.match(payload.contentString.strip())
        ]
        if not codes:
            codes = [
                f"PWK01:{coding.code}"
                for category in target.category or []
                for coding in category.coding or []
                if coding.system == X12_755 and coding.code and X12_755_CODE.match(coding.code)
            ]
        if not codes:
            raise ValueError(f"{where} names no LOINC attachment code nor X12 755 report type")
        requested.extend(codes)
    return list(dict.fromkeys(requested))


def _bundle(body: bytes | str | Mapping[str, Any], what: str) -> Bundle:
    data = load_json(body, what)
    if not isinstance(data, Mapping) or data.get("resourceType") != "Bundle":
        raise CallbackInvalid(f"{what}: not a FHIR Bundle")
    try:
        return Bundle.model_validate(data)
    except ValidationError as exc:
        raise CallbackInvalid(f"{what}: invalid Bundle ({validation_summary(exc)})") from exc


def parse_pas_response(body: bytes | str | Mapping[str, Any], status: int = 200) -> PriorAuthResult:
    """A `Claim/$submit` response Bundle → PriorAuthResult.

    outcome=error → PartnerRejected ``payer.pa_error``; malformed → PartnerUnavailable.
    """
    try:
        bundle = _bundle(body, "PAS response")
        responses = _claim_responses(bundle)
        if not responses:
            raise ValueError("PAS response bundle has no ClaimResponse")
        decision = decision_from_claim_response(responses[0])
    except PasErrorResponse as exc:
        raise PartnerRejected(PARTNER, status, "payer.pa_error", str(exc)) from exc
    except ValueError as exc:  # includes CallbackInvalid
        raise PartnerUnavailable(PARTNER, status, f"malformed PAS response: {exc}") from exc
    return PriorAuthResult(
        pa_number=decision.pa_number,
        outcome=decision.outcome,
        review_action_code=decision.review_action_code,
        expires_on=decision.expires_on,
    )


def parse_eligibility_response(
    body: bytes | str | Mapping[str, Any], status: int = 200
) -> BenefitsResult:
    try:
        data = load_json(body, "eligibility response")
        resp = CoverageEligibilityResponse.model_validate(data)
    except (ValueError, ValidationError) as exc:
        summary = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
        raise PartnerUnavailable(
            PARTNER, status, f"malformed eligibility response: {summary}"
        ) from exc
    if resp.outcome == "error":
        codes = [c.code for e in resp.error or [] for c in e.code.coding or [] if c.code]
        raise PartnerRejected(
            PARTNER,
            status,
            "payer.eligibility_error",
            "error codes: " + (", ".join(codes) or "none"),
        )
    active = False
    pa_required = False
    out_of_pocket: float | None = None
    for insurance in resp.insurance or []:
        active = active or bool(insurance.inforce)
        for item in insurance.item or []:
            pa_required = pa_required or bool(item.authorizationRequired)
            for benefit in item.benefit or []:
                benefit_codes = {c.code for c in benefit.type.coding or []}
                money = benefit.allowedMoney
                if "copay" in benefit_codes and money is not None and out_of_pocket is None:
                    out_of_pocket = float(money.value) if money.value is not None else None
    return BenefitsResult(
        coverage_active=active,
        pa_required=pa_required,
        out_of_pocket=out_of_pocket,
        plan_type=plan_type_of(resp),
    )


# Source of Payment Typology: the first digit is the payer's kind (1 Medicare, 2 Medicaid,
# 5 private insurance, 6 BlueCross/BlueShield); the copay card turns on it.
SOPT_SYSTEM = "https://nahdo.org/sopt"
_SOPT_KINDS = {"1": "medicare", "2": "medicaid", "5": "commercial", "6": "commercial"}


def plan_type_of(resp: CoverageEligibilityResponse) -> str | None:
    """The plan type of the first in-force insurance whose Coverage (contained, by a
    local reference) is typed by SOPT; None when the payer does not say."""
    contained = {r.id: r for r in resp.contained or [] if r.get_resource_type() == "Coverage"}
    for insurance in resp.insurance or []:
        ref = insurance.coverage.reference if insurance.coverage is not None else None
        coverage = contained.get(ref[1:]) if ref and ref.startswith("#") else None
        kind = getattr(coverage, "type", None)
        for coding in (kind.coding or []) if kind is not None else []:
            if coding.system == SOPT_SYSTEM and coding.code:
                return _SOPT_KINDS.get(str(coding.code)[0], "other")
    return None


def _classify(response: httpx.Response, body: Any) -> tuple[str | None, str]:
    """OperationOutcome → detail with issue codes only (diagnostics may echo input)."""
    detail = f"HTTP {response.status_code}"
    if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome":
        try:
            outcome = OperationOutcome.model_validate(body)
        except ValidationError:
            return None, detail + "; unreadable OperationOutcome"
        issues = []
        for issue in outcome.issue or []:
            text = str(issue.code)
            if issue.details is not None and issue.details.coding:
                sub = ",".join(str(c.code) for c in issue.details.coding if c.code)
                if sub:
                    text += f" ({sub})"
            issues.append(text)
        detail += "; OperationOutcome issues: " + ("; ".join(issues) or "none")
    return None, detail


def parse_notification(body: bytes | str | Mapping[str, Any]) -> list[PartnerEvent]:
    """A PAS subscription notification Bundle → one event per ClaimResponse that says
    something: ``pa.decided`` for a decision, ``pa.info_requested`` for one still pended
    (A4) that asks for additional information (``communicationRequest``; data
    ``outcome: info_requested`` and ``requested``, see `requested_info`). A ``pa.decided``
    event's data carries ``expires_on``: the approval's last valid day as an ISO date
    (``preAuthPeriod.end``, see `approval_expires_on`), None when denied or not said.

    event_id is the notification Bundle's id (else its identifier), suffixed with the
    ClaimResponse id when a notification carries several ClaimResponses. A pended
    ClaimResponse that asks for nothing is not news and yields no event.
    """
    bundle = _bundle(body, "PAS notification")
    base_id = bundle.id or (bundle.identifier.value if bundle.identifier else None)
    if not base_id:
        raise CallbackInvalid("PAS notification: Bundle has neither id nor identifier")
    notified_at = _notification_timestamp(bundle) or (
        parse_time(bundle.timestamp) if bundle.timestamp is not None else None
    )
    responses = _claim_responses(bundle)
    if not responses:
        raise CallbackInvalid("PAS notification: no ClaimResponse in the Bundle")
    resources = _resources(bundle)
    events: list[PartnerEvent] = []
    for index, cr in enumerate(responses):
        try:
            decision = decision_from_claim_response(cr)
            requested = requested_info(cr, resources) if decision.outcome == "pended" else []
        except ValueError as exc:
            raise CallbackInvalid(f"PAS notification: {exc}") from exc
        if decision.outcome == "pended" and not requested:
            continue
        data: dict[str, Any] = {
            "outcome": "info_requested" if requested else decision.outcome,
            "review_action_code": decision.review_action_code,
            "pa_number": decision.pa_number,
            "appeal": decision.appeal,
        }
        if requested:
            data["requested"] = requested
        else:
            expires_on = decision.expires_on
            data["expires_on"] = expires_on.isoformat() if expires_on is not None else None
        event_id = base_id if len(responses) == 1 else f"{base_id}/{cr.id or index}"
        events.append(
            PartnerEvent(
                event_id=event_id,
                type=PA_INFO_REQUESTED if requested else "pa.decided",
                correlation_key=decision.pa_number,
                journey_ref=decision.journey_ref,
                occurred_at=notified_at or decision.created or now(),
                data=data,
            )
        )
    return events


def _notification_timestamp(bundle: Bundle) -> datetime | None:
    for entry in bundle.entry or []:
        resource = entry.resource
        if resource is None or resource.get_resource_type() != "Parameters":
            continue
        for param in getattr(resource, "parameter", None) or []:
            if param.name != "notification-event":
                continue
            for part in param.part or []:
                if part.name == "timestamp" and part.valueInstant is not None:
                    return parse_time(part.valueInstant)
    return None


# --------------------------------------------------------------------------- client


class PayerClient(PartnerClient):
    """FHIR payer: benefits verification and PAS prior authorization (and appeals)."""

    def __init__(
        self,
        base_url: str,
        http: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        *,
        payer_id: str = "SANDBOX-PAYER",
        provider_npi: str = "1234567893",
    ) -> None:
        self._http = PartnerHttp(
            PARTNER,
            base_url,
            http=http,
            timeout=timeout,
            classify=_classify,
            headers={"Accept": FHIR_JSON, "Content-Type": FHIR_JSON},
        )
        self.payer_id = payer_id
        self.provider_npi = provider_npi

    async def verify_benefits(self, req: BenefitsRequest) -> BenefitsResult:
        resource = build_eligibility_request(
            req, payer_id=self.payer_id, provider_npi=self.provider_npi
        )
        response = await self._http.post(
            "/fhir/CoverageEligibilityRequest",
            idempotency_key=req.idempotency_key,
            content=resource.model_dump_json().encode(),
        )
        return parse_eligibility_response(self._http.json(response), response.status_code)

    async def submit_prior_auth(self, req: PriorAuthRequest) -> PriorAuthResult:
        bundle = build_pas_bundle(req, payer_id=self.payer_id, provider_npi=self.provider_npi)
        response = await self._http.post(
            "/fhir/Claim/$submit",
            idempotency_key=req.idempotency_key,
            content=bundle.model_dump_json().encode(),
        )
        return parse_pas_response(self._http.json(response), response.status_code)


__all__ = [
    "PasDecision",
    "PayerClient",
    "approval_expires_on",
    "build_eligibility_request",
    "build_pas_bundle",
    "decision_from_claim_response",
    "parse_eligibility_response",
    "parse_notification",
    "parse_pas_response",
    "period_end_date",
    "requested_info",
]


Client = PayerClient  # what activities/ builds for partner 'payer'
