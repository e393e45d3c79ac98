"""The partner sandbox: payer (FHIR / PAS), specialty pharmacy, e-consent, a copay-card
program, SMS and voice calls (Twilio shaped) and email (SendGrid shaped), scriptable per
patient and inspectable for tests.

Speaks HTTP only; imports nothing from Pitwall. See sandbox/README.md.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

from fastapi import FastAPI, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from sandbox import crm
from sandbox import payer as fhir
from sandbox.scenario import SERVICES, RefillFill, Scenario
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
# Pitwall's profile: the drug groups a dispense counts under (adherence, DOMAIN.md §3).
DRUG_GROUP_EXTENSION = "https://pitwall.dev/fhir/StructureDefinition/drug-group"
UCUM = "http://unitsofmeasure.org"
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
# The refill program's dispenses are handed over at 15:00 UTC of their scripted day.
HANDOVER_TIME = dt_time(15, 0)
NOT_HANDED_OVER = frozenset({"cancelled", "declined"})
PLAN_TYPES = frozenset({"commercial", "medicare", "medicaid", "tricare", "va", "other_government"})
COPAY_BIN = "610020"
COPAY_PCN = "SBXCOPAY"
COPAY_GROUP = "CPYSBX01"
COPAY_REJECTIONS = {"cap_reached": "benefit_cap_reached", "not_enrolled": "not_enrolled"}
# NCPDP Telecom reject codes (511-FB) the sandbox pharmacy explains; others go bare.
NCPDP_REJECT_MESSAGES = {
    "70": "Product/Service Not Covered",
    "75": "Prior Authorization Required",
    "79": "Refill Too Soon",
}

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
    "voice": lambda s: _twilio_error(s, 20500, "An internal server error has occurred"),
    "email": lambda s: _sendgrid_error(s, "service temporarily unavailable"),
    "pharmacy": lambda s: _simple_error(s, "unavailable"),
    "consent": lambda s: _simple_error(s, "unavailable"),
    "copay": lambda s: _simple_error(s, "unavailable"),
}


class ClockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: AwareDatetime = Field(description="The patient's journey time now.")


class InboundSms(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field("+15555550100", alias="from")
    to: str = "+15555550199"
    body: str
    patient_ref: str | None = None
    journey_ref: str | None = None
    url: str | None = None
    # The account owning the number texted; default: the last account that sent from it.
    account_sid: str | None = None


def _prescription(
    data: dict[str, Any], patient_ref: str | None
) -> tuple[Any, Any, list[tuple[str, bool]]]:
    """(ndc, days_supply, their checks) of a referral or a refill enrollment."""
    medication = data.get("medication")
    ndc = medication.get("ndc") if isinstance(medication, dict) else None
    days = data.get("days_supply")
    days_ok = isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= 365
    checks = [
        ("patient_ref", patient_ref is not None),
        ("medication.ndc", isinstance(ndc, str) and bool(ndc)),
        ("days_supply", days_ok),
    ]
    return ndc, days, checks


def _invalid_field(
    *checks: tuple[str, bool],
) -> tuple[StoredResponse, dict[str, Any], None] | None:
    """The 400 answer for the first field that fails its check, or None."""
    for field, ok in checks:
        if not ok:
            error = _simple_error(400, "invalid_request", field, f"{field} is missing or invalid")
            return error, {"rejected": 400, "field": field}, None
    return None


# ---------------------------------------------------------------------- Twilio helpers

# A message has a date_sent (and DateSent filters see it) once it leaves the queue.
SMS_SENT = frozenset({"sent", "delivered", "undelivered", "failed", "read"})
SMS_FAILURES = frozenset({"undelivered", "failed"})
SMS_DEFAULT_ERRORS = {"undelivered": 30003, "failed": 30008}
# Call progress per `voice` scenario, as the status callbacks carry it.
VOICE_SEQUENCES: dict[str, tuple[str, ...]] = {
    "answered": ("initiated", "ringing", "in-progress", "completed"),
    "voicemail": ("initiated", "ringing", "in-progress", "completed"),
    "no_answer": ("initiated", "ringing", "no-answer"),
    "busy": ("initiated", "busy"),
    "failed": ("initiated", "failed"),
}
CALL_TERMINAL = frozenset({"completed", "no-answer", "busy", "failed", "canceled"})


def _public(resource: dict[str, Any]) -> dict[str, Any]:
    """A Twilio resource as the REST API shows it (our bookkeeping keys start with `_`)."""
    return {k: v for k, v in resource.items() if not k.startswith("_")}


def _sms_error_code(status: str, sc: Scenario) -> int:
    return sc.sms_error_code or SMS_DEFAULT_ERRORS[status]


def _set_sms_status(
    resource: dict[str, Any], entry: dict[str, Any], status: str, sc: Scenario
) -> None:
    now = utcnow()
    resource["status"] = entry["status"] = status
    resource["date_updated"] = format_datetime(now)
    if status in SMS_SENT and resource["_sent"] is None:
        resource["_sent"] = now
        resource["date_sent"] = format_datetime(now)
    if status in SMS_FAILURES:
        resource["error_code"] = entry["error_code"] = _sms_error_code(status, sc)


def _answered_by(outcome: str, detection: str) -> str | None:
    """AnsweredBy, only when machine detection was asked for (as Twilio)."""
    if not detection:
        return None
    if outcome == "answered":
        return "human"
    if outcome == "voicemail":
        return "machine_end_beep" if detection.lower() == "detectmessageend" else "machine_start"
    return None


def _set_call_status(
    resource: dict[str, Any],
    entry: dict[str, Any],
    status: str,
    answered_by: str | None,
    seconds: int,
) -> None:
    now = utcnow()
    entry["status"] = status
    # `initiated` is a callback status; the Call resource stays `queued` until it rings.
    resource["status"] = "queued" if status == "initiated" else status
    resource["date_updated"] = format_datetime(now)
    if status == "initiated":
        resource["_started"] = now
        resource["start_time"] = format_datetime(now)
    if status == "in-progress":
        resource["answered_by"] = entry["answered_by"] = answered_by
    if status in CALL_TERMINAL:
        resource["end_time"] = format_datetime(now)
        resource["duration"] = str(seconds if status == "completed" else 0)


def _twiml_says(twiml: str) -> list[tuple[str, str | None]] | None:
    """(text, language) of every <Say> in a TwiML document; None when it is not TwiML."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError:
        return None
    if root.tag != "Response":
        return None
    return [("".join(say.itertext()).strip(), say.get("language")) for say in root.iter("Say")]


