"""Specialty pharmacy adapter: referral and refill enrollment out; claim / fill / ship /
delivery / dispense callbacks in.

Referral: ``POST {base}/pharmacy/referrals`` JSON::

    {"patient_ref", "journey_ref", "program", "medication": {"ndc": drug_code},
     "days_supply": 28, "referral_source": "pitwall"}

→ 201 ``{"rx_id": "rx_…", "status": "received"}``. Errors: 4xx ``{"error": {"code",
"field"}}``.

Refill program: ``POST {base}/pharmacy/refill-enrollments`` JSON::

    {"patient_ref", "journey_ref", "program", "medication": {"ndc": drug_code},
     "days_supply": 28, "starts_on": "YYYY-MM-DD"}   # the journey's enrollment date

→ 201 ``{"rx_id": "rx_…", "status": "enrolled"}`` (same idempotency and errors). From
then on every dispense of that prescription, whatever its status, comes back as a
``pharmacy.dispensed`` callback for as long as the patient stays in the program.

Callback (JSON, signed with the Pitwall HMAC scheme)::

    {"event_id", "type": "pharmacy.filled" | "pharmacy.shipped" | "pharmacy.delivered"
     | "pharmacy.dispensed", "rx_id", "journey_ref", "patient_ref", "occurred_at",
     "shipment": {...},                      # shipped: carrier, tracking_number
     "medication_dispense": {FHIR R4B MedicationDispense}}
                                 # filled / delivered; dispensed: always (else invalid)

Every callback carrying a MedicationDispense gives ``data.dispense_id`` (the resource
id, None if it has none) and ``data.dispense_status``, whatever the status: an
entered-in-error dispense re-sent under the same id is how a pharmacy cancels a
dispense it reported before (FHIR), so the journey must know which one it names.
Only a ``completed`` MedicationDispense is a fill: any other status (in-progress,
on-hold, stopped, cancelled, declined, entered-in-error …) gives ``data.is_fill =
False`` and no ``days_supply`` / ``dispensed_at``, so it can never count toward
adherence; a completed one adds ``is_fill = True`` and the fill fields of
``dispense_fill``.

Claim adjudication (NCPDP Telecom D.0 response fields), same envelope::

    {"type": "pharmacy.claim_paid", "transaction_response_status": "P",
     "authorization_number"?}                                # before pharmacy.filled
    {"type": "pharmacy.claim_rejected", "transaction_response_status": "R",
     "reject_codes": ["75"], "reject_count"?, "reject_messages"?: [...],
     "earliest_fill_date"?: "YYYY-MM-DD"}                    # no fill, no shipment

A rejection's ``data``: ``reject_codes`` (upper-cased, in order), ``reject`` — the first
code we know: 75 ``pa_required``, 70 ``not_covered``, 79 ``refill_too_soon``; none known
``other`` — and ``earliest_fill_date`` (NCPDP Next Available Fill Date, ISO date or None).
``reject_messages`` is the payer's free text: checked for shape, never passed on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any, Literal

import httpx
from fhir.resources.R4B.medicationdispense import MedicationDispense
from pydantic import ValidationError

from adapters._common import load_json, now, parse_time, require_str, validation_summary
from adapters.errors import CallbackInvalid, PartnerUnavailable
from adapters.http import PartnerClient, PartnerHttp, classify_error_object
from domain.partners import (
    PartnerEvent,
    PharmacyReferralRequest,
    PharmacyReferralResult,
    RefillEnrollmentRequest,
    RefillEnrollmentResult,
)

PARTNER = "pharmacy"
CLAIM_PAID = "pharmacy.claim_paid"
CLAIM_REJECTED = "pharmacy.claim_rejected"
DISPENSED = "pharmacy.dispensed"  # the refill program: one per dispense, any status
EVENT_TYPES = frozenset(
    {
        "pharmacy.filled",
        "pharmacy.shipped",
        "pharmacy.delivered",
        CLAIM_PAID,
        CLAIM_REJECTED,
        DISPENSED,
    }
)
Reject = Literal["pa_required", "not_covered", "refill_too_soon", "other"]
# NCPDP reject code (511-FB) → what the journey does about it.
REJECTS: dict[str, Reject] = {"75": "pa_required", "70": "not_covered", "79": "refill_too_soon"}
_REJECT_CODE = re.compile(r"[0-9A-Z]{1,3}")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MAX_REJECTS = 10  # NCPDP Reject Count (510-FA): a handful per claim; lenient


NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
# MedicationDispense.status (FHIR R4, a required binding): anything else is malformed.
DISPENSE_STATUSES = frozenset(
    {
        "preparation",
        "in-progress",
        "cancelled",
        "on-hold",
        "completed",
        "entered-in-error",
        "stopped",
        "declined",
        "unknown",
    }
)
# Our extension on MedicationDispense: the drug group(s) a dispense counts under for
# adherence (the target active ingredient; a combination product names each). Absent:
# the ingredients of a contained Medication, else the product's own code.
DRUG_GROUP_EXTENSION = "https://pitwall.dev/fhir/StructureDefinition/drug-group"


def _medication(md: MedicationDispense) -> tuple[str | None, list[str]]:
    """(medication code as `system|code`, ingredient codes) of the dispensed product."""
    concept = md.medicationCodeableConcept
    ingredients: list[str] = []
    if concept is None and md.medicationReference is not None:
        ref = md.medicationReference.reference or ""
        contained = {r.id: r for r in md.contained or []}
        medication = contained.get(ref[1:]) if ref.startswith("#") else None
        concept = getattr(medication, "code", None)
        for ingredient in getattr(medication, "ingredient", None) or []:
            item = ingredient.itemCodeableConcept
            ingredients += [c.code for c in (item.coding or []) if item and c.code]
    codings = (concept.coding or []) if concept is not None else []
    chosen = next((c for c in codings if c.system == NDC_SYSTEM and c.code), None) or next(
        (c for c in codings if c.code), None
    )
    code = f"{chosen.system or ''}|{chosen.code}" if chosen is not None else None
    return code, ingredients


def _drug_groups(md: MedicationDispense, code: str | None, ingredients: list[str]) -> list[str]:
    named = [
        str(e.valueCode)
        for e in md.extension or []
        if e.url == DRUG_GROUP_EXTENSION and e.valueCode
    ]
    return sorted(set(named or ingredients or ([code] if code else [])))


def _dispense(resource: Mapping[str, Any] | MedicationDispense) -> MedicationDispense:
    if isinstance(resource, MedicationDispense):
        return resource
    try:
        return MedicationDispense.model_validate(resource)
    except ValidationError as exc:
        raise CallbackInvalid(f"invalid MedicationDispense ({validation_summary(exc)})") from exc


def dispense_fill(resource: Mapping[str, Any] | MedicationDispense) -> dict[str, Any] | None:
    """A MedicationDispense → {days_supply, dispensed_at, dispense_id, quantity,
    quantity_unit, medication_code, drug_groups} if it is a fill.

    Only ``status == completed`` is a fill; None otherwise. Raises CallbackInvalid when a
    completed dispense lacks daysSupply.
    """
    md = _dispense(resource)
    if md.status != "completed":
        return None
    if md.daysSupply is None or md.daysSupply.value is None:
        raise CallbackInvalid("completed MedicationDispense has no daysSupply")
    handed = md.whenHandedOver or md.whenPrepared
    dispensed_at = parse_time(handed) if handed is not None else None
    code, ingredients = _medication(md)
    quantity = md.quantity
    return {
        "days_supply": int(md.daysSupply.value),
        "dispensed_at": dispensed_at.isoformat() if dispensed_at else None,
        "dispense_id": md.id,
        "quantity": float(quantity.value) if quantity and quantity.value is not None else None,
        "quantity_unit": (quantity.code or quantity.unit) if quantity else None,
        "medication_code": code,
        "drug_groups": _drug_groups(md, code, ingredients),
    }


def reject_of(codes: list[str]) -> Reject:
    """The first reject code we act on decides; none of them: ``other``."""
    return next((REJECTS[c] for c in codes if c in REJECTS), "other")


def _claim(kind: str, data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The NCPDP fields of a claim_paid / claim_rejected callback (names, never values)."""
    status = data.get("transaction_response_status")
    expected = "R" if kind == CLAIM_REJECTED else "P"
    if not isinstance(status, str) or status.strip().upper() != expected:
        raise CallbackInvalid(f"{what}: invalid field 'transaction_response_status'")
    if kind == CLAIM_PAID:
        out: dict[str, Any] = {"transaction_response_status": expected}
        auth = data.get("authorization_number")
        if auth is not None and not isinstance(auth, str):
            raise CallbackInvalid(f"{what}: invalid field 'authorization_number'")
        out["authorization_number"] = auth or None
        return out
    raw = data.get("reject_codes")
    if not isinstance(raw, list) or not 1 <= len(raw) <= _MAX_REJECTS:
        raise CallbackInvalid(f"{what}: missing or invalid field 'reject_codes'")
    codes = [c.strip().upper() if isinstance(c, str) else None for c in raw]
    if not all(isinstance(c, str) and _REJECT_CODE.fullmatch(c) for c in codes):
        raise CallbackInvalid(f"{what}: invalid field 'reject_codes'")
    checked = [c for c in codes if c is not None]
    messages = data.get("reject_messages")
    if messages is not None and (
        not isinstance(messages, list) or not all(isinstance(m, str) for m in messages)
    ):
        raise CallbackInvalid(f"{what}: invalid field 'reject_messages'")
    count = data.get("reject_count")
    if count is not None and (
        not isinstance(count, int) or isinstance(count, bool) or count != len(checked)
    ):
        raise CallbackInvalid(f"{what}: invalid field 'reject_count'")
    earliest = data.get("earliest_fill_date")
    if earliest is not None:
        try:
            if not isinstance(earliest, str) or not _ISO_DATE.fullmatch(earliest):
                raise ValueError
            earliest = date.fromisoformat(earliest).isoformat()
        except ValueError:
            raise CallbackInvalid(f"{what}: invalid field 'earliest_fill_date'") from None
    return {
        "transaction_response_status": expected,
        "reject_codes": checked,
        "reject": reject_of(checked),
        "earliest_fill_date": earliest,
    }


