"""The partner sandbox: payer (FHIR / PAS), specialty pharmacy, e-consent, a copay-card
program, SMS (Twilio shaped) and email (SendGrid shaped), scriptable per patient and
inspectable for tests.

Speaks HTTP only; imports nothing from Pitwall. See sandbox/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sandbox import payer as fhir
from sandbox.scenario import SERVICES, Scenario
from sandbox.state import (
    Callback,
    Received,
    SandboxState,
    StoredResponse,
    iso,
    utcnow,
    without_password,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
PLAN_TYPES = frozenset({"commercial", "medicare", "medicaid", "tricare", "va", "other_government"})
COPAY_BIN = "610020"
COPAY_PCN = "SBXCOPAY"
COPAY_GROUP = "CPYSBX01"
COPAY_REJECTIONS = {"cap_reached": "benefit_cap_reached", "not_enrolled": "not_enrolled"}

Process = Callable[
    [Scenario], Awaitable[tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]]
]


def _json(status: int, body: Any, media_type: str = "application/json") -> StoredResponse:
    return StoredResponse(status, json.dumps(body).encode(), media_type)


def _fhir(status: int, body: Any) -> StoredResponse:
    return _json(status, body, fhir.FHIR_JSON)


def _to_response(stored: StoredResponse) -> Response:
    return Response(
        content=stored.body,
        status_code=stored.status,
        media_type=stored.media_type,
        headers=stored.headers,
    )


def _twilio_error(status: int, code: int, message: str) -> StoredResponse:
    return _json(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def _sendgrid_error(status: int, message: str, field: str | None = None) -> StoredResponse:
    return _json(status, {"errors": [{"message": message, "field": field, "help": None}]})


def _simple_error(
    status: int, code: str, field: str | None = None, message: str = ""
) -> StoredResponse:
    return _json(status, {"error": {"code": code, "field": field, "message": message}})


OUTAGE_BODIES: dict[str, Callable[[int], StoredResponse]] = {
    "payer": lambda s: _fhir(
        s, fhir.operation_outcome("transient", "outage", "service temporarily unavailable")
    ),
    "sms": lambda s: _twilio_error(s, 20500, "An internal server error has occurred"),
    "email": lambda s: _sendgrid_error(s, "service temporarily unavailable"),
    "pharmacy": lambda s: _simple_error(s, "unavailable"),
    "consent": lambda s: _simple_error(s, "unavailable"),
    "copay": lambda s: _simple_error(s, "unavailable"),
}


class InboundSms(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field("+15555550100", alias="from")
    to: str = "+15555550199"
    body: str
    patient_ref: str | None = None
    journey_ref: str | None = None
    url: str | None = None


def _invalid_field(
    *checks: tuple[str, bool],
) -> tuple[StoredResponse, dict[str, Any], None] | None:
    """The 400 answer for the first field that fails its check, or None."""
    for field, ok in checks:
        if not ok:
            error = _simple_error(400, "invalid_request", field, f"{field} is missing or invalid")
            return error, {"rejected": 400, "field": field}, None
    return None


def _with_password(url: str, password: str) -> str:
    """The inbound-SMS webhook URL as configured at Twilio: credentials embedded."""
    if not password:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://twilio:{password}@{rest}"


def create_app(
    callback_url: str, secret: str, twilio_auth_token: str, callback_api_key: str = ""
) -> FastAPI:
    state = SandboxState(callback_url, secret, twilio_auth_token, callback_api_key)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = FastAPI(title="Pitwall partner sandbox", lifespan=lifespan)
    app.state.sandbox = state
    event_numbers = iter(range(1, 1 << 62))

    async def handle(
        request: Request,
        *,
        service: str,
        operation: str,
        patient_ref: str | None,
        journey_ref: str | None,
        process: Process,
    ) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER) or f"auto-{uuid.uuid4().hex}"
        async with state.lock(service, key):
            row = state.received.get((service, key))
            if row is not None and row.response is not None:
                row.attempts += 1
                stored = row.response
            else:
                if row is None:
                    row = Received(
                        service=service,
                        operation=operation,
                        patient_ref=patient_ref,
                        journey_ref=journey_ref,
                        idempotency_key=key,
                        attempts=1,
                        first_at=utcnow(),
                    )
                    state.received[(service, key)] = row
                else:
                    row.attempts += 1
                scenario = state.scenario(patient_ref)
                if scenario.slow_ms:
                    await asyncio.sleep(scenario.slow_ms / 1000)
                outage = state.outage_status(patient_ref, service)
                if outage is not None:
                    row.summary = {"last_error": outage}
                    return _to_response(OUTAGE_BODIES[service](outage))
                stored, summary, after = await process(scenario)
                row.response = stored
                row.summary = summary
                if after is not None:
                    after()
                return _to_response(stored)
        scenario = state.scenario(patient_ref)
        if scenario.slow_ms:
            await asyncio.sleep(scenario.slow_ms / 1000)
        return _to_response(stored)

    def json_callback(
        service: str, kind: str, event_id: str, payload: dict[str, Any], patient_ref: str | None
    ) -> Callback:
        return Callback(
            service=service,
            type=kind,
            event_id=event_id,
            url=f"{state.callback_url}/v1/webhooks/{service}",
            patient_ref=patient_ref,
            journey_ref=payload.get("journey_ref"),
            body=json.dumps(payload).encode(),
        )

    # ------------------------------------------------------------------ payer

    @app.post("/fhir/CoverageEligibilityRequest")
    async def eligibility(request: Request) -> Response:
        body = await request.body()
        try:
            parsed: dict[str, Any] | None = fhir.parse_eligibility(body)
            reject = None
        except fhir.FhirReject as exc:
            parsed, reject = None, exc

        async def process(sc: Scenario) -> tuple[StoredResponse, dict[str, Any], None]:
            if parsed is None:
                assert reject is not None
                return _fhir(reject.status, reject.outcome), {"rejected": reject.status}, None
            resource = fhir.eligibility_response(
                parsed["resource"],
                active=sc.coverage_active,
                pa_required=sc.pa_required,
                out_of_pocket=sc.out_of_pocket,
            )
            summary = {"coverage_active": sc.coverage_active, "pa_required": sc.pa_required}
            return _fhir(200, resource), summary, None

        return await handle(
            request,
            service="payer",
            operation="eligibility",
            patient_ref=parsed["patient_ref"] if parsed else None,
            journey_ref=parsed["journey_ref"] if parsed else None,
            process=process,
        )

    @app.post("/fhir/Claim/$submit")
    async def pas_submit(request: Request) -> Response:
        body = await request.body()
        try:
            parsed: dict[str, Any] | None = fhir.parse_pas_bundle(body)
            reject = None
        except fhir.FhirReject as exc:
            parsed, reject = None, exc

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            if parsed is None:
                assert reject is not None
                return _fhir(reject.status, reject.outcome), {"rejected": reject.status}, None
            appeal_of = parsed["appeal_of"]
            if appeal_of and appeal_of not in state.pas:
                outcome = fhir.operation_outcome(
                    "not-found", "unknown-pa-number", "appealed PA number is unknown"
                )
                return _fhir(400, outcome), {"rejected": 400, "appeal_of": appeal_of}, None
            final: str | None = None  # decision notified later, when pended
            delay = 0.0
            if appeal_of:
                code, delay = "A4", sc.appeal_pend_seconds
                final = "A3" if sc.pa == "deny_appeal_deny" else "A1"
            elif not sc.pa_required or sc.pa == "approve":
                code = "A1"
            elif sc.pa in ("deny", "deny_appeal_approve", "deny_appeal_deny"):
                code = "A3"
            else:
                code, delay = "A4", sc.pend_seconds
                final = "A1" if sc.pa == "pend_approve" else "A3"
            pa_number = "PA" + uuid.uuid4().hex[:10].upper()
            state.pas[pa_number] = {
                "patient_ref": parsed["patient_ref"],
                "journey_ref": parsed["journey_ref"],
                "code": code,
                "final": final,
                "appeal_of": appeal_of,
            }
            bundle = fhir.response_bundle(parsed, pa_number, code, str(uuid.uuid4()))
            summary = {
                "pa_number": pa_number,
                "review_action_code": code,
                "outcome": {"A1": "approved", "A3": "denied", "A4": "pended"}[code],
                "appeal_of": appeal_of,
                "final_review_action_code": final,
            }

            def after() -> None:
                if final is None:
                    return
                event_id = str(uuid.uuid4())
                decided = fhir.response_bundle(parsed, pa_number, final, str(uuid.uuid4()))
                note = fhir.notification_bundle(event_id, next(event_numbers), decided)
                state.pas[pa_number]["code"] = final
                cb = Callback(
                    service="payer",
                    type="pa.decided",
                    event_id=event_id,
                    url=f"{state.callback_url}/v1/webhooks/payer",
                    patient_ref=parsed["patient_ref"],
                    journey_ref=parsed["journey_ref"],
                    body=json.dumps(note).encode(),
                    content_type=fhir.FHIR_JSON,
                )
                state.schedule([(delay, cb)], duplicate=sc.duplicate_callbacks)

            return _fhir(200, bundle), summary, after

        return await handle(
            request,
            service="payer",
            operation="pas_appeal" if parsed and parsed["appeal_of"] else "pas_submit",
            patient_ref=parsed["patient_ref"] if parsed else None,
            journey_ref=parsed["journey_ref"] if parsed else None,
            process=process,
        )

    # ------------------------------------------------------------------ pharmacy

    async def _json_body(request: Request) -> dict[str, Any] | None:
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _str(data: dict[str, Any] | None, key: str) -> str | None:
        value = (data or {}).get(key)
        return value if isinstance(value, str) and value else None

    @app.post("/pharmacy/referrals")
    async def pharmacy_referral(request: Request) -> Response:
        data = await _json_body(request)
        patient_ref, journey_ref = _str(data, "patient_ref"), _str(data, "journey_ref")

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            if data is None:
                return _simple_error(400, "invalid_json"), {"rejected": 400}, None
            medication = data.get("medication")
            ndc = medication.get("ndc") if isinstance(medication, dict) else None
            days = data.get("days_supply")
            bad = _invalid_field(
                ("patient_ref", patient_ref is not None),
                ("medication.ndc", isinstance(ndc, str) and bool(ndc)),
                (
                    "days_supply",
                    isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 365,
                ),
            )
            if bad is not None:
                return bad
            assert isinstance(days, int) and isinstance(ndc, str)
            rx_id = "rx_" + uuid.uuid4().hex[:12]
            supply = sc.days_supply if "days_supply" in sc.model_fields_set else days
            summary = {"rx_id": rx_id, "ndc": ndc, "days_supply": supply}
            body = {"rx_id": rx_id, "status": "received", "received_at": iso()}

            def after() -> None:
                t0 = utcnow()
                t_fill = sc.fill_after_seconds
                t_ship = t_fill + sc.ship_after_seconds
                t_deliver = t_ship + sc.deliver_after_seconds

                def at(offset: float) -> datetime:
                    return t0 + timedelta(seconds=offset)

                def event(kind: str, offset: float, extra: dict[str, Any]) -> Callback:
                    event_id = "evt_" + uuid.uuid4().hex
                    payload = {
                        "event_id": event_id,
                        "type": kind,
                        "rx_id": rx_id,
                        "journey_ref": journey_ref,
                        "patient_ref": patient_ref,
                        "occurred_at": iso(at(offset)),
                        **extra,
                    }
                    return json_callback("pharmacy", kind, event_id, payload, patient_ref)

                dispense = {
                    "resourceType": "MedicationDispense",
                    "id": "md-" + rx_id.replace("_", "-"),
                    "identifier": [{"system": "urn:pitwall-sandbox:rx", "value": rx_id}],
                    "status": "completed",
                    "medicationCodeableConcept": {"coding": [{"system": NDC_SYSTEM, "code": ndc}]},
                    "subject": {
                        "identifier": {"system": fhir.PATIENT_SYSTEM, "value": patient_ref}
                    },
                    "daysSupply": {
                        "value": supply,
                        "unit": "Day",
                        "system": "http://unitsofmeasure.org",
                        "code": "d",
                    },
                    "whenPrepared": iso(at(t_fill)),
                    "whenHandedOver": iso(at(t_deliver)),
                }
                filled = event("pharmacy.filled", t_fill, {"claim": {"status": "paid"}})
                shipped = event(
                    "pharmacy.shipped",
                    t_ship,
                    {
                        "shipment": {
                            "carrier": "SANDBOX-EXPRESS",
                            "tracking_number": "TRK" + uuid.uuid4().hex[:10].upper(),
                            "cold_chain": True,
                        }
                    },
                )
                delivered = event(
                    "pharmacy.delivered", t_deliver, {"medication_dispense": dispense}
                )
                if sc.out_of_order:
                    steps = [(t_fill, filled), (t_ship, delivered), (t_deliver, shipped)]
                else:
                    steps = [(t_fill, filled), (t_ship, shipped), (t_deliver, delivered)]
                state.schedule(steps, duplicate=sc.duplicate_callbacks)

            return _json(201, body), summary, after

        return await handle(
            request,
            service="pharmacy",
            operation="referral",
            patient_ref=patient_ref,
            journey_ref=journey_ref,
            process=process,
        )

    # ------------------------------------------------------------------ consent

    @app.post("/consent/requests")
    async def consent_request(request: Request) -> Response:
        data = await _json_body(request)
        patient_ref, journey_ref = _str(data, "patient_ref"), _str(data, "journey_ref")

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            if data is None:
                return _simple_error(400, "invalid_json"), {"rejected": 400}, None
            documents = data.get("documents")
            if patient_ref is None:
                return _simple_error(400, "invalid_request", "patient_ref"), {"rejected": 400}, None
            if (
                not isinstance(documents, list)
                or not documents
                or not all(isinstance(d, str) and d for d in documents)
            ):
                return _simple_error(400, "invalid_request", "documents"), {"rejected": 400}, None
            request_id = "cr_" + uuid.uuid4().hex[:12]
            summary = {"request_id": request_id, "documents": documents, "will": sc.consent}

            def after() -> None:
                if sc.consent == "never":
                    return
                kind = "consent.signed" if sc.consent == "sign" else "consent.declined"
                event_id = "evt_" + uuid.uuid4().hex
                payload = {
                    "event_id": event_id,
                    "type": kind,
                    "request_id": request_id,
                    "journey_ref": journey_ref,
                    "patient_ref": patient_ref,
                    "occurred_at": iso(utcnow() + timedelta(seconds=sc.consent_after_seconds)),
                    "documents": documents,
                }
                cb = json_callback("consent", kind, event_id, payload, patient_ref)
                state.schedule([(sc.consent_after_seconds, cb)], duplicate=sc.duplicate_callbacks)

            return _json(201, {"request_id": request_id, "status": "sent"}), summary, after

        return await handle(
            request,
            service="consent",
            operation="request",
            patient_ref=patient_ref,
            journey_ref=journey_ref,
            process=process,
        )

    # ------------------------------------------------------------------ copay card

    @app.post("/copay/enrollments")
    async def copay_enrollment(request: Request) -> Response:
        data = await _json_body(request)
        patient_ref, journey_ref = _str(data, "patient_ref"), _str(data, "journey_ref")

        async def process(sc: Scenario) -> tuple[StoredResponse, dict[str, Any], None]:
            if data is None:
                return _simple_error(400, "invalid_json"), {"rejected": 400}, None
            copay_program, plan_type = data.get("copay_program"), data.get("plan_type")
            bad = _invalid_field(
                ("patient_ref", patient_ref is not None),
                ("copay_program", isinstance(copay_program, str) and bool(copay_program)),
                ("plan_type", isinstance(plan_type, str) and plan_type in PLAN_TYPES),
            )
            if bad is not None:
                return bad
            enrollment_id = "ce_" + uuid.uuid4().hex[:12]
            # Like the real programs: government plans are never eligible (anti-kickback),
            # whatever the scenario says.
            if plan_type != "commercial":
                reason: str | None = "government_insurance"
            else:
                reason = COPAY_REJECTIONS.get(sc.copay)
            summary: dict[str, Any] = {
                "enrollment_id": enrollment_id,
                "plan_type": plan_type,
                "status": "rejected" if reason else "approved",
            }
            body: dict[str, Any] = {"enrollment_id": enrollment_id}
            if reason is not None:
                summary["reason"] = reason
                body.update(status="rejected", reason=reason)
                return _json(201, body), summary, None
            card = {
                "bin": COPAY_BIN,
                "pcn": COPAY_PCN,
                "group": COPAY_GROUP,
                "member_id": "CM" + uuid.uuid4().hex[:10].upper(),
                "annual_benefit_cap": sc.copay_annual_cap,
            }
            body.update(status="approved", card=card)
            return _json(201, body), summary, None

        return await handle(
            request,
            service="copay",
            operation="enroll",
            patient_ref=patient_ref,
            journey_ref=journey_ref,
            process=process,
        )

    # ------------------------------------------------------------------ SMS (Twilio)

    def _basic_auth(request: Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password

    @app.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def twilio_messages(account_sid: str, request: Request) -> Response:
        creds = _basic_auth(request)
        if creds is None or creds[0] != account_sid or creds[1] != state.twilio_auth_token:
            return _to_response(_twilio_error(401, 20003, "Authenticate"))
        try:
            form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            form = {}
        callback_url = form.get("StatusCallback") or ""
        query = parse_qs(urlsplit(callback_url).query) if callback_url else {}
        patient_ref = form.get("PitwallPatientRef") or next(
            iter(query.get("patient_ref", [])), None
        )
        journey_ref = form.get("PitwallJourneyRef") or next(
            iter(query.get("journey_ref", [])), None
        )

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            to, sender, text = form.get("To", ""), form.get("From", ""), form.get("Body", "")
            error: StoredResponse | None = None
            if not to:
                error = _twilio_error(400, 21604, "A 'To' phone number is required.")
            elif not E164.match(to):
                error = _twilio_error(
                    400, 21211, f"The 'To' number {to} is not a valid phone number."
                )
            elif not sender:
                error = _twilio_error(400, 21603, "A 'From' phone number is required.")
            elif not text:
                error = _twilio_error(400, 21602, "Message body is required.")
            elif len(text) > 1600:
                error = _twilio_error(
                    400, 21617, "The concatenated message body exceeds the 1600 character limit."
                )
            elif callback_url and urlsplit(callback_url).scheme not in ("http", "https"):
                error = _twilio_error(400, 21609, "Invalid StatusCallback url")
            if error is not None:
                return (
                    error,
                    {"rejected": error.status, "twilio_code": json.loads(error.body)["code"]},
                    None,
                )
            sid = "SM" + uuid.uuid4().hex
            statuses = list(sc.sms_statuses) or ["queued"]
            now = utcnow()
            body = {
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": sender,
                "body": text,
                "status": statuses[0],
                "num_segments": str(max(1, -(-len(text) // 153))),
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "date_created": format_datetime(now),
                "date_updated": format_datetime(now),
                "date_sent": None,
                "error_code": None,
                "error_message": None,
                "price": None,
                "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            }
            state.messages.append(
                {
                    "channel": "sms",
                    "id": sid,
                    "to": to,
                    "from": sender,
                    "body": text,
                    "patient_ref": patient_ref,
                    "journey_ref": journey_ref,
                    "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
                    "at": iso(now),
                }
            )
            summary = {"sid": sid, "to": to, "body": text, "status": statuses[0]}

            def after() -> None:
                if not callback_url:
                    return
                callbacks = []
                for status in statuses[1:]:
                    form_out = {
                        "AccountSid": account_sid,
                        "ApiVersion": "2010-04-01",
                        "From": sender,
                        "MessageSid": sid,
                        "MessageStatus": status,
                        "SmsSid": sid,
                        "SmsStatus": status,
                        "To": to,
                    }
                    if status in ("undelivered", "failed"):
                        form_out["ErrorCode"] = "30003" if status == "undelivered" else "30008"
                    callbacks.append(
                        Callback(
                            service="sms",
                            type="sms.status",
                            event_id=f"{sid}:{status}",
                            url=callback_url,
                            patient_ref=patient_ref,
                            journey_ref=journey_ref,
                            content_type="application/x-www-form-urlencoded",
                            form=form_out,
                        )
                    )
                if sc.out_of_order:
                    callbacks.reverse()
                interval = sc.sms_status_interval_seconds
                steps = [(interval * (i + 1), cb) for i, cb in enumerate(callbacks)]
                state.schedule(steps, duplicate=sc.duplicate_callbacks)

            return _json(201, body), summary, after

        return await handle(
            request,
            service="sms",
            operation="send",
            patient_ref=patient_ref,
            journey_ref=journey_ref,
            process=process,
        )

    # ------------------------------------------------------------------ email (SendGrid)

    @app.post("/v3/mail/send")
    async def sendgrid_send(request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _to_response(
                _sendgrid_error(
                    401, "The provided authorization grant is invalid, expired, or revoked"
                )
            )
        data = await _json_body(request)
        personalizations = (data or {}).get("personalizations")
        first = (
            personalizations[0] if isinstance(personalizations, list) and personalizations else {}
        )
        custom_args: dict[str, Any] = {}
        if isinstance(data, dict) and isinstance(data.get("custom_args"), dict):
            custom_args.update(data["custom_args"])
        if isinstance(first, dict) and isinstance(first.get("custom_args"), dict):
            custom_args.update(first["custom_args"])
        patient_ref = custom_args.get("patient_ref")
        journey_ref = custom_args.get("journey_ref")

        def validate() -> StoredResponse | None:
            if data is None:
                return _sendgrid_error(400, "Bad Request", None)
            if not isinstance(personalizations, list) or not personalizations:
                return _sendgrid_error(
                    400, "The personalizations field is required.", "personalizations"
                )
            for i, p in enumerate(personalizations):
                to_list = p.get("to") if isinstance(p, dict) else None
                if not isinstance(to_list, list) or not to_list:
                    return _sendgrid_error(
                        400, "The to array is required.", f"personalizations.{i}.to"
                    )
                for j, rcpt in enumerate(to_list):
                    address = rcpt.get("email") if isinstance(rcpt, dict) else None
                    if not isinstance(address, str) or not EMAIL.match(address):
                        return _sendgrid_error(
                            400,
                            "Does not contain a valid address.",
                            f"personalizations.{i}.to.{j}.email",
                        )
            sender = data.get("from")
            if not isinstance(sender, dict) or not EMAIL.match(str(sender.get("email", ""))):
                return _sendgrid_error(
                    400, "The from email does not contain a valid address.", "from.email"
                )
            if not data.get("subject") and not (isinstance(first, dict) and first.get("subject")):
                return _sendgrid_error(400, "The subject is required.", "subject")
            content = data.get("content")
            if (
                not isinstance(content, list)
                or not content
                or not all(isinstance(c, dict) and c.get("value") for c in content)
            ):
                return _sendgrid_error(
                    400,
                    "The content value must be a string at least one character in length.",
                    "content",
                )
            return None

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            error = validate()
            if error is not None:
                return error, {"rejected": error.status}, None
            assert isinstance(data, dict) and isinstance(first, dict)
            message_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            to = first["to"][0]["email"]
            stored = StoredResponse(202, b"", "text/plain", {"X-Message-Id": message_id})
            state.messages.append(
                {
                    "channel": "email",
                    "id": message_id,
                    "to": to,
                    "subject": data.get("subject") or first.get("subject"),
                    "body": data["content"][0]["value"],
                    "patient_ref": patient_ref,
                    "journey_ref": journey_ref,
                    "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
                    "at": iso(),
                }
            )
            summary = {"message_id": message_id, "to": to, "subject": data.get("subject")}

            def after() -> None:
                if not sc.email_events:
                    return
                ts = int(time.time() + sc.email_events_after_seconds)
                batch = []
                for n, kind in enumerate(sc.email_events):
                    item: dict[str, Any] = {
                        "email": to,
                        "timestamp": ts,
                        "smtp-id": f"<{message_id}@sandbox.sendgrid.net>",
                        "event": "bounce" if kind == "blocked" else kind,
                        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes)
                        .decode()
                        .rstrip("="),
                        "sg_message_id": f"{message_id}.filter0001.{16648 + n}."
                        f"{uuid.uuid4().hex[:8].upper()}.0",
                        **{k: str(v) for k, v in custom_args.items()},
                    }
                    if kind in ("bounce", "blocked"):
                        item.update(
                            type=kind, reason="550 5.1.1 recipient rejected", status="5.1.1"
                        )
                    elif kind == "dropped":
                        item["reason"] = "Bounced Address"
                    elif kind == "deferred":
                        item.update(response="400 try again later", attempt="1")
                    batch.append(item)
                if sc.out_of_order:
                    batch.reverse()
                cb = Callback(
                    service="email",
                    type="email.events",
                    event_id=",".join(e["sg_event_id"] for e in batch),
                    url=f"{state.callback_url}/v1/webhooks/email",
                    patient_ref=patient_ref if isinstance(patient_ref, str) else None,
                    journey_ref=journey_ref if isinstance(journey_ref, str) else None,
                    body=json.dumps(batch).encode(),
                )
                state.schedule(
                    [(sc.email_events_after_seconds, cb)], duplicate=sc.duplicate_callbacks
                )

            return stored, summary, after

        return await handle(
            request,
            service="email",
            operation="send",
            patient_ref=patient_ref if isinstance(patient_ref, str) else None,
            journey_ref=journey_ref if isinstance(journey_ref, str) else None,
            process=process,
        )

    # ------------------------------------------------------------------ control & inspection

    @app.get("/_sandbox/health")
    async def health() -> dict[str, Any]:
        return {"ok": True, "callback_url": state.callback_url, "services": list(SERVICES)}

    @app.put("/_sandbox/scenarios/{patient_ref}")
    async def put_scenario(patient_ref: str, scenario: Scenario) -> dict[str, Any]:
        state.set_scenario(patient_ref, scenario)
        return scenario.model_dump()

    @app.get("/_sandbox/scenarios/{patient_ref}")
    async def get_scenario(patient_ref: str) -> dict[str, Any]:
        return state.scenario(patient_ref).model_dump()

    @app.delete("/_sandbox/scenarios/{patient_ref}")
    async def delete_scenario(patient_ref: str) -> dict[str, Any]:
        state.scenarios.pop(patient_ref, None)
        return {"deleted": patient_ref}

    @app.get("/_sandbox/received")
    async def received(
        service: str | None = None, patient_ref: str | None = None
    ) -> list[dict[str, Any]]:
        rows = [
            r.public()
            for r in state.received.values()
            if (service is None or r.service == service)
            and (patient_ref is None or r.patient_ref == patient_ref)
        ]
        return sorted(rows, key=lambda r: r["first_at"])

    @app.get("/_sandbox/messages")
    async def messages(
        patient_ref: str | None = None, channel: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            m
            for m in state.messages
            if (patient_ref is None or m["patient_ref"] == patient_ref)
            and (channel is None or m["channel"] == channel)
        ]

    @app.get("/_sandbox/callbacks")
    async def callbacks(
        patient_ref: str | None = None, service: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            r.public()
            for r in state.callbacks
            if (patient_ref is None or r.callback.patient_ref == patient_ref)
            and (service is None or r.callback.service == service)
        ]

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, Any]:
        state.reset()
        return {"reset": True}

    @app.post("/_sandbox/sms/inbound")
    async def sms_inbound(message: InboundSms) -> dict[str, Any]:
        """Simulate a patient's text: a Twilio-signed inbound webhook to the platform."""
        sid = "SM" + uuid.uuid4().hex
        url = message.url or _with_password(
            f"{state.callback_url}/v1/webhooks/sms", state.callback_api_key
        )
        form = {
            "AccountSid": "ACsandbox",
            "ApiVersion": "2010-04-01",
            "Body": message.body,
            "From": message.from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": message.to,
        }
        cb = Callback(
            service="sms",
            type="sms.reply",
            event_id=sid,
            url=url,
            patient_ref=message.patient_ref,
            journey_ref=message.journey_ref,
            content_type="application/x-www-form-urlencoded",
            form=form,
        )
        state.schedule([(0.0, cb)])
        return {"message_sid": sid, "url": without_password(url)}

    return app