def _date_check(raw: str, op: str, field: str) -> Callable[[dict[str, Any]], bool] | None:
    """Twilio's date filters: `YYYY-MM-DD` (GMT) compares the day, `op` "" / ">" / "<" is
    on / on-or-after / on-or-before; a full ISO time compares the instant. A resource
    without that date (not sent / not started yet) never matches."""
    raw = raw.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            instant = None
        else:
            day = None
            instant = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=UTC)
    except ValueError:
        return None

    def compare(value: Any, bound: Any) -> bool:
        if op == ">":
            return bool(value >= bound)
        if op == "<":
            return bool(value <= bound)
        return bool(value == bound)

    def check(resource: dict[str, Any]) -> bool:
        at: datetime | None = resource.get(field)
        if at is None:
            return False
        if day is not None:
            return compare(at.astimezone(UTC).date(), day)
        return compare(at, instant)

    return check


ACTIVITY_FIELDS = frozenset({"msg_id", "from_email", "to_email", "subject", "status"})
_UNIQUE_ARG = re.compile(r"""^unique_args\['([^']+)'\]\s*=\s*"([^"]*)"$""")
_FIELD = re.compile(r"""^([a-z_]+)\s*=\s*"([^"]*)"$""")


def _activity_query(query: str) -> list[tuple[str | tuple[str, str], str]] | None:
    """Parse the subset of the Email Activity query language the sandbox serves; None
    when the query is not in it (the caller answers 400)."""
    query = query.strip()
    if not query:
        return []
    clauses: list[tuple[str | tuple[str, str], str]] = []
    for part in re.split(r"\s+AND\s+", query, flags=re.IGNORECASE):
        part = part.strip()
        while part.startswith("(") and part.endswith(")"):
            part = part[1:-1].strip()
        if m := _UNIQUE_ARG.match(part):
            clauses.append((("unique_args", m.group(1)), m.group(2)))
        elif (m := _FIELD.match(part)) and m.group(1) in ACTIVITY_FIELDS:
            clauses.append((m.group(1), m.group(2)))
        else:
            return None
    return clauses