def parse_callback(body: bytes | str | Mapping[str, Any]) -> PartnerEvent:
    what = "pharmacy callback"
    data = load_json(body, what)
    if not isinstance(data, Mapping):
        raise CallbackInvalid(f"{what}: body is not a JSON object")
    event_id = require_str(data, "event_id", what)
    kind = require_str(data, "type", what)
    if kind not in EVENT_TYPES:
        raise CallbackInvalid(f"{what}: unknown type")
    rx_id = require_str(data, "rx_id", what)
    occurred_at = parse_time(data.get("occurred_at"))
    out: dict[str, Any] = {"rx_id": rx_id}
    claim = kind in (CLAIM_PAID, CLAIM_REJECTED)
    if claim:
        out.update(_claim(kind, data, what))
    # A claim's answer is never a fill, whatever it carries.
    dispense = None if claim else data.get("medication_dispense")
    if kind == "pharmacy.shipped":
        shipment = data.get("shipment")
        if isinstance(shipment, Mapping):
            for key in ("carrier", "tracking_number", "cold_chain", "expected_delivery"):
                if key in shipment:
                    out[key] = shipment[key]
    if kind == DISPENSED and dispense is None:
        raise CallbackInvalid(f"{what}: dispensed without medication_dispense")
    if dispense is not None:
        if (
            not isinstance(dispense, Mapping)
            or dispense.get("resourceType") != "MedicationDispense"
        ):
            raise CallbackInvalid(f"{what}: medication_dispense is not a MedicationDispense")
        md = _dispense(dispense)
        if md.status not in DISPENSE_STATUSES:
            raise CallbackInvalid(f"{what}: invalid field 'medication_dispense.status'")
        fill = dispense_fill(md)
        # Any status: a correction (entered-in-error) names the dispense it cancels.
        out["dispense_id"] = md.id
        out["dispense_status"] = md.status
        out["is_fill"] = fill is not None
        if fill is not None:
            out.update(fill)
    elif kind == "pharmacy.delivered":
        # A pharmacy without FHIR: plain fields, treated as a completed dispense.
        days = data.get("days_supply")
        if not isinstance(days, int) or isinstance(days, bool) or days <= 0:
            raise CallbackInvalid(f"{what}: delivered without medication_dispense or days_supply")
        dispensed = parse_time(data.get("dispensed_at")) or occurred_at
        out.update(
            days_supply=days,
            dispensed_at=dispensed.isoformat() if dispensed else None,
            is_fill=True,
            dispense_status="completed",
        )
    journey_ref = data.get("journey_ref")
    return PartnerEvent(
        event_id=event_id,
        type=kind,
        correlation_key=rx_id,
        journey_ref=journey_ref if isinstance(journey_ref, str) and journey_ref else None,
        occurred_at=occurred_at or now(),
        data=out,
    )