def _activity_status(events: Sequence[str]) -> str:
    """The Email Activity status once a scenario's events happened."""
    if any(e in ("bounce", "blocked", "dropped") for e in events):
        return "not_delivered"
    if any(e in ("delivered", "open", "click", "spamreport", "unsubscribe") for e in events):
        return "delivered"
    return "processed"


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
    app.include_router(crm.router(state))  # the CRM work queue (sandbox/crm.py)
    event_numbers = iter(range(1, 1 << 62))

    async def handle(
        request: Request,
        *,
        service: str,
        operation: str,
        patient_ref: str | None,
        journey_ref: str | None,
        process: Process,
        idempotent: Callable[[Scenario], bool] | None = None,
        hold: Callable[[Scenario], float] | None = None,
    ) -> Response:
        """One partner request: outage, slowness, then `process`.

        `idempotent(scenario)` false (SMS / email by default, like Twilio and SendGrid):
        the `Idempotency-Key` is recorded but ignored, every request is new. True (the
        default): a key seen before returns the stored response and schedules nothing.
        `hold(scenario)` seconds: the request is processed (recorded, callbacks
        scheduled) and only then the answer held back that long.
        """
        header_key = request.headers.get(IDEMPOTENCY_HEADER)
        key = header_key or f"auto-{uuid.uuid4().hex}"
        scenario = state.scenario(patient_ref)
        dedupe = idempotent is None or idempotent(scenario)
        # Without dedupe each request is its own row (keyed apart), showing the key sent.
        row_key = key if dedupe else f"{key}#{uuid.uuid4().hex}"
        # Without dedupe nothing can race on the row: a private lock, not kept.
        async with state.lock(service, row_key) if dedupe else asyncio.Lock():
            row = state.received.get((service, row_key))
            replay = row is not None and row.response is not None
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
                    state.received[(service, row_key)] = row
                else:
                    row.attempts += 1
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
        if not replay:
            delay = hold(scenario) if hold is not None else 0.0
            if delay > 0 and 200 <= stored.status < 300:
                # Accepted and recorded, callbacks under way: the answer is held back.
                await asyncio.sleep(delay)
            return _to_response(stored)
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
                plan_type=sc.plan_type,
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

    def today_of(sc: Scenario, patient_ref: str | None) -> date | None:
        """A stepped patient's date (UTC) by its clock; None: today's."""
        if sc.clock != "stepped" or patient_ref is None:
            return None
        return state.clocks.clock(patient_ref).astimezone(UTC).date()

    def pa_notify(
        sc: Scenario,
        parsed: dict[str, Any],
        pa_number: str,
        code: str,
        delay: float,
        info: list[str] | None = None,
    ) -> None:
        """Schedule a PAS notification `delay` seconds on: the decision (A1 / A3; the PA
        counts as decided from then on), or, with ``info``, a still pended response asking
        for those documents (`pa.info_requested`)."""
        event_id = str(uuid.uuid4())
        response = fhir.response_bundle(
            parsed, pa_number, code, str(uuid.uuid4()), info, valid_days=sc.pa_valid_days,
            today=today_of(sc, parsed["patient_ref"]),
        )  # fmt: skip
        note = fhir.notification_bundle(event_id, next(event_numbers), response)
        cb = Callback(
            service="payer",
            type="pa.info_requested" if info else "pa.decided",
            event_id=event_id,
            url=f"{state.callback_url}/v1/webhooks/payer",
            patient_ref=parsed["patient_ref"],
            journey_ref=parsed["journey_ref"],
            body=json.dumps(note).encode(),
            content_type=fhir.FHIR_JSON,
        )

        def decided() -> None:
            state.pas[pa_number]["code"] = code

        steps: list[tuple[float, Callback | Callable[[], None]]] = [(delay, cb)]
        if not info:
            steps.insert(0, (delay, decided))
        state.schedule(steps, duplicate=sc.duplicate_callbacks)

    def pas_update(
        sc: Scenario, parsed: dict[str, Any]
    ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
        """A PAS Claim Update of a pended PA: pended again under the same PA number; the
        first update after an info request gets the decision notified `pend_seconds` later."""
        pa_number = parsed["update_of"]
        record = state.pas.get(pa_number)
        if record is None or record["patient_ref"] != parsed["patient_ref"]:
            outcome = fhir.operation_outcome(
                "not-found", "unknown-pa-number", "updated PA number is unknown"
            )
            return _fhir(400, outcome), {"rejected": 400, "update_of": pa_number}, None
        if record["code"] != "A4":
            outcome = fhir.operation_outcome(
                "business-rule", "pa-not-pended", "only a pended PA can be updated"
            )
            return _fhir(400, outcome), {"rejected": 400, "update_of": pa_number}, None
        decide = record.get("awaiting_info", False)
        record["awaiting_info"] = False
        final = record["final"] if decide else None
        bundle = fhir.response_bundle(parsed, pa_number, "A4", str(uuid.uuid4()))
        summary = {
            "pa_number": pa_number,
            "review_action_code": "A4",
            "outcome": "pended",
            "update_of": pa_number,
            "final_review_action_code": final,
        }

        def after() -> None:
            if final is not None:
                pa_notify(sc, parsed, pa_number, final, sc.pend_seconds)

        return _fhir(200, bundle), summary, after

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
            if parsed["update_of"]:
                return pas_update(sc, parsed)
            code, delay, final, info = sc.pa_course(appeal=bool(appeal_of))
            pa_number = "PA" + uuid.uuid4().hex[:10].upper()
            state.pas[pa_number] = {
                "patient_ref": parsed["patient_ref"],
                "journey_ref": parsed["journey_ref"],
                "code": code,
                "final": final,
                "appeal_of": appeal_of,
                "awaiting_info": bool(info),
            }
            bundle = fhir.response_bundle(
                parsed, pa_number, code, str(uuid.uuid4()), valid_days=sc.pa_valid_days,
                today=today_of(sc, parsed["patient_ref"]),
            )  # fmt: skip
            summary = {
                "pa_number": pa_number,
                "review_action_code": code,
                "outcome": {"A1": "approved", "A3": "denied", "A4": "pended"}[code],
                "appeal_of": appeal_of,
                "final_review_action_code": final,
            }
            if info:
                summary["info_requested"] = info

            def after() -> None:
                if final is None:
                    return
                if info:
                    pa_notify(sc, parsed, pa_number, "A4", delay, info)
                else:
                    pa_notify(sc, parsed, pa_number, final, delay)

            return _fhir(200, bundle), summary, after

        return await handle(
            request,
            service="payer",
            operation=(
                "pas_update"
                if parsed and parsed["update_of"]
                else "pas_appeal"
                if parsed and parsed["appeal_of"]
                else "pas_submit"
            ),
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
            ndc, days, checks = _prescription(data, patient_ref)
            bad = _invalid_field(*checks)
            if bad is not None:
                return bad
            assert isinstance(days, int) and isinstance(ndc, str)
            rx_id = "rx_" + uuid.uuid4().hex[:12]
            supply = sc.days_supply if "days_supply" in sc.model_fields_set else days
            # The claim is adjudicated at fill time: a reject means no fill and no shipment.
            reject = sc.adjudicate_claim()
            summary: dict[str, Any] = {"rx_id": rx_id, "ndc": ndc, "days_supply": supply}
            summary["claim"] = "paid" if reject is None else "rejected"
            if reject is not None:
                summary["reject_code"] = reject
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

                if reject is not None:
                    rejected: dict[str, Any] = {
                        "transaction_response_status": "R",
                        "reject_count": 1,
                        "reject_codes": [reject],
                    }
                    if reject in NCPDP_REJECT_MESSAGES:
                        rejected["reject_messages"] = [NCPDP_REJECT_MESSAGES[reject]]
                    if reject == "79":
                        adjudicated = at(t_fill).date()
                        payable = adjudicated + timedelta(days=sc.refill_too_soon_days)
                        rejected["earliest_fill_date"] = payable.isoformat()
                    cb = event("pharmacy.claim_rejected", t_fill, rejected)
                    state.schedule([(t_fill, cb)], duplicate=sc.duplicate_callbacks)
                    return
                paid = event(
                    "pharmacy.claim_paid",
                    t_fill,
                    {
                        "transaction_response_status": "P",
                        "authorization_number": "AUTH" + uuid.uuid4().hex[:10].upper(),
                    },
                )
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
                if sc.drug_groups:  # FHIR allows no empty arrays
                    dispense["extension"] = [
                        {"url": DRUG_GROUP_EXTENSION, "valueCode": group}
                        for group in sc.drug_groups
                    ]
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
                steps = [(t_fill, paid), (t_fill, filled)]
                if sc.out_of_order:
                    steps += [(t_ship, delivered), (t_deliver, shipped)]
                else:
                    steps += [(t_ship, shipped), (t_deliver, delivered)]
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

    def _iso_date(value: Any) -> date | None:
        if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None

    @app.post("/pharmacy/refill-enrollments")
    async def pharmacy_refill_enrollment(request: Request) -> Response:
        """The refill program: enrolled at once, then the patient's refill history (the
        scenario's) as `pharmacy.dispensed` callbacks, a scripted day per
        `refill_day_seconds` after the enrollment."""
        data = await _json_body(request)
        patient_ref, journey_ref = _str(data, "patient_ref"), _str(data, "journey_ref")

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            if data is None:
                return _simple_error(400, "invalid_json"), {"rejected": 400}, None
            ndc, days, checks = _prescription(data, patient_ref)
            starts_on = _iso_date(data.get("starts_on"))
            bad = _invalid_field(*checks, ("starts_on", starts_on is not None))
            if bad is not None:
                return bad
            assert isinstance(days, int) and isinstance(ndc, str) and starts_on is not None
            rx_id = "rx_" + uuid.uuid4().hex[:12]
            supply = sc.days_supply if "days_supply" in sc.model_fields_set else days
            script = sc.refill_script(supply)
            summary: dict[str, Any] = {
                "rx_id": rx_id,
                "ndc": ndc,
                "days_supply": supply,
                "starts_on": starts_on.isoformat(),
                "refill_history": "explicit" if sc.refill_fills is not None else sc.refill_history,
                "dispenses": len(script),
            }
            body = {"rx_id": rx_id, "status": "enrolled", "enrolled_at": iso()}

            def handed_over(day: int) -> datetime:
                return datetime.combine(starts_on + timedelta(days=day), HANDOVER_TIME, UTC)

            def dispense(n: int, fill: RefillFill) -> dict[str, Any]:
                fill_supply = fill.days_supply or supply
                groups = fill.drug_groups if fill.drug_groups is not None else sc.drug_groups
                resource: dict[str, Any] = {
                    "resourceType": "MedicationDispense",
                    "id": f"md-{rx_id.replace('_', '-')}-{n + 1}",
                    "status": fill.status,
                    "medicationCodeableConcept": {
                        "coding": [{"system": NDC_SYSTEM, "code": fill.ndc or ndc}]
                    },
                    "subject": {
                        "identifier": {"system": fhir.PATIENT_SYSTEM, "value": patient_ref}
                    },
                    "quantity": {
                        "value": fill_supply,
                        "unit": "tablet",
                        "system": UCUM,
                        "code": "{tbl}",
                    },
                    "daysSupply": {
                        "value": fill_supply,
                        "unit": "Day",
                        "system": UCUM,
                        "code": "d",
                    },
                }
                if fill.status not in NOT_HANDED_OVER:  # a cancelled / declined one never was
                    resource["whenHandedOver"] = iso(handed_over(fill.day))
                if groups:  # FHIR allows no empty arrays
                    resource["extension"] = [
                        {"url": DRUG_GROUP_EXTENSION, "valueCode": group} for group in groups
                    ]
                return resource

            def after() -> None:
                resources: list[dict[str, Any]] = []
                steps: list[tuple[float, Callback | Callable[[], None]]] = []
                for n, fill in enumerate(script):
                    if fill.corrects is not None:
                        # The same dispense, as it was, under its id: only the status changes.
                        resource = {**resources[fill.corrects], "status": fill.status}
                    else:
                        resource = dispense(n, fill)
                    resources.append(resource)
                    event_id = "evt_" + uuid.uuid4().hex
                    payload = {
                        "event_id": event_id,
                        "type": "pharmacy.dispensed",
                        "rx_id": rx_id,
                        "journey_ref": journey_ref,
                        "patient_ref": patient_ref,
                        "occurred_at": iso(handed_over(fill.day)),
                        "medication_dispense": resource,
                    }
                    cb = json_callback(
                        "pharmacy", "pharmacy.dispensed", event_id, payload, patient_ref
                    )
                    steps.append((fill.day * sc.refill_day_seconds, cb))
                if sc.out_of_order:  # each pair swapped: the later one at the earlier's time
                    for n in range(0, len(steps) - 1, 2):
                        (t1, first), (t2, second) = steps[n], steps[n + 1]
                        steps[n], steps[n + 1] = (t1, second), (t2, first)
                if steps:
                    state.schedule(steps, duplicate=sc.duplicate_callbacks)

            return _json(201, body), summary, after

        return await handle(
            request,
            service="pharmacy",
            operation="refill_enrollment",
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

    # ------------------------------------------------------------------ Twilio (SMS, voice)

    def _basic_auth(request: Request) -> tuple[str, str] | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password

    def _twilio_denied(account_sid: str, request: Request) -> Response | None:
        creds = _basic_auth(request)
        if creds is None or creds[0] != account_sid or creds[1] != state.twilio_auth_token:
            return _to_response(_twilio_error(401, 20003, "Authenticate"))
        return None

    async def _form_pairs(request: Request) -> list[tuple[str, str]]:
        try:
            return parse_qsl((await request.body()).decode(), keep_blank_values=True)
        except UnicodeDecodeError:
            return []

    def _refs(form: dict[str, str], callback_url: str) -> tuple[str | None, str | None]:
        query = parse_qs(urlsplit(callback_url).query) if callback_url else {}
        patient_ref = form.get("PitwallPatientRef") or next(
            iter(query.get("patient_ref", [])), None
        )
        journey_ref = form.get("PitwallJourneyRef") or next(
            iter(query.get("journey_ref", [])), None
        )
        return patient_ref, journey_ref

    def _twilio_callback(
        kind: str, event_id: str, url: str, form: dict[str, str], refs: tuple[str | None, ...]
    ) -> Callback:
        return Callback(
            service="sms" if kind.startswith("sms") else "voice",
            type=kind,
            event_id=event_id,
            url=url,
            patient_ref=refs[0],
            journey_ref=refs[1],
            content_type="application/x-www-form-urlencoded",
            form=form,
        )

    def _progress(
        steps: list[tuple[float, Callable[[], None], Callback | None]], sc: Scenario
    ) -> None:
        """Move a Twilio resource through its statuses at their true times (`steps`: offset,
        update, the status callback or None) and deliver the callbacks in the same slots —
        reversed among themselves by `out_of_order`. Each slot's update runs before its
        callback goes out, so a fetch answered after a callback shows at least that far."""
        slots = [i for i, (_, _, cb) in enumerate(steps) if cb is not None]
        callbacks = [cb for _, _, cb in steps if cb is not None]
        if sc.out_of_order:
            callbacks.reverse()
        delivery = dict(zip(slots, callbacks, strict=True))
        chain: list[tuple[float, Callback | Callable[[], None]]] = []
        for i, (offset, update, _) in enumerate(steps):
            chain.append((offset, update))
            if i in delivery:
                chain.append((offset, delivery[i]))
        state.schedule(chain, duplicate=sc.duplicate_callbacks)

    @app.post("/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def twilio_messages(account_sid: str, request: Request) -> Response:
        if (denied := _twilio_denied(account_sid, request)) is not None:
            return denied
        form = dict(await _form_pairs(request))
        callback_url = form.get("StatusCallback") or ""
        refs = _refs(form, callback_url)
        patient_ref, journey_ref = refs

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
            resource: dict[str, Any] = {
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
                "_created": now,
                "_sent": None,
            }
            state.twilio[sid] = resource
            entry: dict[str, Any] = {
                "channel": "sms",
                "id": sid,
                "direction": "outbound-api",
                "to": to,
                "from": sender,
                "body": text,
                "status": statuses[0],
                "error_code": None,
                "patient_ref": patient_ref,
                "journey_ref": journey_ref,
                "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
                "at": iso(now),
            }
            state.messages.append(entry)
            _set_sms_status(resource, entry, statuses[0], sc)
            body = _public(resource)
            summary = {"sid": sid, "to": to, "body": text, "status": statuses[0]}

            def after() -> None:
                steps: list[tuple[float, Callable[[], None], Callback | None]] = []
                interval = sc.sms_status_interval_seconds
                for i, status in enumerate(statuses[1:]):
                    cb = None
                    if callback_url:
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
                        if status in SMS_FAILURES:
                            form_out["ErrorCode"] = str(_sms_error_code(status, sc))
                        cb = _twilio_callback(
                            "sms.status", f"{sid}:{status}", callback_url, form_out, refs
                        )

                    def update(s: str = status) -> None:
                        _set_sms_status(resource, entry, s, sc)

                    steps.append((interval * (i + 1), update, cb))
                _progress(steps, sc)

            return _json(201, body), summary, after

        return await handle(
            request,
            service="sms",
            operation="send",
            patient_ref=patient_ref,
            journey_ref=journey_ref,
            process=process,
            idempotent=lambda sc: sc.sms_idempotency,
            hold=lambda sc: sc.sms_response_delay_seconds,
        )

    @app.get("/2010-04-01/Accounts/{account_sid}/Messages.json")
    async def twilio_messages_list(account_sid: str, request: Request) -> Response:
        """Read: To, From, DateSent / DateSent> / DateSent< (the wire names of
        `DateSent>=` / `DateSent<=`), PageSize, Page; newest first."""
        if (denied := _twilio_denied(account_sid, request)) is not None:
            return denied
        return _to_response(
            _twilio_page(request, account_sid, "SM", "messages", "DateSent", "_sent")
        )

    @app.get("/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json")
    async def twilio_message(account_sid: str, sid: str, request: Request) -> Response:
        if (denied := _twilio_denied(account_sid, request)) is not None:
            return denied
        return _to_response(_twilio_fetch(account_sid, sid, "SM", "Message"))

    @app.post("/2010-04-01/Accounts/{account_sid}/Calls.json")
    async def twilio_calls(account_sid: str, request: Request) -> Response:
        if (denied := _twilio_denied(account_sid, request)) is not None:
            return denied
        pairs = await _form_pairs(request)
        form = dict(pairs)
        callback_url = form.get("StatusCallback") or ""
        refs = _refs(form, callback_url)
        patient_ref, journey_ref = refs
        # Repeated (as the helper libraries send it) or space-separated; default: completed.
        events = {e.lower() for k, v in pairs if k == "StatusCallbackEvent" for e in v.split()} or {
            "completed"
        }
        detection = form.get("MachineDetection", "")

        async def process(
            sc: Scenario,
        ) -> tuple[StoredResponse, dict[str, Any], Callable[[], None] | None]:
            to, sender = form.get("To", ""), form.get("From", "")
            twiml = form.get("Twiml", "")
            error: StoredResponse | None = None
            spoken: list[tuple[str, str | None]] = []
            if not to:
                error = _twilio_error(400, 21201, "No 'To' number is specified")
            elif not E164.match(to):
                error = _twilio_error(
                    400, 21211, f"The 'To' number {to} is not a valid phone number."
                )
            elif not sender:
                error = _twilio_error(400, 21213, "No 'From' number is specified")
            elif not twiml and not form.get("Url"):
                error = _twilio_error(400, 21205, "Url or Twiml parameter is required.")
            elif callback_url and urlsplit(callback_url).scheme not in ("http", "https"):
                error = _twilio_error(400, 21205, "Invalid StatusCallback url")
            elif twiml:
                parsed = _twiml_says(twiml)
                if parsed is None:
                    error = _twilio_error(400, 12100, "Document parse failure")
                else:
                    spoken = parsed
            if error is not None:
                return (
                    error,
                    {"rejected": error.status, "twilio_code": json.loads(error.body)["code"]},
                    None,
                )
            sid = "CA" + uuid.uuid4().hex
            now = utcnow()
            text = " ".join(t for t, _ in spoken)
            language = next((lang for _, lang in spoken if lang), None)
            resource: dict[str, Any] = {
                "sid": sid,
                "account_sid": account_sid,
                "to": to,
                "from": sender,
                "status": "queued",
                "direction": "outbound-api",
                "api_version": "2010-04-01",
                "answered_by": None,
                "caller_name": None,
                "parent_call_sid": None,
                "date_created": format_datetime(now),
                "date_updated": format_datetime(now),
                "start_time": None,
                "end_time": None,
                "duration": None,
                "price": None,
                "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json",
                "_created": now,
                "_started": None,
            }
            state.twilio[sid] = resource
            entry: dict[str, Any] = {
                "channel": "voice",
                "id": sid,
                "direction": "outbound-api",
                "to": to,
                "from": sender,
                "body": text,
                "language": language,
                "status": "queued",
                "answered_by": None,
                "patient_ref": patient_ref,
                "journey_ref": journey_ref,
                "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
                "at": iso(now),
            }
            state.messages.append(entry)
            summary = {"sid": sid, "to": to, "status": "queued", "will": sc.voice}

            def after() -> None:
                answered_by = _answered_by(sc.voice, detection)
                seconds = max(1, round(len(text.split()) / 2.5)) + 2
                steps: list[tuple[float, Callable[[], None], Callback | None]] = []
                sequence = 0
                interval = sc.voice_status_interval_seconds
                for i, status in enumerate(VOICE_SEQUENCES[sc.voice]):
                    # StatusCallbackEvent names: the answer is `answered`, every end `completed`.
                    event = {"in-progress": "answered"}.get(status, status)
                    if status in CALL_TERMINAL:
                        event = "completed"
                    cb = None
                    if callback_url and event in events:
                        form_out = {
                            "AccountSid": account_sid,
                            "ApiVersion": "2010-04-01",
                            "CallSid": sid,
                            "CallStatus": status,
                            "Called": to,
                            "Caller": sender,
                            "CallbackSource": "call-progress-events",
                            "Direction": "outbound-api",
                            "From": sender,
                            "SequenceNumber": str(sequence),
                            "Timestamp": format_datetime(
                                utcnow() + timedelta(seconds=interval * (i + 1))
                            ),
                            "To": to,
                        }
                        sequence += 1
                        if answered_by and status in ("in-progress", "completed"):
                            form_out["AnsweredBy"] = answered_by
                        if status in CALL_TERMINAL:
                            form_out["CallDuration"] = str(seconds if status == "completed" else 0)
                        cb = _twilio_callback(
                            "voice.status", f"{sid}:{status}", callback_url, form_out, refs
                        )

                    def update(s: str = status) -> None:
                        _set_call_status(resource, entry, s, answered_by, seconds)

                    steps.append((interval * (i + 1), update, cb))
                _progress(steps, sc)

            return _json(201, _public(resource)), summary, after

        return await handle(
            request,
            service="voice",
            operation="call",
            patient_ref=patient_ref,
            journey_ref=journey_ref,
            process=process,
            idempotent=lambda sc: False,  # Twilio Calls never deduplicate
        )

    @app.get("/2010-04-01/Accounts/{account_sid}/Calls.json")
    async def twilio_calls_list(account_sid: str, request: Request) -> Response:
        """Read: To, From, Status, StartTime / StartTime> / StartTime< (`StartTime>=` …),
        PageSize, Page; newest first."""
        if (denied := _twilio_denied(account_sid, request)) is not None:
            return denied
        return _to_response(
            _twilio_page(request, account_sid, "CA", "calls", "StartTime", "_started")
        )

    @app.get("/2010-04-01/Accounts/{account_sid}/Calls/{sid}.json")
    async def twilio_call(account_sid: str, sid: str, request: Request) -> Response:
        if (denied := _twilio_denied(account_sid, request)) is not None:
            return denied
        return _to_response(_twilio_fetch(account_sid, sid, "CA", "Call"))

    def _twilio_fetch(account_sid: str, sid: str, prefix: str, what: str) -> StoredResponse:
        resource = state.twilio.get(sid)
        if resource is None or not sid.startswith(prefix) or resource["account_sid"] != account_sid:
            return _twilio_error(
                404, 20404, f"The requested resource /2010-04-01/Accounts/{account_sid}/"
                f"{what}s/{sid}.json was not found",
            )  # fmt: skip
        return _json(200, _public(resource))

    def _twilio_page(
        request: Request, account_sid: str, prefix: str, key: str, date_param: str, field: str
    ) -> StoredResponse:
        params = dict(parse_qsl(request.url.query, keep_blank_values=True))
        # `DateSent>=2024-01-31` in a URL is the parameter `DateSent>`; accept both spellings.
        params = {k[:-1] if k.endswith((">=", "<=")) else k: v for k, v in params.items()}
        try:
            size = int(params.get("PageSize", "50"))
            page = int(params.get("Page", "0"))
        except ValueError:
            return _twilio_error(400, 20001, "Invalid value for PageSize or Page")
        if not 1 <= size <= 1000 or page < 0:
            return _twilio_error(400, 20001, "Invalid value for PageSize or Page")
        checks: list[Callable[[dict[str, Any]], bool]] = []
        equal = {
            name.lower(): params[name] for name in ("To", "From", "Status") if params.get(name)
        }
        checks.append(lambda r: all(r.get(k) == v for k, v in equal.items()))
        for suffix in ("", ">", "<"):
            raw = params.get(date_param + suffix)
            if not raw:
                continue
            check = _date_check(raw, suffix, field)
            if check is None:
                return _twilio_error(400, 20001, f"Invalid value for {date_param}{suffix}")
            checks.append(check)
        rows = [
            r
            for r in reversed(list(state.twilio.values()))
            if r["sid"].startswith(prefix)
            and r["account_sid"] == account_sid
            and all(check(r) for check in checks)
        ]
        rows.sort(key=lambda r: r["_created"], reverse=True)
        chunk = rows[page * size : (page + 1) * size]
        filters = {k: v for k, v in params.items() if k not in ("PageSize", "Page", "PageToken")}
        base = f"/2010-04-01/Accounts/{account_sid}/{key.capitalize()}.json"

        def uri(n: int) -> str:
            return base + "?" + urlencode({**filters, "PageSize": size, "Page": n})

        body = {
            key: [_public(r) for r in chunk],
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + max(len(chunk) - 1, 0),
            "uri": uri(page),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if len(rows) > (page + 1) * size else None,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
        }
        return _json(200, body)

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
            subject = data.get("subject") or first.get("subject")
            stored = StoredResponse(202, b"", "text/plain", {"X-Message-Id": message_id})
            state.messages.append(
                {
                    "channel": "email",
                    "id": message_id,
                    "to": to,
                    "subject": subject,
                    "body": data["content"][0]["value"],
                    "custom_args": {k: str(v) for k, v in custom_args.items()},
                    "status": "processed",
                    "patient_ref": patient_ref,
                    "journey_ref": journey_ref,
                    "idempotency_key": request.headers.get(IDEMPOTENCY_HEADER),
                    "at": iso(),
                }
            )
            entry = state.messages[-1]
            # The Email Activity row (msg_id is the sg_message_id form: X-Message-Id.filter…).
            activity: dict[str, Any] = {
                "from_email": data["from"]["email"],
                "msg_id": f"{message_id}.filter0001.16648.{uuid.uuid4().hex[:8].upper()}.0",
                "subject": subject,
                "to_email": to,
                "status": "processed",
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": iso(utcnow().replace(microsecond=0)),
                "_unique_args": dict(entry["custom_args"]),
            }
            state.email_activity[message_id] = activity
            summary = {"message_id": message_id, "to": to, "subject": data.get("subject")}

            def after() -> None:
                if not sc.email_events:
                    return

                def settle() -> None:
                    status = _activity_status(sc.email_events)
                    activity["status"] = entry["status"] = status
                    activity["last_event_time"] = iso(utcnow().replace(microsecond=0))
                    activity["opens_count"] = sc.email_events.count("open")
                    activity["clicks_count"] = sc.email_events.count("click")

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
                at = sc.email_events_after_seconds
                state.schedule([(at, settle), (at, cb)], duplicate=sc.duplicate_callbacks)

            return stored, summary, after

        return await handle(
            request,
            service="email",
            operation="send",
            patient_ref=patient_ref if isinstance(patient_ref, str) else None,
            journey_ref=journey_ref if isinstance(journey_ref, str) else None,
            process=process,
            idempotent=lambda sc: sc.email_idempotency,
            hold=lambda sc: sc.email_response_delay_seconds,
        )

    @app.get("/v3/messages")
    async def sendgrid_activity(request: Request) -> Response:
        """Email Activity: `query` a conjunction (AND) of `field="value"` clauses, optionally
        parenthesised — msg_id, from_email, to_email, subject, status, and
        `unique_args['name']="value"` (our custom_args) — and `limit` (1..1000, default 10).
        Newest first."""
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return _to_response(
                _sendgrid_error(
                    401, "The provided authorization grant is invalid, expired, or revoked"
                )
            )
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            return _to_response(_sendgrid_error(400, "limit must be between 1 and 1000", "limit"))
        clauses = _activity_query(request.query_params.get("query", ""))
        if clauses is None:
            return _to_response(_sendgrid_error(400, "invalid query", "query"))
        rows = [
            row
            for row in reversed(list(state.email_activity.values()))
            if all(
                (row["_unique_args"].get(name[1]) if isinstance(name, tuple) else row.get(name))
                == value
                for name, value in clauses
            )
        ][:limit]
        return _to_response(_json(200, {"messages": [_public(r) for r in rows]}))

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
        patient_ref: str | None = None,
        channel: str | None = None,
        in_reply_to: str | None = None,
    ) -> list[dict[str, Any]]:
        return [
            m
            for m in state.messages
            if (patient_ref is None or m["patient_ref"] == patient_ref)
            and (channel is None or m["channel"] == channel)
            and (in_reply_to is None or m.get("in_reply_to") == in_reply_to)
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

    @app.get("/_sandbox/scheduled")
    async def scheduled(patient_ref: str | None = None) -> dict[str, int]:
        """Callback chains still to play out (for one patient): 0 means nothing more is
        coming, so a test can check what was sent without sleeping."""
        if patient_ref is None:
            return {"scheduled": sum(n for n in state.scheduled.values() if n > 0)}
        return {"scheduled": max(state.scheduled[patient_ref], 0)}

    @app.get("/_sandbox/clock/{patient_ref}")
    async def get_clock(patient_ref: str) -> dict[str, Any]:
        """A stepped patient's clock: now, when the next callback is due, and whether a
        chain is playing a step right now."""
        clocks = state.clocks
        due = clocks.next_due(patient_ref)
        return {
            "now": iso(clocks.now[patient_ref]) if patient_ref in clocks.now else None,
            "next_due": iso(due) if due else None,
            "busy": clocks.busy(patient_ref),
        }

    @app.post("/_sandbox/clock/{patient_ref}")
    async def advance_clock(patient_ref: str, move: ClockMove) -> dict[str, Any]:
        """Move a stepped patient's clock (never back); answers once every callback due by
        then has been delivered (its first attempt answered)."""
        await state.clocks.advance(patient_ref, move.now)
        return await get_clock(patient_ref)

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
        account_sid = message.account_sid or next(
            (r["account_sid"] for r in reversed(state.twilio.values()) if r["from"] == message.to),
            "ACsandbox",
        )
        form = {
            "AccountSid": account_sid,
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
            twiml_replies=True,
        )
        state.schedule([(0.0, cb)])
        return {"message_sid": sid, "url": without_password(url)}

    return app