class PharmacyClient(PartnerClient):
    def __init__(
        self, base_url: str, http: httpx.AsyncClient | None = None, timeout: float = 10.0
    ) -> None:
        self._http = PartnerHttp(
            PARTNER, base_url, http=http, timeout=timeout, classify=classify_error_object
        )

    async def refer(self, req: PharmacyReferralRequest) -> PharmacyReferralResult:
        payload = {
            "patient_ref": req.patient_ref,
            "journey_ref": req.journey_ref,
            "program": req.program,
            "medication": {"ndc": req.drug_code},
            "days_supply": req.days_supply,
            "referral_source": "pitwall",
        }
        response = await self._http.post(
            "/pharmacy/referrals", idempotency_key=req.idempotency_key, json=payload
        )
        body = self._http.json(response)
        rx_id = body.get("rx_id") if isinstance(body, Mapping) else None
        if not isinstance(rx_id, str) or not rx_id:
            raise PartnerUnavailable(PARTNER, response.status_code, "malformed response: no rx_id")
        return PharmacyReferralResult(rx_id=rx_id)

    async def enroll_refills(self, req: RefillEnrollmentRequest) -> RefillEnrollmentResult:
        """Enroll the prescription in the refill program: its dispenses come back as
        ``pharmacy.dispensed`` callbacks, correlated on the answer's ``rx_id``."""
        payload = {
            "patient_ref": req.patient_ref,
            "journey_ref": req.journey_ref,
            "program": req.program,
            "medication": {"ndc": req.drug_code},
            "days_supply": req.days_supply,
            "starts_on": req.starts_on.isoformat(),
        }
        response = await self._http.post(
            "/pharmacy/refill-enrollments", idempotency_key=req.idempotency_key, json=payload
        )
        body = self._http.json(response)
        rx_id = body.get("rx_id") if isinstance(body, Mapping) else None
        if not isinstance(rx_id, str) or not rx_id:
            raise PartnerUnavailable(PARTNER, response.status_code, "malformed response: no rx_id")
        status = body.get("status") if isinstance(body, Mapping) else None
        if isinstance(status, str) and status:
            return RefillEnrollmentResult(rx_id=rx_id, status=status)
        return RefillEnrollmentResult(rx_id=rx_id)


__all__ = ["PharmacyClient", "dispense_fill", "parse_callback", "reject_of"]


Client = PharmacyClient  # what activities/ builds for partner 'pharmacy'
